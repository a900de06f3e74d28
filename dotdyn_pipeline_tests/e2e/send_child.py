"""One campaign send executed in a process of its own, as a run's process executes it, which kills itself
(SIGKILL, nothing cleaned up) when the send reaches the step named on the command line.

    python -m dotdyn_pipeline_tests.e2e.send_child <esc_emailsend id> <run id> <step>
"""

import os
import signal
import sys

import dagster as dg

from dotdyn_pipeline.defs.sends.assets import send_settings
from dotdyn_pipeline.defs.sends.campaign import execute_send
from dotdyn_pipeline.resources import resources
from dotdyn_pipeline.settings import Settings


def main(send_id: str, run_id: str, kill_at: str) -> None:
    def observe(step: str) -> None:
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    with dg.build_resources(resources()) as built:
        done = execute_send(send_id, run_id, built.dataverse, built.dotdigital, built.state,
                            send_settings(Settings.from_env()), on_step=observe)
    print(done.attempt.outcome)


if __name__ == "__main__":
    main(*sys.argv[1:])

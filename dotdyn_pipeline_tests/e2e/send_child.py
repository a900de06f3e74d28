"""Sends executed in a process of their own, as a run's process executes them, which kills itself (SIGKILL,
nothing cleaned up) when a send reaches the step named on the command line.

    python -m dotdyn_pipeline_tests.e2e.send_child <esc_emailsend id> <run id> <step>
    python -m dotdyn_pipeline_tests.e2e.send_child --triggered <email account id> <run id> <step>
"""

import os
import signal
import sys
from datetime import UTC, datetime

import dagster as dg

from dotdyn_pipeline.defs.accounts.accounts import email_account
from dotdyn_pipeline.defs.sends.assets import send_settings
from dotdyn_pipeline.defs.sends.campaign import execute_send
from dotdyn_pipeline.defs.sends.triggered import TriggeredSender, due_triggered_sends
from dotdyn_pipeline.resources import resources
from dotdyn_pipeline.settings import Settings


def _killer(kill_at: str):
    def observe(*where: str) -> None:
        if where[-1] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return observe


def campaign_send(send_id: str, run_id: str, kill_at: str) -> None:
    with dg.build_resources(resources()) as built:
        execute_send(send_id, run_id, built.dataverse, built.dotdigital, built.state,
                     send_settings(Settings.from_env()), on_step=_killer(kill_at))


def triggered_sends(account: str, run_id: str, kill_at: str) -> None:
    with dg.build_resources(resources()) as built, built.dataverse.client() as crm, built.state.open() as store, \
            email_account(crm, account).dotdigital(built.dotdigital) as client:
        sender = TriggeredSender(crm, client, store, run_id, on_step=_killer(kill_at))
        for request in due_triggered_sends(crm, datetime.now(UTC), account):
            sender.execute(request)


if __name__ == "__main__":
    if sys.argv[1] == "--triggered":
        triggered_sends(*sys.argv[2:])
    else:
        campaign_send(*sys.argv[1:])

"""The Dagster UI and daemon (`dagster dev`) for `dotdyn dev` and `dotdyn demo --ui`, stopped as a whole."""

from __future__ import annotations

import sys

from dotdyn_pipeline.runtime.process_tree import ProcessTree, stop_signals_interrupt
from dotdyn_pipeline.settings import PROJECT_ROOT

#: How long `dagster dev` may take to shut its webserver, daemon and code server down before what remains is
#: killed. Interrupted together, they stop side by side, well within it; it is short because a person or a
#: service manager waits only so long after asking a command to stop, and `dotdyn demo --ui` stops the sandbox
#: after the UI within the same wait.
STOP_GRACE = 5.0


def serve_ui(host: str, port: int) -> int:
    """Serve the UI on host:port until `dagster dev` ends or this process is asked to stop (Ctrl-C, SIGTERM,
    SIGHUP); either way no process of it is left running.

    `dagster dev` runs in a process group of its own and is stopped by interrupting that group, as Ctrl-C
    would in a terminal: each of its processes then shuts itself down, and one that outlives its parent is
    still found (and killed once the grace has passed).
    """
    with stop_signals_interrupt():
        ui = ProcessTree([sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", host,
                          "-p", str(port)], own_group=True, cwd=PROJECT_ROOT)
        try:
            return ui.process.wait()
        except KeyboardInterrupt:
            return 0  # asked to stop: the normal end of a UI
        finally:
            ui.stop(STOP_GRACE)

"""Run a sandbox in a child process (for tests, benchmarks and `dotdyn demo`) and read its contract."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dotdyn_pipeline.runtime.process_tree import ProcessTree
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.server import CONTRACT_FILE

#: How long a stopped sandbox may take to end before it is killed: longer than its servers' graceful shutdown
#: (server.py), which bounds the wait for requests in flight.
STOP_GRACE = 3.0


def command_line(directory: Path, settings: SandboxSettings) -> list[str]:
    """The `dotdyn sandbox up` command that serves `settings` from `directory`."""
    args = [sys.executable, "-m", "dotdyn_pipeline.cli", "sandbox", "up", "--dir", str(directory),
            "--seed", str(settings.seed), "--contacts", str(settings.contacts), "--leads", str(settings.leads),
            "--accounts", str(settings.accounts), "--email-accounts", str(settings.email_accounts),
            "--days", str(settings.days), "--token-lifetime", str(settings.token_lifetime)]
    if settings.bare:
        args.append("--bare")
    for key, value in settings.options.items():
        args += ["--option", f"{key}={value}"]
    return args


def read_contract(directory: Path) -> dict[str, Any]:
    """The contract of a sandbox serving from `directory`."""
    return json.loads((directory / CONTRACT_FILE).read_text())


@contextmanager
def running_sandbox(directory: Path, settings: SandboxSettings | None = None,
                    timeout: float = 600.0) -> Iterator[dict[str, Any]]:
    """Start `dotdyn sandbox up` in `directory`, yield its contract once ready, stop it afterwards.

    The sandbox stays in this process's group, so that a terminal's Ctrl-C reaches it at once; leaving the
    block sends it SIGTERM as well (for every other way of stopping), and kills it, with any process it
    started, if it has not ended within STOP_GRACE.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONTRACT_FILE).unlink(missing_ok=True)
    log_path = directory / "sandbox.log"
    with log_path.open("wb") as log:
        sandbox = ProcessTree(command_line(directory, settings or SandboxSettings()), own_group=False, stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + timeout
            while not (directory / CONTRACT_FILE).exists():
                if sandbox.process.poll() is not None:
                    raise RuntimeError(f"the sandbox exited with {sandbox.process.returncode}; see {log_path}:\n"
                                       + log_path.read_text(errors="replace")[-3000:])
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the sandbox was not ready within {timeout} s")
                time.sleep(0.05)
            yield read_contract(directory)
        finally:
            sandbox.stop(STOP_GRACE, signal.SIGTERM)

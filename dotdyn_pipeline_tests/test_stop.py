"""`dotdyn demo --ui` and `dotdyn dev` stop as a whole, on Ctrl-C or SIGTERM, within the time a person or a
service manager waits: no process they started is left running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.conftest import trust

pytestmark = pytest.mark.slow

#: What the commands promise: everything has ended this long after the stop signal.
STOP_DEADLINE = 10.0
#: Long enough for the demo's runs and the UI's start on a busy machine.
START_DEADLINE = 900.0
#: A sandbox of the demo's shape (two accounts), small enough that the demo's runs are quick.
SMALL_SANDBOX = SandboxSettings(seed=29, contacts=300, leads=60, accounts=30, email_accounts=2, days=3)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command:
    """`dotdyn ...` started as a job: in a process group of its own, which Ctrl-C signals.

    It starts with SIGINT ignored, as a script's background job does (and as it is under some test runners):
    the command must obey the SIGINT it is sent all the same, and start its children with SIGINT at its default,
    or they would ignore it too. A terminal's foreground job, with SIGINT at its default, is the easier case.
    """

    def __init__(self, args: list[str], home: Path) -> None:
        env = {**os.environ, "DOTDYN_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        env.pop("DOTDYN_POSTGRES_URL", None)
        self.log = home / "command.log"
        home.mkdir(parents=True, exist_ok=True)
        runner_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)  # an ignored signal stays ignored in a child
        try:
            with self.log.open("wb") as log:
                self.process = subprocess.Popen([sys.executable, "-m", "dotdyn_pipeline.cli", *args], env=env,
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            signal.signal(signal.SIGINT, runner_sigint)
        self.known: list[psutil.Process] = []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, ready: Any, what: str) -> None:
        """Poll `ready()` until it is true; fail if the command ends first or the deadline passes."""
        deadline = time.monotonic() + START_DEADLINE
        while not ready():
            assert self.process.poll() is None, f"the command ended before {what}:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} within {START_DEADLINE} s:\n{self.output()[-3000:]}"
            time.sleep(0.5)

    def note_processes(self) -> None:
        """Record the command and every descendant it has now, before it is asked to stop."""
        root = psutil.Process(self.process.pid)
        self.known = [root, *root.children(recursive=True)]

    def remaining(self) -> list[psutil.Process]:
        """What still runs of the recorded processes, their process groups (this job's and any of their own)."""
        self.process.poll()  # reap the command itself once it has ended
        groups = {self.process.pid} | {_group(p) for p in self.known} - {None}
        running = {p.pid: p for p in self.known if _running(p)}
        running.update({p.pid: p for p in psutil.process_iter() if _group(p) in groups and _running(p)})
        return list(running.values())

    def assert_everything_ends(self) -> None:
        deadline = time.monotonic() + STOP_DEADLINE
        while (left := self.remaining()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, (f"still running {STOP_DEADLINE} s after the stop: {[_describe(p) for p in left]}\n"
                          + self.output()[-3000:])
        self.process.wait(timeout=1)  # it has ended; this only collects its exit code

    def kill_what_remains(self) -> None:
        """Leave nothing running whatever the test found, so that a failure does not spill into other tests."""
        for process in self.remaining():
            process.kill()
        self.process.wait(timeout=30)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid) if process.is_running() else None
    except ProcessLookupError:
        return None


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline()[:6])}"
    except psutil.NoSuchProcess:
        return f"{process.pid} (gone)"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def small_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A sandbox that the tested command did not start: (its folder, its contract)."""
    directory = tmp_path_factory.mktemp("stop-sandbox")
    with running_sandbox(directory, SMALL_SANDBOX) as contract:
        yield directory, contract


def test_ctrl_c_stops_the_demo_ui_and_leaves_a_sandbox_it_did_not_start(small_sandbox, tmp_path):
    directory, contract = small_sandbox
    port = _free_port()
    demo = Command(["demo", "--sandbox", str(directory), "--ui", "--port", str(port)], tmp_path / "home")
    try:
        demo.wait_for(lambda: _answers(f"http://127.0.0.1:{port}/server_info"), "Dagster UI")
        demo.note_processes()
        assert any("dagster_webserver" in _describe(p) for p in demo.known)
        os.killpg(demo.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        demo.assert_everything_ends()
        assert demo.process.returncode == 0
    finally:
        demo.kill_what_remains()
    health = httpx.get(f"{contract['control_url']}/health", verify=trust(contract), timeout=10)
    assert health.status_code == 200, "the sandbox that the demo did not start must be left running"


def test_sigterm_stops_dagster_dev(tmp_path):
    port = _free_port()
    dev = Command(["dev", "--port", str(port)], tmp_path / "home")
    try:
        dev.wait_for(lambda: _answers(f"http://127.0.0.1:{port}/server_info"), "Dagster UI")
        dev.note_processes()
        assert any("dagster._daemon" in _describe(p) for p in dev.known)
        dev.process.send_signal(signal.SIGTERM)  # what a service manager sends: to the main process alone
        dev.assert_everything_ends()
        assert dev.process.returncode == 0
    finally:
        dev.kill_what_remains()


def test_sigterm_during_the_demo_runs_stops_the_sandbox_the_demo_started(tmp_path):
    """Dagster turns a stop signal during an in-process run into the run's failure; the demo stops there, and
    the sandbox it served stops with it."""
    home = tmp_path / "home"
    demo = Command(["demo", "--ui", "--port", str(_free_port())], home)
    try:
        demo.wait_for(lambda: "synced" in demo.output() or "FAILED" in demo.output(), "first account's sync")
        demo.note_processes()
        assert any("sandbox up" in _describe(p) for p in demo.known)
        demo.process.send_signal(signal.SIGTERM)
        demo.assert_everything_ends()
        assert demo.process.returncode == 128 + signal.SIGINT
        assert "Dagster UI on" not in demo.output()
    finally:
        demo.kill_what_remains()

"""Child processes that stop as a whole, and leave nothing behind, however the command around them is stopped.

A terminal's Ctrl-C sends SIGINT to every process of the foreground process group; a service manager's SIGTERM
reaches the main process only. A command that starts long-lived children (the Dagster UI, the sandbox) must
therefore turn every stop signal into the same orderly stop: interrupt the children, wait for them with a
deadline, and kill whatever is still running when it passes, including descendants whose parent has ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psutil

#: Ctrl-C, a service manager's stop, and a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: How often a stopping tree is looked at.
POLL_INTERVAL = 0.1
#: How long after a stop lost in a finalizer it is sent again (long enough to be out of the finalizer).
REDELIVERY_DELAY = 0.01
#: How long killed processes are given to disappear (SIGKILL cannot be refused; this only waits for the kernel).
KILL_WAIT = 2.0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _delivering_again(previous_hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """An unraisable-exception hook for the block of `stop_signals_interrupt`.

    Python runs a signal's handler wherever the main thread is, a finalizer included (an object's `__del__`, a
    weakref callback of a garbage collection), and ignores what a finalizer raises: a stop landing there would be
    lost, and the command would go on as if never asked to stop. Such a stop is sent again, to land in the code the
    finalizer interrupted; anything else goes to `previous_hook`."""
    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            # From another thread, a moment later: the hook itself still runs within the finalizer, where a
            # signal's handler would raise into the same void. Should it land in a finalizer again, so it goes.
            threading.Timer(REDELIVERY_DELAY, signal.raise_signal, (signal.SIGINT,)).start()
        else:
            previous_hook(unraisable)
    return hook


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP interrupt the main thread as Ctrl-C does, so that the `finally`
    blocks which stop children run on every kind of stop.

    SIGINT is handled even when the shell that started this process ignored it (as a script's background job
    does): the children then start with SIGINT at its default and obey the interrupt they are sent. A SIGHUP
    that is ignored (under nohup) stays ignored. A stop that lands in a finalizer is sent again (`_delivering_again`).
    """
    previous: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, _raise_interrupt)
    hook = sys.unraisablehook
    sys.unraisablehook = _delivering_again(hook)
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _stop_signals_ignored() -> Iterator[None]:
    """A second Ctrl-C while children are being stopped must not cut the stop short and strand them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class ProcessTree:
    """A child process and every descendant it is seen to have.

    With `own_group`, the child leads a process group of its own: stopping it interrupts the whole group at
    once, as Ctrl-C would, and no member can escape by outliving its parent. Without it, the child shares this
    process's group, so a terminal's Ctrl-C reaches it directly, and a stop sends `signum` to the child alone.
    """

    def __init__(self, args: Sequence[str], *, own_group: bool, **popen: Any) -> None:
        self.own_group = own_group
        self.process = subprocess.Popen(args, process_group=0 if own_group else None, **popen)
        self._seen: dict[int, psutil.Process] = {}
        self._look()

    def _look(self) -> None:
        """Remember the child and its current descendants, so that they are found after their parent ends."""
        try:
            root = psutil.Process(self.process.pid)
            found = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in found:
            self._seen.setdefault(process.pid, process)

    def _group(self) -> list[psutil.Process]:
        members = []
        for process in psutil.process_iter():
            with suppress(ProcessLookupError, psutil.Error):
                if os.getpgid(process.pid) == self.process.pid:
                    members.append(process)
        return members

    def remaining(self) -> list[psutil.Process]:
        """The processes of the tree still running."""
        self.process.poll()  # reaps the child once it has ended, so it does not linger as a zombie
        self._look()
        candidates = {process.pid: process for process in self._seen.values()}
        if self.own_group:
            candidates.update({process.pid: process for process in self._group()})
        return [process for process in candidates.values() if _running(process)]

    def _wait(self, deadline: float) -> list[psutil.Process]:
        """Wait until the tree has ended or the deadline passes; what is still running then."""
        left = self.remaining()
        while left and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            left = self.remaining()
        return left

    def _interrupt(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            if self.own_group:
                os.killpg(self.process.pid, signum)
            elif self.process.poll() is None:
                self.process.send_signal(signum)

    def stop(self, grace: float, signum: int = signal.SIGINT) -> None:
        """Interrupt the tree with `signum`, wait up to `grace` seconds for all of it to end, kill what remains."""
        with _stop_signals_ignored():
            self._look()
            self._interrupt(signum)
            for process in self._wait(time.monotonic() + grace):
                with suppress(psutil.NoSuchProcess):
                    process.kill()
            self._wait(time.monotonic() + KILL_WAIT)
            self.process.wait()

"""Work on a second core: a function run in a forked copy of the step process, its result sent back pickled.

For loops that shape rows in Python, which one process runs on one core whatever its threads. The copy shares
the parent's memory until either writes to it, opens its own connections (it must not use the parent's), and
ends without running the parent's cleanup.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class ForkedWorkFailed(RuntimeError):
    """The forked copy raised, or ended without a result."""


@contextmanager
def forked(work: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """Start `work` in a forked copy of this process; the block gets a function that waits for its result (or
    raises ForkedWorkFailed). The copy is stopped if the block ends first."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def run() -> None:
        try:
            outcome: tuple[bool, Any] = (True, work())
        except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it
            outcome = (False, f"{type(error).__name__}: {error}")
        send.send(outcome)

    process = context.Process(target=run, name="forked-work", daemon=True)
    process.start()
    send.close()  # the copy holds the sending end: the parent sees the pipe close if it dies

    received = False

    def result() -> T:
        nonlocal received
        try:
            done, value = receive.recv()
            received = True
        except EOFError:
            process.join()
            raise ForkedWorkFailed(f"the forked work ended with exit code {process.exitcode} and no result") from None
        if not done:
            raise ForkedWorkFailed(f"the forked work failed: {value}")
        return value

    try:
        yield result
    finally:
        receive.close()
        if not received:
            process.terminate()
        process.join()

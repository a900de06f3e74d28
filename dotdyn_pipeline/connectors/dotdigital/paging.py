"""select/skip paging shared by both transports: full pages at the endpoint's maximum, stop on a short one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

#: The documented maximum of `select` is 1000; the since-date activity reports allow 2000 (swagger default).
MAX_SELECT = 1000
MAX_SELECT_BY_OPERATION = {"activities_since": 2000}


def page_size(operation: str, wanted: int) -> int:
    """`wanted`, capped at what `operation` accepts."""
    return max(1, min(wanted, MAX_SELECT_BY_OPERATION.get(operation, MAX_SELECT)))


def pages(fetch: Callable[[int, int], list[Any]], select: int) -> Iterator[list[Any]]:
    """Yield pages from `fetch(select, skip)` until one comes back shorter than `select`.

    A short page is the last one, which saves the call that would return nothing.
    """
    skip = 0
    while True:
        page = fetch(select, skip)
        if page:
            yield page
        if len(page) < select:
            return
        skip += len(page)

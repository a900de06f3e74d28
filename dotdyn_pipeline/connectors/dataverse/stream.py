"""Upserts of a stream of rows too long to hold: full bulk requests leave as soon as they fill.

Each row is `add`ed with a tag (what it belongs to, for example a campaign); once every row of a closed tag
has an outcome, the tag is reported finished, so a caller can record its progress only for work that the
service has accepted. Completions are handled on the caller's thread, so callbacks need no locking.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dotdyn_pipeline.connectors.dataverse.client import DataverseClient, RecordOutcome


@dataclass
class StreamTotals:
    """What happened to the rows of one stream."""

    upserted: int = 0
    rejected: list[tuple[Mapping[str, Any], RecordOutcome]] = field(default_factory=list)
    chunks: int = 0  # bulk requests sent (before any per-record fallback)

    @property
    def written(self) -> int:
        return self.upserted + len(self.rejected)


class UpsertStream:
    """Upsert rows into `entity` by `key_columns` as they arrive, `batch_size` per request, a few at a time."""

    def __init__(self, client: DataverseClient, entity: str, key_columns: Sequence[str], *,
                 on_finished: Callable[[list[Hashable]], None] = lambda tags: None) -> None:
        self.client, self.entity, self.key_columns = client, entity, tuple(key_columns)
        self.on_finished = on_finished
        self.totals = StreamTotals()
        self._size = client.config.batch_size
        self._pool = ThreadPoolExecutor(max_workers=client.config.max_concurrency)
        self._inflight: deque[tuple[Future[list[RecordOutcome]], list[Mapping[str, Any]], list[Hashable]]] = deque()
        self._rows: list[Mapping[str, Any]] = []
        self._tags: list[Hashable] = []
        self._pending: Counter[Hashable] = Counter()
        self._closed: set[Hashable] = set()

    def add(self, rows: Iterable[Mapping[str, Any]], tag: Hashable = None) -> None:
        for row in rows:
            self._rows.append(row)
            self._tags.append(tag)
            self._pending[tag] += 1
            if len(self._rows) >= self._size:
                self._submit()

    def close_tag(self, tag: Hashable) -> None:
        """No more rows will come for `tag`: report it finished once its rows have outcomes."""
        self._closed.add(tag)
        self._report([tag])

    def flush(self) -> StreamTotals:
        """Send what is buffered and wait for every outcome."""
        if self._rows:
            self._submit()
        while self._inflight:
            self._collect()
        return self.totals

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> UpsertStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self) -> None:
        rows, tags = self._rows, self._tags
        self._rows, self._tags = [], []
        while len(self._inflight) >= self.client.config.max_concurrency:
            self._collect()
        self._inflight.append((self._pool.submit(self.client.upsert_many, self.entity, rows, self.key_columns),
                               rows, tags))
        self.totals.chunks += 1

    def _collect(self) -> None:
        future, rows, tags = self._inflight.popleft()
        for outcome in future.result():
            if outcome.ok:
                self.totals.upserted += 1
            else:
                self.totals.rejected.append((rows[outcome.index], outcome))
        for tag in tags:
            self._pending[tag] -= 1
        self._report(set(tags))

    def _report(self, tags: Iterable[Hashable]) -> None:
        done = [tag for tag in tags if tag in self._closed and self._pending[tag] <= 0]
        for tag in done:
            self._closed.discard(tag)
            del self._pending[tag]
        if done:
            self.on_finished(done)

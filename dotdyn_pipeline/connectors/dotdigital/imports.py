"""Bulk contact import, whatever the transport: CSV chunks under the size limit, bounded concurrency, sparse
polling, and the report and faults CSV of every chunk.

Memory stays bounded: rows are streamed into one chunk's bytes at a time, and the next chunk is built while
the previous one uploads, so at most two chunks are held.

Polling is planned, not periodic. The server is taken as work-conserving: whether it runs an account's
imports in turn or side by side, a backlog is done when its bytes are, at the account's throughput (bytes per
second of server time, `Throughput`, which also holds the backlog of every import of the client in
progress). With a throughput known, the backlog is polled once, when it should be done: one status call per
import. Without one, the oldest import is polled with a backoff relative to how long the backlog has run.
A finish seen between a NotFinished answer and a Finished one teaches the throughput; a prediction that
proves early is followed by looks close together, so the next lesson is sharp. The client keeps what it
learned, and the pipeline keeps it per account in the state store.
"""

from __future__ import annotations

import csv
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from dotdyn_pipeline.connectors.dotdigital.config import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.dates import csv_value
from dotdyn_pipeline.connectors.dotdigital.errors import ImportFailed, NotFound
from dotdyn_pipeline.connectors.dotdigital.models import ContactImport, ImportReport, RowFault

FINISHED, NOT_FINISHED = "Finished", "NotFinished"
#: After a prediction proves early, look again after this share of the time the backlog has run.
CLOSE_STEP = 0.05
#: The shortest wait between two looks at an import, in seconds.
MIN_STEP = 0.2
#: Where in a finish's bracket a lesson taken after a backoff puts it (0 = the NotFinished answer).
OPTIMISM = 0.25


@dataclass
class CsvChunk:
    """One import file: CSV bytes (header included) and how many data rows they hold."""

    data: bytearray
    rows: int


class _Line:
    """A file-like target that keeps the last line csv.writer wrote."""

    value = ""

    def write(self, text: str) -> None:
        self.value = text


def csv_chunks(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], max_bytes: int) -> Iterator[CsvChunk]:
    """Stream `rows` (mappings keyed by `columns`, the first being Email) as CSV chunks of at most `max_bytes`."""
    if not columns or columns[0].lower() != "email":
        raise ValueError("the first import column must be Email")
    line = _Line()
    writer = csv.writer(line, lineterminator="\r\n")
    writer.writerow(columns)
    header = line.value.encode()
    data, count = bytearray(header), 0
    for row in rows:
        writer.writerow([v if type(v) is str else csv_value(v) for v in map(row.get, columns)])
        encoded = line.value.encode()
        if len(header) + len(encoded) > max_bytes:
            raise ValueError(f"a row of {len(encoded)} bytes does not fit an import of {max_bytes} bytes")
        if len(data) + len(encoded) > max_bytes:
            yield CsvChunk(data, count)
            data, count = bytearray(header), 0
        data += encoded
        count += 1
    if count:
        yield CsvChunk(data, count)


class ImportCalls(Protocol):
    """The primitive calls the import loop needs (DotdigitalClient has them, on either transport)."""

    def start_import(self, address_book_id: int, data: bytes | bytearray) -> ContactImport: ...
    def import_progress(self, import_id: str) -> ContactImport: ...
    def import_report(self, import_id: str) -> ImportReport: ...
    def import_faults(self, import_id: str) -> list[RowFault]: ...


@dataclass
class ImportOutcome:
    """One finished chunk: its import id, rows uploaded, report, and per-row reasons for the rows not imported."""

    import_id: str
    rows: int
    bytes: int
    report: ImportReport
    faults: list[RowFault]


@dataclass
class ImportResult:
    outcomes: list[ImportOutcome] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(o.rows for o in self.outcomes)

    @property
    def new_contacts(self) -> int:
        return sum(o.report.new_contacts for o in self.outcomes)

    @property
    def updated_contacts(self) -> int:
        return sum(o.report.updated_contacts for o in self.outcomes)

    @property
    def faults(self) -> list[RowFault]:
        return [f for o in self.outcomes for f in o.faults]


@dataclass
class _Pending:
    import_id: str
    rows: int
    bytes: int
    uploaded_at: float  # when the upload was answered: the server can work on it from then
    due: float = 0.0  # when to poll it next


class Throughput:
    """An account's import server as one client sees it: how fast it works (bytes per second of server time)
    and the uploads it has not finished, whichever of the client's imports sent them.

    One client may run several imports at once (the audience flow loads books in parallel). The server works
    through all of them, so a backlog is the uploads of every import in progress: each import plans by it,
    and only the end of the whole of it teaches the rate."""

    def __init__(self, bytes_per_second: float | None = None) -> None:
        self.bytes_per_second = bytes_per_second
        self._lock = threading.Lock()
        self._open = 0  # imports with uploads in the backlog
        self._uploads: list[tuple[float, int]] = []  # (uploaded at, bytes) since the backlog was last empty

    def open_backlog(self) -> None:
        """One of the client's imports starts uploading."""
        with self._lock:
            if not self._open:
                self._uploads = []
            self._open += 1

    def uploaded(self, at: float, size: int) -> float | None:
        """Note an upload; return when the backlog, this upload included, should be done (None: rate unknown)."""
        with self._lock:
            self._uploads.append((at, size))
            return self.finished_at(self._uploads)

    def close_backlog(self, finished: float | None) -> None:
        """One of the client's imports has seen its last upload end, at about `finished` if known. When it was
        the last in progress, that is the end of the backlog: learn from it."""
        with self._lock:
            self._open -= 1
            if not self._open and finished is not None:
                self.learn(self._uploads, finished)

    def finished_at(self, uploads: Sequence[tuple[float, int]]) -> float | None:
        """When a server working through `uploads` ((uploaded at, bytes), in order) should be done with them."""
        if not self.bytes_per_second:
            return None
        done = float("-inf")
        for at, size in uploads:
            done = max(done, at) + size / self.bytes_per_second
        return done

    def learn(self, uploads: Sequence[tuple[float, int]], finished: float) -> None:
        """Take the rate at which `uploads` are done exactly at `finished` (the inverse of `finished_at`)."""
        rates, remaining = [], sum(size for _, size in uploads)
        for at, size in uploads:
            if finished > at and remaining > 0:
                rates.append(remaining / (finished - at))
            remaining -= size
        if rates:
            self.bytes_per_second = max(rates)


class Importer:
    """Runs one batch of chunks into one address book (see the module docstring for the polling plan)."""

    def __init__(self, calls: ImportCalls, config: DotdigitalConfig, throughput: Throughput,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.calls, self.config, self.throughput = calls, config, throughput
        self._sleep, self._clock = sleep, clock
        self._pending: deque[_Pending] = deque()
        self._started: float | None = None  # when this importer's backlog began (None: it has none open)
        self._running_seen: float | None = None  # when a poll last answered NotFinished
        self._step: float | None = None  # the wait between looks once a poll answered NotFinished
        self._close = False  # the looks are close because a prediction proved early
        self._result = ImportResult()
        self._failures: list[ImportFailed] = []

    def run(self, address_book_id: int, chunks: Iterable[CsvChunk]) -> ImportResult:
        """Upload every chunk, wait for all, and return the outcomes; raise ImportFailed if any import failed."""
        upload: Future[_Pending | None] | None = None
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dotdigital-upload") as pool:
                for chunk in chunks:  # building this chunk overlaps the previous upload
                    self._track(upload)
                    while len(self._pending) >= self.config.max_active_imports:
                        self._settle(self._pending[0])
                    upload = pool.submit(self._upload, address_book_id, chunk)
                    del chunk  # the upload holds it; let it go as soon as that is done
                self._track(upload)
            if self._pending:  # every chunk is uploaded: look when the whole backlog should be done
                last = max(pending.due for pending in self._pending)
                for pending in self._pending:
                    pending.due = last
            while self._pending:
                self._settle(self._pending[0])
        finally:
            self._end_backlog()
        if self._failures:
            first = self._failures[0]
            first.completed = list(self._result.outcomes)
            raise first
        return self._result

    def _upload(self, address_book_id: int, chunk: CsvChunk) -> _Pending | None:
        job = self.calls.start_import(address_book_id, chunk.data)
        pending = _Pending(job.id, chunk.rows, len(chunk.data), uploaded_at=self._clock())
        if job.status != NOT_FINISHED:
            self._resolve(pending, job.status)
            return None
        return pending

    def _track(self, upload: Future[_Pending | None] | None) -> None:
        if upload is None or (pending := upload.result()) is None:
            return
        if not self._pending:
            self._started, self._running_seen, self._step, self._close = pending.uploaded_at, None, None, False
            self.throughput.open_backlog()
        expected = self.throughput.uploaded(pending.uploaded_at, pending.bytes)
        pending.due = expected or pending.uploaded_at + self.config.poll_initial
        self._pending.append(pending)

    def _settle(self, pending: _Pending) -> None:
        """Poll `pending` until it resolves."""
        while pending in self._pending:
            self._poll(pending)

    def _poll(self, pending: _Pending) -> None:
        # A plan is a guess: never wait longer than poll_max between looks.
        if (delay := min(pending.due - self._clock(), self.config.poll_max)) > 0:
            self._sleep(delay)
        status = self.calls.import_progress(pending.import_id).status
        now = self._clock()
        if status == NOT_FINISHED:
            if now - pending.uploaded_at <= self.config.import_timeout:
                self._running_seen = now
                pending.due = now + self._next_step(now)
                return
            status = f"{NOT_FINISHED} after {self.config.import_timeout:.0f} s"
        self._pending.popleft()
        if not self._pending:
            self._end_backlog(self._finished_at(now) if status == FINISHED else None)
        self._resolve(pending, status)

    def _end_backlog(self, finished: float | None = None) -> None:
        """Take this importer's uploads out of the client's backlog (once)."""
        if self._started is not None:
            self._started = None
            self.throughput.close_backlog(finished)

    def _next_step(self, now: float) -> float:
        """The wait before the next look: relative to how long the backlog has run, growing by poll_factor."""
        if self._step is None:
            running = now - self._started
            self._close = self.throughput.bytes_per_second is not None
            share = CLOSE_STEP if self._close else self.config.poll_factor - 1
            self._step = max(share * running, MIN_STEP)
        else:
            self._step *= self.config.poll_factor
        return min(self._step, self.config.poll_max)

    def _finished_at(self, answered: float) -> float | None:
        """When the backlog probably ended, its last import seen Finished in a poll `answered` (None: unknown).

        A backlog done before its first look teaches nothing: the server was at least that fast, and a plan
        made from a bound that loose would look at a large import long after it ended."""
        if self._running_seen is None:
            return None
        # It ended between the last NotFinished answer and this one. After close looks, take the later end: a
        # plan should be a little late rather than early. After a backoff, nearer the earlier end: if that
        # proves early, the close looks that follow are sharp.
        weight = 1.0 if self._close else OPTIMISM
        return self._running_seen + weight * (answered - self._running_seen)

    def _resolve(self, pending: _Pending, status: str) -> None:
        """Fetch the report (and faults) of a resolved import; failures become ImportFailed."""
        if status == FINISHED:
            report = self.calls.import_report(pending.import_id)
            faults = self.calls.import_faults(pending.import_id) if report.fault_count else []
            self._result.outcomes.append(ImportOutcome(pending.import_id, pending.rows, pending.bytes, report,
                                                       faults))
            return
        report, faults = None, []
        try:  # a failed import may still have a report; attach it when there is one
            report = self.calls.import_report(pending.import_id)
            faults = self.calls.import_faults(pending.import_id)
        except NotFound:
            pass
        self._failures.append(ImportFailed(
            f"import {pending.import_id} ended {status} ({pending.rows} rows)", import_id=pending.import_id,
            import_status=status, report=report, faults=faults, rows=pending.rows))

"""Bulk contact import, whatever the transport: CSV chunks under the size limit, bounded concurrency, sparse
polling with backoff, and the report and faults CSV of every chunk.

Memory stays bounded: rows are streamed into one chunk's bytes at a time, and the next chunk is built while
the previous one uploads, so at most two chunks are held. Polling is sparse: only the oldest pending import
is polled (during uploads only when the account's active-import limit is reached), with backoff while the
server's throughput is unknown. Each finish teaches the throughput (bytes per second, taken between the last
NotFinished answer and the Finished one), and the imports still pending are then polled when, working in
turn at that throughput, they should be done: with a learned throughput, one poll per import.
"""

from __future__ import annotations

import csv
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
    uploaded_at: float
    due: float
    interval: float
    seen_running: float | None = None  # when a poll last answered NotFinished


@dataclass
class Throughput:
    """Import throughput learned from finished imports (bytes per second of server time), per client."""

    bytes_per_second: float | None = None

    def learn(self, size: int, seconds: float) -> None:
        if size > 0 and seconds > 0:
            rate = size / seconds
            # Polls see a finish late, so observed rates are low: keep the best seen, it is the closest.
            self.bytes_per_second = max(rate, self.bytes_per_second or 0.0)

    def expected_seconds(self, size: int) -> float | None:
        return size / self.bytes_per_second if self.bytes_per_second else None


class Importer:
    """Runs one batch of chunks into one address book (see the module docstring for the polling strategy)."""

    def __init__(self, calls: ImportCalls, config: DotdigitalConfig, throughput: Throughput,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.calls, self.config, self.throughput = calls, config, throughput
        self._sleep, self._clock = sleep, clock
        self._pending: deque[_Pending] = deque()
        self._result = ImportResult()
        self._failures: list[ImportFailed] = []
        self._queue_free_at = 0.0  # when the server should be through what was uploaded so far
        self._previous_finish = 0.0  # when the last import seen finished probably did

    def run(self, address_book_id: int, chunks: Iterable[CsvChunk]) -> ImportResult:
        """Upload every chunk, wait for all, and return the outcomes; raise ImportFailed if any import failed."""
        upload: Future[_Pending | None] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dotdigital-upload") as pool:
            for chunk in chunks:  # building this chunk overlaps the previous upload
                self._track(upload)
                while len(self._pending) >= self.config.max_active_imports:
                    self._settle(self._pending[0])
                upload = pool.submit(self._upload, address_book_id, chunk)
                del chunk  # the upload holds it; let it go as soon as that is done
            self._track(upload)
        while self._pending:
            self._settle(self._pending[0])
        if self._failures:
            first = self._failures[0]
            first.completed = list(self._result.outcomes)
            raise first
        return self._result

    def _track(self, upload: Future[_Pending | None] | None) -> None:
        if upload is not None and (pending := upload.result()) is not None:
            self._pending.append(pending)

    def _upload(self, address_book_id: int, chunk: CsvChunk) -> _Pending | None:
        started = self._clock()
        job = self.calls.start_import(address_book_id, chunk.data)
        now = self._clock()
        pending = _Pending(job.id, chunk.rows, len(chunk.data), uploaded_at=started,
                           due=now + self.config.poll_initial, interval=self.config.poll_initial)
        if job.status != NOT_FINISHED:
            self._resolve(pending, job.status)
            return None
        expected = self.throughput.expected_seconds(len(chunk.data))
        if expected is not None:  # the server works through imports in turn: done after those before it
            self._queue_free_at = max(self._queue_free_at, started) + expected
            pending.due = max(now, self._queue_free_at)
        return pending

    def _settle(self, pending: _Pending) -> None:
        """Poll `pending` with backoff until it resolves."""
        while pending in self._pending:
            self._poll(pending)

    def _poll(self, pending: _Pending, wait: bool = True) -> None:
        # A plan is a guess (a rate learned from small imports is far too low for a large one): never wait
        # longer than poll_max between looks.
        if wait and (delay := min(pending.due - self._clock(), self.config.poll_max)) > 0:
            self._sleep(delay)
        status = self.calls.import_progress(pending.import_id).status
        now = self._clock()
        if status == NOT_FINISHED:
            if now - pending.uploaded_at <= self.config.import_timeout:
                pending.seen_running = now
                pending.interval = min(self.config.poll_max, pending.interval * self.config.poll_factor)
                pending.due = now + pending.interval
                return
            status = f"{NOT_FINISHED} after {self.config.import_timeout:.0f} s"
        self._pending.remove(pending)
        if status == FINISHED:
            # it finished between the last NotFinished answer and this one: take the middle
            finished = now if pending.seen_running is None else (pending.seen_running + now) / 2
            self.throughput.learn(pending.bytes, finished - max(pending.uploaded_at, self._previous_finish))
            self._previous_finish = finished
            self._replan()
        self._resolve(pending, status)

    def _replan(self) -> None:
        """Expect the imports still pending to finish in turn at the learned throughput; poll them then."""
        expected_at = self._previous_finish
        for pending in self._pending:
            expected = self.throughput.expected_seconds(pending.bytes)
            if expected is None:
                return
            expected_at = max(expected_at, pending.uploaded_at) + expected
            if pending.seen_running is None or expected_at > pending.due:
                pending.due = expected_at

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

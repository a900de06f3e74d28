"""The import loop's logic against a scripted server: bounded concurrency, sparse polling, typed failures.

The scripted server decides when each import finishes on a virtual clock, so waits are asserted exactly
and the tests take no real time; the same loop is exercised over HTTPS in the contract suite.
"""

from __future__ import annotations

import pytest

from dotdyn_pipeline.connectors.dotdigital import DotdigitalConfig, ImportFailed
from dotdyn_pipeline.connectors.dotdigital.errors import NotFound
from dotdyn_pipeline.connectors.dotdigital.imports import CsvChunk, Importer, Throughput
from dotdyn_pipeline.connectors.dotdigital.models import ContactImport, ImportReport, RowFault


class ScriptedServer:
    """Imports that take `seconds_per_import` each, processed one after another; every call is recorded."""

    def __init__(self, seconds_per_import: float = 10.0, final: dict[int, str] | None = None,
                 faults_every: int = 0) -> None:
        self.now = 0.0
        self.seconds, self.final, self.faults_every = seconds_per_import, final or {}, faults_every
        self.calls: list[tuple[str, str]] = []
        self.imports: list[dict] = []
        self.sleeps: list[float] = []
        self.max_active = 0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def _active(self) -> int:
        return sum(1 for job in self.imports if job["done_at"] > self.now)

    def start_import(self, address_book_id: int, data: bytes | bytearray) -> ContactImport:
        self.calls.append(("upload", str(len(self.imports))))
        start = max([self.now] + [job["done_at"] for job in self.imports])
        rows = bytes(data).count(b"\n") - 1
        self.imports.append({"done_at": start + self.seconds, "rows": rows})
        self.max_active = max(self.max_active, self._active())
        return ContactImport(str(len(self.imports) - 1), "NotFinished")

    def import_progress(self, import_id: str) -> ContactImport:
        self.calls.append(("progress", import_id))
        job = self.imports[int(import_id)]
        if job["done_at"] > self.now:
            return ContactImport(import_id, "NotFinished")
        return ContactImport(import_id, self.final.get(int(import_id), "Finished"))

    def import_report(self, import_id: str) -> ImportReport:
        self.calls.append(("report", import_id))
        if self.final.get(int(import_id)) == "RejectedByWatchdog":
            raise NotFound("Import is not processed yet or completed with error. ERROR_IMPORT_REPORT_NOT_FOUND")
        rows = self.imports[int(import_id)]["rows"]
        bad = 1 if self.faults_every else 0
        return ImportReport(new_contacts=rows - bad, updated_contacts=0,
                            faults={"duplicateEmails": bad} if bad else {})

    def import_faults(self, import_id: str) -> list[RowFault]:
        self.calls.append(("faults", import_id))
        return [RowFault("Duplicate", f"dup{import_id}@example.com", {})]


def _chunks(n: int, rows: int = 3) -> list[CsvChunk]:
    body = b"Email\r\n" + b"".join(b"p%d@example.com\r\n" % i for i in range(rows))
    return [CsvChunk(bytearray(body), rows) for _ in range(n)]


def _config(**overrides) -> DotdigitalConfig:
    settings = {"api_user": "u", "api_password": "p", "poll_initial": 2.0, "poll_factor": 2.0, "poll_max": 30.0}
    return DotdigitalConfig(**{**settings, **overrides})


def _run(server: ScriptedServer, chunks: list[CsvChunk], config: DotdigitalConfig, throughput=None):
    importer = Importer(server, config, throughput or Throughput(), sleep=server.sleep, clock=server.clock)
    return importer.run(7, chunks)


def test_every_chunk_is_uploaded_once_and_reported() -> None:
    server = ScriptedServer(seconds_per_import=10, faults_every=1)
    result = _run(server, _chunks(3), _config())
    assert [c for c in server.calls if c[0] == "upload"] == [("upload", "0"), ("upload", "1"), ("upload", "2")]
    assert result.rows == 9 and result.new_contacts == 6
    assert sorted(o.import_id for o in result.outcomes) == ["0", "1", "2"]
    assert sorted(f.email for f in result.faults) == ["dup0@example.com", "dup1@example.com", "dup2@example.com"]
    assert all(s > 0 for s in server.sleeps)


def test_polling_backs_off_on_the_oldest_then_predicts_the_others() -> None:
    server = ScriptedServer(seconds_per_import=10)
    _run(server, _chunks(3), _config())
    progress = [c[1] for c in server.calls if c[0] == "progress"]
    # the oldest (done at 10 s) is polled with backoff at 2, 6 and 14 s; its finish, taken as 10 s (between
    # the last NotFinished and the Finished answer), teaches the throughput: the others are polled once each,
    # when they should be done (20 and 30 s)
    assert progress == ["0", "0", "0", "1", "2"]
    assert server.sleeps == [2.0, 4.0, 8.0, 6.0, 10.0]


def test_active_imports_stay_within_the_limit() -> None:
    server = ScriptedServer(seconds_per_import=5)
    result = _run(server, _chunks(7), _config(max_active_imports=2))
    assert server.max_active <= 2
    assert len(result.outcomes) == 7 and len({o.import_id for o in result.outcomes}) == 7


def test_a_learned_throughput_makes_the_first_poll_the_last() -> None:
    throughput = Throughput()
    server = ScriptedServer(seconds_per_import=10)
    _run(server, _chunks(1), _config(), throughput)
    assert throughput.bytes_per_second is not None
    second = ScriptedServer(seconds_per_import=10)
    _run(second, _chunks(3), _config(), throughput)
    # learned from a finish seen late, so the estimate is conservative: one poll per import, no wasted ones
    assert [c[0] for c in second.calls].count("progress") == 3


def test_a_failed_import_is_a_typed_error_after_the_others_finish() -> None:
    server = ScriptedServer(seconds_per_import=3, final={1: "RejectedByWatchdog"})
    with pytest.raises(ImportFailed) as caught:
        _run(server, _chunks(3), _config())
    error = caught.value
    assert (error.import_id, error.import_status, error.rows) == ("1", "RejectedByWatchdog", 3)
    assert error.report is None
    assert sorted(o.import_id for o in error.completed) == ["0", "2"]


def test_an_import_that_never_finishes_times_out_as_a_typed_error() -> None:
    server = ScriptedServer(seconds_per_import=10_000)
    with pytest.raises(ImportFailed) as caught:
        _run(server, _chunks(1), _config(import_timeout=100))
    assert caught.value.import_status.startswith("NotFinished")
    assert server.now < 200


def test_a_rate_learned_from_a_small_import_never_delays_a_large_one_past_poll_max():
    """Fixed costs make a tiny import look slow; the plan for a big one must not sleep for hours."""
    throughput = Throughput(bytes_per_second=10.0)  # what a 20-byte import that took 2 s teaches
    server = ScriptedServer(seconds_per_import=45.0)
    result = _run(server, _chunks(1, rows=200), _config(poll_max=30.0), throughput)
    assert result.rows == 200
    assert max(server.sleeps) <= 30.0
    assert server.now < 45.0 + 30.0, "the finish is seen within one poll_max of it"

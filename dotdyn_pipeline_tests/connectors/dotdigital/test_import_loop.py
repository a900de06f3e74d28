"""The import loop's logic against a scripted server: bounded concurrency, sparse polling, typed failures.

The scripted server decides when each import finishes on a virtual clock, so waits are asserted exactly
and the tests take no real time; the same loop is exercised over HTTPS in the contract suite.
"""

from __future__ import annotations

import pytest

from dotdyn_pipeline.connectors.dotdigital import DotdigitalConfig, ImportFailed
from dotdyn_pipeline.connectors.dotdigital.errors import NotFound
from dotdyn_pipeline.connectors.dotdigital.imports import CLOSE_STEP, OPTIMISM, CsvChunk, Importer, Throughput
from dotdyn_pipeline.connectors.dotdigital.models import ContactImport, ImportReport, RowFault


def side_by_side(jobs: list[tuple[float, float]]) -> list[float]:
    """When each job ((arrival, seconds of work)) finishes on a server that shares itself equally among jobs."""
    finish, left, t, arrived = [0.0] * len(jobs), {}, jobs[0][0], 0
    while arrived < len(jobs) or left:
        while arrived < len(jobs) and jobs[arrived][0] <= t:
            left[arrived] = jobs[arrived][1]
            arrived += 1
        if not left:
            t = jobs[arrived][0]
            continue
        next_arrival = jobs[arrived][0] if arrived < len(jobs) else float("inf")
        until = min(t + min(left.values()) * len(left), next_arrival)
        worked = (until - t) / len(left)
        for job in list(left):
            left[job] -= worked
            if left[job] <= 1e-9:
                finish[job] = until
                del left[job]
        t = until
    return finish


class ScriptedServer:
    """Imports that take `seconds_per_import` of server time each, processed one after another (or side by
    side, sharing the server equally); every call is recorded with the virtual time it was made at."""

    def __init__(self, seconds_per_import: float = 10.0, final: dict[int, str] | None = None,
                 faults_every: int = 0, shared: bool = False) -> None:
        self.now = 0.0
        self.seconds, self.final, self.faults_every, self.shared = seconds_per_import, final or {}, faults_every, shared
        self.calls: list[tuple[str, str]] = []
        self.polled_at: list[float] = []
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
        self.imports.append({"done_at": start + self.seconds, "rows": rows, "at": self.now})
        if self.shared:
            finishes = side_by_side([(job["at"], self.seconds) for job in self.imports])
            for job, done_at in zip(self.imports, finishes, strict=True):
                job["done_at"] = done_at
        self.max_active = max(self.max_active, self._active())
        return ContactImport(str(len(self.imports) - 1), "NotFinished")

    def import_progress(self, import_id: str) -> ContactImport:
        self.calls.append(("progress", import_id))
        self.polled_at.append(self.now)
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


def _progress(server: ScriptedServer) -> list[str]:
    return [import_id for call, import_id in server.calls if call == "progress"]


def _exact(server: ScriptedServer, chunks: list[CsvChunk]) -> Throughput:
    """The throughput `server` really has for chunks like these."""
    return Throughput(bytes_per_second=len(chunks[0].data) / server.seconds)


def test_without_a_throughput_the_backlog_is_polled_with_a_backoff_relative_to_its_age() -> None:
    server = ScriptedServer(seconds_per_import=10)
    throughput = Throughput()
    _run(server, _chunks(3), _config(poll_factor=1.5), throughput)
    # the first look is poll_initial after the last upload; each wait is half the time the backlog has run
    assert server.polled_at[:5] == pytest.approx([2.0, 3.0, 4.5, 6.75, 10.125])
    assert _progress(server)[:5] == ["0", "0", "0", "0", "0"]
    # the backlog's end (30 s) fell between two looks; the lesson leans to the earlier one
    last_running, seen = server.polled_at[-2], server.polled_at[-1]
    assert last_running < 30 <= seen
    assert throughput.finished_at([(0.0, 3 * len(_chunks(1)[0].data))]) == pytest.approx(
        last_running + OPTIMISM * (seen - last_running))


@pytest.mark.parametrize("shared", [False, True], ids=["in-turn", "side-by-side"])
def test_with_a_known_throughput_each_import_is_polled_once_when_the_backlog_is_done(shared: bool) -> None:
    server, chunks = ScriptedServer(seconds_per_import=10, shared=shared), _chunks(3)
    _run(server, chunks, _config(), _exact(server, chunks))
    assert _progress(server) == ["0", "1", "2"]
    assert server.polled_at == pytest.approx([30.0, 30.0, 30.0])


def test_an_early_prediction_is_followed_by_close_looks_and_a_lesson_that_leans_late() -> None:
    server, chunks = ScriptedServer(seconds_per_import=10), _chunks(3)
    throughput = Throughput(bytes_per_second=len(chunks[0].data) / 8)  # 20% too fast: expects the end at 24 s
    _run(server, chunks, _config(), throughput)
    assert server.polled_at[0] == pytest.approx(24.0)
    gaps = [b - a for a, b in zip(server.polled_at, server.polled_at[1:], strict=False) if b > a]
    assert gaps[0] == pytest.approx(CLOSE_STEP * 24.0)
    learned = throughput.finished_at([(0.0, 3 * len(chunks[0].data))])
    assert 30.0 <= learned <= 30.0 * (1 + 2 * CLOSE_STEP * 1.25 ** 3)
    again = ScriptedServer(seconds_per_import=10)
    _run(again, chunks, _config(), throughput)
    assert _progress(again) == ["0", "1", "2"]


def test_a_new_client_polls_once_per_import_from_its_third_backlog() -> None:
    throughput = Throughput()
    for _ in range(3):
        server = ScriptedServer(seconds_per_import=10, shared=True)
        _run(server, _chunks(3), _config(), throughput)
    assert _progress(server) == ["0", "1", "2"]
    assert 30.0 <= server.polled_at[0] <= 33.0, "and it looks within 10% of the end"


def test_an_import_done_before_its_first_look_teaches_nothing_so_a_large_one_after_it_is_not_looked_at_late(
) -> None:
    """A small first import says only that the server was at least that fast: planning the next, large one by
    that bound would look at it long after it ended (poll_max later). The large one is polled by backoff."""
    throughput = Throughput()
    _run(ScriptedServer(seconds_per_import=1.0), _chunks(1), _config(), throughput)
    assert throughput.bytes_per_second is None
    server = ScriptedServer(seconds_per_import=40.0)
    _run(server, _chunks(1, rows=2_000), _config(poll_factor=1.25), throughput)
    assert server.now <= 40.0 * 1.25 + 1e-9, "the finish is seen within the backoff's share of the time run"
    assert throughput.bytes_per_second is not None, "and its end, seen between two looks, teaches the rate"


def test_active_imports_stay_within_the_limit() -> None:
    server = ScriptedServer(seconds_per_import=5)
    result = _run(server, _chunks(7), _config(max_active_imports=2))
    assert server.max_active <= 2
    assert len(result.outcomes) == 7 and len({o.import_id for o in result.outcomes}) == 7


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


def test_imports_running_at_once_through_one_client_plan_by_their_joint_backlog() -> None:
    """Books load in parallel through one client: the server works through all of their uploads."""
    server, chunks = ScriptedServer(seconds_per_import=10), _chunks(2)
    throughput = _exact(server, chunks)
    throughput.open_backlog()  # another book's import is in progress, with 20 s of work uploaded just before
    throughput.uploaded(0.0, 2 * len(chunks[0].data))
    _run(server, chunks, _config(poll_max=60.0), throughput)
    assert server.polled_at == pytest.approx([40.0, 40.0])


def test_only_the_end_of_the_joint_backlog_teaches_the_rate() -> None:
    throughput = Throughput()
    throughput.open_backlog()  # another book's import is in progress meanwhile
    _run(ScriptedServer(seconds_per_import=10), _chunks(2), _config(), throughput)
    assert throughput.bytes_per_second is None, "its end was not the backlog's"
    throughput.close_backlog(None)
    _run(ScriptedServer(seconds_per_import=10), _chunks(2), _config(), throughput)
    assert throughput.bytes_per_second is not None, "alone, its end is"

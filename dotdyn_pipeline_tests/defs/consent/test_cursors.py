"""Where a since-read resumes: whole seconds plus rows read, so that no row is skipped and progress is made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dotdyn_pipeline.defs.consent.cursors import OVERLAP, RESCAN, ScanCursor, SinceCursor, SinceTracker

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _read(cursor: SinceCursor, moments: list[datetime]) -> SinceCursor:
    tracker = SinceTracker(cursor)
    for moment in moments:
        tracker.consumed(moment)
    return tracker.cursor


def test_the_cursor_moves_to_the_last_rows_second_and_counts_the_rows_read_in_it():
    rows = [T0 + timedelta(milliseconds=ms) for ms in (0, 400, 1_200, 1_700, 1_900)]
    assert _read(SinceCursor(), rows) == SinceCursor((T0 + timedelta(seconds=1)).isoformat(), 3)


def test_a_second_with_more_rows_than_a_page_still_makes_progress():
    cursor = SinceCursor()
    for _ in range(3):  # three pages of 1000 rows, all in the same second
        cursor = _read(cursor, [T0 + timedelta(microseconds=i) for i in range(cursor.start, cursor.start + 1000)])
    assert cursor == SinceCursor(T0.isoformat(), 3000 - 2 * OVERLAP)
    assert cursor.start == 3000 - 3 * OVERLAP, "a resumed read goes back a little and the ledger drops repeats"


def test_an_empty_read_keeps_the_cursor():
    cursor = SinceCursor(T0.isoformat(), 250)
    assert _read(cursor, []) == SinceCursor(T0.isoformat(), 250 - OVERLAP)


def test_cursors_round_trip_as_text():
    cursor = SinceCursor(T0.isoformat(), 7)
    assert SinceCursor.load(cursor.dump()) == cursor
    assert SinceCursor.load(None) == SinceCursor()


def test_a_pass_over_modified_contacts_resumes_and_the_next_one_reaches_back_before_it():
    fresh = ScanCursor.load(None, T0)
    assert fresh.since_time == T0 - RESCAN and fresh.started is None
    begun = fresh.begun(T0)
    assert begun.started == T0.isoformat() and begun.begun(T0 + timedelta(hours=1)) == begun
    stopped = ScanCursor.load(ScanCursor(begun.since, begun.started, 1000).dump(), T0)
    assert stopped.start == 1000 - OVERLAP
    assert stopped.finished() == ScanCursor((T0 - RESCAN).isoformat())

"""The send ledger: one claim per attempt, steps in order by compare-and-set, the same on both backends."""

from __future__ import annotations

import pytest

from dotdyn_pipeline.state.sends import CLAIMED, PREPARED, REQUESTED, SENT, SETTLED, StaleAttempt

KEY = "esc_emailsend:5b0c"


def test_an_attempt_is_claimed_once_and_moves_through_its_steps_in_order(store):
    sends = store.sends
    claimed = sends.claim(KEY, 1, "acct", 42, "run-a")
    assert (claimed.step, claimed.run_id, claimed.campaign_id, claimed.written_at) == (CLAIMED, "run-a", 42, None)
    assert sends.claim(KEY, 1, "acct", 42, "run-b") is None, "a second claim of the same attempt"

    prepared = sends.advance(claimed, PREPARED, book_id=7, recipients=3, excluded={"unsubscribed": 2})
    with pytest.raises(ValueError):
        sends.advance(prepared, SENT)  # a step cannot be skipped
    requested = sends.advance(prepared, REQUESTED)
    sent = sends.advance(requested, SENT, send_id="abc")
    settled = sends.settle(sent, "Sent", "sent to 3", date_sent="2026-12-07T10:00:00+00:00")
    assert (settled.step, settled.book_id, settled.send_id, settled.recipients, settled.excluded) == \
        (SETTLED, 7, "abc", 3, {"unsubscribed": 2})
    assert not settled.done and sends.open_attempts("acct") == [settled]
    done = sends.written_back(settled)
    assert done.done and sends.latest(KEY) == done and sends.open_attempts("acct") == []


def test_a_run_that_acts_on_an_attempt_another_run_moved_on_is_stopped(store):
    sends = store.sends
    claimed = sends.claim(KEY, 1, "acct", 42, "run-a")
    mine = sends.advance(claimed, PREPARED, book_id=7)
    with pytest.raises(StaleAttempt):
        sends.advance(claimed, PREPARED, book_id=8)  # what run-b knew before run-a moved it on
    with pytest.raises(StaleAttempt):
        sends.settle(claimed, "Failed", "from a stale view")
    assert sends.latest(KEY) == mine


def test_a_retry_is_the_next_attempt_and_leaves_the_first_as_it_ended(store):
    sends = store.sends
    first = sends.written_back(sends.settle(sends.claim(KEY, 1, "acct", 42, "run-a"), "Failed", "no recipients"))
    second = sends.claim(KEY, 2, "acct", 42, "run-b")
    assert (second.attempt, second.step) == (2, CLAIMED) and sends.latest(KEY) == second
    assert first.outcome == "Failed" and first.done
    with pytest.raises(ValueError):
        sends.advance(second, PREPARED, colour="blue")


def test_of_two_runs_resuming_an_attempt_one_takes_it_over(store):
    sends = store.sends
    left = sends.advance(sends.claim(KEY, 1, "acct", 42, "run-a"), PREPARED, book_id=7)
    resumed = sends.take_over(left, "run-b")
    assert (resumed.step, resumed.run_id, resumed.book_id) == (PREPARED, "run-b", 7)
    with pytest.raises(StaleAttempt):
        sends.take_over(left, "run-c")  # it read the attempt before run-b took it over
    assert sends.latest(KEY).run_id == "run-b"

"""Which events are new, which are echoes, and what a resubscribe lifts: on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dotdyn_pipeline.defs.consent.ledger import (
    ACCOUNT_SCOPE,
    BOOK_SCOPE,
    DOTDIGITAL,
    DYNAMICS,
    ledger_time,
    lift_resubscribed,
    record_events,
    usable_address,
)
from dotdyn_pipeline.state import StateStore, UnsubscribeEvent
from dotdyn_pipeline.state.store import now_iso


@pytest.fixture
def ledger_store(state_url) -> Iterator[StateStore]:
    store = StateStore.open(*state_url)
    yield store
    store.close()


def _event(source: str, email: str = "ann@example.com", at: str = "2026-03-01T12:00:00+00:00",
           scope: str = ACCOUNT_SCOPE, book: int | None = None, account: str = "a1") -> UnsubscribeEvent:
    return UnsubscribeEvent(account, email, scope, source, at, reason="Unsubscribed", address_book_id=book)


def test_an_event_is_recorded_once_and_the_other_sides_copy_is_an_echo(ledger_store):
    first = record_events(ledger_store, [_event(DOTDIGITAL), _event(DOTDIGITAL, book=5, scope=BOOK_SCOPE)])
    assert len(first.recorded) == 2
    again = record_events(ledger_store, [
        _event(DOTDIGITAL),  # read again after a stop
        _event(DYNAMICS, at="2026-03-01T12:00:09+00:00"),  # the flag this flow set, read back
        _event(DOTDIGITAL, at="2026-03-02T08:00:00+00:00"),  # suppressed again: the address is held already
        _event(DYNAMICS, book=6, scope=BOOK_SCOPE),  # another book is another matter
        _event(DYNAMICS, account="a2"),  # so is another account
    ])
    assert [len(again.seen), len(again.echo), len(again.held), len(again.recorded)] == [1, 1, 1, 2]
    assert again.counts() == {"recorded": 2, "seen": 1, "echo": 1, "held": 1}
    assert len(ledger_store.ledger("a1")) == 3


def test_two_records_of_one_address_in_one_batch_make_one_entry(ledger_store):
    result = record_events(ledger_store, [_event(DYNAMICS, at="2026-03-01T12:00:00+00:00"),
                                          _event(DYNAMICS, email="ANN@example.com", at="2026-03-01T12:00:01+00:00")])
    assert (len(result.recorded), len(result.held)) == (1, 1)


def test_a_resubscribe_lifts_only_what_dotdigital_had_applied(ledger_store):
    record_events(ledger_store, [_event(DOTDIGITAL), _event(DYNAMICS, email="bob@example.com"),
                                 _event(DYNAMICS, email="cy@example.com")])
    (propagated,) = [e for e in ledger_store.ledger("a1") if e.event.email == "bob@example.com"]
    ledger_store.mark_propagated(propagated.event.event_key)
    before = now_iso()
    record_events(ledger_store, [_event(DYNAMICS, email="bob@example.com", scope=BOOK_SCOPE, book=3)])

    lifted = lift_resubscribed(ledger_store, "a1", ["ann@example.com", "bob@example.com", "cy@example.com"], before,
                               now_iso())

    # cy's opt-out has not reached Dotdigital: a Subscribed contact says nothing about it, so it stays
    assert lifted == {"ann@example.com": 1, "bob@example.com": 1}
    open_now = {(e.event.email, e.event.scope) for e in ledger_store.open_unsubscribes(
        ["ann@example.com", "bob@example.com", "cy@example.com"])}
    assert open_now == {("cy@example.com", ACCOUNT_SCOPE), ("bob@example.com", BOOK_SCOPE)}
    assert ledger_store.unsubscribed_emails("a1") == {"cy@example.com"}
    to_reflect = ledger_store.resubscribes_to_reflect("a1")
    assert sorted(e.event.email for e in to_reflect) == ["ann@example.com", "bob@example.com"]
    ledger_store.mark_reflected(e.event.event_key for e in to_reflect)
    assert ledger_store.resubscribes_to_reflect("a1") == []


def test_an_event_lifted_long_ago_and_read_again_stays_lifted(ledger_store):
    record_events(ledger_store, [_event(DOTDIGITAL)])
    ledger_store.mark_resubscribed("a1", "ann@example.com", now_iso())
    again = record_events(ledger_store, [_event(DOTDIGITAL)])
    assert (len(again.recorded), len(again.seen)) == (0, 1)
    assert ledger_store.unsubscribed_emails("a1") == set()


def test_addresses_and_times_are_normalised():
    assert usable_address("  Ann@Example.COM ") == "ann@example.com"
    assert usable_address("not an address") is None and usable_address(None) is None
    assert usable_address(f"{'a' * 64}@example.com") and usable_address(f"{'a' * 65}@example.com") is None, \
        "the local part is held to 64 characters, as the audience's validation holds it"
    assert ledger_time("2026-03-01T12:00:00Z") == "2026-03-01T12:00:00+00:00"
    assert ledger_time("2026-03-01T13:00:00+01:00") == "2026-03-01T12:00:00+00:00"

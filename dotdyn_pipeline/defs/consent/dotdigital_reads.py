"""Dotdigital -> ledger: what one account has to say since the last tick, read within a time budget.

Three feeds per account, each with its own cursor in the state store (scope: the account): suppressions
account-wide (every reason), unsubscribes from each address book that mirrors one of the account's lists,
and contacts modified since (a resubscribe confirmed in Dotdigital shows as a Subscribed contact). A page is
recorded in the ledger first and only then does its cursor move, so a crash in between reads it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice

from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient, NotFound
from dotdyn_pipeline.connectors.dotdigital.models import Suppression
from dotdyn_pipeline.connectors.dotdigital.paging import MAX_SELECT
from dotdyn_pipeline.defs.consent.cursors import ScanCursor, SinceCursor, SinceTracker
from dotdyn_pipeline.defs.consent.ledger import (
    ACCOUNT_SCOPE,
    BOOK_SCOPE,
    DOTDIGITAL,
    Recording,
    lift_resubscribed,
    record_events,
    usable_address,
)
from dotdyn_pipeline.state import StateStore, UnsubscribeEvent

SUPPRESSIONS = "consent:suppressions"
RESUBSCRIBES = "consent:resubscribes"
SUBSCRIBED = "Subscribed"


def book_source(address_book_id: int) -> str:
    return f"consent:book:{address_book_id}"


@dataclass
class AccountRead:
    """What one tick read from one account."""

    account: str
    recording: Recording = field(default_factory=Recording)
    lifted: dict[str, int] = field(default_factory=dict)  # address -> unsubscribes lifted by its resubscribe
    rows: int = 0
    caught_up: bool = True  # False: the time budget ran out first; the next tick goes on from the cursors


def _event(account: str, row: Suppression, scope: str, book: int | None) -> UnsubscribeEvent | str:
    email = usable_address(row.contact.email)
    if book is not None and row.contact.status not in (None, SUBSCRIBED):
        # an address book's list names its members who left the whole account too: the account-wide feed
        # has that unsubscribe, and it is no reason to take them off the list
        return "account_wide"
    if email is None:
        return "unusable_address"
    if row.date_removed is None:
        return "no_date"
    return UnsubscribeEvent(account, email, scope, DOTDIGITAL, row.date_removed.isoformat(),
                            reason=row.reason or "Unsubscribed", address_book_id=book)


def _follow(store: StateStore, read: AccountRead, source: str, scope: str, book: int | None,
            fetch: Callable[[datetime, int], Iterator[Suppression]], deadline: float,
            clock: Callable[[], float]) -> bool:
    """Read one since-feed, at least a page, until it is caught up (True) or the deadline passed (False)."""
    saved = store.get_cursor(read.account, source)
    cursor = SinceCursor.load(saved.watermark if saved else None)
    tracker, rows = SinceTracker(cursor), fetch(cursor.since_time, cursor.start)
    while True:
        page = list(islice(rows, MAX_SELECT))
        events: list[UnsubscribeEvent] = []
        for row in page:
            tracker.consumed(row.date_removed)
            event = _event(read.account, row, scope, book)
            if isinstance(event, str):
                read.recording.skipped[event] += 1
            else:
                events.append(event)
        read.recording.add(record_events(store, events))
        if tracker.cursor != cursor:
            cursor = tracker.cursor
            store.save_cursor(read.account, source, watermark=cursor.dump())
        read.rows += len(page)
        if len(page) < MAX_SELECT:
            return True
        if clock() >= deadline:
            return False


def _scan_resubscribes(client: DotdigitalClient, store: StateStore, read: AccountRead, deadline: float,
                       clock: Callable[[], float]) -> bool:
    now = datetime.now(UTC)
    saved = store.get_cursor(read.account, RESUBSCRIBES)
    cursor = ScanCursor.load(saved.watermark if saved else None, now).begun(now)
    position, contacts = cursor.start, client.contacts_modified_since(cursor.since_time, start=cursor.start)
    while True:
        page = list(islice(contacts, MAX_SELECT))
        subscribed = {c.email for c in page if c.status == SUBSCRIBED and c.email}
        read.lifted.update(lift_resubscribed(store, read.account, subscribed, cursor.started or "", now.isoformat()))
        position += len(page)
        read.rows += len(page)
        done = len(page) < MAX_SELECT
        cursor = cursor.finished() if done else ScanCursor(cursor.since, cursor.started, position)
        store.save_cursor(read.account, RESUBSCRIBES, watermark=cursor.dump())
        if done:
            return True
        if clock() >= deadline:
            return False


def read_account(client: DotdigitalClient, store: StateStore, account: str, books: Iterable[int],
                 deadline: float, clock: Callable[[], float] = time.monotonic) -> AccountRead:
    """Record the account's new suppressions and book unsubscribes, and lift what resubscribes lift.

    Each feed reads at least one page, so a backlog in one (a first read of years of suppressions) does not
    hold up the others; `caught_up` says whether all of them are.
    """
    read = AccountRead(account)
    feeds: list[tuple[str, str, int | None, Callable[[datetime, int], Iterator[Suppression]]]] = [
        (SUPPRESSIONS, ACCOUNT_SCOPE, None, lambda since, start: client.suppressed_since(since, start=start))]
    feeds += [(book_source(book), BOOK_SCOPE, book,
               lambda since, start, book=book: client.unsubscribed_since(since, book, start=start))
              for book in sorted(set(books))]
    done = []
    for source, scope, book, fetch in feeds:
        try:
            done.append(_follow(store, read, source, scope, book, fetch, deadline, clock))
        except NotFound:  # an address book deleted in Dotdigital: nothing more can leave it
            read.recording.skipped["address_book_gone"] += 1
    scanned = _scan_resubscribes(client, store, read, deadline, clock)
    read.caught_up = all(done) and scanned
    return read

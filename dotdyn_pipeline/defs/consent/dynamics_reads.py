"""Dynamics -> ledger: opt-outs, suppression rows and list unsubscribes changed since the last tick.

Each feed is an org-wide CRM table read with change tracking (its own delta link in the state store, apart
from the audience flow's); a read that must stop early keeps the link to its next page instead. A page is
recorded in the ledger before the cursor moves. A CRM opt-out (donotbulkemail or donotemail becoming set)
applies to every active account; a suppression row to its account; a list unsubscribe to the address book
that mirrors the list. What the consent flow wrote itself comes back here and is counted as an echo.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.defs.consent.ledger import (
    ACCOUNT_SCOPE,
    BOOK_SCOPE,
    DOTDIGITAL,
    DYNAMICS,
    Recording,
    ledger_time,
    record_events,
    usable_address,
)
from dotdyn_pipeline.state import ORG_SCOPE, StateStore, UnsubscribeEvent

Row = dict[str, Any]
FLAGS = ("donotbulkemail", "donotemail")


@dataclass(frozen=True)
class CrmScope:
    """What turning CRM rows into events needs to know about the accounts."""

    accounts: frozenset[str]  # the active, registered email accounts
    books: dict[str, tuple[str, int]]  # list id -> (its account, the address book that mirrors it)
    written_flags: frozenset[str]  # the attributes the flow sets when Dotdigital reports an unsubscribe
    resubscribing: frozenset[str] = frozenset()  # addresses whose resubscribe is being reflected in Dynamics


Events = Callable[[StateStore, CrmScope, list[Row]], tuple[list[UnsubscribeEvent], Counter[str]]]


@dataclass(frozen=True)
class CrmFeed:
    table: str
    columns: tuple[str, ...]
    events: Events

    @property
    def source(self) -> str:
        return f"consent:{self.table}"


def _person_events(table: str) -> Events:
    def events(store: StateStore, scope: CrmScope, rows: list[Row]) -> tuple[list[UnsubscribeEvent], Counter[str]]:
        skipped: Counter[str] = Counter()
        flagged = []
        for row in rows:
            flags = frozenset(flag for flag in FLAGS if row.get(flag))
            email = usable_address(row.get("emailaddress1"))
            if flags and email:
                flagged.append((row, email, flags))
            elif flags:
                skipped["unusable_address"] += 1
        # the flow's own flag, set for a Dotdigital unsubscribe, read back: an echo for every account
        from_dotdigital = {entry.event.email for entry in store.open_unsubscribes(e for _, e, _ in flagged)
                           if entry.event.source == DOTDIGITAL and entry.event.scope == ACCOUNT_SCOPE}
        found = []
        for row, email, flags in flagged:
            if email in scope.resubscribing:
                skipped["resubscribed"] += 1
            elif flags <= scope.written_flags and email in from_dotdigital:
                skipped["echo"] += 1
            else:
                reason = f"{' and '.join(sorted(flags))} set on {table} {row[f'{table}id']}"
                found += [UnsubscribeEvent(account, email, ACCOUNT_SCOPE, DYNAMICS, ledger_time(row["modifiedon"]),
                                           reason=reason) for account in sorted(scope.accounts)]
        return found, skipped
    return events


def _suppression_events(store: StateStore, scope: CrmScope,
                        rows: list[Row]) -> tuple[list[UnsubscribeEvent], Counter[str]]:
    found, skipped = [], Counter()
    for row in rows:
        email, account = usable_address(row.get("esc_email")), row.get("_esc_emailaccountid_value")
        if (row.get("esc_source") or "").lower() == DOTDIGITAL:
            skipped["echo"] += 1
        elif account not in scope.accounts:
            skipped["inactive_account"] += 1
        elif email is None:
            skipped["unusable_address"] += 1
        else:
            found.append(UnsubscribeEvent(account, email, ACCOUNT_SCOPE, DYNAMICS,
                                          ledger_time(row.get("esc_dateremoved") or row["modifiedon"]),
                                          reason=row.get("esc_reason") or "Suppressed"))
    return found, skipped


def _list_events(store: StateStore, scope: CrmScope, rows: list[Row]) -> tuple[list[UnsubscribeEvent], Counter[str]]:
    found, skipped = [], Counter()
    for row in rows:
        list_account, book = scope.books.get(row.get("_esc_listid_value") or "", (None, None))
        account = row.get("_esc_emailaccountid_value") or list_account
        book = row.get("esc_addressbookid") or book
        email = usable_address(row.get("esc_email"))
        if not book:  # the list does not sync: no address book holds the address
            skipped["list_not_synced"] += 1
        elif account not in scope.accounts:
            skipped["inactive_account"] += 1
        elif email is None:
            skipped["unusable_address"] += 1
        else:
            found.append(UnsubscribeEvent(account, email, BOOK_SCOPE, DYNAMICS,
                                          ledger_time(row.get("esc_unsubscribedon") or row["modifiedon"]),
                                          reason=f"left list {row.get('_esc_listid_value')}",
                                          address_book_id=int(book)))
    return found, skipped


PERSON_COLUMNS = ("emailaddress1", *FLAGS, "modifiedon")
FEEDS = (
    *(CrmFeed(table, (f"{table}id", *PERSON_COLUMNS), _person_events(table))
      for table in ("contact", "lead", "account")),
    CrmFeed("esc_emailsupression", ("esc_emailsupressionid", "_esc_emailaccountid_value", "esc_email", "esc_reason",
                                    "esc_source", "esc_dateremoved", "modifiedon"), _suppression_events),
    CrmFeed("esc_listunsubscriber", ("esc_listunsubscriberid", "_esc_listid_value", "_esc_emailaccountid_value",
                                     "esc_email", "esc_addressbookid", "esc_unsubscribedon", "modifiedon"),
            _list_events),
)


@dataclass
class CrmRead:
    """What one tick read from Dynamics."""

    recording: Recording = field(default_factory=Recording)
    rows: int = 0
    fallbacks: dict[str, str] = field(default_factory=dict)  # table -> why it was read in full
    caught_up: bool = True


def read_dynamics(crm: DataverseClient, store: StateStore, scope: CrmScope, deadline: float,
                  feeds: Iterable[CrmFeed] = FEEDS, clock: Callable[[], float] = time.monotonic) -> CrmRead:
    """Record what changed in every feed, page by page, until caught up or past the deadline (each feed reads at
    least one page a tick, so a long first read of one table does not hold up the others)."""
    result = CrmRead()
    for feed in feeds:
        saved = store.get_cursor(ORG_SCOPE, feed.source)
        read = crm.read_changes(feed.table, feed.columns, saved.delta_link if saved else None)
        if read.fallback:
            result.fallbacks[feed.table] = read.fallback
        for page in read:
            events, skipped = feed.events(store, scope, page.rows)
            recording = record_events(store, events)
            recording.skipped.update(skipped)
            result.recording.add(recording)
            result.rows += len(page.rows)
            store.save_cursor(ORG_SCOPE, feed.source, delta_link=read.resume or read.cursor)
            if read.resume and clock() >= deadline:  # the next feed still gets its page: none starves
                result.caught_up = False
                break
    return result

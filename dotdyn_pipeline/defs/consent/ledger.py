"""The unsubscribe ledger as the consent flow uses it: which events seen on a side are new, which are echoes
of what the flow wrote itself, and which unsubscribes a resubscribe confirmed in Dotdigital lifts.

An event is new unless an open entry of the same account, address, scope and address book already holds it:
an entry from the other side means the flow's own write was read back (an echo), one from the same side
means the address was unsubscribed there already. Either way nothing more needs doing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dotdyn_pipeline.schemas.email import address_key, is_valid_address
from dotdyn_pipeline.state import LedgerEntry, StateStore, UnsubscribeEvent

DOTDIGITAL, DYNAMICS = "dotdigital", "dynamics"
ACCOUNT_SCOPE, BOOK_SCOPE = "account", "address_book"


def usable_address(email: str | None) -> str | None:
    """The lower-cased address when it is one Dotdigital could hold, else None."""
    key = address_key(email)
    return key if key and is_valid_address(key) else None


def ledger_time(text: str) -> str:
    """An API timestamp as the ledger keeps times: ISO 8601 in UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _slot(event: UnsubscribeEvent) -> tuple[str, str, str, int | None]:
    book = int(event.address_book_id) if event.scope == BOOK_SCOPE and event.address_book_id else None
    return event.account, event.email.strip().lower(), event.scope, book


@dataclass
class Recording:
    """Events seen on one side, by what became of them."""

    recorded: list[UnsubscribeEvent] = field(default_factory=list)  # new: in the ledger now, to propagate
    seen: list[UnsubscribeEvent] = field(default_factory=list)  # this very event was recorded before
    echo: list[UnsubscribeEvent] = field(default_factory=list)  # the other side's entry holds it already
    held: list[UnsubscribeEvent] = field(default_factory=list)  # another entry of the same side holds it
    skipped: Counter[str] = field(default_factory=Counter)  # rows that are no event, by reason

    def add(self, other: Recording) -> None:
        for name in ("recorded", "seen", "echo", "held"):
            getattr(self, name).extend(getattr(other, name))
        self.skipped.update(other.skipped)

    def counts(self) -> dict[str, int]:
        return {"recorded": len(self.recorded), "seen": len(self.seen), "echo": len(self.echo),
                "held": len(self.held), **{f"skipped_{reason}": n for reason, n in sorted(self.skipped.items())}}


def record_events(store: StateStore, events: Iterable[UnsubscribeEvent]) -> Recording:
    """Record the events that are new, once each; sort the others by why they are not."""
    events = list(events)
    holders: dict[tuple[str, str, str, int | None], list[tuple[str, str]]] = {}
    for entry in store.open_unsubscribes({event.email for event in events}):
        holders.setdefault(_slot(entry.event), []).append((entry.event.event_key, entry.event.source))
    result = Recording()
    for event in events:
        held_by, key = holders.setdefault(_slot(event), []), event.event_key
        if any(known == key for known, _ in held_by):
            result.seen.append(event)
        elif any(source != event.source for _, source in held_by):
            result.echo.append(event)
        elif held_by:
            result.held.append(event)
        elif store.record_unsubscribe(event):
            result.recorded.append(event)
            held_by.append((key, event.source))
        else:  # recorded long ago and lifted by a resubscribe since: reading it again changes nothing
            result.seen.append(event)
    return result


def applied_in_dotdigital(entry: LedgerEntry, before: str) -> bool:
    """Whether Dotdigital held this account-wide unsubscribe before `before` (it came from there, or was
    applied there): only then does a Subscribed contact mean that the person resubscribed since."""
    if entry.event.scope != ACCOUNT_SCOPE:
        return False
    if entry.event.source == DOTDIGITAL:
        return entry.recorded_at < before
    return entry.propagated_at is not None and entry.propagated_at < before


def lift_resubscribed(store: StateStore, account: str, subscribed: Iterable[str], before: str,
                      at: str) -> dict[str, int]:
    """Lift the unsubscribes of addresses Dotdigital holds as subscribed again, where it held them as
    unsubscribed before `before`; an unsubscribe it has not applied yet stays (it wins). Address -> lifted."""
    keys: dict[str, list[str]] = {}
    for entry in store.open_unsubscribes(subscribed, account):
        if applied_in_dotdigital(entry, before):
            keys.setdefault(entry.event.email, []).append(entry.event.event_key)
    return {email: store.mark_resubscribed(account, email, at, event_keys) for email, event_keys in keys.items()}

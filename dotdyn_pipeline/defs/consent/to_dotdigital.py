"""Ledger -> Dotdigital: an account's pending unsubscribes from Dynamics, each applied and then marked.

An account-wide unsubscribe suppresses the address in the account (creating the contact if it never had
it); a list unsubscribe unsubscribes it from that one address book. The entry is marked propagated only
after Dotdigital answered, so a crash in between applies it again next time, which changes nothing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient, DotdigitalError, NotFound
from dotdyn_pipeline.defs.consent.ledger import BOOK_SCOPE, DYNAMICS
from dotdyn_pipeline.defs.consent.outcomes import Outcomes
from dotdyn_pipeline.state import LedgerEntry, StateStore

#: Dotdigital calls in flight at once while applying an account's unsubscribes.
DOTDIGITAL_WORKERS = 4


def _apply(client: DotdigitalClient, store: StateStore, entry: LedgerEntry) -> tuple[str, str]:
    event = entry.event
    if entry.resubscribed_at:
        outcome, detail = "lifted", f"resubscribed {entry.resubscribed_at} before it was applied"
    else:
        book = int(event.address_book_id) if event.scope == BOOK_SCOPE else None
        try:
            client.unsubscribe(event.email, book)
            outcome, detail = "applied", ""
        except NotFound as exc:  # no such contact, or the book is gone: nothing there to unsubscribe
            outcome, detail = "not_in_dotdigital", exc.code or "not found"
        except DotdigitalError as exc:
            return "failed", str(exc)
    store.mark_propagated(event.event_key)
    return outcome, detail


def apply_to_dotdigital(client: DotdigitalClient, store: StateStore, account: str) -> Outcomes:
    """Apply every pending Dynamics-side entry of `account` in Dotdigital."""
    pending = store.ledger(account, source=DYNAMICS, pending_only=True)
    outcomes = Outcomes()
    with ThreadPoolExecutor(max_workers=DOTDIGITAL_WORKERS) as pool:
        for entry, (outcome, detail) in zip(pending, pool.map(lambda e: _apply(client, store, e), pending),
                                            strict=True):
            outcomes.add(entry, outcome, detail)
    return outcomes

"""Ledger -> Dynamics: an account's pending unsubscribes from Dotdigital, and its confirmed resubscribes.

An account-wide unsubscribe or suppression becomes an esc_emailsupression row (source 'dotdigital') and sets
the account's unsubscribe attribute (esc_emailcampaignconfiguration.esc_unsubscribeattribute, default
donotbulkemail) on every contact, lead and account holding the address. An address book unsubscribe becomes
an esc_listunsubscriber row on the list the book mirrors and takes the person off that list when it is
static. Each entry is marked propagated once all of its writes were accepted. A resubscribe clears the
attribute again, unless another account still holds an unsubscribe of the address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.client import RecordOutcome
from dotdyn_pipeline.defs.audience.extract import MEMBER_TYPES
from dotdyn_pipeline.defs.audience.members import account_lists
from dotdyn_pipeline.defs.consent.ledger import ACCOUNT_SCOPE, DOTDIGITAL
from dotdyn_pipeline.defs.consent.outcomes import Outcomes
from dotdyn_pipeline.defs.people import SUPPRESSION_KEY, Person, PersonResolver, person_binds, suppression_row
from dotdyn_pipeline.state import LedgerEntry, StateStore

DEFAULT_ATTRIBUTE = "donotbulkemail"
LIST_UNSUBSCRIBER_KEY = ("_esc_listid_value", "esc_email")
_ATTRIBUTE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def unsubscribe_attributes(crm: DataverseClient) -> dict[str, str]:
    """Email account id -> the Boolean attribute its configuration sets on an unsubscribe (when valid)."""
    found = {}
    for page in crm.read("esc_emailcampaignconfiguration", ("_esc_emailaccountid_value", "esc_unsubscribeattribute"),
                         filter="statecode eq 0"):
        for row in page:
            attribute = (row.get("esc_unsubscribeattribute") or "").strip().lower()
            if row.get("_esc_emailaccountid_value") and _ATTRIBUTE.match(attribute):
                found[row["_esc_emailaccountid_value"]] = attribute
    return found


@dataclass
class Writes:
    """Rows to write to one table, each serving one or more ledger entries (by index)."""

    rows: dict[Any, dict[str, Any]] = field(default_factory=dict)  # row key -> row
    serves: dict[Any, set[int]] = field(default_factory=dict)  # row key -> entry indices

    def add(self, key: Any, row: dict[str, Any], entry: int) -> None:
        self.rows[key] = row
        self.serves.setdefault(key, set()).add(entry)

    def send(self, write: Callable[[list[dict[str, Any]]], Sequence[RecordOutcome]]) -> dict[int, str]:
        """Write the rows (if any) with `write`; entry index -> why a row of it was refused (a record
        deleted meanwhile is no failure: there is nothing left to change)."""
        if not self.rows:
            return {}
        outcomes, keys = write(list(self.rows.values())), list(self.rows)
        return {entry: f"{outcome.code} {outcome.message}".strip()
                for outcome in outcomes if not outcome.ok and not outcome.record_gone
                for entry in self.serves[keys[outcome.index]]}


def _flag_rows(people: Iterable[Person], attribute: str, value: bool) -> dict[str, dict[str, dict[str, Any]]]:
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for person in people:
        tables.setdefault(person.crm_table, {})[person.crm_id] = {f"{person.crm_table}id": person.crm_id,
                                                                   attribute: value}
    return tables


def _update_flags(crm: DataverseClient, writes: Mapping[str, Writes]) -> dict[int, str]:
    failed: dict[int, str] = {}
    for table, table_writes in writes.items():
        failed |= table_writes.send(lambda rows, table=table: crm.update_many(table, rows))
    return failed


def reflect_resubscribes(crm: DataverseClient, store: StateStore, account: str, attribute: str) -> Outcomes:
    """Clear the attribute of addresses whose unsubscribes a resubscribe lifted, where none is left open."""
    lifted = store.resubscribes_to_reflect(account)
    emails = {entry.event.email for entry in lifted if entry.event.scope == ACCOUNT_SCOPE}
    still = {entry.event.email for entry in store.open_unsubscribes(emails) if entry.event.scope == ACCOUNT_SCOPE}
    everyone = PersonResolver(store, account).everyone_with(emails - still)
    writes: dict[str, Writes] = {}
    for index, entry in enumerate(lifted):
        for table, rows in _flag_rows(everyone.get(entry.event.email, ()), attribute, False).items():
            for crm_id, row in rows.items():
                writes.setdefault(table, Writes()).add(crm_id, row, index)
    failed = _update_flags(crm, writes)
    outcomes = Outcomes()
    for index, entry in enumerate(lifted):
        if index in failed:
            outcomes.add(entry, "failed", failed[index])
            continue
        store.mark_reflected([entry.event.event_key])
        kept = entry.event.scope == ACCOUNT_SCOPE and entry.event.email in still
        outcomes.add(entry, "kept" if kept else "cleared", "another unsubscribe still holds it" if kept else "")
    return outcomes


def _list_unsubscriber(account: str, entry: LedgerEntry, list_id: str, person: Person | None) -> dict[str, Any]:
    event = entry.event
    return {"_esc_listid_value": list_id, "esc_email": event.email, "esc_name": event.email[:255],
            "esc_emailaccountid@odata.bind": f"/esc_emailaccounts({account})",
            "esc_addressbookid": int(event.address_book_id), "esc_unsubscribedon": event.occurred_at,
            **person_binds(person)}


def apply_to_dynamics(crm: DataverseClient, store: StateStore, account: str, attribute: str) -> Outcomes:
    """Apply every pending Dotdigital-side entry of `account` in Dynamics."""
    pending = store.ledger(account, source=DOTDIGITAL, pending_only=True)
    outcomes = Outcomes()
    live = []
    for entry in pending:
        if entry.resubscribed_at:  # lifted before it reached Dynamics: nothing to set
            store.mark_propagated(entry.event.event_key)
            outcomes.add(entry, "lifted", f"resubscribed {entry.resubscribed_at} before it was applied")
        else:
            live.append(entry)
    resolver = PersonResolver(store, account)
    emails = {entry.event.email for entry in live}
    everyone = resolver.everyone_with(emails)
    linked = resolver.resolve((None, email) for email in emails)
    lists = {int(row["esc_addressbookid"]): row for row in account_lists(store, account)
             if row.get("esc_addressbookid")}
    suppressions, unsubscribers, flags = Writes(), Writes(), {}
    removals: dict[tuple[str, str], Writes] = {}  # (list id, member table) -> members to take off
    missing: set[int] = set()
    for index, entry in enumerate(live):
        event, person = entry.event, linked.get((None, entry.event.email))
        if event.scope == ACCOUNT_SCOPE:
            suppressions.add(event.email, suppression_row(account, event.email, event.reason, event.occurred_at,
                                                          DOTDIGITAL, person), index)
            for table, rows in _flag_rows(everyone.get(event.email, ()), attribute, True).items():
                for crm_id, row in rows.items():
                    flags.setdefault(table, Writes()).add(crm_id, row, index)
            continue
        book_list = lists.get(int(event.address_book_id or 0))
        if book_list is None:
            missing.add(index)
            continue
        list_id = book_list["listid"]
        unsubscribers.add((list_id, event.email), _list_unsubscriber(account, entry, list_id, person), index)
        member_type = MEMBER_TYPES.get(book_list.get("createdfromcode"))
        if not book_list.get("type"):  # only a static list has members to remove; a dynamic one is a query
            for member in everyone.get(event.email, ()):
                if member.crm_table == member_type:
                    removals.setdefault((list_id, member.crm_table), Writes()).add(member.crm_id, {}, index)
    failed = suppressions.send(lambda rows: crm.upsert_many("esc_emailsupression", rows, SUPPRESSION_KEY))
    failed |= unsubscribers.send(lambda rows: crm.upsert_many("esc_listunsubscriber", rows, LIST_UNSUBSCRIBER_KEY))
    failed |= _update_flags(crm, flags)
    for (list_id, member_table), members in removals.items():
        failed |= members.send(lambda rows, list_id=list_id, table=member_table, ids=list(members.rows):
                               crm.remove_list_members(list_id, ids, member_table=table))
    for index, entry in enumerate(live):
        if index in failed:
            outcomes.add(entry, "failed", failed[index])
            continue
        store.mark_propagated(entry.event.event_key)
        outcomes.add(entry, "no_list" if index in missing else "applied",
                     "no list of the account mirrors this address book" if index in missing else "")
    return outcomes

"""Load: each address book made to hold exactly its list's members, by bulk import and removals.

What is sent is compared with what was last sent (the state store's book members and their fingerprints):
new and changed people go in one bulk import per book, people who left the list are removed, and a CRM
record whose email changed has its Dotdigital contact's email updated first, so the import updates that
contact instead of creating a second one. The members sent are saved while Dotdigital imports them, and a
load that never ends makes the next send its book again, keeping of the people it added only those the book
holds (`load_book`). A run with no change makes no write call. An incremental sync compares only the addresses
in its scope (changes.py) and moves the account's cursor once every book is loaded. The import report and its
per-row faults are recorded; a row refused because the address is suppressed or unsubscribed in Dotdigital goes
into the unsubscribe ledger, so no later run sends it again.
"""

import gc
import json
import time
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from dotdyn_pipeline.connectors.dotdigital import (
    AlreadyExists,
    DotdigitalClient,
    DotdigitalError,
    ImportFailed,
    NotFound,
)
from dotdyn_pipeline.connectors.dotdigital.imports import ImportOutcome
from dotdyn_pipeline.connectors.dotdigital.models import Contact
from dotdyn_pipeline.connectors.dotdigital.paging import MAX_SELECT
from dotdyn_pipeline.connectors.http import calls_made
from dotdyn_pipeline.defs.accounts.accounts import email_account, email_account_partitions
from dotdyn_pipeline.defs.accounts.partitions import partition_account
from dotdyn_pipeline.defs.audience.changes import SCOPE_ATTR, Scope, record_synced
from dotdyn_pipeline.defs.audience.contacts import CONTACT_COLUMNS
from dotdyn_pipeline.defs.audience.formulas import FormulaGuard, text_fields
from dotdyn_pipeline.defs.audience.members import HELD_BACK_ATTR
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource
from dotdyn_pipeline.state import BookMember, ContactLink, ImportJob, QuarantinedRow, StateStore, UnsubscribeEvent

#: Fault reasons that are consent facts, not data problems: the address must not be sent again.
CONSENT_FAULTS = ("suppress", "unsubscrib", "bounce", "complain", "blocked")


#: Address books loaded at once: their imports then overlap instead of queueing.
PARALLEL_BOOKS = 4
NO_ROWS = np.array([], dtype=np.intp)
#: What a book member is saved with: BookMember's fields, its Dotdigital id (kept from before) aside.
SAVED_COLUMNS = list(BookMember._fields[:-1])


@dataclass
class LoadCounts:
    sent: int = 0
    imported: int = 0
    faulted: int = 0
    removed: int = 0
    email_changes: int = 0
    withdrawn: int = 0  # unsubscribed after the members were chosen, so not sent
    unchanged: int = 0
    neutralised: int = 0  # text values sent behind a quote because they began like a spreadsheet formula
    faults_by_reason: dict[str, int] = field(default_factory=dict)

    def count_import(self, sent: int, faulted: dict[str, str]) -> None:
        """Count an import of `sent` rows, of which Dotdigital refused `faulted` (address -> reason)."""
        self.sent += sent
        self.faulted += len(faulted)
        self.imported += sent - len(faulted)
        for reason in faulted.values():
            self.faults_by_reason[reason] = self.faults_by_reason.get(reason, 0) + 1

    def add(self, other: "LoadCounts") -> None:
        for name in ("sent", "imported", "faulted", "removed", "email_changes", "unchanged", "withdrawn",
                     "neutralised"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.faults_by_reason.items():
            self.faults_by_reason[reason] = self.faults_by_reason.get(reason, 0) + n


@dataclass(frozen=True)
class BookPlan:
    """What one address book needs: rows to send, members to remove, records whose email changed."""

    send: pd.DataFrame
    remove: pd.DataFrame  # book members (BOOK_MEMBER_COLUMNS) no longer on the list
    moved: pd.DataFrame  # wanted rows whose record was sent before under another address (+ its old row)
    unchanged: int


def plan_book(wanted: pd.DataFrame, sent: pd.DataFrame) -> BookPlan:
    """Compare the list's contacts (`wanted`, unique by email_key) with the book's last sent members. Only the
    rows to send are copied: a book of a million unchanged people costs two lookups, not a merged copy."""
    last = sent.set_index("email_key")["fingerprint"]
    previous = wanted["email_key"].map(last)
    new = previous.isna()
    send = new | (previous != wanted["fingerprint"])
    old = sent[~sent["email_key"].isin(wanted["email_key"])]
    moved = wanted.loc[new, ["email_key", "email", "crm_table", "crm_id"]].merge(
        old, on=["crm_table", "crm_id"], suffixes=("", "_old"))
    remove = old[~old["email_key"].isin(moved["email_key_old"])]
    return BookPlan(send=wanted if send.all() else wanted[send], remove=remove, moved=moved,
                    unchanged=int((~send).sum()))


def import_rows(frame: pd.DataFrame, fields: list[str], guard: FormulaGuard | None = None,
                slice_rows: int = 50_000) -> Iterator[dict[str, Any]]:
    """The import file's rows for `frame`'s contacts: Email, then each data field ('' where it has no value), the
    text that `guard` keeps from being read as a formula behind a quote (formulas.py). Missing values are blanked
    column by column, a slice of rows at a time (so a book's columns are never copied whole)."""
    columns = ["Email", *fields]
    for start in range(0, len(frame), slice_rows):
        part = frame.iloc[start:start + slice_rows]
        values = [part["email"].to_numpy(dtype=object)]
        for name in fields:
            column = part[name].to_numpy(dtype=object)
            if guard is not None:
                column = guard.column(name, column)
            values.append(np.where(pd.isna(column), "", column))
        for row in zip(*values, strict=True):
            yield dict(zip(columns, row, strict=True))


def _by_key(keys: pd.Series) -> np.ndarray:
    """Row positions of `keys` in key order (Python sorts strings about twice as fast as numpy's argsort)."""
    values = keys.to_numpy(dtype=object)
    return np.array(sorted(range(len(values)), key=values.__getitem__), dtype=np.intp)


def _contact_id(client: DotdigitalClient, known: Any, email: str) -> int | None:
    if not pd.isna(known):
        return int(known)
    try:
        return client.contact(email).id
    except NotFound:
        return None


def _record_imports(store: StateStore, account: str, book: int, run_id: str, outcomes: list[ImportOutcome],
                    status: str = "Finished") -> None:
    now = datetime.now(UTC).isoformat()
    for outcome in outcomes:
        store.record_import(ImportJob(
            outcome.import_id, account, book, status, rows_sent=outcome.rows, run_id=run_id,
            rows_imported=outcome.rows - len(outcome.faults), rows_faulted=len(outcome.faults),
            report={"new_contacts": outcome.report.new_contacts, "updated_contacts": outcome.report.updated_contacts,
                    "faults": outcome.report.faults}, finished_at=now))


def load_book(client: DotdigitalClient, store: StateStore, account: str, book: int, wanted: pd.DataFrame,
              fields: list[str], run_id: str, scope: frozenset[str] | None = None,
              formula_fields: frozenset[str] = frozenset()) -> LoadCounts:
    """Bring one address book in line with `wanted`, for the addresses in `scope` (None: all of them); record
    what was done and return the counts. Values of the `formula_fields` that begin like a spreadsheet formula
    are sent behind a quote.

    While the book's load is under way it is marked so: the members sent are saved while Dotdigital imports
    them, and a load that never ends leaves book_member ahead of the book, so the next load settles the members
    that load added and sends the book again (its scope holds at least this one's: the account's cursor moves
    only when every book is loaded)."""
    unfinished_before = store.books.begin_load(account, book, run_id)
    before = store.books.members(account, book, scope)
    if unfinished_before:
        before = _settle_unconfirmed(client, store, account, book, run_id, before, wanted)
    plan = plan_book(wanted, before)
    send, withdrawn = _without_late_unsubscribes(store, account, book, plan.send)
    counts = LoadCounts(unchanged=plan.unchanged, withdrawn=withdrawn)
    counts.email_changes = _change_emails(client, store, account, book, plan.moved)
    guard = FormulaGuard(formula_fields)
    faulted = _import_while_saving(client, store, account, book, send, fields, run_id, guard)
    counts.count_import(len(send), faulted)
    counts.neutralised = guard.neutralised
    _record_faults(store, account, book, send, faulted, run_id)
    _put_back(store, account, book, before, faulted)
    store.books.end_load(account, book)
    counts.removed = _remove_departed(client, store, account, book, plan.remove)
    return counts


def _without_late_unsubscribes(store: StateStore, account: str, book: int,
                               send: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows to send, less those unsubscribed since the members were chosen (a consent run meanwhile wins
    over this import), and how many were left out."""
    late = send["email_key"].isin(store.unsubscribed_emails(account, book))
    return (send[~late], int(late.sum())) if late.any() else (send, 0)


def _change_emails(client: DotdigitalClient, store: StateStore, account: str, book: int, moved: pd.DataFrame) -> int:
    """Give the Dotdigital contact of each record whose email changed its new address, so that the import updates
    that contact instead of creating a second one; return how many changed."""
    links = []
    for row in moved.itertuples(index=False):
        contact_id = _contact_id(client, row.dotdigital_contact_id, row.email_key_old)
        if contact_id is not None:
            try:
                client.update_contact(Contact(id=contact_id, email=row.email))
                links.append(ContactLink(account, row.crm_table, row.crm_id, row.email_key, contact_id))
            except AlreadyExists:
                # The new address is a contact already: another book's import made it (the person joined that
                # list as they changed address), or someone else holds it. The old contact leaves this book; the
                # import adds the new one, as it adds a newcomer.
                _remove_from_book(client, book, contact_id)
        store.books.remove(account, book, [row.email_key_old])
    store.link_contacts(links)
    return len(moved)


def _import_while_saving(client: DotdigitalClient, store: StateStore, account: str, book: int, send: pd.DataFrame,
                         fields: list[str], run_id: str, guard: FormulaGuard) -> dict[str, str]:
    """Import `send` into the book while a thread saves it as the book's members; record the imports and return
    the addresses Dotdigital refused, with its reasons."""
    if send.empty:
        return {}
    # Saved in address order, the members extend the book's key index at its end instead of splitting its pages.
    saved = send[SAVED_COLUMNS].iloc[_by_key(send["email_key"])]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="book-save") as saver:
        saving = saver.submit(store.books.save, account, book,
                              (BookMember(*row) for row in saved.itertuples(index=False, name=None)), run_id)
        del saved  # the save holds it until it is done
        try:
            result = client.import_contacts(book, import_rows(send, fields, guard), ["Email", *fields])
        except ImportFailed as failed:
            _record_imports(store, account, book, run_id, failed.completed)
            store.record_import(ImportJob(failed.import_id, account, book, failed.import_status, failed.rows,
                                          run_id=run_id, finished_at=datetime.now(UTC).isoformat()))
            raise
        saving.result()
    _record_imports(store, account, book, run_id, result.outcomes)
    return {fault.email.strip().lower(): fault.reason for fault in result.faults}


def _remove_departed(client: DotdigitalClient, store: StateStore, account: str, book: int,
                     remove: pd.DataFrame) -> int:
    """Take the people who left the list out of the book, in bulk; return how many. Should the run stop before
    the book's members are saved, the next run removes them again, which changes nothing more."""
    if remove.empty:
        return 0
    client.remove_contacts_from_address_book(book, _departed_ids(client, store, account, book, remove))
    store.books.remove(account, book, remove["email_key"].tolist())
    return len(remove)


def _departed_ids(client: DotdigitalClient, store: StateStore, account: str, book: int,
                  remove: pd.DataFrame) -> list[int]:
    """The Dotdigital ids of the people leaving the book (an import tells no ids). Those not known are looked up
    by address, or, where that would take more calls than the book has pages (a wire without a lookup of many at
    once), read from the book's pages once and remembered for every member, so that later removals need neither."""
    known = remove["dotdigital_contact_id"]
    ids = [int(value) for value in known.dropna()]
    unknown = remove.loc[known.isna(), "email_key"].tolist()
    if not unknown:
        return ids
    if client.lookup_calls(len(unknown)) <= -(-store.books.count(account, book) // MAX_SELECT):
        return ids + list(client.contact_ids(unknown).values())
    held = {contact.email.strip().lower(): contact.id for contact in client.address_book_contacts(book)}
    store.books.remember_contact_ids(account, book, held)
    return ids + [held[key] for key in unknown if key in held]


def _remove_from_book(client: DotdigitalClient, book: int, contact_id: int) -> None:
    try:
        client.remove_contact_from_address_book(book, contact_id)
    except NotFound:
        pass  # already gone from the book


def _settle_unconfirmed(client: DotdigitalClient, store: StateStore, account: str, book: int, run_id: str,
                        before: pd.DataFrame, wanted: pd.DataFrame) -> pd.DataFrame:
    """After a load of the book that never ended, settle the members it added (Dotdigital may have refused them,
    or never imported them) and return `before` without those the book does not hold.

    Those this load sends again go back to what they were before that load, no member: this load's import then
    decides, as for any newcomer. For the others (they left the list, or unsubscribed since) Dotdigital is asked,
    in one pass over the book, which it holds: only those stay, to be removed as members who left."""
    unconfirmed = store.books.unconfirmed(account, book, run_id)
    if not unconfirmed:
        return before
    sent_again = unconfirmed.intersection(wanted["email_key"]) - store.unsubscribed_emails(account, book)
    asked = unconfirmed - sent_again
    held = _held(client, book, asked) if asked else set()
    not_held = unconfirmed - held
    store.books.remove(account, book, sorted(not_held))
    return before[~before["email_key"].isin(not_held)]


def _held(client: DotdigitalClient, book: int, addresses: Collection[str]) -> set[str]:
    """Which of `addresses` (lower case) the address book holds, as Dotdigital lists its contacts."""
    keys = (contact.email.strip().lower() for contact in client.address_book_contacts(book))
    return {key for key in keys if key in addresses}


def _put_back(store: StateStore, account: str, book: int, before: pd.DataFrame, refused: Collection[str]) -> None:
    """The book members of the `refused` addresses as they were before the load saved what it sent."""
    if not refused:
        return
    kept = before[before["email_key"].isin(refused)]
    store.books.remove(account, book, sorted(set(refused) - set(kept["email_key"])))
    rows = kept.itertuples(index=False, name=None)
    store.books.save(account, book, (BookMember(key, table, crm_id, digest, None if pd.isna(contact) else int(contact))
                                     for key, table, crm_id, digest, contact in rows))


def _record_faults(store: StateStore, account: str, book: int, sent: pd.DataFrame, faulted: dict[str, str],
                   run_id: str) -> None:
    rows = sent[sent["email_key"].isin(faulted)]
    store.quarantine(QuarantinedRow(account, table, crm_id, f"import.{faulted[key]}",
                                    f"Dotdigital did not import the row: {faulted[key]}", "email", email, run_id)
                     for key, table, crm_id, email in rows[["email_key", "crm_table", "crm_id", "email"]].itertuples(
                         index=False, name=None))
    store.record_unsubscribes(_consent_events(account, book, faulted))


def _consent_events(account: str, book: int, faulted: dict[str, str]) -> Iterator[UnsubscribeEvent]:
    """Ledger entries for the faults that are consent facts: those addresses must not be sent again."""
    now = datetime.now(UTC).isoformat()
    for key, reason in faulted.items():
        if any(word in reason.lower() for word in CONSENT_FAULTS):
            # "Unsubscribed" may mean from this book only; an account-wide one also shows as a suppression,
            # which the consent flow records account-wide. The other reasons are account-wide.
            book_only = reason.lower().startswith("unsubscrib")
            yield UnsubscribeEvent(account, key, "address_book" if book_only else "account", "dotdigital", now,
                                   reason=f"import fault: {reason}", address_book_id=book if book_only else None)


@dg.asset(group_name="audience", partitions_def=email_account_partitions, kinds={"dotdigital"}, pool="dotdigital",
          description="The account's address books, each holding exactly its list's consenting members.")
def address_book_members(context: dg.AssetExecutionContext, audience_contacts: pd.DataFrame,
                         address_books: dict[str, int], dataverse: DataverseResource, dotdigital: DotdigitalResource,
                         state: StateStoreResource) -> dg.MaterializeResult:
    gc.collect()  # what the last step left in reference cycles goes now, before this step's peak
    started, account_id = time.monotonic(), partition_account(context, state)
    fields = [column for column in audience_contacts.columns if column not in CONTACT_COLUMNS]
    scope = Scope.from_attr(audience_contacts.attrs[SCOPE_ATTR]) if SCOPE_ATTR in audience_contacts.attrs else None
    # a dynamic list whose query failed: its book is left as it was (dynamic.py)
    held_back = set(json.loads(audience_contacts.attrs.get(HELD_BACK_ATTR, "[]")))
    books = {list_id: book for list_id, book in address_books.items() if list_id not in held_back}
    counts = LoadCounts()
    with state.open() as store:
        with dataverse.client() as crm:
            account = email_account(crm, account_id)
        with account.dotdigital(dotdigital) as client:
            # the fields' types as Dotdigital holds them: a value is stored as text when its field is a String
            formula_fields = text_fields(client.data_fields()) if account.formula_protection else frozenset()
            throughput = client.import_throughput  # what earlier runs learned plans this run's import polls
            throughput.bytes_per_second = store.import_throughput(account_id)
            try:
                with ThreadPoolExecutor(max_workers=PARALLEL_BOOKS) as pool:
                    rows_of = audience_contacts.groupby("list_id").indices  # each list's row positions

                    def load_rows(book: int, rows: np.ndarray) -> LoadCounts:
                        # a book's rows are copied out when its load starts, not every book's at once
                        return load_book(client, store, account_id, book, audience_contacts.iloc[rows], fields,
                                         context.run.run_id, None if scope is None else scope.keys, formula_fields)

                    loads = [pool.submit(load_rows, book, rows_of.get(list_id, NO_ROWS))
                             for list_id, book in sorted(books.items())]
                    for load in loads:
                        counts.add(load.result())
            except DotdigitalError as exc:
                raise dg.Failure(description=f"loading account {account_id} stopped: {exc}") from exc
            finally:
                if throughput.bytes_per_second:
                    store.save_import_throughput(account_id, throughput.bytes_per_second)
            calls = client.counter.snapshot()
        if scope is not None:
            record_synced(store, account_id, scope)
        store.add_api_calls(account_id, "dotdigital", calls)
    return dg.MaterializeResult(metadata={
        "address_books": dg.MetadataValue.int(len(books)),
        "address_books_held_back": dg.MetadataValue.int(len(address_books) - len(books)),
        "rows_in": dg.MetadataValue.int(len(audience_contacts)),
        "rows_sent": dg.MetadataValue.int(counts.sent),
        "rows_imported": dg.MetadataValue.int(counts.imported),
        "rows_faulted": dg.MetadataValue.int(counts.faulted),
        "rows_unchanged": dg.MetadataValue.int(counts.unchanged),
        "rows_removed": dg.MetadataValue.int(counts.removed),
        "email_changes": dg.MetadataValue.int(counts.email_changes),
        "rows_withdrawn": dg.MetadataValue.int(counts.withdrawn),
        "values_neutralised": dg.MetadataValue.int(counts.neutralised),
        **({"cursor": dg.MetadataValue.text(scope.upto)} if scope is not None else {}),
        "faults_by_reason": dg.MetadataValue.json(counts.faults_by_reason),
        "dotdigital_calls": dg.MetadataValue.int(calls_made(calls)),
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
    })

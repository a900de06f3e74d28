"""Which addresses an account's sync looks at: every one, or only those that changed since its last sync.

The org-wide extract marks the addresses a page of changes touches (`mark_page`): a person record's address
before and after, a deleted record's, the records of links that came or went. A change that marks cannot
describe resets to a full pass: a list or a data mapping changed resets the accounts it belonged to before and
after, and a table read in full resets every account.
An account's sync takes the addresses marked, or touched in its unsubscribe ledger, and the records without an
address marked, since its last one (`scope_for`) and, once its load has finished, moves its cursor there
(`record_synced`).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dotdyn_pipeline.state import ORG_SCOPE, MirrorRow, StateStore
from dotdyn_pipeline.state.store import now_iso

RESET = "audience.reset"
CURSOR = "audience"
#: Marks are read from this long before the cursor, so that one committed late by a concurrent extract counts.
MARGIN = timedelta(minutes=10)
#: Beyond this share of all people changed, one full pass costs less than picking the changed ones out.
FULL_SHARE = 0.2
#: Where a frame carries its Scope down the audience assets (DataFrame.attrs survive Dagster's pickling).
SCOPE_ATTR = "dotdyn_scope"
#: The column that names the email account a list or a data mapping belongs to.
ACCOUNT_COLUMN = "_esc_emailaccountid_value"
#: Columns whose change leaves every audience as it was (an address book keeps the name it was created with), or
#: whose effect is marked otherwise: a dynamic list's new query is evaluated at the next sync, which marks the
#: people who entered or left (dynamic.py).
INERT_COLUMNS = {"list": frozenset({"listname", "query"})}


@dataclass(frozen=True)
class Scope:
    """The addresses one sync looks at (None: all) and the changed records without one, the changes it takes in
    (up to `upto`), and why."""

    keys: frozenset[str] | None
    upto: str
    reason: str
    records: frozenset[str] = frozenset()

    @property
    def full(self) -> bool:
        return self.keys is None

    def to_attr(self) -> dict:
        """The scope as frame attrs. The addresses are one JSON text: pandas deep-copies a frame's attrs on
        every operation, and a list of ten thousand addresses cost a sync seconds of copies."""
        return {"keys": None if self.keys is None else json.dumps(sorted(self.keys)), "upto": self.upto,
                "reason": self.reason, "records": json.dumps(sorted(self.records))}

    @classmethod
    def from_attr(cls, attr: dict) -> "Scope":
        keys = attr["keys"]
        return cls(None if keys is None else frozenset(json.loads(keys)), attr["upto"], attr["reason"],
                   frozenset(json.loads(attr["records"])))


def mark_page(store: StateStore, crm_table: str, rows: Sequence[MirrorRow], deleted: Sequence[str],
              person_tables: Sequence[str], link_table: str) -> int:
    """Before the mirror takes a page of changes: mark the addresses it touches, and the records it touches that
    hold none (for other tables, require a full sync of the accounts they concern); return how many addresses
    and records were marked."""
    ids = [row.crm_id for row in rows] + list(deleted)
    mirror = store.mirror
    if crm_table in person_tables:
        keys = ({key for _, _, key in mirror.addresses([crm_table], ids) if key}
                | {row.email_key for row in rows if row.email_key})
        records = [(crm_table, row.crm_id) for row in rows if not row.email_key]
    elif crm_table == link_table:
        held = mirror.addresses(person_tables, {row.ref_id for row in rows if row.ref_id})
        keys = mirror.linked_email_keys(crm_table, ids, person_tables) | {key for _, _, key in held if key}
        records = [(table, crm_id) for table, crm_id, key in held if not key]
    else:
        require_full_sync(store, _accounts_changed(crm_table, mirror.data_of(crm_table, ids), rows, deleted))
        return 0
    return mirror.mark_changed(keys) + mirror.mark_records_changed(records)


def _accounts_changed(crm_table: str, old: dict[str, dict], rows: Sequence[MirrorRow],
                      deleted: Sequence[str]) -> set[str]:
    """The accounts whose lists or mappings a page changes (a row moved between accounts changes both)."""
    inert = INERT_COLUMNS.get(crm_table, frozenset())

    def audience_part(data: dict | None) -> dict:
        return {key: value for key, value in (data or {}).items() if key not in inert}

    touched = [(old.get(row.crm_id), row.data) for row in rows
               if audience_part(old.get(row.crm_id)) != audience_part(row.data)]
    touched += [(old[crm_id], None) for crm_id in deleted if crm_id in old]
    return {data[ACCOUNT_COLUMN] for pair in touched for data in pair if data and data.get(ACCOUNT_COLUMN)}


def require_full_sync(store: StateStore, accounts: set[str] | None = None) -> None:
    """Make the next sync of these accounts (None: of every account) a full pass."""
    stamp = now_iso()
    for scope in [ORG_SCOPE] if accounts is None else sorted(accounts):
        store.save_cursor(scope, RESET, watermark=stamp)


def scope_for(store: StateStore, account: str) -> Scope:
    """The addresses `account`'s sync must look at now."""
    upto = now_iso()
    cursor = store.get_cursor(account, CURSOR)
    if cursor is None or not cursor.watermark:
        return Scope(None, upto, "first sync")
    for scope, reason in ((ORG_SCOPE, "a full read"), (account, "its lists or data mappings changed")):
        reset_at = store.get_cursor(scope, RESET)
        if reset_at is not None and reset_at.watermark and reset_at.watermark > cursor.watermark:
            return Scope(None, upto, reason)
    since = (datetime.fromisoformat(cursor.watermark) - MARGIN).isoformat()
    keys = store.mirror.changed_since(since) | store.ledger_changed_since(account, since)
    if len(keys) > FULL_SHARE * max(store.mirror.address_count(), 1):
        return Scope(None, upto, f"{len(keys)} addresses changed")
    return Scope(frozenset(keys), upto, "changes", frozenset(store.mirror.records_changed_since(since)))


def record_synced(store: StateStore, account: str, scope: Scope) -> None:
    """Record that `account`'s books reflect every change up to `scope.upto`."""
    store.save_cursor(account, CURSOR, watermark=scope.upto)


"""The typed API over the state store's tables (schema: sql/). No ORM: a handful of plain statements."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dotdyn_pipeline.state.backend import Backend, connect
from dotdyn_pipeline.state.evaluations import ListEvaluations
from dotdyn_pipeline.state.leases import Leases
from dotdyn_pipeline.state.migrations import applied_versions, migrate
from dotdyn_pipeline.state.mirror import BookState, CrmMirror, chunks
from dotdyn_pipeline.state.sends import SendLedger

#: The scope of cursors that belong to no single email account (the org-wide CRM tables).
ORG_SCOPE = "*"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _iso(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("times in the state store are timezone-aware (UTC)")
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class SyncCursor:
    """Where an incremental read of `source` for `scope` stopped."""

    scope: str
    source: str
    delta_link: str | None
    watermark: str | None
    updated_at: str


@dataclass(frozen=True)
class ContactLink:
    """A CRM record and the Dotdigital contact it is, in one email account."""

    account: str
    crm_table: str
    crm_id: str
    email: str
    dotdigital_contact_id: int


@dataclass(frozen=True)
class ImportJob:
    """One bulk import and, once finished, its outcome."""

    import_id: str
    account: str
    address_book_id: int
    status: str
    rows_sent: int
    run_id: str | None = None
    rows_imported: int | None = None
    rows_faulted: int | None = None
    report: dict[str, Any] | None = None
    created_at: str = field(default_factory=now_iso)
    finished_at: str | None = None


@dataclass(frozen=True)
class QuarantinedRow:
    """A row that was not sent, the rule it broke and the value that broke it."""

    account: str
    source_table: str
    record_id: str
    rule: str
    reason: str
    column_name: str | None = None
    value: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class UnsubscribeEvent:
    """An unsubscribe or suppression seen on one side. `scope` is 'account' or 'address_book'."""

    account: str
    email: str
    scope: str
    source: str
    occurred_at: str
    reason: str | None = None
    address_book_id: int | None = None

    @property
    def event_key(self) -> str:
        """The event's natural key: the same event seen twice has the same key."""
        parts = (self.source, self.account, self.email.strip().lower(), self.scope,
                 str(self.address_book_id or ""), self.occurred_at)
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    event: UnsubscribeEvent
    recorded_at: str
    propagated_at: str | None
    resubscribed_at: str | None
    reflected_at: str | None = None  # when a resubscribe that lifted it was reflected in Dynamics


_LEDGER_COLUMNS = ("account, email, scope, source, occurred_at, reason, address_book_id, recorded_at, "
                   "propagated_at, resubscribed_at, reflected_at")


def _ledger_entry(row: Sequence[Any]) -> LedgerEntry:
    return LedgerEntry(UnsubscribeEvent(*row[:7]), *row[7:])


@dataclass(frozen=True)
class AccountPartition:
    """An email account's partition key, its current name, and the key its partition had before (its id)."""

    account_id: str
    key: str
    name: str
    former_key: str | None = None


class StateStore:
    """The middleware's memory: cursors, the id map, imports, quarantine, the unsubscribe ledger, API calls."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.mirror = CrmMirror(backend)
        self.books = BookState(backend)
        self.leases = Leases(backend)
        self.evaluations = ListEvaluations(backend, self.mirror)
        self.sends = SendLedger(backend)

    @classmethod
    def open(cls, url: str, schema: str = "dotdyn", *, migrate_now: bool = True) -> StateStore:
        """Connect to `url` (sqlite:/// or postgresql://) and bring the schema up to date."""
        store = cls(connect(url, schema))
        if migrate_now:
            migrate(store.backend)
        return store

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_versions(self) -> list[int]:
        return applied_versions(self.backend)

    # -- cursors -------------------------------------------------------------------------------------------
    def get_cursor(self, scope: str, source: str) -> SyncCursor | None:
        rows = self.backend.query("SELECT scope, source, delta_link, watermark, updated_at FROM sync_cursor "
                                  "WHERE scope = ? AND source = ?", (scope, source))
        return SyncCursor(*rows[0]) if rows else None

    def save_cursor(self, scope: str, source: str, *, delta_link: str | None = None,
                    watermark: str | None = None) -> None:
        self.backend.execute(
            "INSERT INTO sync_cursor (scope, source, delta_link, watermark, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (scope, source) DO UPDATE SET delta_link = excluded.delta_link, "
            "watermark = excluded.watermark, updated_at = excluded.updated_at",
            (scope, source, delta_link, watermark, now_iso()))

    # -- id map --------------------------------------------------------------------------------------------
    def link_contacts(self, links: Iterable[ContactLink]) -> int:
        """Record (or move) CRM record -> Dotdigital contact links; return how many were given."""
        stamp = now_iso()
        return self.backend.executemany(
            "INSERT INTO contact_map (account, crm_table, crm_id, email, dotdigital_contact_id, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, crm_table, crm_id) DO UPDATE SET "
            "email = excluded.email, dotdigital_contact_id = excluded.dotdigital_contact_id, "
            "updated_at = excluded.updated_at",
            ((link.account, link.crm_table, link.crm_id, link.email, link.dotdigital_contact_id, stamp)
             for link in links))

    def contact_links(self, account: str) -> Iterator[ContactLink]:
        """Every link of an account (streamed from one query)."""
        for row in self.backend.query("SELECT account, crm_table, crm_id, email, dotdigital_contact_id "
                                      "FROM contact_map WHERE account = ? ORDER BY crm_table, crm_id", (account,)):
            yield ContactLink(*row)

    def links_for_contacts(self, account: str, contact_ids: Iterable[int]) -> dict[int, list[ContactLink]]:
        """The links of many Dotdigital contacts at once: contact id -> its CRM records."""
        found: dict[int, list[ContactLink]] = {}
        for chunk in chunks(sorted(set(contact_ids))):
            marks = ", ".join("?" for _ in chunk)
            for row in self.backend.query(
                    "SELECT account, crm_table, crm_id, email, dotdigital_contact_id FROM contact_map "
                    f"WHERE account = ? AND dotdigital_contact_id IN ({marks}) ORDER BY crm_table, crm_id",
                    [account, *chunk]):
                found.setdefault(row[4], []).append(ContactLink(*row))
        return found

    # -- imports -------------------------------------------------------------------------------------------
    def record_import(self, job: ImportJob) -> None:
        """Record an import when it is sent (or its outcome, when called again with the same id)."""
        self.backend.execute(
            "INSERT INTO import_job (import_id, account, address_book_id, run_id, status, rows_sent, rows_imported, "
            "rows_faulted, report, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (import_id) DO UPDATE SET status = excluded.status, rows_imported = excluded.rows_imported, "
            "rows_faulted = excluded.rows_faulted, report = excluded.report, finished_at = excluded.finished_at",
            (job.import_id, job.account, job.address_book_id, job.run_id, job.status, job.rows_sent,
             job.rows_imported, job.rows_faulted, json.dumps(job.report) if job.report is not None else None,
             job.created_at, job.finished_at))

    def imports(self, account: str, *, unfinished_only: bool = False) -> list[ImportJob]:
        sql = ("SELECT import_id, account, address_book_id, status, rows_sent, run_id, rows_imported, rows_faulted, "
               "report, created_at, finished_at FROM import_job WHERE account = ?")
        if unfinished_only:
            sql += " AND finished_at IS NULL"
        rows = self.backend.query(sql + " ORDER BY created_at, import_id", (account,))
        return [ImportJob(*row[:8], json.loads(row[8]) if row[8] else None, *row[9:]) for row in rows]

    # -- quarantine ----------------------------------------------------------------------------------------
    def quarantine(self, rows: Iterable[QuarantinedRow]) -> int:
        stamp = now_iso()
        return self.backend.executemany(
            "INSERT INTO quarantine (id, account, source_table, record_id, rule, column_name, value, reason, run_id, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((str(uuid.uuid4()), r.account, r.source_table, r.record_id, r.rule, r.column_name, r.value, r.reason,
              r.run_id, stamp) for r in rows))

    def quarantine_counts(self, account: str, run_id: str | None = None) -> dict[str, int]:
        """Quarantined rows by rule, for one run or for all time."""
        sql, params = "SELECT rule, COUNT(*) FROM quarantine WHERE account = ?", [account]
        if run_id is not None:
            sql, params = sql + " AND run_id = ?", [account, run_id]
        return dict(self.backend.query(sql + " GROUP BY rule ORDER BY rule", params))

    def quarantined(self, account: str, run_id: str | None = None, limit: int = 20) -> list[QuarantinedRow]:
        sql, params = ("SELECT account, source_table, record_id, rule, reason, column_name, value, run_id "
                       "FROM quarantine WHERE account = ?"), [account]
        if run_id is not None:
            sql, params = sql + " AND run_id = ?", [account, run_id]
        rows = self.backend.query(sql + " ORDER BY rule, source_table, record_id LIMIT ?", [*params, limit])
        return [QuarantinedRow(*row) for row in rows]

    # -- unsubscribe ledger --------------------------------------------------------------------------------
    _RECORD_UNSUBSCRIBE = (
        "INSERT INTO unsubscribe_ledger (event_key, account, email, scope, address_book_id, source, reason, "
        "occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING")

    @staticmethod
    def _ledger_row(event: UnsubscribeEvent, recorded_at: str) -> tuple[Any, ...]:
        return (event.event_key, event.account, event.email.strip().lower(), event.scope, event.address_book_id,
                event.source, event.reason, _iso(event.occurred_at), recorded_at)

    def record_unsubscribe(self, event: UnsubscribeEvent) -> bool:
        """Record an event once; return False when the ledger already had it."""
        return self.backend.execute(self._RECORD_UNSUBSCRIBE, self._ledger_row(event, now_iso())) == 1

    def record_unsubscribes(self, events: Iterable[UnsubscribeEvent]) -> int:
        """Record many events in one transaction (those the ledger has already stay as they are); return how
        many were given."""
        stamp = now_iso()
        return self.backend.executemany(self._RECORD_UNSUBSCRIBE, (self._ledger_row(e, stamp) for e in events))

    def mark_propagated(self, event_key: str) -> None:
        self.backend.execute("UPDATE unsubscribe_ledger SET propagated_at = ? WHERE event_key = ? "
                             "AND propagated_at IS NULL", (now_iso(), event_key))

    def mark_resubscribed(self, account: str, email: str, at: datetime | str,
                          event_keys: Iterable[str] | None = None) -> int:
        """A resubscribe confirmed in Dotdigital lifts every open unsubscribe of that address (or, given
        `event_keys`, only those of them: the ones Dotdigital had applied before the resubscribe)."""
        sql = ("UPDATE unsubscribe_ledger SET resubscribed_at = ? WHERE account = ? AND email = ? "
               "AND resubscribed_at IS NULL")
        params: list[Any] = [_iso(at), account, email.strip().lower()]
        if event_keys is None:
            return self.backend.execute(sql, params)
        keys = sorted(set(event_keys))
        return sum(self.backend.execute(f"{sql} AND event_key IN ({', '.join('?' for _ in chunk)})",
                                        [*params, *chunk]) for chunk in chunks(keys))

    def open_unsubscribes(self, emails: Iterable[str], account: str | None = None) -> list[LedgerEntry]:
        """The entries not lifted by a resubscribe for these addresses, in one account or in all of them."""
        found: list[LedgerEntry] = []
        keys = sorted({email.strip().lower() for email in emails})
        for chunk in chunks(keys):
            sql = (f"SELECT {_LEDGER_COLUMNS} FROM unsubscribe_ledger WHERE resubscribed_at IS NULL "
                   f"AND email IN ({', '.join('?' for _ in chunk)})")
            params: list[Any] = list(chunk)
            if account is not None:
                sql, params = sql + " AND account = ?", [*params, account]
            found += [_ledger_entry(row) for row in self.backend.query(sql + " ORDER BY occurred_at, event_key",
                                                                       params)]
        return found

    def resubscribes_to_reflect(self, account: str) -> list[LedgerEntry]:
        """Entries lifted by a resubscribe whose lifting has not been reflected in Dynamics yet."""
        rows = self.backend.query(f"SELECT {_LEDGER_COLUMNS} FROM unsubscribe_ledger WHERE account = ? "
                                  "AND resubscribed_at IS NOT NULL AND reflected_at IS NULL "
                                  "ORDER BY resubscribed_at, event_key", (account,))
        return [_ledger_entry(row) for row in rows]

    def mark_reflected(self, event_keys: Iterable[str]) -> None:
        stamp = now_iso()
        self.backend.executemany("UPDATE unsubscribe_ledger SET reflected_at = ? WHERE event_key = ? "
                                 "AND reflected_at IS NULL", ((stamp, key) for key in event_keys))

    def ledger(self, account: str, *, source: str | None = None, pending_only: bool = False) -> list[LedgerEntry]:
        sql = f"SELECT {_LEDGER_COLUMNS} FROM unsubscribe_ledger WHERE account = ?"
        params: list[Any] = [account]
        if source is not None:
            sql, params = sql + " AND source = ?", [*params, source]
        if pending_only:
            sql += " AND propagated_at IS NULL"
        rows = self.backend.query(sql + " ORDER BY occurred_at, event_key", params)
        return [_ledger_entry(row) for row in rows]

    def unsubscribed_emails(self, account: str, address_book_id: int | None = None) -> set[str]:
        """Addresses that must not be subscribed: account-wide, plus those of one address book if given."""
        sql = ("SELECT DISTINCT email FROM unsubscribe_ledger WHERE account = ? AND resubscribed_at IS NULL "
               "AND (scope = 'account'")
        params: list[Any] = [account]
        if address_book_id is not None:
            sql, params = sql + " OR address_book_id = ?", [account, address_book_id]
        return {row[0] for row in self.backend.query(sql + ")", params)}

    def ledger_changed_since(self, account: str, stamp: str) -> set[str]:
        """Addresses whose ledger entries for `account` were recorded or lifted after `stamp`."""
        return {row[0] for row in self.backend.query(
            "SELECT DISTINCT email FROM unsubscribe_ledger WHERE account = ? AND (recorded_at > ? OR "
            "resubscribed_at > ?)", (account, stamp, stamp))}

    # -- run progress --------------------------------------------------------------------------------------
    def finished_items(self, run_key: str, stream: str) -> set[str]:
        """The items of `stream` that the run `run_key` (a root run id) has finished."""
        return {row[0] for row in self.backend.query("SELECT item FROM run_progress WHERE run_key = ? AND stream = ?",
                                                      (run_key, stream))}

    def finish_items(self, run_key: str, stream: str, items: Iterable[str]) -> int:
        stamp = now_iso()
        return self.backend.executemany(
            "INSERT INTO run_progress (run_key, stream, item, done_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_key, stream, item) DO NOTHING", ((run_key, stream, item, stamp) for item in items))

    # -- import throughput ---------------------------------------------------------------------------------
    def import_throughput(self, account: str) -> float | None:
        """The bytes per second the account's imports were last seen to be processed at, if ever."""
        rows = self.backend.query("SELECT bytes_per_second FROM import_throughput WHERE account = ?", (account,))
        return float(rows[0][0]) if rows else None

    def save_import_throughput(self, account: str, bytes_per_second: float) -> None:
        self.backend.execute(
            "INSERT INTO import_throughput (account, bytes_per_second, learned_at) VALUES (?, ?, ?) "
            "ON CONFLICT (account) DO UPDATE SET bytes_per_second = excluded.bytes_per_second, "
            "learned_at = excluded.learned_at", (account, bytes_per_second, now_iso()))

    # -- API calls -----------------------------------------------------------------------------------------
    def add_api_calls(self, account: str, api: str, counts: dict[str, int], day: str | None = None) -> None:
        day = day or datetime.now(UTC).date().isoformat()
        self.backend.executemany(
            "INSERT INTO api_calls (account, api, kind, day, calls) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (account, api, kind, day) DO UPDATE SET calls = api_calls.calls + excluded.calls",
            ((account, api, kind, day, n) for kind, n in sorted(counts.items()) if n))

    def api_calls(self, account: str, api: str, day: str | None = None) -> dict[str, int]:
        day = day or datetime.now(UTC).date().isoformat()
        return dict(self.backend.query("SELECT kind, calls FROM api_calls WHERE account = ? AND api = ? AND day = ? "
                                       "ORDER BY kind", (account, api, day)))

    # -- email account partitions -------------------------------------------------------------------------
    _ACCOUNT_PARTITION = "SELECT account_id, partition_key, name, former_key FROM account_partition"

    def account_partitions(self) -> list[AccountPartition]:
        """Every account that has a partition key, in key order."""
        return [AccountPartition(*row) for row in self.backend.query(f"{self._ACCOUNT_PARTITION} "
                                                                     "ORDER BY partition_key")]

    def account_partition(self, key: str) -> AccountPartition | None:
        """The account whose partition has this key, or had it before keys were made from names."""
        rows = self.backend.query(f"{self._ACCOUNT_PARTITION} WHERE partition_key = ? OR former_key = ? "
                                  "ORDER BY CASE WHEN partition_key = ? THEN 0 ELSE 1 END", (key, key, key))
        return AccountPartition(*rows[0]) if rows else None

    def claim_partition_key(self, partition: AccountPartition) -> bool:
        """Give the account its key, unless the key is taken or the account has one; True when given."""
        return self.backend.execute(
            "INSERT INTO account_partition (account_id, partition_key, name, former_key, assigned_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (partition.account_id, partition.key, partition.name, partition.former_key, now_iso())) == 1

    def rename_account(self, account_id: str, name: str) -> None:
        """Record the account's current name; its key stays."""
        self.backend.execute("UPDATE account_partition SET name = ? WHERE account_id = ?", (name, account_id))

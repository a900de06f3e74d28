"""The CRM mirror and the address books' last known members: the audience flow's state."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pandas as pd

from dotdyn_pipeline.state.backend import Backend

_IN_CHUNK = 500  # ids per IN (...) list: well under both databases' parameter limits


def _now() -> str:
    return datetime.now(UTC).isoformat()


def chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    """`items` in slices small enough for one IN (...) list."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def rows_in(backend: Backend, sql: str, params: Sequence[Any], values: Iterable[Any]) -> Iterator[Sequence[Any]]:
    """The rows of `sql`, whose last condition is `... IN ({marks})`, for every value of `values`, in chunks."""
    for chunk in chunks(sorted(set(values))):
        yield from backend.query(sql.format(marks=", ".join("?" for _ in chunk)), [*params, *chunk])


_COLUMNS = "crm_table, crm_id, parent_id, ref_id, email_key, opted_out, data, extracted_at"
_MARKS = ", ".join("?" for _ in _COLUMNS.split(", "))
_UPSERT = ("ON CONFLICT (crm_table, crm_id) DO UPDATE SET parent_id = excluded.parent_id, ref_id = excluded.ref_id, "
           "email_key = excluded.email_key, opted_out = excluded.opted_out, data = excluded.data, "
           "extracted_at = excluded.extracted_at")
_STAGED = "crm_record_staged"


class MirrorRow(NamedTuple):
    """One CRM row as the mirror keeps it (a tuple: an extract makes millions, four times faster than a frozen
    dataclass)."""

    crm_id: str
    data: dict[str, Any]
    email_key: str | None = None
    opted_out: bool = False
    parent_id: str | None = None
    ref_id: str | None = None


def _record_rows(crm_table: str, rows: Iterable[MirrorRow], stamp: str) -> Iterator[tuple[Any, ...]]:
    for r in rows:
        yield (crm_table, r.crm_id, r.parent_id, r.ref_id, r.email_key, int(r.opted_out),
               orjson.dumps(r.data).decode(), stamp)


def _outnumbered(backend: Backend, staged: str) -> list[tuple[str, str]]:
    """(name, definition) of the mirror's SQLite indexes that the `staged` rows would more than double: building
    those from sorted keys costs less than inserting the rows one by one, and the others are cheaper kept up (a
    first read of 50,000 leads beside a million contacts' addresses, say)."""
    indexes = [(name, sql, (re.split(r"\sWHERE\s", sql, maxsplit=1, flags=re.IGNORECASE) + ["1"])[1])
               for name, sql in backend.query("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                              "AND tbl_name = 'crm_record' AND sql IS NOT NULL ORDER BY name")]
    if not indexes:
        return []
    adding = backend.query(f"SELECT {', '.join(f'COUNT(CASE WHEN {rows} THEN 1 END)' for _, _, rows in indexes)} "
                           f"FROM {staged}")[0]
    return [(name, sql) for (name, sql, rows), added in zip(indexes, adding, strict=True)
            if added > backend.query(f"SELECT COUNT(*) FROM crm_record WHERE {rows}")[0][0]]


@contextmanager
def _rebuilt(backend: Backend, indexes: Sequence[tuple[str, str]]) -> Iterator[None]:
    """Drop these SQLite indexes (name, definition) for the block and create them again after it (in a
    transaction: no reader sees the table without them)."""
    for name, _ in indexes:
        backend.execute(f"DROP INDEX {name}")
    yield
    for _, definition in indexes:
        backend.execute(definition)


class CrmMirror:
    """A local copy of the CRM tables the audience flow reads, updated from incremental extracts."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def upsert(self, crm_table: str, rows: Iterable[MirrorRow], stamp: str | None = None) -> int:
        """Insert or replace rows; `stamp` marks them as seen by one read (see `delete_unseen`)."""
        return self.backend.executemany(f"INSERT INTO crm_record ({_COLUMNS}) VALUES ({_MARKS}) {_UPSERT}",
                                        _record_rows(crm_table, rows, stamp or _now()))

    @contextmanager
    def writer(self, crm_table: str, stamp: str, *, into_empty: bool = False
               ) -> Iterator[Callable[[Sequence[MirrorRow]], int]]:
        """A function that writes rows of `crm_table` as `upsert` does, for the block.

        `into_empty`: the block writes a full read of a table the mirror holds no row of (its first sync). On
        SQLite its rows are then staged in a table with no index, in a scratch database, and moved when the block
        ends, in key order and in one transaction that rebuilds from sorted keys the indexes they would more than
        double: kept up row by row, at random places, the indexes take about half of a first read's writes.
        Staging takes no write lock on the database, so steps extracting other tables side by side write
        meanwhile; only the move does. The scratch database then goes whole, where dropping a staged table would
        free its pages one by one. Should the block
        fail, nothing of the read is kept, and the next read starts again from the beginning, as it would anyway."""
        if not into_empty or self.backend.name != "sqlite":
            yield lambda rows: self.upsert(crm_table, rows, stamp)
            return
        with self.backend.scratch() as schema:
            staged = f"{schema}.{_STAGED}"
            self.backend.execute(f"CREATE TABLE {staged} (seq INTEGER PRIMARY KEY, crm_table TEXT, crm_id TEXT, "
                                 "parent_id TEXT, ref_id TEXT, email_key TEXT, opted_out INTEGER, data TEXT, "
                                 "extracted_at TEXT)")

            def stage(rows: Sequence[MirrorRow]) -> int:
                return self.backend.executemany(f"INSERT INTO {staged} ({_COLUMNS}) VALUES ({_MARKS})",
                                                _record_rows(crm_table, rows, stamp))
            with self.backend.temporary_writes():
                yield stage
            with self.backend.transaction(), _rebuilt(self.backend, _outnumbered(self.backend, staged)):
                self.backend.execute(f"INSERT INTO crm_record ({_COLUMNS}) SELECT {_COLUMNS} FROM {staged} "
                                     f"WHERE true ORDER BY crm_id, seq {_UPSERT}")  # a later copy of a row wins

    def delete(self, crm_table: str, crm_ids: Iterable[str]) -> int:
        return self.backend.executemany("DELETE FROM crm_record WHERE crm_table = ? AND crm_id = ?",
                                        ((crm_table, crm_id) for crm_id in crm_ids))

    def delete_unseen(self, crm_table: str, stamp: str) -> int:
        """After a full read stamped `stamp`: drop the rows it did not see (deleted while untracked)."""
        return self.backend.execute("DELETE FROM crm_record WHERE crm_table = ? AND extracted_at < ?",
                                    (crm_table, stamp))

    def holds_any(self, crm_table: str) -> bool:
        """Whether the mirror holds any row of `crm_table`."""
        return bool(self.backend.query("SELECT 1 FROM crm_record WHERE crm_table = ? LIMIT 1", (crm_table,)))

    def count(self, crm_table: str) -> int:
        return self.backend.query("SELECT COUNT(*) FROM crm_record WHERE crm_table = ?", (crm_table,))[0][0]

    def rows(self, crm_table: str) -> list[dict[str, Any]]:
        """Every row of a (small) table, as read."""
        return [orjson.loads(data) for (data,) in self.backend.query(
            "SELECT data FROM crm_record WHERE crm_table = ? ORDER BY crm_id", (crm_table,))]

    def opted_out_keys(self, email_keys: Iterable[str] | None = None) -> set[str]:
        """Addresses with donotbulkemail or donotemail on any record (among `email_keys`, when given)."""
        sql = "SELECT DISTINCT email_key FROM crm_record WHERE opted_out = 1 AND email_key IS NOT NULL"
        rows = self.backend.query(sql) if email_keys is None else rows_in(
            self.backend, sql + " AND email_key IN ({marks})", (), email_keys)
        return {key for (key,) in rows}

    def holders(self, email_keys: Iterable[str],
                crm_tables: Sequence[str]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
        """(table, id, data as read) of every record of `crm_tables` holding each lower-case address."""
        found: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
        for key, table, crm_id, data in sorted(self._by_address(email_keys, crm_tables)):
            found.setdefault(key, []).append((table, crm_id, orjson.loads(data)))
        return found

    def _by_address(self, email_keys: Iterable[str], crm_tables: Sequence[str]) -> Iterator[tuple[str, str, str, str]]:
        """(address, table, id, data text) of the records of `crm_tables` holding these addresses. Looked up by
        address alone: with the table in the condition too, SQLite plans a scan of the table's rows."""
        for key, table, crm_id, data in rows_in(self.backend, "SELECT email_key, crm_table, crm_id, data FROM "
                                                "crm_record WHERE email_key IN ({marks})", (), email_keys):
            if table in crm_tables:
                yield key, table, crm_id, data

    def members(self, link_table: str, parent_ids: Sequence[str], record_tables: Sequence[str],
                record_ids: tuple[str | None, str | None] = (None, None)
                ) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        """(parent id, record table, record id, record data) for every link row of the given parents whose
        record is in the mirror (links to records the mirror does not hold are not returned), by parent and
        record id: the order of the parent index, so nothing is sorted. `record_ids` bounds the record ids
        (from, inclusive; to, exclusive; None: unbounded)."""
        tables = ", ".join("?" for _ in record_tables)
        low, high = record_ids
        bounds = (" AND m.ref_id >= ?" if low is not None else "") + (" AND m.ref_id < ?" if high is not None else "")
        for chunk in chunks(list(parent_ids)):
            marks = ", ".join("?" for _ in chunk)
            rows = self.backend.stream(
                f"SELECT m.parent_id, r.crm_table, r.crm_id, r.data FROM crm_record m JOIN crm_record r "
                f"ON r.crm_id = m.ref_id AND r.crm_table IN ({tables}) "
                f"WHERE m.crm_table = ? AND m.parent_id IN ({marks}){bounds} ORDER BY m.parent_id, m.ref_id",
                [*record_tables, link_table, *chunk, *(bound for bound in record_ids if bound is not None)])
            for parent, table, crm_id, data in rows:
                yield parent, table, crm_id, orjson.loads(data)

    def members_with_keys(self, link_table: str, parent_ids: Sequence[str], record_tables: Sequence[str],
                          email_keys: Iterable[str], record_ids: Iterable[str] = ()
                          ) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        """As `members`, for the records holding one of `email_keys`, and those of `record_ids` that hold no
        address (an incremental sync's addresses, and its changed records that have none).

        Two indexed lookups (records by address or id, then their links by list and record, in the parent
        index) rather than one join, so that no database plans a scan of every link."""
        parents = sorted(set(parent_ids))
        if not parents:
            return
        sql = (f"SELECT parent_id, ref_id FROM crm_record WHERE crm_table = ? AND parent_id IN "
               f"({', '.join('?' for _ in parents)}) AND ref_id IN ({{marks}})")
        found = [self._by_address(keys, record_tables) for keys in chunks(sorted(set(email_keys)))]
        found += [self._without_address(record_tables, ids) for ids in chunks(sorted(set(record_ids)))]
        for batch in found:
            records = {crm_id: (table, data) for _, table, crm_id, data in batch}
            for parent, ref in rows_in(self.backend, sql, [link_table, *parents], records):
                table, data = records[ref]
                yield parent, table, ref, orjson.loads(data)

    def _without_address(self, crm_tables: Sequence[str], crm_ids: Iterable[str]
                         ) -> Iterator[tuple[None, str, str, str]]:
        """(None, table, id, data text) of those records: shaped as `_by_address`'s rows, with no address."""
        tables = ", ".join("?" for _ in crm_tables)
        return rows_in(self.backend, f"SELECT NULL, crm_table, crm_id, data FROM crm_record WHERE crm_table IN "
                       f"({tables}) AND email_key IS NULL AND crm_id IN ({{marks}})", crm_tables, crm_ids)

    def addresses(self, crm_tables: Sequence[str], crm_ids: Iterable[str]) -> list[tuple[str, str, str | None]]:
        """(table, id, lower-case address or None) of these records (of any of `crm_tables`), as the mirror holds
        them."""
        tables = ", ".join("?" for _ in crm_tables)
        return [(table, crm_id, key) for table, crm_id, key in rows_in(
            self.backend, f"SELECT crm_table, crm_id, email_key FROM crm_record WHERE crm_table IN ({tables}) "
            "AND crm_id IN ({marks})", crm_tables, crm_ids)]

    def linked_email_keys(self, link_table: str, link_ids: Iterable[str], record_tables: Sequence[str]) -> set[str]:
        """The addresses of the records these link rows point at, as the mirror holds them now."""
        tables = ", ".join("?" for _ in record_tables)
        return {key for (key,) in rows_in(
            self.backend, f"SELECT r.email_key FROM crm_record m JOIN crm_record r ON r.crm_table IN ({tables}) "
            "AND r.crm_id = m.ref_id WHERE m.crm_table = ? AND r.email_key IS NOT NULL AND m.crm_id IN ({marks})",
            [*record_tables, link_table], link_ids)}

    def mark_changed(self, email_keys: Iterable[str]) -> int:
        """Note that the audience of these addresses may have changed (see `changed_since`)."""
        stamp = _now()
        return self.backend.executemany(
            "INSERT INTO crm_change (email_key, changed_at) VALUES (?, ?) "
            "ON CONFLICT (email_key) DO UPDATE SET changed_at = excluded.changed_at",
            ((key, stamp) for key in sorted(set(email_keys))))

    def changed_since(self, stamp: str) -> set[str]:
        """Addresses marked changed after `stamp`."""
        return {key for (key,) in self.backend.query("SELECT email_key FROM crm_change WHERE changed_at > ?",
                                                      (stamp,))}

    def mark_records_changed(self, records: Iterable[tuple[str, str]]) -> int:
        """Note that these (table, id) records, which hold no address, may have changed some audience."""
        stamp = _now()
        return self.backend.executemany(
            "INSERT INTO crm_record_change (crm_table, crm_id, changed_at) VALUES (?, ?, ?) "
            "ON CONFLICT (crm_table, crm_id) DO UPDATE SET changed_at = excluded.changed_at",
            ((table, crm_id, stamp) for table, crm_id in sorted(set(records))))

    def records_changed_since(self, stamp: str) -> set[str]:
        """Ids of the records without an address marked changed after `stamp`."""
        return {crm_id for (crm_id,) in self.backend.query(
            "SELECT crm_id FROM crm_record_change WHERE changed_at > ?", (stamp,))}

    def address_count(self) -> int:
        """How many records hold an address."""
        return self.backend.query("SELECT COUNT(*) FROM crm_record WHERE email_key IS NOT NULL")[0][0]

    def data_of(self, crm_table: str, crm_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The mirrored data of these records, by id (those the mirror holds)."""
        return {crm_id: orjson.loads(data) for crm_id, data in rows_in(
            self.backend, "SELECT crm_id, data FROM crm_record WHERE crm_table = ? AND crm_id IN ({marks})",
            [crm_table], crm_ids)}

    def link_count(self, link_table: str, parent_ids: Sequence[str]) -> int:
        """How many link rows the given parents have (members whose record is unknown included)."""
        return sum(n for (n,) in rows_in(self.backend, "SELECT COUNT(*) FROM crm_record WHERE crm_table = ? "
                                         "AND parent_id IN ({marks})", [link_table], parent_ids))


BOOK_MEMBER_COLUMNS = ["email_key", "crm_table", "crm_id", "fingerprint", "dotdigital_contact_id"]


class BookMember(NamedTuple):
    """A person in an address book as last sent: whose record, and a fingerprint of what was sent (a tuple, as
    a load saves one per person sent)."""

    email_key: str
    crm_table: str
    crm_id: str
    fingerprint: str
    dotdigital_contact_id: int | None = None


class BookState:
    """The members of each address book as the pipeline last left them."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def members(self, account: str, address_book_id: int, email_keys: Iterable[str] | None = None) -> pd.DataFrame:
        """One row per member (columns as BookMember's fields), ordered by email; only those holding one of
        `email_keys` when given."""
        sql = ("SELECT email_key, crm_table, crm_id, fingerprint, dotdigital_contact_id FROM book_member "
               "WHERE account = ? AND address_book_id = ?")
        if email_keys is None:
            rows = self.backend.query(sql + " ORDER BY email_key", (account, address_book_id))
        else:
            rows = sorted(rows_in(self.backend, sql + " AND email_key IN ({marks})", (account, address_book_id),
                                  email_keys))
        frame = pd.DataFrame(rows, columns=BOOK_MEMBER_COLUMNS)
        frame["dotdigital_contact_id"] = frame["dotdigital_contact_id"].astype("Int64")
        return frame

    def save(self, account: str, address_book_id: int, members: Iterable[BookMember],
             added_by: str | None = None) -> int:
        """Save the members as sent; those not members before are noted as added by the load of run `added_by`."""
        stamp = _now()
        return self.backend.executemany(
            "INSERT INTO book_member (account, address_book_id, email_key, crm_table, crm_id, fingerprint, "
            "dotdigital_contact_id, updated_at, added_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account, address_book_id, email_key) DO UPDATE SET crm_table = excluded.crm_table, "
            "crm_id = excluded.crm_id, fingerprint = excluded.fingerprint, "
            "dotdigital_contact_id = COALESCE(excluded.dotdigital_contact_id, book_member.dotdigital_contact_id), "
            "updated_at = excluded.updated_at",
            ((account, address_book_id, m.email_key, m.crm_table, m.crm_id, m.fingerprint, m.dotdigital_contact_id,
              stamp, added_by) for m in members))

    def count(self, account: str, address_book_id: int) -> int:
        return self.backend.query("SELECT COUNT(*) FROM book_member WHERE account = ? AND address_book_id = ?",
                                  (account, address_book_id))[0][0]

    def remember_contact_ids(self, account: str, address_book_id: int, contact_ids: dict[str, int]) -> int:
        """Note the Dotdigital contact id of members (address -> id), as read from the book."""
        return self.backend.executemany(
            "UPDATE book_member SET dotdigital_contact_id = ? WHERE account = ? AND address_book_id = ? "
            "AND email_key = ?",
            ((contact_id, account, address_book_id, key) for key, contact_id in contact_ids.items()))

    def remove(self, account: str, address_book_id: int, email_keys: Iterable[str]) -> int:
        return self.backend.executemany(
            "DELETE FROM book_member WHERE account = ? AND address_book_id = ? AND email_key = ?",
            ((account, address_book_id, key) for key in email_keys))

    def begin_load(self, account: str, address_book_id: int, run_id: str) -> bool:
        """Note that a load of the book starts: its members may be saved before Dotdigital has imported them. If
        a load before it never ended, what was saved for the book is unconfirmed: every member's fingerprint is
        cleared, so that this load sends the whole book again, and the members that load added pass to this one
        (`unconfirmed`), which settles them. Return whether a load never ended."""
        with self.backend.transaction():
            unfinished = self.backend.query(
                "SELECT run_id FROM book_load WHERE account = ? AND address_book_id = ?", (account, address_book_id))
            if unfinished:
                self.backend.execute(
                    "UPDATE book_member SET fingerprint = '', added_by = CASE WHEN added_by = ? THEN ? ELSE added_by "
                    "END WHERE account = ? AND address_book_id = ?", (unfinished[0][0], run_id, account,
                                                                      address_book_id))
            self.backend.execute(
                "INSERT INTO book_load (account, address_book_id, run_id, started_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, address_book_id) DO UPDATE SET run_id = excluded.run_id, "
                "started_at = excluded.started_at", (account, address_book_id, run_id, _now()))
        return bool(unfinished)

    def unconfirmed(self, account: str, address_book_id: int, run_id: str) -> set[str]:
        """The addresses the load of `run_id` saved for people who were not members before, unfinished loads'
        included (`begin_load`): until the load ends, whether the book holds them is not known."""
        return {key for (key,) in self.backend.query(
            "SELECT email_key FROM book_member WHERE account = ? AND address_book_id = ? AND added_by = ?",
            (account, address_book_id, run_id))}

    def end_load(self, account: str, address_book_id: int) -> None:
        """Note that the book's load ended with its import's outcome applied: its members are confirmed."""
        self.backend.execute("DELETE FROM book_load WHERE account = ? AND address_book_id = ?",
                             (account, address_book_id))


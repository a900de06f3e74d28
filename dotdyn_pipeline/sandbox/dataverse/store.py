"""The Dataverse stand-in's data: one SQLite table per Dataverse table, a version per write, tombstones.

Rows live as typed columns so that `$filter` compiles to SQL and SQLite itself renders each row as JSON
(`json_object`), which keeps a 5000-row page cheap and memory flat however large the table. Every write
takes the next number of one organisation-wide counter (Dataverse's `versionnumber`, the row's ETag);
deletions leave a tombstone with their version, which is what change tracking reads. A row inserted is created
by the user the store acts as (`acting_as`, set per request; the application user otherwise), unless the
values name another.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.errors import duplicate
from dotdyn_pipeline.sandbox.dataverse.schema import SQL_TYPES, Column, Table

ROWID, VERSION = "_rowid", "_version"


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def type_column(column: Column) -> str | None:
    """The hidden column holding the target table of a lookup that may point at several tables."""
    return f"{column.name}@type" if column.is_lookup and len(column.targets) > 1 else None


def _sql_columns(column: Column) -> list[tuple[str, str]]:
    """(name, SQL type) of the stored columns behind `column` (none for versionnumber, which is the row's
    version; two for a lookup that may point at several tables)."""
    stored = [(column.name, SQL_TYPES[column.type])] if column.name != "versionnumber" else []
    return stored + ([(type_column(column), "TEXT")] if type_column(column) else [])


def value_sql(column: Column, owner: str = "") -> str:
    """The SQL of a column's Web API value; `owner` qualifies it with a table alias (in a join)."""
    prefix = f"{q(owner)}." if owner else ""
    if column.name == "versionnumber":
        return prefix + q(VERSION)
    if column.type == "Boolean":
        return f"json(CASE {prefix}{q(column.name)} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"
    if column.type == "Complex":
        return f"json({prefix}{q(column.name)})"
    return prefix + q(column.name)


@lru_cache(maxsize=512)
def row_json_sql(table: Table, columns: tuple[Column, ...] | None, lookup_annotations: bool) -> str:
    """A SQL expression rendering a row as its Web API JSON object (ETag first, then the columns)."""
    chosen = list(table.columns) if columns is None else [table.columns[0], *(c for c in columns
                                                                             if c != table.columns[0])]
    parts = ["'@odata.etag'", f"'W/\"' || {q(VERSION)} || '\"'"] if table.system else []
    for column in chosen:
        parts += [f"'{column.web_name}'", value_sql(column)]
        if lookup_annotations and column.is_lookup:
            target = q(type_column(column)) if type_column(column) else f"'{column.targets[0]}'"
            parts += [f"'{column.web_name}@Microsoft.Dynamics.CRM.lookuplogicalname'",
                      f"CASE WHEN {q(column.name)} IS NULL THEN NULL ELSE {target} END"]
    return f"json_object({', '.join(parts)})"


class Store:
    """All tables of one organisation in one SQLite file; used from one thread (the event loop)."""

    def __init__(self, path: Path, tables: Iterable[Table], creator: str | None = None) -> None:
        self.tables = {t.logical_name: t for t in tables}
        #: createdby and createdonbehalfby of the rows inserted now (see `acting_as`).
        self.created_by, self.created_on_behalf_by = creator, None
        path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-65536", "temp_store=MEMORY"):
            self.db.execute(f"PRAGMA {pragma}")
        self.version = 0
        self._depth = 0
        self._create_tables()

    def close(self) -> None:
        self.db.close()

    # -- schema ------------------------------------------------------------------------------------------
    def _create_tables(self) -> None:
        for table in self.tables.values():
            self._create_table(table)
        self.db.execute("CREATE TABLE _deleted (logical TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL)")

    def _create_table(self, table: Table) -> None:
        columns = [f"{q(ROWID)} INTEGER PRIMARY KEY", f"{q(VERSION)} INTEGER NOT NULL DEFAULT 0"]
        for column in table.columns:
            columns += [f"{q(name)} {kind}" for name, kind in _sql_columns(column)]
        self.db.execute(f"CREATE TABLE {q(table.logical_name)} ({', '.join(columns)})")

    def _create_key_indexes(self, table: Table) -> None:
        name = table.logical_name
        self.db.execute(f"CREATE UNIQUE INDEX {q(name + '_pk')} ON {q(name)} ({q(table.primary_key)})")
        if table.system:
            self.db.execute(f"CREATE INDEX {q(name + '_version')} ON {q(name)} ({q(VERSION)})")
        for number, key in enumerate(table.keys):
            self.add_key_index(table, number, key)

    def create_indexes(self, extra: dict[str, list[str]]) -> None:
        """Indexes after bulk loading (faster than maintaining them while loading)."""
        for table in self.tables.values():
            self._create_key_indexes(table)
            for column in extra.get(table.logical_name, []):
                self.db.execute(f"CREATE INDEX {q(f'{table.logical_name}_{column}')} ON {q(table.logical_name)} "
                                f"({q(column)})")
        self.db.execute("CREATE INDEX _deleted_version ON _deleted (logical, version)")
        self.db.execute("ANALYZE")

    # -- tables created and changed at run time ------------------------------------------------------------
    def add_table(self, table: Table) -> None:
        """CREATE TABLE with its primary key and alternate key indexes."""
        self.tables[table.logical_name] = table
        self._create_table(table)
        self._create_key_indexes(table)

    def add_column(self, table: Table, column: Column) -> None:
        """ALTER TABLE ADD COLUMN: existing rows keep their data and read the new column as null; `table` is
        the table's new version, which has the column."""
        self.tables[table.logical_name] = table
        for name, kind in _sql_columns(column):
            self.db.execute(f"ALTER TABLE {q(table.logical_name)} ADD COLUMN {q(name)} {kind}")

    def add_key_index(self, table: Table, number: int, key: tuple[str, ...]) -> bool:
        """A unique index on an alternate key; False (and no index) when the rows are not unique on it."""
        self.tables[table.logical_name] = table
        try:
            self.db.execute(f"CREATE UNIQUE INDEX {q(f'{table.logical_name}_key{number}')} ON "
                            f"{q(table.logical_name)} ({', '.join(q(c) for c in key)})")
        except sqlite3.IntegrityError:
            return False
        return True

    # -- bulk loading ------------------------------------------------------------------------------------
    def load(self, table: Table, rows: Iterable[tuple]) -> int:
        """Insert generated rows (values in `stored_columns` order, no checks), versions in order."""
        names = self.stored_columns(table)
        sql = (f"INSERT INTO {q(table.logical_name)} ({q(VERSION)}, {', '.join(q(n) for n in names)}) "
               f"VALUES ({', '.join('?' * (len(names) + 1))})")
        count = 0

        def versioned() -> Iterator[tuple]:
            nonlocal count
            for row in rows:
                count += 1
                self.version += 1
                yield (self.version, *row)

        with self.transaction():
            self.db.executemany(sql, versioned())
        return count

    @staticmethod
    @lru_cache(maxsize=64)
    def stored_columns(table: Table) -> tuple[str, ...]:
        """The SQL columns of `table` apart from the row id and version."""
        return tuple(name for column in table.columns for name in Store.stored_columns_of(column))

    @staticmethod
    def stored_columns_of(column: Column) -> tuple[str, ...]:
        """The SQL columns behind one column (none for versionnumber; a lookup's target table beside it)."""
        return tuple(name for name, _ in _sql_columns(column))

    # -- transactions ------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A (nested) atomic unit: a savepoint rolled back if the block raises."""
        name = f"sp{self._depth}"
        self.db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        version = self.version
        try:
            yield
        except BaseException:
            self.db.execute(f"ROLLBACK TO {name}")
            self.db.execute(f"RELEASE {name}")
            self.version = version
            raise
        else:
            self.db.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    @contextmanager
    def acting_as(self, user_id: str, on_behalf_by: str | None = None) -> Iterator[None]:
        """Rows inserted in the block are created by `user_id` (and, when a caller impersonates it, on behalf of
        by that caller)."""
        saved = self.created_by, self.created_on_behalf_by
        self.created_by, self.created_on_behalf_by = user_id, on_behalf_by
        try:
            yield
        finally:
            self.created_by, self.created_on_behalf_by = saved

    # -- single rows -------------------------------------------------------------------------------------
    def find(self, table: Table, key: dict[str, Any]) -> dict[str, Any] | None:
        """The row whose columns equal `key` (primary or alternate key), as a dict of stored values."""
        where = " AND ".join(f"{q(n)} = ?" if v is not None else f"{q(n)} IS NULL" for n, v in key.items())
        cursor = self.db.execute(f"SELECT * FROM {q(table.logical_name)} WHERE {where} LIMIT 1",
                                 [v for v in key.values() if v is not None])
        row = cursor.fetchone()
        return None if row is None else dict(zip([d[0] for d in cursor.description], row, strict=True))

    def insert(self, table: Table, values: dict[str, Any]) -> dict[str, Any]:
        row = dict(values)
        row.setdefault(table.primary_key, str(uuid.uuid4()))
        if table.system:
            stamp = now_text()
            row.setdefault("createdon", stamp)
            row.setdefault("modifiedon", stamp)
            row.setdefault("statecode", 0)
            row.setdefault("statuscode", 1)
            row.setdefault("createdby", self.created_by)
            row.setdefault("createdonbehalfby", self.created_on_behalf_by)
        self.version += 1
        row[VERSION] = self.version
        names = list(row)
        try:
            cursor = self.db.execute(
                f"INSERT INTO {q(table.logical_name)} ({', '.join(q(n) for n in names)}) "
                f"VALUES ({', '.join('?' * len(names))})", [row[n] for n in names])
        except sqlite3.IntegrityError as exc:
            raise duplicate() from exc
        row[ROWID] = cursor.lastrowid
        self.db.execute("DELETE FROM _deleted WHERE logical = ? AND id = ?",
                        (table.logical_name, row[table.primary_key]))
        return row

    def update(self, table: Table, row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        changes = dict(values)
        if table.system:
            changes.setdefault("modifiedon", now_text())
        self.version += 1
        changes[VERSION] = self.version
        try:
            self.db.execute(f"UPDATE {q(table.logical_name)} SET {', '.join(f'{q(n)} = ?' for n in changes)} "
                            f"WHERE {q(ROWID)} = ?", [*changes.values(), row[ROWID]])
        except sqlite3.IntegrityError as exc:
            raise duplicate() from exc
        return {**row, **changes}

    def delete(self, table: Table, row: dict[str, Any]) -> None:
        self.db.execute(f"DELETE FROM {q(table.logical_name)} WHERE {q(ROWID)} = ?", (row[ROWID],))
        self.version += 1
        self.db.execute("INSERT INTO _deleted VALUES (?, ?, ?)",
                        (table.logical_name, row[table.primary_key], self.version))

    def row_json(self, table: Table, rowid: int, columns: tuple[Column, ...] | None = None) -> str:
        return self.render(table, rowid, row_json_sql(table, columns, False))

    def render(self, table: Table, rowid: int, sql_json: str) -> str:
        """One row as the JSON that `sql_json` (a row_json_sql expression, perhaps with expansions) makes of it."""
        sql = f"SELECT {sql_json} FROM {q(table.logical_name)} WHERE {q(ROWID)} = ?"
        return self.db.execute(sql, (rowid,)).fetchone()[0]

    # -- queries -----------------------------------------------------------------------------------------
    def rows(self, table: Table, sql_json: str, where: str, params: list[Any], order: str,
             limit: int, extra: tuple[str, ...] = ()) -> list[tuple]:
        """[(rowid, version, json, *extra)] of the rows matching `where`, in `order`."""
        columns = ", ".join([q(ROWID), q(VERSION), sql_json, *extra])
        sql = f"SELECT {columns} FROM {q(table.logical_name)} WHERE {where} ORDER BY {order} LIMIT ?"
        return self.db.execute(sql, [*params, limit]).fetchall()

    def count(self, table: Table, where: str, params: list[Any]) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM {q(table.logical_name)} WHERE {where}", params).fetchone()[0]

    def deletions(self, table: Table, after: int, upto: int, limit: int) -> list[tuple[str, int]]:
        return self.db.execute("SELECT id, version FROM _deleted WHERE logical = ? AND version > ? AND version <= ? "
                               "ORDER BY version LIMIT ?", (table.logical_name, after, upto, limit)).fetchall()

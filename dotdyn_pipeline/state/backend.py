"""One connection to the state store's database, PostgreSQL or SQLite, behind the same small interface.

Statements are written once with `?` placeholders and `INSERT ... ON CONFLICT` upserts, which both
databases understand; the PostgreSQL side rewrites the placeholders and batches bulk inserts.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Row = tuple[Any, ...]

_VALUES_GROUP = re.compile(r"VALUES\s*(\((?:\s*\?\s*,?)+\))", re.IGNORECASE)


class Backend:
    """A thread-safe connection; `transaction()` makes a block atomic, other calls commit on their own."""

    name: str
    placeholder = "?"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0

    # -- what each database provides ------------------------------------------------------------
    def _begin(self) -> None: raise NotImplementedError
    def _commit(self) -> None: raise NotImplementedError
    def _rollback(self) -> None: raise NotImplementedError
    def _cursor(self) -> Any: raise NotImplementedError
    def _executemany(self, cursor: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cursor.executemany(sql, rows)
    def close(self) -> None: raise NotImplementedError
    def connect_again(self) -> Backend:
        """A new connection to the same database, for a thread that must not wait on this one's transactions."""
        raise NotImplementedError
    def lock_migrations(self) -> None:
        """Serialise concurrent migration runs; called inside a transaction."""

    # -- shared ---------------------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block atomically (nested blocks join the outer one)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._begin()
            self._depth = 1
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            else:
                self._commit()
            finally:
                self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        with self._lock, self.transaction():
            cursor = self._cursor()
            cursor.execute(self._sql(sql), tuple(params))
            return cursor.rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], chunk: int = 5_000) -> int:
        """Run one statement for many parameter rows, in chunks, atomically; return how many rows were given.

        With no rows, nothing is run and no transaction opened (callers on a hot path often have none)."""
        rows = iter(rows)
        first = next(rows, None)
        if first is None:
            return 0
        rows = itertools.chain([first], rows)
        total = 0
        with self._lock, self.transaction():
            cursor = self._cursor()
            batch: list[Sequence[Any]] = []
            for row in rows:
                batch.append(tuple(row))
                if len(batch) == chunk:
                    self._executemany(cursor, sql, batch)
                    total, batch = total + len(batch), []
            if batch:
                self._executemany(cursor, sql, batch)
                total += len(batch)
        return total

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            cursor = self._cursor()
            cursor.execute(self._sql(sql), tuple(params))
            rows = [tuple(r) for r in cursor.fetchall()]
            if not self._depth:
                self._commit()  # end the read transaction PostgreSQL opened implicitly
            return rows

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 10_000) -> Iterator[Row]:
        """The rows of a large query, fetched `size` at a time, so that they are never all held at once.

        The store is busy until the rows are consumed: do not use it while iterating."""
        with self._lock:
            cursor = self._stream_cursor()
            try:
                cursor.execute(self._sql(sql), tuple(params))
                while rows := cursor.fetchmany(size):
                    for row in rows:
                        yield tuple(row)
            finally:
                cursor.close()
                if not self._depth:
                    self._commit()

    def _stream_cursor(self) -> Any:
        return self._cursor()

    def script(self, text: str) -> None:
        """Run every statement of a SQL script in the current transaction."""
        cursor = self._cursor()
        for statement in split_statements(text):
            cursor.execute(statement)


def split_statements(text: str) -> list[str]:
    """Split a migration into statements: drop `--` comments, cut at `;` (our SQL has none in literals)."""
    lines = [line.split("--", 1)[0] for line in text.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class SqliteBackend(Backend):
    name = "sqlite"
    BUSY_SECONDS = 60

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._temporary_only = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=self.BUSY_SECONDS)
        self._use_wal()
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # Large extracts insert into several indexes at random places: a 64 MB page cache and fewer, larger
        # checkpoints (the log may grow to ~80 MB before its pages are copied back) make that cheaper.
        self._conn.execute("PRAGMA cache_size=-65536")
        self._conn.execute("PRAGMA wal_autocheckpoint=20000")
        self._conn.execute("PRAGMA foreign_keys=ON")

    def _use_wal(self) -> None:
        """Switch to write-ahead logging; SQLite answers "locked" at once, without waiting, while another
        connection opens the same new file, so the switch is retried until the busy timeout."""
        deadline = time.monotonic() + self.BUSY_SECONDS
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _begin(self) -> None:
        # take the write lock now (no upgrade deadlocks later), unless the block writes temporary tables only
        self._conn.execute("BEGIN" if self._temporary_only else "BEGIN IMMEDIATE")

    @contextmanager
    def scratch(self) -> Iterator[str]:
        """A private database on a temporary file, attached for the block under the schema name it yields, and
        deleted whole when the block ends: no page of it is freed one by one, as dropping its tables would."""
        with self._lock:  # as every other use of the connection: not while another thread is in a transaction
            self._conn.execute("ATTACH DATABASE '' AS scratch")
        try:
            yield "scratch"
        finally:
            with self._lock:
                self._conn.execute("DETACH DATABASE scratch")

    @contextmanager
    def temporary_writes(self) -> Iterator[None]:
        """Transactions begun in the block write this connection's temporary or scratch tables only: they do
        not take the database's write lock, and other connections write meanwhile."""
        self._temporary_only = True
        try:
            yield
        finally:
            self._temporary_only = False

    def _commit(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _cursor(self) -> Any:
        return self._conn.cursor()

    def close(self) -> None:
        self._conn.close()

    def connect_again(self) -> Backend:
        return SqliteBackend(self.path)


class PostgresBackend(Backend):
    name = "postgresql"
    placeholder = "%s"

    def __init__(self, url: str, schema: str) -> None:
        super().__init__()
        import psycopg2  # dagster-postgres brings psycopg2-binary

        self.schema = schema
        self._url = url
        self._conn = psycopg2.connect(url, options=f"-c search_path={schema}")
        with self._conn.cursor() as cursor:  # IF NOT EXISTS alone races when processes start together
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"dotdyn-schema:{schema}",))
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self._conn.commit()

    def _begin(self) -> None:
        """psycopg2 opens a transaction with the first statement."""

    def _commit(self) -> None:
        self._conn.commit()

    def _rollback(self) -> None:
        self._conn.rollback()

    def _cursor(self) -> Any:
        return self._conn.cursor()

    def _stream_cursor(self) -> Any:
        return self._conn.cursor(name=f"dotdyn_stream_{uuid.uuid4().hex}")  # server-side: rows come as fetched

    def _executemany(self, cursor: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        from psycopg2.extras import execute_batch, execute_values

        match = _VALUES_GROUP.search(sql)
        if match:  # one multi-row INSERT per page instead of one statement per row
            template = match.group(1).replace("?", "%s")
            execute_values(cursor, sql[: match.start(1)] + "%s" + sql[match.end(1):].replace("?", "%s"),
                           rows, template=template, page_size=1_000)
        else:
            execute_batch(cursor, self._sql(sql), rows, page_size=1_000)

    def connect_again(self) -> Backend:
        return PostgresBackend(self._url, self.schema)

    def lock_migrations(self) -> None:
        self._cursor().execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"dotdyn-migrations:{self.schema}",))

    def close(self) -> None:
        self._conn.close()


def connect(url: str, schema: str = "dotdyn") -> Backend:
    """Open `sqlite:///path` or `postgresql://...` (the state store's tables live in `schema` there)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return SqliteBackend(Path(url.removeprefix("sqlite:///")))  # sqlite:////abs or sqlite:///relative
    if scheme in ("postgresql", "postgres"):
        return PostgresBackend(url, schema)
    raise ValueError(f"unsupported state store URL scheme {scheme!r}; use sqlite:/// or postgresql://")

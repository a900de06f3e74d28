"""One SQLite file per Dotdigital account: contacts, address books, imports, campaigns and their engagement.

Every thread gets its own connection (WAL, so readers never wait for the import writer). Dates are stored
as ISO-8601 UTC text with milliseconds and a `Z`, which sorts like the instant it names and is what the
API returns. Rows are shaped into the API's camelCase objects here, once, for REST and SOAP alike.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, opt_in_type TEXT NOT NULL DEFAULT 'Unknown',
    email_type TEXT NOT NULL DEFAULT 'Html', data TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'Subscribed', created TEXT NOT NULL, modified TEXT NOT NULL,
    import_seq INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS contacts_modified ON contacts(modified);
CREATE INDEX IF NOT EXISTS contacts_created ON contacts(created);
CREATE TABLE IF NOT EXISTS address_books (  -- AUTOINCREMENT: a deleted book's id is never given again
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE COLLATE NOCASE, visibility TEXT NOT NULL,
    writable INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS members (
    book_id INTEGER NOT NULL, contact_id INTEGER NOT NULL, PRIMARY KEY (book_id, contact_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_contact ON members(contact_id);
CREATE TABLE IF NOT EXISTS data_fields (
    name TEXT PRIMARY KEY COLLATE NOCASE, type TEXT NOT NULL, visibility TEXT NOT NULL, default_value TEXT);
CREATE TABLE IF NOT EXISTS suppressions (
    contact_id INTEGER PRIMARY KEY, reason TEXT NOT NULL, date_removed TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS suppressions_date ON suppressions(date_removed);
CREATE TABLE IF NOT EXISTS book_unsubscribes (
    book_id INTEGER NOT NULL, contact_id INTEGER NOT NULL, date_removed TEXT NOT NULL,
    PRIMARY KEY (book_id, contact_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS imports (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, book_id INTEGER, merge_option TEXT NOT NULL,
    status TEXT NOT NULL, report TEXT, outcome TEXT NOT NULL DEFAULT 'Finished', min_seconds REAL NOT NULL DEFAULT 0,
    created TEXT NOT NULL, finished TEXT);
CREATE TABLE IF NOT EXISTS deletions (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, book_id INTEGER NOT NULL, contact_ids TEXT NOT NULL,
    outcome TEXT NOT NULL, ready_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, subject TEXT NOT NULL, from_name TEXT NOT NULL,
    from_email TEXT NOT NULL, status TEXT NOT NULL, date_sent TEXT, last_activity TEXT,
    type TEXT NOT NULL DEFAULT 'Standard');
CREATE INDEX IF NOT EXISTS campaigns_activity ON campaigns(last_activity);
CREATE TABLE IF NOT EXISTS campaign_books (
    campaign_id INTEGER NOT NULL, book_id INTEGER NOT NULL, PRIMARY KEY (campaign_id, book_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sends (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, campaign_id INTEGER NOT NULL, book_ids TEXT NOT NULL,
    contact_ids TEXT NOT NULL, send_date TEXT NOT NULL, split_test TEXT, status TEXT NOT NULL,
    wave INTEGER NOT NULL DEFAULT 0, recipients INTEGER, accepted TEXT NOT NULL, finished TEXT);
CREATE TABLE IF NOT EXISTS send_books (
    send_id TEXT NOT NULL, book_id INTEGER NOT NULL, PRIMARY KEY (send_id, book_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS send_books_book ON send_books(book_id);
CREATE TABLE IF NOT EXISTS send_contacts (
    send_id TEXT NOT NULL, contact_id INTEGER NOT NULL, PRIMARY KEY (send_id, contact_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS send_recipients (
    send_id TEXT NOT NULL, contact_id INTEGER NOT NULL, email TEXT NOT NULL, test_group INTEGER NOT NULL,
    PRIMARY KEY (send_id, contact_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS triggered_sends (
    seq INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL, to_addresses TEXT NOT NULL,
    personalization TEXT NOT NULL, sent TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS activities (
    campaign_id INTEGER NOT NULL, contact_id INTEGER NOT NULL, email TEXT NOT NULL, html INTEGER NOT NULL,
    date_sent TEXT NOT NULL, num_opens INTEGER NOT NULL, num_page_views INTEGER NOT NULL,
    num_clicks INTEGER NOT NULL, num_forwards INTEGER NOT NULL, num_replies INTEGER NOT NULL,
    date_first_opened TEXT NOT NULL, date_last_opened TEXT NOT NULL, first_open_ip TEXT NOT NULL,
    unsubscribed INTEGER NOT NULL, soft_bounced INTEGER NOT NULL, hard_bounced INTEGER NOT NULL,
    last_activity TEXT NOT NULL, PRIMARY KEY (campaign_id, contact_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS clicks (
    id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL, contact_id INTEGER NOT NULL, email TEXT NOT NULL,
    url TEXT NOT NULL, ip_address TEXT NOT NULL, user_agent TEXT NOT NULL, date_clicked TEXT NOT NULL,
    keyword TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS clicks_campaign ON clicks(campaign_id, id);
CREATE TABLE IF NOT EXISTS roi (
    id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL, contact_id INTEGER NOT NULL, email TEXT NOT NULL,
    marker_name TEXT NOT NULL, data_type TEXT NOT NULL, value TEXT NOT NULL, date_entered TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS roi_campaign ON roi(campaign_id, id);
"""

NEVER = "0001-01-01T00:00:00.000Z"  # .NET's DateTime.MinValue: what the service sends for "no date"
SUPPRESSED_STATUSES = ("Unsubscribed", "HardBounced", "IspComplained", "MailBlocked", "DirectComplaint",
                       "Suppressed", "DomainSuppression", "NoMxRecord", "SharedSuppression")
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def iso(moment: datetime) -> str:
    """The stored and served form of an instant."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(datetime.now(UTC))


def parse_date(text: str) -> str:
    """A `since` date as clients send it (date only, ISO with or without zone, ATOM) -> stored form."""
    cleaned = text.strip().replace(" ", "T", 1).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ApiError("ERROR_PARAMETER_INVALID", f"The date '{text}' is not a valid ISO 8601 date.") from None
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def normalise_email(text: Any) -> str:
    return str(text or "").strip().lower()


def valid_email(email: str) -> bool:
    return len(email) <= 254 and EMAIL.match(email) is not None


#: The size the write-ahead log may reach before a writer waits for the readers and empties it. Import workers
#: that commit in turn never leave the moment in which SQLite's own checkpoints may start the log over, so
#: without this it grows for as long as imports run, and every read and write slows down with it: the last
#: imports of a run would be served slower than the first.
LOG_LIMIT_BYTES = 256 * 1024 * 1024


class AccountStore:
    """The data of one account, in `path`."""

    def __init__(self, path: Path, log_limit_bytes: int = LOG_LIMIT_BYTES) -> None:
        self.path = path
        self.log_limit_bytes = log_limit_bytes
        self._log = path.with_name(f"{path.name}-wal")
        self._local = threading.local()
        self._writing = threading.Lock()
        self.conn.executescript(SCHEMA)

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-32000")
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the process's writers queue for it in turn, and the one that leaves the log
        longer than `log_limit_bytes` empties it (no other writer of the process is checkpointing then)."""
        conn = self.conn
        with self._writing:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if self._log_bytes() > self.log_limit_bytes:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _log_bytes(self) -> int:
        try:
            return self._log.stat().st_size
        except FileNotFoundError:
            return 0

    def one(self, sql: str, *args: Any) -> tuple | None:
        return self.conn.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[tuple]:
        return self.conn.execute(sql, args).fetchall()

    def scalar(self, sql: str, *args: Any) -> Any:
        row = self.one(sql, *args)
        return row[0] if row else None


CONTACT_COLUMNS = "c.id, c.email, c.opt_in_type, c.email_type, c.data, c.status"


def contact_json(row: tuple, with_data: bool = True) -> dict[str, Any]:
    """An `ApiContact` from a row selected with CONTACT_COLUMNS; `dataFields` is null without full data."""
    data = json.loads(row[4]) if with_data else None
    return {"id": row[0], "email": row[1], "optInType": row[2], "emailType": row[3],
            "dataFields": None if data is None else [{"key": k, "value": v} for k, v in sorted(data.items())],
            "status": row[5]}


class Pager:
    """select/skip paging that stays linear over a million rows.

    A client pages with skip = 0, 1000, 2000...; each page remembers the sort key of its last row, so the
    next page continues from it (keyset) instead of making SQLite walk past `skip` rows again (OFFSET).
    Queries are `SELECT <sort key>, ... WHERE ... {after} ORDER BY <sort key>`; `{after}` becomes the keyset
    condition. Any other skip falls back to OFFSET.
    """

    def __init__(self, remember: int = 10_000) -> None:
        self._marks: dict[tuple, Any] = {}
        self._remember = remember
        self._lock = threading.Lock()

    def page(self, store: AccountStore, sql: str, args: tuple, sort_key: str, select: int, skip: int) -> list:
        key = (str(store.path), sql, args)
        with self._lock:
            mark = self._marks.pop((key, skip), None) if skip else None
        if mark is not None:
            rows = store.all(sql.format(after=f"AND {sort_key} > ?") + " LIMIT ?", *args, mark, select)
        else:
            rows = store.all(sql.format(after="") + " LIMIT ? OFFSET ?", *args, select, skip)
        if len(rows) == select:
            with self._lock:
                if len(self._marks) >= self._remember:
                    self._marks.pop(next(iter(self._marks)))
                self._marks[(key, skip + select)] = rows[-1][0]
        return rows

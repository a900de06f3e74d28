"""Bulk contact import: the upload is saved to disk, answered NotFinished, and processed by a worker thread.

The worker streams the CSV in chunks of 5,000 rows (never the whole file in memory): it validates each
email, types each data-field value, skips rows whose email came earlier in the same file, refuses to re-add
suppressed or unsubscribed contacts, creates or merges the rest (per merge option) and adds them to the
book. Every refused row is written to the faults CSV, first column Reason, then the row as uploaded.

Reasons: InvalidEmail, Duplicate, InvalidData (a value not of its field's type), Unsubscribed (account-wide
or from this book), HardBounced, IspComplaint, MailBlocked, DomainSuppressed, Suppressed (other
suppressions). The report counts them in the swagger's ApiContactImportReport fields.

Faults taken per import (POST {control}/faults/dotdigital): `import_reject` ends it RejectedByWatchdog,
`import_fail` ends it Failed (nothing is loaded in either case); `import_delay` keeps it NotFinished for at
least `latency_ms`.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

from dotdyn_pipeline.sandbox.dotdigital.audience import COERCERS, data_field_types, writable_book
from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError
from dotdyn_pipeline.sandbox.dotdigital.store import (
    SUPPRESSED_STATUSES,
    AccountStore,
    normalise_email,
    now_iso,
    valid_email,
)
from dotdyn_pipeline.sandbox.faults import FaultPlan

log = logging.getLogger(__name__)

CHUNK = 5_000
MAX_ACTIVE = 25
MERGE_OPTIONS = ("Overwrite", "OnlyOverwriteIfNotEmpty", "OnlyOverwriteIfContactDataNotPopulated")
#: contact status -> (Reason in the faults CSV, report field)
REFUSED = {"Unsubscribed": ("Unsubscribed", "unsubscribed"), "HardBounced": ("HardBounced", "hardBounced"),
           "IspComplained": ("IspComplaint", "ispComplaints"), "MailBlocked": ("MailBlocked", "mailBlocked"),
           "DomainSuppression": ("DomainSuppressed", "domainSuppressed")}
REPORT_FIELDS = ("newContacts", "updatedContacts", "globallySuppressed", "invalidEntries", "duplicateEmails",
                 "blocked", "unsubscribed", "hardBounced", "softBounced", "ispComplaints", "mailBlocked",
                 "domainSuppressed", "pendingDoubleOptin", "failures", "suppressedContacts")


def merge_option(text: str | None) -> str:
    """A merge option given by name or by its number (the developer portal documents 0, 1, 2)."""
    if text is None:
        return "Overwrite"
    for number, name in enumerate(MERGE_OPTIONS):
        if text.strip().lower() in (name.lower(), str(number)):
            return name
    raise ApiError("ERROR_PARAMETER_INVALID", f"'{text}' is not a merge option.")


def _merge(old: dict[str, Any], new: dict[str, Any], option: str) -> dict[str, Any]:
    for key, value in new.items():
        if option == "Overwrite":
            if value is None:
                old.pop(key, None)
            else:
                old[key] = value
        elif value is not None and (option == "OnlyOverwriteIfNotEmpty" or old.get(key) in (None, "")):
            old[key] = value
    return old


class Imports:
    """Imports of every account: created by the API, processed by a small pool of worker threads."""

    def __init__(self, faults: FaultPlan, workers: int = 2) -> None:
        self.faults = faults
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dotdigital-import")

    @staticmethod
    def folder(store: AccountStore) -> Path:
        path = store.path.parent / f"{store.path.stem}-imports"
        path.mkdir(exist_ok=True)
        return path

    def upload_path(self, store: AccountStore) -> Path:
        """Where to save an upload before `create` takes it."""
        return self.folder(store) / f"upload-{uuid.uuid4()}.csv"

    def create(self, store: AccountStore, book_id: int | None, option: str, upload: Path,
               method: str, path: str) -> dict[str, str]:
        """Accept a saved CSV: check it, register the import, queue it; answer {id, status: NotFinished}."""
        try:
            if book_id is not None:
                writable_book(store, book_id)
            _check_header(upload)
            if (store.scalar("SELECT COUNT(*) FROM imports WHERE status = 'NotFinished'") or 0) >= MAX_ACTIVE:
                raise ApiError("ERROR_IMPORT_TOOMANYACTIVEIMPORTS")
        except ApiError:
            upload.unlink(missing_ok=True)
            raise
        import_id = str(uuid.uuid4())
        upload.replace(self.folder(store) / f"{import_id}.csv")
        rule = self.faults.take({"import_reject", "import_fail"}, method, path)
        outcome = {"import_reject": "RejectedByWatchdog", "import_fail": "Failed"}.get(rule.kind if rule else "",
                                                                                         "Finished")
        delay = self.faults.take("import_delay", method, path)
        with store.write() as conn:
            seq = (conn.execute("SELECT COALESCE(MAX(seq), 0) FROM imports").fetchone()[0]) + 1
            conn.execute("INSERT INTO imports (id, seq, book_id, merge_option, status, outcome, min_seconds, created) "
                         "VALUES (?, ?, ?, ?, 'NotFinished', ?, ?, ?)",
                         (import_id, seq, book_id, option, outcome, (delay.latency_ms / 1000) if delay else 0,
                          now_iso()))
        self.pool.submit(self._run, store, import_id)
        return {"id": import_id, "status": "NotFinished"}

    def status(self, store: AccountStore, import_id: str) -> dict[str, str]:
        status = store.scalar("SELECT status FROM imports WHERE id = ?", import_id.lower())
        if status is None:
            raise ApiError("ERROR_IMPORT_NOT_FOUND")
        return {"id": import_id.lower(), "status": status}

    def report(self, store: AccountStore, import_id: str) -> dict[str, int]:
        row = store.one("SELECT status, report FROM imports WHERE id = ?", import_id.lower())
        if row is None:
            raise ApiError("ERROR_IMPORT_NOT_FOUND")
        if row[0] != "Finished":
            raise ApiError("ERROR_IMPORT_REPORT_NOT_FOUND")
        return json.loads(row[1])

    def faults_csv(self, store: AccountStore, import_id: str) -> Path:
        self.report(store, import_id)
        return self.folder(store) / f"{import_id.lower()}.faults.csv"

    def _run(self, store: AccountStore, import_id: str) -> None:
        started = time.monotonic()
        seq, book_id, option, outcome, min_seconds = store.one(
            "SELECT seq, book_id, merge_option, outcome, min_seconds FROM imports WHERE id = ?", import_id)
        source = self.folder(store) / f"{import_id}.csv"
        report = None
        try:
            if outcome == "Finished":
                report = _load(store, source, self.folder(store) / f"{import_id}.faults.csv", seq, book_id, option,
                               self.stopping)
        except Exception:  # a broken file fails its import, as the service does, and never the worker
            log.exception("import %s failed", import_id)
            outcome = "Failed"
        finally:
            source.unlink(missing_ok=True)
        time.sleep(max(0.0, min_seconds - (time.monotonic() - started)))
        with store.write() as conn:
            conn.execute("UPDATE imports SET status = ?, report = ?, finished = ? WHERE id = ?",
                         (outcome, json.dumps(report) if report else None, now_iso(), import_id))

    def shutdown(self) -> None:
        """Stop between chunks, so that a large import does not hold the sandbox up when it is asked to stop."""
        self.stopping.set()
        self.pool.shutdown(wait=False, cancel_futures=True)


def _check_header(upload: Path) -> None:
    with upload.open(newline="", encoding="utf-8-sig", errors="replace") as source:
        header = next(csv.reader(source), None)
    if not header:
        raise ApiError("ERROR_IMPORT_UNSUPPORTED_FORMAT", "The file is empty or not CSV.")
    if not any(name.strip().lower() == "email" for name in header):
        raise ApiError("ERROR_NO_EMAIL_COLUMN")


def _load(store: AccountStore, source: Path, faults_path: Path, seq: int, book_id: int | None,
          option: str, stopping: threading.Event) -> dict[str, int]:
    counts: Counter[str] = Counter()
    fields = data_field_types(store)
    with source.open(newline="", encoding="utf-8-sig") as infile, \
            faults_path.open("w", newline="", encoding="utf-8") as outfile:
        reader, faults = csv.reader(infile), csv.writer(outfile)
        header = next(reader)
        faults.writerow(["Reason", *header])
        email_at = next(i for i, name in enumerate(header) if name.strip().lower() == "email")
        columns = [(i, fields[name.strip().upper()][0], COERCERS[fields[name.strip().upper()][1]])
                   for i, name in enumerate(header)
                   if i != email_at and name.strip().upper() in fields]  # unknown columns are not imported
        while (chunk := list(islice(reader, CHUNK))) and not stopping.is_set():
            _load_chunk(store, chunk, email_at, columns, faults, counts, seq, book_id, option)
    counts["suppressedContacts"] = sum(counts[field] for _, field in REFUSED.values()) + counts["globallySuppressed"]
    return {name: counts[name] for name in REPORT_FIELDS}


Column = tuple[int, str, Callable[[str], Any]]  # position in the file, data field name, value converter


def _load_chunk(store: AccountStore, chunk: list[list[str]], email_at: int, columns: list[Column],
                faults: Any, counts: Counter, seq: int, book_id: int | None, option: str) -> None:
    parsed: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for row in chunk:
        email = normalise_email(row[email_at]) if len(row) > email_at else ""
        if not valid_email(email):
            faults.writerow(["InvalidEmail", *row])
            counts["invalidEntries"] += 1
            continue
        if email in parsed:
            faults.writerow(["Duplicate", *row])
            counts["duplicateEmails"] += 1
            continue
        try:
            data = {name: convert(row[i]) if i < len(row) and row[i].strip() else None
                    for i, name, convert in columns}
        except ValueError:
            faults.writerow(["InvalidData", *row])
            counts["failures"] += 1
            continue
        parsed[email] = (row, data)
    if not parsed:
        return
    emails = list(parsed)
    stamp = now_iso()
    with store.write() as conn:
        existing = {row[1]: row for row in conn.execute(
            f"SELECT id, email, status, data, import_seq FROM contacts WHERE email IN ({','.join('?' * len(emails))})",
            emails)}
        left_book: set[int] = set()
        if book_id is not None and existing:
            ids = [row[0] for row in existing.values()]
            left_book = {row[0] for row in conn.execute(
                f"SELECT contact_id FROM book_unsubscribes WHERE book_id = ? AND contact_id IN "
                f"({','.join('?' * len(ids))})", (book_id, *ids))}
        inserts, updates, joins, new_emails = [], [], [], []
        for email, (row, data) in parsed.items():
            found = existing.get(email)
            if found is None:
                inserts.append((email, json.dumps({k: v for k, v in data.items() if v is not None}), stamp, stamp,
                                seq))
                new_emails.append((book_id, email))
                continue
            contact_id, status, old, imported_by = found[0], found[2], found[3], found[4]
            refusal = _refusal(status, contact_id in left_book, imported_by == seq)
            if refusal:
                faults.writerow([refusal[0], *row])
                counts[refusal[1]] += 1
            else:
                updates.append((json.dumps(_merge(json.loads(old), data, option)), stamp, seq, contact_id))
                joins.append((book_id, contact_id))
        conn.executemany("INSERT INTO contacts (email, data, created, modified, import_seq) VALUES (?, ?, ?, ?, ?)",
                         inserts)
        conn.executemany("UPDATE contacts SET data = ?, modified = ?, import_seq = ? WHERE id = ?", updates)
        if book_id is not None:
            conn.executemany("INSERT OR IGNORE INTO members SELECT ?, id FROM contacts WHERE email = ?", new_emails)
            conn.executemany("INSERT OR IGNORE INTO members VALUES (?, ?)", joins)
    counts["newContacts"] += len(inserts)
    counts["updatedContacts"] += len(updates)


def _refusal(status: str, left_book: bool, seen_in_file: bool) -> tuple[str, str] | None:
    """(Reason, report field) when an existing contact may not be imported, else None."""
    if seen_in_file:
        return "Duplicate", "duplicateEmails"
    if status in SUPPRESSED_STATUSES:
        return REFUSED.get(status, ("Suppressed", "globallySuppressed"))
    return ("Unsubscribed", "unsubscribed") if left_book else None

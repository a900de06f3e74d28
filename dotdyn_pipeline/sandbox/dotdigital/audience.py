"""Data fields, address books, contacts, unsubscribes and suppressions: the service's rules, transport-neutral.

Functions take an account's store and the request as plain values (bodies as parsed JSON, keys matched
case-insensitively, as the real service binds them) and return the camelCase objects of the swagger.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from typing import Any

from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError
from dotdyn_pipeline.sandbox.dotdigital.store import (
    CONTACT_COLUMNS,
    SUPPRESSED_STATUSES,
    AccountStore,
    Pager,
    contact_json,
    normalise_email,
    now_iso,
    valid_email,
)
from dotdyn_pipeline.sandbox.faults import FaultPlan

DATA_FIELD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
DATA_TYPES = ("String", "Numeric", "Date", "Boolean")
DEFAULT_FIELDS = ("FIRSTNAME", "LASTNAME", "FULLNAME", "GENDER", "POSTCODE")
RESERVED_BOOKS = ("test", "all contacts")
OPT_IN_TYPES = ("Unknown", "Single", "Double", "VerifiedDouble")
EMAIL_TYPES = ("PlainText", "Html")
TRUE, FALSE = ("true", "yes", "1", "y"), ("false", "no", "0", "n")


def field(body: Any, name: str, default: Any = None) -> Any:
    """`body[name]`, matching the key case-insensitively (the service accepts PascalCase and camelCase)."""
    if not isinstance(body, dict):
        return default
    lowered = name.lower()
    for key, value in body.items():
        if key.lower() == lowered:
            return value
    return default


def as_list(value: Any) -> list:
    """A JSON array, or a SOAP array wrapper such as {"ApiContactData": [...]} / {"int": [...]}."""
    if value is None:
        return []
    if isinstance(value, dict) and len(value) == 1:
        (inner,) = value.values()
        return as_list(inner)
    return list(value) if isinstance(value, list | tuple) else [value]


def as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError("ERROR_PARAMETER_INVALID", f"'{name}' must be an integer.") from None


# --- data fields --------------------------------------------------------------------------------------------

def _number(value: Any) -> Any:
    number = float(value)
    return int(number) if number.is_integer() else number


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise ValueError(f"not a boolean: {value!r}")


def _date(value: Any) -> Any:
    """ISO dates and date-times, or dd/mm/yyyy [hh:mm[:ss]]; the year must have four digits."""
    text = str(value).strip()
    if (british := BRITISH_DATE.match(text)) is not None:
        day, month, year, rest = british.groups()
        text = f"{year}-{month}-{day}{'T' + rest if rest else ''}"
    if not ISO_DATE.match(text):
        raise ValueError(f"not a date with a four-digit year: {value!r}")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S")


BRITISH_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})(?:\s+(\d{2}:\d{2}(?::\d{2})?))?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
COERCERS = {"String": str, "Numeric": _number, "Boolean": _boolean, "Date": _date}


def coerce(value: Any, data_type: str) -> Any:
    """A value in a field's type (raises ValueError); empty text is None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return COERCERS[data_type](value)


def data_field_types(store: AccountStore) -> dict[str, tuple[str, str]]:
    """Upper-cased field name -> (name, type)."""
    return {name.upper(): (name, kind) for name, kind in store.all("SELECT name, type FROM data_fields")}


def list_data_fields(store: AccountStore) -> list[dict[str, Any]]:
    return [{"name": name, "type": kind, "visibility": visibility,
             "defaultValue": None if default is None else json.loads(default)}
            for name, kind, visibility, default in store.all(
                "SELECT name, type, visibility, default_value FROM data_fields ORDER BY name")]


def create_data_field(store: AccountStore, body: Any) -> dict[str, Any]:
    name = str(field(body, "name") or "").strip()
    kind = _enum(field(body, "type", "String"), DATA_TYPES, "ERROR_DATAFIELD_INVALID")
    visibility = _enum(field(body, "visibility", "Private"), ("Private", "Public"), "ERROR_DATAFIELD_INVALID")
    if not DATA_FIELD_NAME.match(name):
        raise ApiError("ERROR_DATAFIELD_INVALID", "Data field names are 1-20 letters, digits, '-' or '_'.")
    try:
        default = coerce(field(body, "defaultValue"), kind)
    except ValueError:
        raise ApiError("ERROR_DATAFIELD_INVALID", f"The default value is not a valid {kind}.") from None
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM data_fields WHERE name = ?", (name,)).fetchone():
            raise ApiError("ERROR_NON_UNIQUE_DATAFIELD")
        conn.execute("INSERT INTO data_fields VALUES (?, ?, ?, ?)",
                     (name.upper(), kind, visibility, None if default is None else json.dumps(default)))
    return {"name": name.upper(), "type": kind, "visibility": visibility, "defaultValue": default}


def _enum(value: Any, allowed: tuple[str, ...], code: str) -> str:
    for option in allowed:
        if str(value).lower() == option.lower():
            return option
    raise ApiError(code, f"'{value}' is not one of {', '.join(allowed)}.")


# --- address books ------------------------------------------------------------------------------------------

BOOK_SQL = ("SELECT b.id, b.name, b.visibility, (SELECT COUNT(*) FROM members m WHERE m.book_id = b.id) "
            "FROM address_books b")


def _book_json(row: tuple) -> dict[str, Any]:
    return {"id": row[0], "name": row[1], "visibility": row[2], "contacts": row[3]}


def list_books(store: AccountStore, select: int, skip: int, visibility: str | None = None) -> list[dict]:
    where = "WHERE b.visibility = ?" if visibility else "WHERE 1 = 1"
    args = (visibility,) if visibility else ()
    rows = store.all(f"{BOOK_SQL} {where} ORDER BY b.id LIMIT ? OFFSET ?", *args, select, skip)
    return [_book_json(row) for row in rows]


def get_book(store: AccountStore, book_id: int) -> dict[str, Any]:
    row = store.one(f"{BOOK_SQL} WHERE b.id = ?", book_id)
    if row is None:
        raise ApiError("ERROR_ADDRESSBOOK_NOT_FOUND")
    return _book_json(row)


def writable_book(store: AccountStore, book_id: int) -> None:
    """Raise unless the book exists and the API may write to it (the 'Test' book may not)."""
    row = store.one("SELECT writable FROM address_books WHERE id = ?", book_id)
    if row is None:
        raise ApiError("ERROR_ADDRESSBOOK_NOT_FOUND")
    if not row[0]:
        raise ApiError("ERROR_ADDRESSBOOK_NOTWRITABLE")


def create_book(store: AccountStore, body: Any) -> dict[str, Any]:
    name = str(field(body, "name") or "").strip()
    visibility = _enum(field(body, "visibility", "Private"), ("Private", "Public"), "ERROR_ADDRESSBOOK_INVALID")
    if not name or len(name) > 128:
        raise ApiError("ERROR_ADDRESSBOOK_INVALID", "An address book needs a name of at most 128 characters.")
    if name.lower() in RESERVED_BOOKS:
        raise ApiError("ERROR_ADDRESSBOOK_DUPLICATE")
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM address_books WHERE name = ?", (name,)).fetchone():
            raise ApiError("ERROR_ADDRESSBOOK_DUPLICATE")
        book_id = conn.execute("INSERT INTO address_books (name, visibility) VALUES (?, ?)",
                               (name, visibility)).lastrowid
    return {"id": book_id, "name": name, "visibility": visibility, "contacts": 0}


def delete_book(store: AccountStore, book_id: int) -> None:
    """Delete an address book (its contacts stay in the account). A book a send still has to go to is in use."""
    writable_book(store, book_id)
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM send_books b JOIN sends s ON s.id = b.send_id WHERE b.book_id = ? AND "
                        "s.status IN ('Scheduled', 'Sending')", (book_id,)).fetchone():
            raise ApiError("ERROR_ADDRESSBOOK_IN_USE")
        for table in ("members", "book_unsubscribes"):
            conn.execute(f"DELETE FROM {table} WHERE book_id = ?", (book_id,))  # noqa: S608 (fixed table names)
        conn.execute("DELETE FROM address_books WHERE id = ?", (book_id,))


def book_contacts(store: AccountStore, pager: Pager, book_id: int, with_data: bool, select: int,
                  skip: int, modified_since: str | None = None) -> list[dict]:
    get_book(store, book_id)
    since = "AND c.modified >= ?" if modified_since else ""
    args = (book_id, modified_since) if modified_since else (book_id,)
    rows = pager.page(store, f"SELECT {CONTACT_COLUMNS} FROM members m JOIN contacts c ON c.id = m.contact_id "
                             f"WHERE m.book_id = ? {since} {{after}} ORDER BY c.id", args, "c.id", select, skip)
    return [contact_json(row, with_data) for row in rows]


# --- contacts -----------------------------------------------------------------------------------------------

def parse_contact(store: AccountStore, body: Any) -> dict[str, Any]:
    """The fields of an `ApiContact` body, validated: email, optInType, emailType and typed data fields."""
    if not isinstance(body, dict):
        raise ApiError("ERROR_CONTACT_INVALID", "The body must be a contact object.")
    email = normalise_email(field(body, "email"))
    if not valid_email(email):
        raise ApiError("ERROR_PARAMETER_INVALID", "Email is not a valid email address.")
    fields = data_field_types(store)
    data: dict[str, Any] = {}
    for item in as_list(field(body, "dataFields")):
        key = str(field(item, "key") or "")
        if key.upper() not in fields:
            raise ApiError("ERROR_DATAFIELD_NOTFOUND", f"The data field '{key}' does not exist.")
        name, kind = fields[key.upper()]
        try:
            data[name] = coerce(field(item, "value"), kind)
        except ValueError:
            raise ApiError("ERROR_DATAFIELD_INVALID", f"The value of '{name}' is not a valid {kind}.") from None
    return {"email": email, "data": data,
            "opt_in_type": _enum(field(body, "optInType") or "Unknown", OPT_IN_TYPES, "ERROR_CONTACT_INVALID"),
            "email_type": _enum(field(body, "emailType") or "Html", EMAIL_TYPES, "ERROR_CONTACT_INVALID")}


def _select_contact(conn_or_store: Any, where: str, *args: Any) -> tuple | None:
    sql = f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE {where}"
    if isinstance(conn_or_store, AccountStore):
        return conn_or_store.one(sql, *args)
    return conn_or_store.execute(sql, args).fetchone()


def _upsert(conn: Any, contact: dict[str, Any], refuse_suppressed: bool = True) -> int:
    """Create the contact or merge into the one with its email; returns its id."""
    row = _select_contact(conn, "c.email = ?", contact["email"])
    stamp = now_iso()
    if row is None:
        return conn.execute("INSERT INTO contacts (email, opt_in_type, email_type, data, created, modified) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (contact["email"], contact["opt_in_type"],
                                                          contact["email_type"], json.dumps(contact["data"]),
                                                          stamp, stamp)).lastrowid
    if refuse_suppressed and row[5] in SUPPRESSED_STATUSES:
        raise ApiError("ERROR_CONTACT_SUPPRESSED")
    data = {**json.loads(row[4]), **contact["data"]}
    conn.execute("UPDATE contacts SET opt_in_type = ?, email_type = ?, data = ?, modified = ? WHERE id = ?",
                 (contact["opt_in_type"], contact["email_type"], json.dumps(data), stamp, row[0]))
    return row[0]


def create_contact(store: AccountStore, body: Any) -> dict[str, Any]:
    contact = parse_contact(store, body)
    with store.write() as conn:
        contact_id = _upsert(conn, contact)
    return contact_json(_select_contact(store, "c.id = ?", contact_id))


def add_contact_to_book(store: AccountStore, book_id: int, body: Any) -> dict[str, Any]:
    writable_book(store, book_id)
    contact = parse_contact(store, body)
    with store.write() as conn:
        existing = conn.execute("SELECT id FROM contacts WHERE email = ?", (contact["email"],)).fetchone()
        if existing and conn.execute("SELECT 1 FROM book_unsubscribes WHERE book_id = ? AND contact_id = ?",
                                     (book_id, existing[0])).fetchone():
            raise ApiError("ERROR_CONTACT_SUPPRESSEDFORADDRESSBOOK")
        contact_id = _upsert(conn, contact)
        conn.execute("INSERT OR IGNORE INTO members VALUES (?, ?)", (book_id, contact_id))
    return contact_json(_select_contact(store, "c.id = ?", contact_id))


def find_contact(store: AccountStore, identifier: str | int) -> tuple:
    """A contact by id or email. By id, suppressed contacts are hidden, as the service documents."""
    text = str(identifier).strip()
    if text.isdigit():
        row = _select_contact(store, "c.id = ?", int(text))
        if row is not None and row[5] in SUPPRESSED_STATUSES:
            row = None
    else:
        row = _select_contact(store, "c.email = ?", normalise_email(text))
    if row is None:
        raise ApiError("ERROR_CONTACT_NOT_FOUND")
    return row


def retrieve_collection(store: AccountStore, body: Any) -> dict[str, Any]:
    """GET /v2/contacts/retrieve-collection: the contacts a list of {id} or {email} names (ApiContactIdAndEmail),
    and those it names that are not found; no limit on the list is documented, and none is applied here."""
    wanted = as_list(field(body, "contacts"))
    with_data = field(body, "withFullData") is True
    found, missing = [], []
    for item in wanted:
        identifier = field(item, "id") or field(item, "email")
        try:
            found.append(contact_json(find_contact(store, identifier), with_data))
        except ApiError:
            missing.append({"id": field(item, "id"), "email": field(item, "email")})
    return {"contacts": found, "notFound": missing}


def get_contact(store: AccountStore, identifier: str | int) -> dict[str, Any]:
    return contact_json(find_contact(store, identifier))


def update_contact(store: AccountStore, contact_id: int, body: Any) -> dict[str, Any]:
    """Update by id; a changed email moves to the same contact (its id, books and history stay)."""
    contact = parse_contact(store, body)
    with store.write() as conn:
        row = _select_contact(conn, "c.id = ?", contact_id)
        if row is None:
            raise ApiError("ERROR_CONTACT_NOT_FOUND")
        other = conn.execute("SELECT id FROM contacts WHERE email = ? AND id <> ?",
                             (contact["email"], contact_id)).fetchone()
        if other:
            raise ApiError("ERROR_NON_UNIQUE_EMAIL")
        data = {**json.loads(row[4]), **contact["data"]}
        conn.execute("UPDATE contacts SET email = ?, opt_in_type = ?, email_type = ?, data = ?, modified = ? "
                     "WHERE id = ?", (contact["email"], contact["opt_in_type"], contact["email_type"],
                                      json.dumps(data), now_iso(), contact_id))
    return contact_json(_select_contact(store, "c.id = ?", contact_id))


def list_contacts(store: AccountStore, pager: Pager, with_data: bool, select: int, skip: int,
                  column: str | None = None, since: str | None = None) -> list[dict]:
    """All contacts, or those whose `column` (modified / created) is at or after `since`."""
    where = f"WHERE c.{column} >= ?" if column else "WHERE 1 = 1"
    rows = pager.page(store, f"SELECT {CONTACT_COLUMNS} FROM contacts c {where} {{after}} ORDER BY c.id",
                      (since,) if column else (), "c.id", select, skip)
    return [contact_json(row, with_data) for row in rows]


def remove_from_book(store: AccountStore, book_id: int, contact_ids: list[int]) -> None:
    writable_book(store, book_id)
    with store.write() as conn:
        conn.executemany("DELETE FROM members WHERE book_id = ? AND contact_id = ?",
                         [(book_id, contact_id) for contact_id in contact_ids])


def delete_from_book_in_bulk(store: AccountStore, faults: FaultPlan, book_id: int, body: Any, method: str,
                             path: str) -> dict[str, Any]:
    """POST .../contacts/delete: a background deletion, answered Started. It is done at once, unless a
    `deletion_delay` fault keeps it Started for `latency_ms` (it is done at the first look after that);
    `deletion_fail` ends it Failed with nobody removed."""
    ids = [as_int(value, "contact id") for value in as_list(body)]
    if not ids:
        raise ApiError("ERROR_CONTACTS_ARE_NOT_SPECIFIED", "No contact ids were given.")
    writable_book(store, book_id)
    failed, delay = faults.take("deletion_fail", method, path), faults.take("deletion_delay", method, path)
    deletion_id = str(uuid.uuid4())
    with store.write() as conn:
        conn.execute("INSERT INTO deletions VALUES (?, 'Started', ?, ?, ?, ?)",
                     (deletion_id, book_id, json.dumps(ids), "Failed" if failed else "Completed",
                      time.time() + (delay.latency_ms / 1000 if delay else 0)))
    _settle_deletion(store, deletion_id)
    return {"id": deletion_id, "status": "Started"}


def deletion_status(store: AccountStore, deletion_id: str) -> dict[str, Any]:
    if store.scalar("SELECT 1 FROM deletions WHERE id = ?", deletion_id) is None:
        raise ApiError("ERROR_PARAMETER_INVALID", "No bulk deletion has that id.")
    return {"id": deletion_id, "status": _settle_deletion(store, deletion_id)}


def _settle_deletion(store: AccountStore, deletion_id: str) -> str:
    """End a deletion that is due (removing its contacts when it completes); return its status."""
    status, book_id, ids, outcome, ready_at = store.one(
        "SELECT status, book_id, contact_ids, outcome, ready_at FROM deletions WHERE id = ?", deletion_id)
    if status != "Started" or time.time() < ready_at:
        return status
    if outcome == "Completed":
        remove_from_book(store, book_id, json.loads(ids))
    with store.write() as conn:
        conn.execute("UPDATE deletions SET status = ? WHERE id = ?", (outcome, deletion_id))
    return outcome


# --- unsubscribes, suppressions, resubscribes ---------------------------------------------------------------

def _identify(store: AccountStore, body: Any) -> tuple | None:
    """The contact a body names by id or email, or None."""
    contact_id = field(body, "id")
    if contact_id:
        return _select_contact(store, "c.id = ?", as_int(contact_id, "id"))
    email = normalise_email(field(body, "email"))
    if not valid_email(email):
        raise ApiError("ERROR_PARAMETER_INVALID", "Email is not a valid email address.")
    return _select_contact(store, "c.email = ?", email)


def suppress(store: AccountStore, email: str, reason: str, when: str | None = None) -> dict[str, Any]:
    """Suppress an address account-wide (creating the contact if the account never had it)."""
    when = when or now_iso()
    with store.write() as conn:
        row = _select_contact(conn, "c.email = ?", email)
        contact_id = row[0] if row else _upsert(conn, {"email": email, "data": {}, "opt_in_type": "Unknown",
                                                       "email_type": "Html"})
        conn.execute("UPDATE contacts SET status = ?, modified = ? WHERE id = ?", (reason, when, contact_id))
        conn.execute("INSERT OR REPLACE INTO suppressions VALUES (?, ?, ?)", (contact_id, reason, when))
    return {"suppressedContact": contact_json(_select_contact(store, "c.id = ?", contact_id), False),
            "dateRemoved": when, "reason": reason}


def unsubscribe(store: AccountStore, body: Any) -> dict[str, Any]:
    row = _identify(store, body)
    if row is None and field(body, "id"):
        raise ApiError("ERROR_CONTACT_NOT_FOUND")
    return suppress(store, row[1] if row else normalise_email(field(body, "email")), "Unsubscribed")


def suppress_many(store: AccountStore, body: Any) -> dict[str, list[dict[str, Any]]]:
    """PUT contacts/suppress-contacts: suppress the contacts named by id or email; unknown ones are reported."""
    suppressed, not_found = [], []
    for item in as_list(body):
        row = _identify(store, item)
        if row is None:
            not_found.append({"id": as_int(field(item, "id") or 0, "id"), "email": field(item, "email")})
        else:
            suppress(store, row[1], "Suppressed")
            suppressed.append({"id": row[0], "email": row[1]})
    return {"suppressed": suppressed, "notFound": not_found}


def unsubscribe_from_book(store: AccountStore, book_id: int, body: Any) -> dict[str, Any]:
    """List-level unsubscribe: the contact leaves the book and stays Subscribed account-wide."""
    get_book(store, book_id)
    row = _identify(store, body)
    if row is None:
        raise ApiError("ERROR_CONTACT_NOT_FOUND")
    when = now_iso()
    with store.write() as conn:
        conn.execute("DELETE FROM members WHERE book_id = ? AND contact_id = ?", (book_id, row[0]))
        conn.execute("INSERT OR REPLACE INTO book_unsubscribes VALUES (?, ?, ?)", (book_id, row[0], when))
        conn.execute("UPDATE contacts SET modified = ? WHERE id = ?", (when, row[0]))
    return {"suppressedContact": contact_json(row, False), "dateRemoved": when, "reason": "Unsubscribed"}


def resubscribe(store: AccountStore, body: Any, challenge: bool, book_id: int | None = None) -> dict[str, Any]:
    """Resubscribe an unsubscribed contact; with a challenge it stays Unsubscribed until confirmed."""
    if book_id is not None:
        writable_book(store, book_id)
    target = field(body, "unsubscribedContact")
    if not isinstance(target, dict):
        raise ApiError("ERROR_CONTACT_INVALID", "'unsubscribedContact' is required.")
    row = _identify(store, target)
    if row is None:
        raise ApiError("ERROR_CONTACT_NOT_FOUND")
    if row[5] not in ("Subscribed", "Unsubscribed"):
        return {"contact": contact_json(row), "status": "ContactCannotBeUnsuppressed"}
    if row[5] == "Unsubscribed" and challenge:
        return {"contact": contact_json(row), "status": "ContactChallenged"}
    with store.write() as conn:
        conn.execute("UPDATE contacts SET status = 'Subscribed', modified = ? WHERE id = ?", (now_iso(), row[0]))
        conn.execute("DELETE FROM suppressions WHERE contact_id = ?", (row[0],))
        if book_id is not None:
            conn.execute("DELETE FROM book_unsubscribes WHERE book_id = ? AND contact_id = ?", (book_id, row[0]))
            conn.execute("INSERT OR IGNORE INTO members VALUES (?, ?)", (book_id, row[0]))
    return {"contact": contact_json(_select_contact(store, "c.id = ?", row[0])), "status": "ContactAdded"}


def suppressions_since(store: AccountStore, since: str, select: int, skip: int,
                       reasons: tuple[str, ...] = SUPPRESSED_STATUSES) -> list[dict]:
    marks = ",".join("?" * len(reasons))
    rows = store.all(f"SELECT {CONTACT_COLUMNS}, s.date_removed, s.reason FROM suppressions s "
                     f"JOIN contacts c ON c.id = s.contact_id WHERE s.date_removed >= ? AND s.reason IN ({marks}) "
                     "ORDER BY s.date_removed, c.id LIMIT ? OFFSET ?", since, *reasons, select, skip)
    return [{"suppressedContact": contact_json(row, False), "dateRemoved": row[6], "reason": row[7]}
            for row in rows]


def book_unsubscribed_since(store: AccountStore, book_id: int, since: str, select: int, skip: int) -> list[dict]:
    """Unsubscribes from this book, and account-wide unsubscribes of its members."""
    get_book(store, book_id)
    rows = store.all(
        f"SELECT {CONTACT_COLUMNS}, u.date_removed FROM book_unsubscribes u JOIN contacts c ON c.id = u.contact_id "
        "WHERE u.book_id = ? AND u.date_removed >= ? "
        f"UNION SELECT {CONTACT_COLUMNS}, s.date_removed FROM suppressions s JOIN contacts c ON c.id = s.contact_id "
        "JOIN members m ON m.contact_id = c.id AND m.book_id = ? "
        "WHERE s.reason = 'Unsubscribed' AND s.date_removed >= ? ORDER BY 7, 1 LIMIT ? OFFSET ?",
        book_id, since, book_id, since, select, skip)
    return [{"suppressedContact": contact_json(row, False), "dateRemoved": row[6], "reason": "Unsubscribed"}
            for row in rows]

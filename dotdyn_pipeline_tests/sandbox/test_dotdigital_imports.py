"""Bulk contact import: asynchronous status, report, faults CSV with reasons, merge options, forced failures."""

from __future__ import annotations

import base64
import csv
import io
from typing import Any

import httpx
import pytest

from dotdyn_pipeline_tests.sandbox.dotdigital_helpers import (
    check_swagger,
    finished_import,
    message_of,
    rest,
    unique,
)


@pytest.fixture
def api(sandbox: dict[str, Any]) -> httpx.Client:
    with rest(sandbox) as client:
        yield client


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _upload(api: httpx.Client, path: str, data: bytes) -> httpx.Response:
    return api.post(path, files={"file": ("contacts.csv", data, "text/csv")})


def _faults(api: httpx.Client, import_id: str) -> list[dict[str, str]]:
    response = check_swagger(api.get(f"/v2/contacts/import/{import_id}/report-faults"))
    return list(csv.DictReader(io.StringIO(response.decode("utf-8"))))


def test_import_lifecycle_report_and_fault_reasons(api, control, sandbox):
    field = unique("SCORE").upper()[:20]
    api.post("/v2/data-fields", json={"name": field, "type": "Numeric"}).raise_for_status()
    book = api.post("/v2/address-books", json={"name": unique("Import ")}).json()["id"]
    suppressed, unsubscribed, left = (f"{unique(kind)}@example.com" for kind in ("supp.", "unsub.", "left."))
    control.post("/dotdigital/accounts/1/suppress", json={"email": suppressed, "reason": "HardBounced"}
                 ).raise_for_status()
    api.post("/v2/contacts/unsubscribe", json={"email": unsubscribed}).raise_for_status()
    api.post(f"/v2/address-books/{book}/contacts", json={"email": left}).raise_for_status()
    api.post(f"/v2/address-books/{book}/contacts/unsubscribe", json={"email": left}).raise_for_status()
    good = [f"{unique('new.')}@example.com" for _ in range(3)]
    rows = [[good[0], "Ada", "10"], [good[1].upper(), "Bea", ""], [good[2], "Cy", "7.5"],
            ["not-an-email", "Dee", "1"], [good[0], "Ada again", "11"], [suppressed, "Eve", "2"],
            [unsubscribed, "Flo", "3"], [left, "Gus", "4"], [f"{unique('bad.')}@example.com", "Hal", "lots"]]
    control.post("/faults/dotdigital", json={"kind": "import_delay", "latency_ms": 1500, "count": 1}
                 ).raise_for_status()
    started = check_swagger(_upload(api, f"/v2/address-books/{book}/contacts/import",
                                    _csv(["email", "FirstName", field.lower()], rows)))
    assert started["status"] == "NotFinished"
    assert check_swagger(api.get(f"/v2/contacts/import/{started['id']}"))["status"] == "NotFinished"
    early = api.get(f"/v2/contacts/import/{started['id']}/report")
    assert early.status_code == 404 and message_of(early).endswith("ERROR_IMPORT_REPORT_NOT_FOUND")

    assert finished_import(api, started["id"])["status"] == "Finished"
    report = check_swagger(api.get(f"/v2/contacts/import/{started['id']}/report"))
    assert (report["newContacts"], report["invalidEntries"], report["duplicateEmails"], report["hardBounced"],
            report["unsubscribed"], report["failures"]) == (3, 1, 1, 1, 2, 1)
    faults = _faults(api, started["id"])
    assert list(faults[0])[0] == "Reason"
    assert sorted(f["Reason"] for f in faults) == sorted(
        ["InvalidEmail", "Duplicate", "HardBounced", "Unsubscribed", "Unsubscribed", "InvalidData"])
    assert {f["email"] for f in faults if f["Reason"] == "Unsubscribed"} == {unsubscribed, left}

    members = {m["email"]: m for m in api.get(f"/v2/address-books/{book}/contacts",
                                               params={"withFullData": "true"}).json()}
    assert set(members) == set(good)  # suppressed, unsubscribed and list-unsubscribed are not re-added
    assert {"key": field, "value": 10} in members[good[0]]["dataFields"]
    assert {"key": "FIRSTNAME", "value": "Bea"} in members[good[1]]["dataFields"]
    assert api.get(f"/v2/contacts/{suppressed}").json()["status"] == "HardBounced"


def test_merge_options_decide_what_blank_values_do(api):
    book = api.post("/v2/address-books", json={"name": unique("Merge ")}).json()["id"]
    email = f"{unique('merge.')}@example.com"
    api.post(f"/v2/address-books/{book}/contacts", json={"email": email, "dataFields": [
        {"key": "FIRSTNAME", "value": "Kept"}, {"key": "LASTNAME", "value": "Old"}]}).raise_for_status()

    def import_with(option: str, first: str, last: str) -> dict[str, Any]:
        started = check_swagger(_upload(api, f"/v2/address-books/{book}/contacts/import/with-merge-option/{option}",
                                        _csv(["Email", "FIRSTNAME", "LASTNAME"], [[email, first, last]])))
        assert finished_import(api, started["id"])["status"] == "Finished"
        contact = api.get(f"/v2/contacts/{email}").json()
        return {item["key"]: item["value"] for item in contact["dataFields"]}

    assert import_with("OnlyOverwriteIfNotEmpty", "", "New") == {"FIRSTNAME": "Kept", "LASTNAME": "New"}
    assert import_with("2", "Ignored", "Ignored") == {"FIRSTNAME": "Kept", "LASTNAME": "New"}
    assert import_with("Overwrite", "", "Newer") == {"LASTNAME": "Newer"}


def test_import_as_json_file_media_without_a_book(api):
    email = f"{unique('media.')}@example.com"
    body = {"FileName": "contacts.csv", "Data": base64.b64encode(_csv(["Email"], [[email]])).decode()}
    started = check_swagger(api.post("/v2/contacts/import", json=body))
    assert finished_import(api, started["id"])["status"] == "Finished"
    assert check_swagger(api.get(f"/v2/contacts/import/{started['id']}/report"))["newContacts"] == 1
    assert api.get(f"/v2/contacts/{email}").status_code == 200


def test_upload_errors(api):
    book = api.post("/v2/address-books", json={"name": unique("Errors ")}).json()["id"]
    no_email = _upload(api, f"/v2/address-books/{book}/contacts/import", _csv(["Name"], [["x"]]))
    assert no_email.status_code == 400 and message_of(no_email).endswith("ERROR_NO_EMAIL_COLUMN")
    two = api.post(f"/v2/address-books/{book}/contacts/import",
                   files=[("a", ("a.csv", b"Email\na@example.com\n", "text/csv")),
                          ("b", ("b.csv", b"Email\nb@example.com\n", "text/csv"))])
    assert two.status_code == 400 and message_of(two).endswith("ERROR_MULTI_FILE_UPLOAD_NOT_ALLOWED")
    test_book = _upload(api, "/v2/address-books/1/contacts/import", b"Email\na@example.com\n")
    assert test_book.status_code == 400 and message_of(test_book).endswith("ERROR_ADDRESSBOOK_NOTWRITABLE")
    missing = _upload(api, "/v2/address-books/876543/contacts/import", b"Email\na@example.com\n")
    assert missing.status_code == 404 and message_of(missing).endswith("ERROR_ADDRESSBOOK_NOT_FOUND")


@pytest.mark.parametrize(("kind", "status"), [("import_reject", "RejectedByWatchdog"), ("import_fail", "Failed")])
def test_forced_import_outcomes_load_nothing(api, control, kind, status):
    book = api.post("/v2/address-books", json={"name": unique("Forced ")}).json()["id"]
    control.post("/faults/dotdigital", json={"kind": kind, "count": 1}).raise_for_status()
    started = check_swagger(_upload(api, f"/v2/address-books/{book}/contacts/import",
                                    _csv(["Email"], [[f"{unique('f.')}@example.com"]])))
    assert started["status"] == "NotFinished"
    assert finished_import(api, started["id"])["status"] == status
    report = api.get(f"/v2/contacts/import/{started['id']}/report")
    assert report.status_code == 404 and message_of(report).endswith("ERROR_IMPORT_REPORT_NOT_FOUND")
    assert api.get(f"/v2/address-books/{book}").json()["contacts"] == 0
    assert control.get(f"/dotdigital/accounts/1/imports/{started['id']}").json()["status"] == status

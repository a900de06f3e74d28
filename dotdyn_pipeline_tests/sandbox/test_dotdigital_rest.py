"""The Dotdigital stand-in's REST v2 API, checked against the official swagger and the reference notes."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.sandbox.people import person
from dotdyn_pipeline_tests.sandbox.dotdigital_helpers import check_swagger, message_of, poll, rest, unique

SINCE = "2000-01-01T00:00:00Z"


@pytest.fixture
def api(sandbox: dict[str, Any]) -> httpx.Client:
    with rest(sandbox) as client:
        yield client


def _new_book(api: httpx.Client) -> int:
    return check_swagger(api.post("/v2/address-books", json={"name": unique("Book ")}))["id"]


def _sent_campaign(api: httpx.Client) -> dict[str, Any]:
    return next(c for c in check_swagger(api.get("/v2/campaigns")) if c["status"] == "Sent")


def test_account_info_names_this_sandbox_as_the_region_endpoint(api, sandbox):
    info = check_swagger(api.get("/v2/account-info"))
    properties = {p["name"]: p["value"] for p in info["properties"]}
    assert properties["ApiEndpoint"] == sandbox["dotdigital_url"] + "/"
    assert int(properties["ApiCallsRemaining"]) > 0
    assert properties["MainEmail"] == sandbox["accounts"][0]["api_user"]


def test_wrong_password_gets_the_documented_401_and_is_noted_by_its_digest(sandbox, control):
    password = unique("not-the-password-")
    with rest(sandbox, password=password) as client:
        response = client.get("/v2/account-info")
    assert response.status_code == 401
    assert message_of(response) == "Authorization has been denied for this request."
    refused = control.get("/dotdigital/refused-sign-ins").raise_for_status()
    assert {"api_user": sandbox["accounts"][0]["api_user"], "count": 1,
            "password_sha256": hashlib.sha256(password.encode()).hexdigest()} in refused.json()
    assert password not in refused.text, "the stand-in keeps no password it was given"


def test_accounts_are_separate(sandbox):
    name = unique("Only in one ")
    with rest(sandbox, 0) as first, rest(sandbox, 1) as second:
        first.post("/v2/address-books", json={"name": name}).raise_for_status()
        assert name in {book["name"] for book in check_swagger(first.get("/v2/address-books"))}
        assert name not in {book["name"] for book in check_swagger(second.get("/v2/address-books"))}


def test_address_books_create_read_and_page(api):
    created = check_swagger(api.post("/v2/address-books", json={"name": unique("Members "), "visibility": "Public"}))
    assert api.post("/v2/address-books", json={"name": created["name"]}).status_code == 400
    assert check_swagger(api.get(f"/v2/address-books/{created['id']}")) == {**created, "contacts": 0}
    everything = check_swagger(api.get("/v2/address-books", params={"select": 1000}))
    assert check_swagger(api.get("/v2/address-books", params={"select": 2, "skip": 1})) == everything[1:3]
    assert created in check_swagger(api.get("/v2/address-books/public"))


@pytest.mark.parametrize("name", ["Test", "all contacts"])
def test_reserved_address_book_names_are_duplicates(api, name):
    response = api.post("/v2/address-books", json={"name": name})
    assert response.status_code == 400 and message_of(response).endswith("ERROR_ADDRESSBOOK_DUPLICATE")


def test_unknown_address_book_is_404_with_the_error_code(api):
    response = api.get("/v2/address-books/987654")
    assert response.status_code == 404
    assert message_of(response).endswith("ERROR_ADDRESSBOOK_NOT_FOUND")


@pytest.mark.parametrize("select", [0, 1001, -5])
def test_select_outside_1_to_1000_is_refused(api, select):
    response = api.get("/v2/contacts", params={"select": select})
    assert response.status_code == 400 and message_of(response).endswith("ERROR_PARAMETER_INVALID")


def test_query_names_and_json_keys_are_case_insensitive(api):
    book = api.post("/v2/address-books", json={"NAME": unique("Cased "), "Visibility": "public"}).json()
    assert book["visibility"] == "Public"
    contact = check_swagger(api.post(f"/v2/address-books/{book['id']}/contacts",
                                     json={"Email": f"{unique('cased.')}@example.com", "OptInType": "Double",
                                           "DataFields": [{"Key": "firstname", "Value": "Ada"}]}))
    assert contact["optInType"] == "Double"
    assert {"key": "FIRSTNAME", "value": "Ada"} in contact["dataFields"]
    lower = api.get("/v2/address-books", params={"select": 1, "skip": 1}).json()
    assert api.get("/v2/address-books", params={"Select": 1, "SKIP": 1}).json() == lower
    members = api.get(f"/v2/address-books/{book['id']}/contacts", params={"WithFullData": "TRUE"}).json()
    assert members[0]["dataFields"] is not None


def test_data_fields_follow_the_name_rules(api):
    name = unique("F_").upper()
    assert check_swagger(api.post("/v2/data-fields", json={"name": name, "type": "Numeric"})) is not None
    assert {"name": name, "type": "Numeric", "visibility": "Private", "defaultValue": None} in check_swagger(
        api.get("/v2/data-fields"))
    duplicate = api.post("/v2/data-fields", json={"name": name.lower(), "type": "String"})
    assert duplicate.status_code == 400 and message_of(duplicate) == "Field already exists. ERROR_NON_UNIQUE_DATAFIELD"
    for bad in ("HAS SPACE", "X" * 21, "", "ÜBER"):
        response = api.post("/v2/data-fields", json={"name": bad, "type": "String"})
        assert response.status_code == 400 and message_of(response).endswith("ERROR_DATAFIELD_INVALID"), bad


def test_contact_create_get_and_email_change_keeps_the_contact(api):
    email = f"{unique('first.')}@example.com"
    created = check_swagger(api.post("/v2/contacts", json={"email": email,
                                                          "dataFields": [{"key": "LASTNAME", "value": "Lovelace"}]}))
    assert created["email"] == email and created["status"] == "Subscribed"
    assert check_swagger(api.get(f"/v2/contacts/{created['id']}"))["email"] == email
    changed = f"{unique('second.')}@example.com"
    updated = check_swagger(api.put(f"/v2/contacts/{created['id']}",
                                    json={"id": created["id"], "email": changed.upper(), "dataFields": []}))
    assert updated["id"] == created["id"] and updated["email"] == changed
    assert {"key": "LASTNAME", "value": "Lovelace"} in updated["dataFields"]
    assert check_swagger(api.get(f"/v2/contacts/{changed}"))["id"] == created["id"]
    gone = api.get(f"/v2/contacts/{email}")
    assert gone.status_code == 404 and message_of(gone).endswith("ERROR_CONTACT_NOT_FOUND")


def test_contact_with_an_unknown_data_field_or_bad_email_is_refused(api):
    response = api.post("/v2/contacts", json={"email": "a@example.com", "dataFields": [{"key": "NOPE", "value": 1}]})
    assert response.status_code == 400 and message_of(response).endswith("ERROR_DATAFIELD_NOTFOUND")
    response = api.post("/v2/contacts", json={"email": "not an email"})
    assert response.status_code == 400 and message_of(response).endswith("ERROR_PARAMETER_INVALID")


def test_book_membership_add_remove_and_bulk_delete(api):
    book = _new_book(api)
    ids = [api.post(f"/v2/address-books/{book}/contacts", json={"email": f"{unique('m.')}@example.com"}).json()["id"]
           for _ in range(3)]
    members = check_swagger(api.get(f"/v2/address-books/{book}/contacts"))
    assert [m["id"] for m in members] == sorted(ids) and all(m["dataFields"] is None for m in members)
    assert check_swagger(api.delete(f"/v2/address-books/{book}/contacts/{ids[0]}")) == b""
    deletion = check_swagger(api.post(f"/v2/address-books/{book}/contacts/delete", json=[ids[1]]))
    assert deletion["status"] == "Started"
    assert check_swagger(api.get(f"/v2/contacts/deletion/{deletion['id']}"))["status"] == "Completed"
    assert [m["id"] for m in api.get(f"/v2/address-books/{book}/contacts").json()] == [ids[2]]
    assert api.get(f"/v2/address-books/{book}").json()["contacts"] == 1


def test_test_address_book_is_not_writable(api):
    response = api.post("/v2/address-books/1/contacts", json={"email": "x@example.com"})
    assert response.status_code == 400 and message_of(response).endswith("ERROR_ADDRESSBOOK_NOTWRITABLE")


def test_unsubscribe_suppresses_and_resubscribe_restores(api):
    email = f"{unique('leaver.')}@example.com"
    contact = api.post("/v2/contacts", json={"email": email}).json()
    before = datetime.now(UTC) - timedelta(seconds=5)
    suppression = check_swagger(api.post("/v2/contacts/unsubscribe", json={"Email": email}))
    assert suppression["reason"] == "Unsubscribed" and suppression["suppressedContact"]["id"] == contact["id"]
    since = before.strftime("%Y-%m-%dT%H:%M:%S")
    for path in (f"/v2/contacts/suppressed-since/{since}", f"/v2/contacts/unsubscribed-since/{since}"):
        assert email in {s["suppressedContact"]["email"] for s in check_swagger(api.get(path))}
    assert api.get(f"/v2/contacts/{contact['id']}").status_code == 404  # by id, suppressed contacts are hidden
    assert api.get(f"/v2/contacts/{email}").json()["status"] == "Unsubscribed"
    refused = api.post("/v2/contacts", json={"email": email})
    assert refused.status_code == 400 and message_of(refused).endswith("ERROR_CONTACT_SUPPRESSED")
    challenged = check_swagger(api.post("/v2/contacts/resubscribe", json={"unsubscribedContact": {"email": email}}))
    assert challenged["status"] == "ContactChallenged" and challenged["contact"]["status"] == "Unsubscribed"
    added = check_swagger(api.post("/v2/contacts/resubscribe-with-no-challenge",
                                   json={"UnsubscribedContact": {"Email": email}}))
    assert added["status"] == "ContactAdded" and added["contact"]["status"] == "Subscribed"


def test_bulk_suppress_reports_the_unknown(api):
    email = f"{unique('bulk.')}@example.com"
    known = api.post("/v2/contacts", json={"email": email}).json()
    nobody = f"{unique('nobody.')}@example.com"
    result = check_swagger(api.put("/v2/contacts/suppress-contacts", json=[{"Email": email}, {"email": nobody},
                                                                          {"id": 5}]))
    assert result["suppressed"] == [{"id": known["id"], "email": email}]
    assert [item["email"] for item in result["notFound"]] == [nobody, None]
    assert api.get(f"/v2/contacts/{email}").json()["status"] == "Suppressed"


def test_book_unsubscribe_is_list_level(api):
    book = _new_book(api)
    email = f"{unique('listleaver.')}@example.com"
    api.post(f"/v2/address-books/{book}/contacts", json={"email": email}).raise_for_status()
    result = check_swagger(api.post(f"/v2/address-books/{book}/contacts/unsubscribe", json={"email": email}))
    assert result["reason"] == "Unsubscribed" and result["suppressedContact"]["status"] == "Subscribed"
    listed = check_swagger(api.get(f"/v2/address-books/{book}/contacts/unsubscribed-since/2020-01-01"))
    assert [s["suppressedContact"]["email"] for s in listed] == [email]
    assert api.get(f"/v2/contacts/{email}").json()["status"] == "Subscribed"
    again = api.post(f"/v2/address-books/{book}/contacts", json={"email": email})
    assert again.status_code == 400 and message_of(again).endswith("ERROR_CONTACT_SUPPRESSEDFORADDRESSBOOK")


@pytest.mark.parametrize("date", ["2020-01-01", "2020-01-01T00:00:00", "2020-01-01T00:00:00+00:00",
                                  "2020-01-01T00:00:00.000Z"])
def test_since_dates_accept_the_formats_clients_send(api, date):
    assert check_swagger(api.get(f"/v2/contacts/modified-since/{date}", params={"select": 5}))


def test_a_since_date_that_is_not_a_date_is_refused(api):
    response = api.get("/v2/contacts/suppressed-since/yesterday")
    assert response.status_code == 400 and message_of(response).endswith("ERROR_PARAMETER_INVALID")


def test_historical_contacts_are_the_dataverse_people(api, sandbox):
    contacts = check_swagger(api.get("/v2/contacts", params={"select": 50, "withFullData": "true"}))
    assert len(contacts) == 50
    for contact in contacts:
        source = person(sandbox["seed"], "contact", contact["id"] - 100_000_000)
        assert source.email.strip().lower() == contact["email"]
        assert {"key": "FIRSTNAME", "value": source.first_name} in contact["dataFields"]


def test_campaign_reporting_is_consistent(api):
    campaign = _sent_campaign(api)
    assert check_swagger(api.get(f"/v2/campaigns/{campaign['id']}")) == campaign
    assert campaign in check_swagger(api.get(f"/v2/campaigns/with-activity-since/{SINCE}"))
    summary = check_swagger(api.get(f"/v2/campaigns/{campaign['id']}/summary"))
    rows, skip = [], 0
    while page := check_swagger(api.get(f"/v2/campaigns/{campaign['id']}/activities/since-date/{SINCE}",
                                        params={"select": 100, "skip": skip})):
        rows += page
        skip += 100
    assert summary["numTotalSent"] == len(rows) > 0
    assert summary["numTotalOpens"] == sum(r["numOpens"] for r in rows)
    assert summary["numTotalHardBounces"] == sum(r["hardBounced"] for r in rows)
    clicks = check_swagger(api.get(f"/v2/campaigns/{campaign['id']}/clicks/since-date/{SINCE}"))
    assert len(clicks) == summary["numTotalClicks"] > 0
    clickers = {r["contactId"] for r in rows if r["numClicks"]}
    assert {c["contactId"] for c in clicks} == clickers
    assert all(c["url"].startswith("https://") and c["ipAddress"] and c["userAgent"] and c["keyword"] for c in clicks)
    roi = check_swagger(api.get(f"/v2/campaigns/{campaign['id']}/roi-details/since-date/{SINCE}"))
    assert roi and {r["contactId"] for r in roi} <= clickers
    assert {r["markerName"] for r in roi} == {"Revenue", "ProductCategory"}
    bounced = check_swagger(api.get(f"/v2/campaigns/{campaign['id']}/hard-bouncing-contacts"))
    assert {c["id"] for c in bounced} == {r["contactId"] for r in rows if r["hardBounced"]}
    assert all(c["status"] in ("HardBounced", "Unsubscribed") for c in bounced)


def test_activities_since_a_date_only_return_later_activity(api):
    campaign = _sent_campaign(api)
    late = api.get(f"/v2/campaigns/{campaign['id']}/activities/since-date/2999-01-01").json()
    assert late == []


def test_sending_to_a_book_generates_engagement_for_its_members(api):
    book = _new_book(api)
    emails = {f"{unique('reader.')}@example.com" for _ in range(40)}
    for email in emails:
        api.post(f"/v2/address-books/{book}/contacts", json={"email": email}).raise_for_status()
    campaign = next(c for c in api.get("/v2/campaigns").json() if c["status"] == "Unsent")
    before = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S")
    send = check_swagger(api.post("/v2/campaigns/send", json={"CampaignId": campaign["id"], "addressBookIds": [book]}))
    assert send["campaignId"] == campaign["id"] and send["addressBookIds"] == [book]
    poll(lambda: check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["status"] == "Sent")
    rows = check_swagger(api.get(f"/v2/campaigns/{campaign['id']}/activities/since-date/{before}"))
    assert {r["email"] for r in rows} == emails
    assert api.get(f"/v2/campaigns/{campaign['id']}").json()["status"] == "Sent"
    assert check_swagger(api.get(f"/v2/campaigns/{campaign['id']}/summary"))["numTotalSent"] >= len(emails)


def test_unknown_campaign_and_import_are_404(api):
    assert message_of(api.get("/v2/campaigns/99999/summary")).endswith("ERROR_CAMPAIGN_NOT_FOUND")
    missing = api.get(f"/v2/contacts/import/{'0' * 8}-0000-0000-0000-{'0' * 12}")
    assert missing.status_code == 404 and message_of(missing).endswith("ERROR_IMPORT_NOT_FOUND")


def test_history_is_deterministic_by_seed(tmp_path):
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.dotdigital.engagement import seed_account
    from dotdyn_pipeline.sandbox.dotdigital.store import AccountStore

    anchor = datetime(2026, 1, 1, tzinfo=UTC)

    def history(seed: int, name: str) -> list[tuple]:
        store = AccountStore(tmp_path / f"{name}.db")
        seed_account(store, SandboxSettings(seed=seed, contacts=200, leads=50, accounts=20, days=5), 0, "A", None,
                     anchor)
        return store.all("SELECT * FROM activities ORDER BY campaign_id, contact_id") + store.all(
            "SELECT * FROM clicks ORDER BY id") + store.all("SELECT * FROM roi ORDER BY id")

    first = history(3, "first")
    assert first and history(3, "again") == first
    assert history(random.randint(4, 10**6), "other") != first

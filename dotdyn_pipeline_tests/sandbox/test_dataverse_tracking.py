"""Contract tests of Dataverse change tracking: initial sync, delta links, deletions, token errors,
untracked tables, and the control routes that make changes for incremental runs."""

from __future__ import annotations

import httpx

from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import PRIVATE, error_of

# Fixtures shared by the Dataverse contract tests.
pdv = helpers.pdv
private_control = helpers.private_control
private_sandbox = helpers.private_sandbox

TRACK = {"Prefer": "odata.track-changes,odata.maxpagesize=100"}


def _sync(client: httpx.Client, url: str, **params: str) -> tuple[list[dict], str]:
    """Every page of a tracked read; (rows, deltaLink of the last page)."""
    rows, response = [], client.get(url, params=params or None, headers=TRACK)
    while True:
        response.raise_for_status()
        page = response.json()
        rows += page["value"]
        if "@odata.nextLink" not in page:
            return rows, page["@odata.deltaLink"]
        assert "@odata.deltaLink" not in page
        response = client.get(page["@odata.nextLink"], headers=TRACK)


def test_initial_sync_then_delta_with_updates_creations_and_deletions(pdv, private_control):
    first = pdv.get("leads", params={"$select": "fullname"}, headers=TRACK)
    assert set(first.headers["preference-applied"].split(",")) == {"odata.track-changes", "odata.maxpagesize=100"}
    rows, delta = _sync(pdv, "leads", **{"$select": "fullname,emailaddress1"})
    assert len(rows) == PRIVATE.leads
    assert pdv.get(delta).json()["value"] == []  # nothing changed yet

    changes = private_control.post("/dataverse/seed-changes", json={
        "set": "leads", "seed": 1, "modify": 3, "change_emails": 2, "delete": 2, "create": 1}).json()
    assert len(changes["delete"]) == 2 and len(changes["create"]) == 1
    changed, next_delta = _sync(pdv, delta)
    updated = {r["leadid"] for r in changed if "leadid" in r}
    deleted = [r for r in changed if r.get("reason") == "deleted"]
    assert updated == set(changes["modify"]) | set(changes["change_emails"]) | set(changes["create"])
    assert {r["id"] for r in deleted} == set(changes["delete"])
    assert all(r["@odata.context"].endswith("$metadata#leads/$deletedEntity") for r in deleted)
    assert changed.index(deleted[0]) > max(i for i, r in enumerate(changed) if "leadid" in r)  # deletions last
    assert set(next(iter(r for r in changed if "leadid" in r))) == {"@odata.etag", "leadid", "fullname",
                                                                   "emailaddress1"}
    assert pdv.get(next_delta).json()["value"] == []


def test_delta_pages_when_many_rows_changed(pdv, private_control):
    _, delta = _sync(pdv, "contacts", **{"$select": "lastname"})
    touched = private_control.post("/dataverse/seed-changes", json={"set": "contacts", "seed": 2,
                                                                    "modify": 250, "delete": 20}).json()
    changed, _ = _sync(pdv, delta)
    assert len(changed) == 270
    assert {r["id"] for r in changed if "id" in r} == set(touched["delete"])


def test_delta_token_errors(pdv, private_control):
    _, delta = _sync(pdv, "accounts", **{"$select": "name"})
    tampered = pdv.get(delta.replace("$deltatoken=", "$deltatoken=AA"))
    assert tampered.status_code == 400 and "not valid" in error_of(tampered)["message"]
    private_control.post("/dataverse/delta-tokens/expire").raise_for_status()
    expired = pdv.get(delta)
    assert expired.status_code == 400 and "expired" in error_of(expired)["message"]


def test_query_options_that_change_tracking_refuses(pdv):
    response = pdv.get("contacts", params={"$filter": "statecode eq 0"}, headers=TRACK)
    assert response.status_code == 400
    assert error_of(response)["message"] == ('The "$filter" query parameter isn\'t supported when Change Tracking '
                                             "is enabled.")
    assert pdv.get("contacts", params={"$top": "5"}, headers=TRACK).status_code == 400


def test_untracked_table_ignores_the_preference_so_clients_use_a_modifiedon_watermark(pdv, private_control):
    response = pdv.get("esc_crmfields", params={"$select": "esc_name"}, headers=TRACK)
    assert response.status_code == 200
    assert "odata.track-changes" not in response.headers.get("preference-applied", "")
    assert "@odata.deltaLink" not in response.json()
    last = max(r["modifiedon"] for r in pdv.get("esc_crmfields", params={"$select": "modifiedon"}).json()["value"])
    private_control.post("/dataverse/rows/esc_crmfields", json={
        "esc_name": "contact.telephone1", "esc_entityname": "contact", "esc_attributename": "telephone1"})
    newer = pdv.get("esc_crmfields", params={"$filter": f"modifiedon gt {last}", "$orderby": "modifiedon asc",
                                             "$select": "esc_attributename"}).json()["value"]
    assert [r["esc_attributename"] for r in newer] == ["telephone1"]


def test_control_routes_read_and_write_raw_rows(private_control):
    stats = private_control.get("/dataverse/stats").json()
    assert stats["tables"]["esc_emailaccounts"] == PRIVATE.email_accounts and stats["version"] > 0
    written = private_control.post("/dataverse/rows/contacts", json={
        "lastname": "Raw", "modifiedon": "2020-01-01T00:00:00Z", "statecode": 1}).json()
    assert written["modifiedon"] == "2020-01-01T00:00:00Z" and written["statecode"] == 1
    found = private_control.get("/dataverse/rows/contacts", params={"$filter": "lastname eq 'Raw'"}).json()["value"]
    assert [r["contactid"] for r in found] == [written["contactid"]]
    assert private_control.delete(f"/dataverse/rows/contacts/{written['contactid']}").json() == {"deleted": True}

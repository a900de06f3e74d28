"""MarcusRisanger's dataverse-api, unchanged, against the stand-in: the operations its README documents.

Each test runs the client in its own environment and checks the outcome through the stand-in's Web API.
"""

from __future__ import annotations

import uuid


def test_read_with_select_filter_top_order_and_page_size(dataverse_api, stand_in):
    outcome = dataverse_api("read", top=9, page_size=4)
    assert (outcome["entity_set"], outcome["primary_id"]) == ("contacts", "contactid")
    expected = stand_in.get("contacts", params={"$select": "fullname,emailaddress1", "$filter": "statecode eq 0",
                                                "$orderby": "fullname desc", "$top": "9"}).json()["value"]
    assert outcome["rows"] == expected


def test_create_individually_with_create_multiple_and_in_a_batch(dataverse_api, stand_in):
    prefix = f"Created {uuid.uuid4().hex[:8]}"
    outcome = dataverse_api("create", prefix=prefix, count=3)
    assert outcome["supports_create_multiple"] is True
    assert all(status in (200, 201, 204) for statuses in outcome["statuses"].values() for status in statuses)
    names = {row["name"] for row in stand_in.get("accounts", params={
        "$select": "name", "$filter": f"startswith(name, '{prefix}')"}).json()["value"]}
    assert names == {f"{prefix} {mode} {n}" for mode in ("individual", "multiple", "batch") for n in range(3)}


def test_upsert_by_alternate_key(dataverse_api, stand_in):
    users = [f"altkey-{uuid.uuid4().hex[:8]}@example.com" for _ in range(2)]
    outcome = dataverse_api("upsert", api_users=users)
    assert list(outcome["alternate_keys"].values()) == [["esc_apiuser"]]
    for user in users:
        assert stand_in.get(f"esc_emailaccounts(esc_apiuser='{user}')").json()["esc_name"] == f"batch {user}"


def test_delete_by_filter_individually_and_in_a_batch(dataverse_api, stand_in):
    prefix = f"Doomed {uuid.uuid4().hex[:8]}"
    for mode in ("individual", "batch"):
        for n in range(2):
            stand_in.post("accounts", json={"name": f"{prefix} {mode} {n}"}).raise_for_status()
    statuses = dataverse_api("delete", prefix=prefix)
    assert statuses == {"individual": [204, 204], "batch": [200]}
    left = stand_in.get("accounts", params={"$filter": f"startswith(name, '{prefix}')"}).json()["value"]
    assert left == []


def test_entity_definition_parses_into_the_clients_model(dataverse_api):
    outcome = dataverse_api("definition", logical_name="contact")
    assert outcome["schema_name"] == "Contact" and outcome["display_name"] == "Contact"
    assert outcome["ownership_type"] == "UserOwned"

"""Microsoft's Dataverse SDK for Python (PowerPlatform-Dataverse-Client), unchanged, against the stand-in.

Each test runs one of the README's operations in the client's own environment and checks the outcome
through the stand-in's Web API.
"""

from __future__ import annotations

import uuid

from dotdyn_pipeline_tests.sandbox.dataverse_helpers import all_pages


def test_query_builder_reads_the_rows_the_stand_in_holds(powerplatform, stand_in):
    rows = powerplatform("query", top=7, page_size=3)
    expected = stand_in.get("contacts", params={"$select": "fullname,emailaddress1", "$filter": "statecode eq 0",
                                                "$orderby": "fullname", "$top": "7"}).json()["value"]
    assert rows == [{k: v for k, v in row.items() if k != "@odata.etag"} for row in expected]


def test_execute_pages_reads_the_whole_table_page_by_page(powerplatform, stand_in):
    read = powerplatform("pages", page_size=150)
    everyone, _ = all_pages(stand_in, "contacts", 5000, **{"$select": "contactid"})
    assert read["ids"] == [row["contactid"] for row in everyone]
    assert read["sizes"][:-1] == [150] * (len(read["sizes"]) - 1) and 0 < read["sizes"][-1] <= 150


def test_sql_the_stand_in_does_not_run_is_refused_with_the_documented_error(powerplatform):
    assert powerplatform("refused", sql="SELECT TOP 5 name FROM account")["status"] == 400


def test_create_retrieve_update_delete(powerplatform, stand_in):
    name = f"Fabrikam {uuid.uuid4().hex[:8]}"
    outcome = powerplatform("crud", name=name)
    assert outcome["created"]["name"] == name and outcome["created"]["address1_city"] == "Oslo"
    assert outcome["updated"]["address1_city"] == "Bergen"
    assert outcome["after_delete"] is None
    assert stand_in.get(f"accounts({outcome['id']})").status_code == 404


def test_create_multiple_update_multiple_and_bulk_delete(powerplatform, stand_in):
    names = [f"Bulk {uuid.uuid4().hex[:8]} {n}" for n in range(3)]
    outcome = powerplatform("bulk", names=names)
    assert sorted(row["name"] for row in outcome["updated"]) == sorted(names)
    assert {row["address1_city"] for row in outcome["updated"]} == {"Trondheim"}
    assert outcome["after_delete"] == [None, None, None]
    job = stand_in.get(f"asyncoperations({outcome['job_id']})").json()
    assert (job["statecode"], job["statuscode"], job["operationtype"]) == (3, 30, 13)
    operation = stand_in.get("bulkdeleteoperations", params={
        "$filter": f"_asyncoperationid_value eq {outcome['job_id']}"}).json()["value"]
    assert [row["successcount"] for row in operation] == [3]


def test_upsert_by_alternate_key_creates_then_updates(powerplatform, stand_in):
    api_user = f"upsert-{uuid.uuid4().hex[:8]}@example.com"
    rows = powerplatform("upsert", api_user=api_user)
    assert [(row["esc_apiuser"], row["esc_name"]) for row in rows] == [(api_user, "Second")]
    held = stand_in.get(f"esc_emailaccounts(esc_apiuser='{api_user}')").json()
    assert held["esc_name"] == "Second"


def test_batch_runs_its_requests_in_one_call(powerplatform, stand_in):
    name = f"Batch {uuid.uuid4().hex[:8]}"
    outcome = powerplatform("batch", name=name)
    assert outcome["failed"] == 0 and len(outcome["statuses"]) == 2
    assert stand_in.get(f"accounts({outcome['id']})").json()["address1_city"] == "Tromsø"
    created = stand_in.get("accounts", params={"$filter": f"name eq '{name} (batch)'"}).json()["value"]
    assert len(created) == 1

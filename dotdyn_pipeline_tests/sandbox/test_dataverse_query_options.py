"""Contract tests of the query options real clients send: `$top` with a page size, `$expand`, query
languages the stand-in does not run (FetchXML, which it runs, has test_dataverse_fetchxml.py), and the
BulkDelete action with the system job it leaves."""

from __future__ import annotations

import pytest

from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import all_pages, error_of

dv, pdv, private_sandbox = helpers.dv, helpers.pdv, helpers.private_sandbox


@pytest.mark.parametrize(("top", "page_size", "pages"), [(7, 3, [3, 3, 1]), (5, 50, [5]), (6, 3, [3, 3])])
def test_top_ends_the_result_whatever_the_page_size(dv, top, page_size, pages):
    rows, last = all_pages(dv, "contacts", page_size, **{"$select": "fullname", "$top": str(top)})
    first = dv.get("contacts", params={"$select": "fullname", "$top": str(top)},
                   headers={"Prefer": f"odata.maxpagesize={page_size}"})
    assert len(first.json()["value"]) == pages[0]
    assert len(rows) == top and "@odata.nextLink" not in last
    unpaged = dv.get("contacts", params={"$select": "fullname", "$top": str(top)}).json()["value"]
    assert [r["contactid"] for r in rows] == [r["contactid"] for r in unpaged]


@pytest.mark.parametrize(("name", "value"), [("sql", "SELECT fullname FROM contact"),
                                             ("savedQuery", "00000000-0000-0000-00aa-000010001001"),
                                             ("$apply", "groupby((lastname))"), ("$search", "anna")])
def test_query_languages_and_options_not_served_are_the_documented_error(dv, name, value):
    response = dv.get("contacts", params={name: value})
    assert response.status_code == 400
    assert error_of(response)["code"] == "0x80060888" and name in error_of(response)["message"]
    assert dv.get("contacts/$count", params={name: value}).status_code == 400


def test_expand_of_a_lookup_nests_the_related_row(dv):
    rows = dv.get("accounts", params={"$select": "name,_primarycontactid_value", "$top": "20",
                                      "$expand": "primarycontactid($select=fullname,emailaddress1)"}).json()["value"]
    linked = [row for row in rows if row["_primarycontactid_value"]]
    assert linked, "the seeded accounts have primary contacts"
    for row in linked:
        contact = dv.get(f"contacts({row['_primarycontactid_value']})",
                         params={"$select": "fullname,emailaddress1"}).json()
        assert row["primarycontactid"] == {"contactid": contact["contactid"], "fullname": contact["fullname"],
                                           "emailaddress1": contact["emailaddress1"]}
    assert all(row["primarycontactid"] is None for row in rows if not row["_primarycontactid_value"])


def test_expand_of_a_lookup_to_several_tables_names_each_target(dv):
    rows = dv.get("contacts", params={
        "$select": "_parentcustomerid_value", "$filter": "_parentcustomerid_value ne null", "$top": "30",
        "$expand": "parentcustomerid_account($select=name),parentcustomerid_contact($select=fullname)"},
        headers={"Prefer": 'odata.include-annotations="*"'}).json()["value"]
    assert rows
    for row in rows:
        kind = row["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"]
        other = "contact" if kind == "account" else "account"
        assert row[f"parentcustomerid_{kind}"][f"{kind}id"] == row["_parentcustomerid_value"]
        assert row[f"parentcustomerid_{other}"] is None


def test_expand_names_the_message_of_each_sdkmessagefilter(dv):
    condition = "(sdkmessageid/name eq 'CreateMultiple' or sdkmessageid/name eq 'UpdateMultiple') and " \
                "primaryobjecttypecode eq 'account'"
    rows = dv.get("sdkmessagefilters", params={"$select": "sdkmessagefilterid", "$filter": condition,
                                               "$expand": "sdkmessageid($select=name)"}).json()["value"]
    assert sorted(row["sdkmessageid"]["name"] for row in rows) == ["CreateMultiple", "UpdateMultiple"]
    assert all(len(row["sdkmessageid"]["sdkmessageid"]) == 36 for row in rows)


@pytest.mark.parametrize("expand", ["contact_customer_accounts", "primarycontactid($filter=statecode eq 0)",
                                    "primarycontactid($select=nosuchcolumn)"])
def test_expand_the_stand_in_does_not_serve_is_the_documented_error(dv, expand):
    response = dv.get("accounts", params={"$expand": expand})
    assert response.status_code == 400 and error_of(response)["code"] == "0x80060888"


def _bulk_delete(pdv, query: dict, **overrides):
    """POST BulkDelete with Microsoft's documented parameters; an override of None leaves that one out."""
    body = {"QuerySet": [query], "JobName": "Remove test accounts", "SendEmailNotification": False,
            "ToRecipients": [], "CCRecipients": [], "RecurrencePattern": "",
            "StartDateTime": "2026-01-01T00:00:00Z", **overrides}
    return pdv.post("BulkDelete", json={name: value for name, value in body.items() if value is not None})


def _accounts_query(conditions: list[dict], operator: str = "And") -> dict:
    return {"@odata.type": "Microsoft.Dynamics.CRM.QueryExpression", "EntityName": "account",
            "ColumnSet": {"AllColumns": False, "Columns": []},
            "Criteria": {"FilterOperator": operator, "Conditions": conditions}}


def test_bulk_delete_removes_what_its_query_selects_and_leaves_a_completed_job(pdv):
    names = [f"Bulk delete target {n}" for n in range(4)]
    ids = [pdv.post("accounts", json={"name": name, "address1_city": "Bodø"}).headers["OData-EntityId"]
           .rsplit("(", 1)[1].rstrip(")") for name in names]
    before, _ = all_pages(pdv, "accounts", 5000, **{"$select": "accountid"})
    condition = {"AttributeName": "accountid", "Operator": "In",
                 "Values": [{"Value": i, "Type": "System.Guid"} for i in ids[:3]]}
    response = _bulk_delete(pdv, _accounts_query([condition, {"AttributeName": "address1_city",
                                                              "Operator": "Equal", "Values": [{"Value": "Bodø"}]}]))
    assert response.status_code == 200
    job_id = response.json()["JobId"]
    after, _ = all_pages(pdv, "accounts", 5000, **{"$select": "accountid"})
    assert {r["accountid"] for r in before} - {r["accountid"] for r in after} == set(ids[:3])
    job = pdv.get(f"asyncoperations({job_id})").json()
    assert (job["name"], job["operationtype"], job["statecode"], job["statuscode"]) == (
        "Remove test accounts", 13, 3, 30)
    counts = pdv.get("bulkdeleteoperations", params={"$filter": f"_asyncoperationid_value eq {job_id}"}).json()
    assert [(row["successcount"], row["failurecount"]) for row in counts["value"]] == [(3, 0)]
    pdv.delete(f"accounts({ids[3]})")


@pytest.mark.parametrize(("overrides", "query"), [
    ({"JobName": None}, None),  # a required parameter left out
    ({"RecurrencePattern": "FREQ=DAILY;INTERVAL=1"}, None),  # recurring jobs are not served
    ({}, {"EntityName": "nosuchtable"}),
    ({}, {"Criteria": {"FilterOperator": "And", "Conditions": [{"AttributeName": "nosuchcolumn",
                                                                "Operator": "Equal", "Values": [{"Value": "x"}]}]}}),
])
def test_bulk_delete_requests_it_cannot_run_are_the_documented_error_and_delete_nothing(pdv, overrides, query):
    before = int(pdv.get("accounts/$count").text)
    response = _bulk_delete(pdv, {**_accounts_query([]), **(query or {})}, **overrides)
    assert response.status_code == 400 and error_of(response)["code"] == "0x80060888"
    assert int(pdv.get("accounts/$count").text) == before

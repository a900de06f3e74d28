"""Contract tests of Dataverse queries: paging, $select, $filter, $orderby, $top, $count, metadata, auth."""

from __future__ import annotations

import re

import httpx
import pytest

from dotdyn_pipeline_tests.conftest import SUITE_SANDBOX, trust
from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import API, all_pages, error_of

# Fixtures shared by the Dataverse contract tests.
dv = helpers.dv

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_paging_follows_next_links_with_the_applied_page_size(dv):
    first = dv.get("contacts", params={"$select": "fullname"}, headers={"Prefer": "odata.maxpagesize=400"})
    assert first.headers["preference-applied"] == "odata.maxpagesize=400"
    assert len(first.json()["value"]) == 400
    assert first.json()["@odata.nextLink"].startswith(str(dv.base_url))
    rows, last = all_pages(dv, "contacts", 400, **{"$select": "fullname"})
    assert len(rows) == SUITE_SANDBOX.contacts
    assert len({r["contactid"] for r in rows}) == SUITE_SANDBOX.contacts
    assert "@odata.nextLink" not in last and "@odata.deltaLink" not in last


def test_page_size_is_capped_at_5000_and_tampered_skiptokens_are_rejected(dv):
    response = dv.get("contacts", params={"$select": "fullname"}, headers={"Prefer": "odata.maxpagesize=9000"})
    assert response.headers["preference-applied"] == "odata.maxpagesize=5000"
    small = dv.get("contacts", params={"$select": "fullname"}, headers={"Prefer": "odata.maxpagesize=2"})
    tampered = small.json()["@odata.nextLink"].replace("$skiptoken=", "$skiptoken=x")
    assert dv.get(tampered).status_code == 400


def test_select_returns_only_the_selected_columns_plus_key_and_etag(dv):
    row = dv.get("contacts", params={"$select": "firstname,_parentcustomerid_value", "$top": "1"}).json()["value"][0]
    assert set(row) == {"@odata.etag", "contactid", "firstname", "_parentcustomerid_value"}
    assert re.fullmatch(r'W/"\d+"', row["@odata.etag"]) and GUID.match(row["contactid"])
    full = dv.get(f"contacts({row['contactid']})").json()
    assert {"emailaddress1", "donotbulkemail", "statecode", "modifiedon", "versionnumber"} <= set(full)
    assert full["@odata.context"].endswith("$metadata#contacts/$entity")


def test_unknown_property_is_the_documented_error(dv):
    response = dv.get("contacts", params={"$select": "nosuchcolumn"})
    assert response.status_code == 400
    assert error_of(response)["message"] == ("Could not find a property named 'nosuchcolumn' on type "
                                             "'Microsoft.Dynamics.CRM.contact'.")


def _filtered(dv: httpx.Client, expression: str, select: str = "lastname") -> list[dict]:
    rows, _ = all_pages(dv, "contacts", 5000, **{"$filter": expression, "$select": select})
    return rows


def test_filter_comparison_and_logical_operators(dv):
    everyone = _filtered(dv, "statecode ge 0", "statecode,donotbulkemail,numberofchildren,lastname")
    active = _filtered(dv, "statecode eq 0")
    inactive = _filtered(dv, "statecode ne 0")
    assert len(active) + len(inactive) == len(everyone) == SUITE_SANDBOX.contacts
    assert 0 < len(inactive) < len(active)
    opted_out = _filtered(dv, "donotbulkemail eq true and statecode eq 0")
    assert len(opted_out) == sum(1 for r in everyone if r["donotbulkemail"] and r["statecode"] == 0)
    either = _filtered(dv, "(numberofchildren gt 2 or numberofchildren le 0) and not (statecode eq 1)")
    assert len(either) == sum(1 for r in everyone if r["numberofchildren"] is not None and
                              (r["numberofchildren"] > 2 or r["numberofchildren"] <= 0) and r["statecode"] != 1)
    missing = _filtered(dv, "numberofchildren eq null")
    assert len(missing) == sum(1 for r in everyone if r["numberofchildren"] is None)


def test_filter_string_literals_escape_quotes_and_compare_case_insensitively(dv):
    obrien = _filtered(dv, "lastname eq 'O''Brien'")
    assert obrien and {r["lastname"] for r in obrien} == {"O'Brien"}
    assert len(_filtered(dv, "lastname eq 'o''brien'")) == len(obrien)
    response = dv.get("contacts", params={"$filter": "lastname eq 'O'Bryan'"})
    assert response.status_code == 400
    message = "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
    assert error_of(response)["message"] == message


def test_filter_functions(dv):
    starts = _filtered(dv, "startswith(lastname,'Sm')")
    assert starts and all(r["lastname"].lower().startswith("sm") for r in starts)
    ends = _filtered(dv, "endswith(lastname,'son')")
    assert all(r["lastname"].lower().endswith("son") for r in ends)
    contains = _filtered(dv, "contains(emailaddress1,'@example.org')", "emailaddress1")
    assert contains and all("@example.org" in r["emailaddress1"].lower() for r in contains)
    countries = _filtered(dv, "Microsoft.Dynamics.CRM.In(PropertyName='address1_country',PropertyValues=['GB','IE'])",
                          "address1_country")
    assert countries and {r["address1_country"] for r in countries} == {"GB", "IE"}


def test_filter_literals_are_type_checked(dv):
    contact = dv.get("contacts", params={"$select": "contactid", "$top": "1"}).json()["value"][0]["contactid"]
    assert [r["contactid"] for r in _filtered(dv, f"contactid eq {contact}")] == [contact]
    for bad in (f"contactid eq '{contact}'", "statecode eq '0'", "modifiedon gt '2024-01-01'", "lastname eq 5"):
        response = dv.get("contacts", params={"$filter": bad})
        assert response.status_code == 400, bad
        assert "incompatible types" in error_of(response)["message"]
    recent = _filtered(dv, "modifiedon ge 2024-06-01T00:00:00Z", "modifiedon")
    assert recent and all(r["modifiedon"] >= "2024-06-01T00:00:00Z" for r in recent)


def test_filter_on_lookup_and_parameter_aliases(dv):
    account = dv.get("contacts", params={"$select": "_parentcustomerid_value", "$top": "1",
                                         "$filter": "_parentcustomerid_value ne null"}).json()["value"][0][
        "_parentcustomerid_value"]
    rows = dv.get("contacts", params={"$filter": "_parentcustomerid_value eq @a", "@a": account,
                                      "$select": "_parentcustomerid_value"}).json()["value"]
    assert rows and {r["_parentcustomerid_value"] for r in rows} == {account}


def test_orderby_top_and_count(dv):
    rows = dv.get("contacts", params={"$orderby": "lastname desc,contactid asc", "$top": "50",
                                      "$select": "lastname"}).json()["value"]
    assert len(rows) == 50
    names = [r["lastname"] or "" for r in rows]
    assert names == sorted(names, key=str.lower, reverse=True)
    page = dv.get("contacts", params={"$count": "true", "$filter": "statecode eq 0", "$select": "contactid"},
                  headers={"Prefer": "odata.maxpagesize=10"}).json()
    assert page["@odata.count"] == len(_filtered(dv, "statecode eq 0"))
    count = dv.get("contacts/$count", params={"$filter": "statecode eq 0"})
    assert count.headers["content-type"].startswith("text/plain") and int(count.text) == page["@odata.count"]


def test_unsupported_query_options_are_rejected(dv):
    assert dv.get("contacts", params={"$skip": "10"}).status_code == 400
    assert dv.get("contacts", params={"$filter": "lastname eq"}).status_code == 400
    assert dv.get("contacts", params={"$filter": "frobnicate(lastname)"}).status_code == 400


def test_unknown_entity_set_and_record(dv):
    response = dv.get("nosuchthings")
    assert response.status_code == 404 and "nosuchthings" in error_of(response)["message"]
    missing = dv.get("contacts(00000000-0000-0000-0000-000000000001)")
    assert missing.status_code == 404
    assert error_of(missing) == {"code": "0x80040217",
                                 "message": "contact With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"}


def test_entity_definitions_name_sets_and_change_tracking(dv):
    single = dv.get("EntityDefinitions(LogicalName='esc_emailcampaigncontactsummary')",
                    params={"$select": "EntitySetName,ChangeTrackingEnabled,PrimaryIdAttribute"}).json()
    assert single["EntitySetName"] == "esc_emailcampaigncontactsummaries"
    assert single["ChangeTrackingEnabled"] is True
    assert single["PrimaryIdAttribute"] == "esc_emailcampaigncontactsummaryid"
    listed = dv.get("EntityDefinitions", params={"$select": "LogicalName,EntitySetName",
                                                 "$filter": "LogicalName eq 'esc_emailaccount'"}).json()["value"]
    assert [(d["LogicalName"], d["EntitySetName"]) for d in listed] == [("esc_emailaccount", "esc_emailaccounts")]
    assert dv.get("EntityDefinitions", params={"$filter": "LogicalName eq 'nope'"}).json()["value"] == []
    untracked = dv.get("EntityDefinitions", params={"$select": "LogicalName",
                                                    "$filter": "ChangeTrackingEnabled eq false"}).json()["value"]
    assert {"campaign", "esc_crmfield"} <= {d["LogicalName"] for d in untracked}
    missing = dv.get("EntityDefinitions(LogicalName='nope')")
    assert missing.status_code == 404 and "MetadataCache" in error_of(missing)["message"]
    keys = dv.get("EntityDefinitions(LogicalName='esc_emailsupression')/Keys").json()["value"]
    assert [k["KeyAttributes"] for k in keys] == [["esc_emailaccountid", "esc_email"]]


def test_attributes_list_every_column_and_those_derived_from_them_which_no_select_may_name(dv):
    attributes = dv.get("EntityDefinitions(LogicalName='contact')/Attributes", params={
        "$select": "LogicalName,AttributeType,AttributeOf,IsValidForRead"}).json()["value"]
    by_name = {a["LogicalName"]: a for a in attributes}
    assert (by_name["firstname"]["AttributeType"], by_name["firstname"]["AttributeOf"],
            by_name["firstname"]["IsValidForRead"]) == ("String", None, True)
    assert by_name["parentcustomerid"]["AttributeType"] == "Customer", "read as _parentcustomerid_value"
    assert (by_name["parentcustomeridname"]["AttributeOf"], by_name["parentcustomeridtype"]["AttributeType"]) == (
        "parentcustomerid", "EntityName")
    assert by_name["donotemailname"]["AttributeOf"] == "donotemail"
    for name in ("parentcustomeridname", "parentcustomerid", "esc_nosuchcolumn"):
        refused = dv.get("contacts", params={"$select": f"firstname,{name}", "$top": "1"})
        assert refused.status_code == 400 and error_of(refused)["message"] == (
            f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.contact'.")


def test_bulk_operation_support_is_discoverable(dv):
    def supported(message: str, table: str) -> bool:
        condition = "sdkmessageid/name eq @message and primaryobjecttypecode eq @table"
        return bool(dv.get("sdkmessagefilters", params={
            "$select": "sdkmessagefilterid", "$filter": condition, "@message": f"'{message}'",
            "@table": f"'{table}'"}).json()["value"])

    assert supported("UpsertMultiple", "esc_emailcampaigncontactclick")
    assert not supported("UpsertMultiple", "esc_listunsubscriber")


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz"])
def test_requests_without_a_valid_bearer_token_get_401(sandbox, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(verify=trust(sandbox)) as http:
        response = http.get(sandbox["dataverse_url"] + API + "contacts", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer authorization_uri=" + sandbox["authority"])


def test_seeded_data_has_the_documented_mess(dv):
    rows, _ = all_pages(dv, "contacts", 5000, **{"$select": "emailaddress1,firstname,lastname,donotbulkemail"})
    emails = [r["emailaddress1"] for r in rows]
    invalid = [e for e in emails if e is None or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", e.strip())]
    assert 0.005 < len(invalid) / len(rows) < 0.06
    assert 0.02 < sum(bool(r["donotbulkemail"]) for r in rows) / len(rows) < 0.09
    assert any(r["firstname"] is None or r["lastname"] is None for r in rows)
    assert any(not (r["lastname"] or "").isascii() for r in rows)
    leads, _ = all_pages(dv, "leads", 5000, **{"$select": "emailaddress1"})
    contact_emails = {e for e in emails if e}
    assert any(lead["emailaddress1"] in contact_emails for lead in leads)


def test_marketing_lists_cover_every_member_type_and_account(dv, sandbox):
    lists = dv.get("lists", params={"$select": "listname,createdfromcode,type,membercount,esc_activatedforemail,"
                                               "_esc_emailaccountid_value"}).json()["value"]
    assert {lst["createdfromcode"] for lst in lists} == {1, 2, 4}
    assert any(lst["type"] for lst in lists) and any(not lst["esc_activatedforemail"] for lst in lists)
    assert {lst["_esc_emailaccountid_value"] for lst in lists} == {a["emailaccount_id"] for a in sandbox["accounts"]}
    newsletter = next(lst for lst in lists if lst["listname"].startswith("Newsletter"))
    members, _ = all_pages(dv, "listmembers", 5000, **{"$filter": f"_listid_value eq {newsletter['listid']}",
                                                       "$select": "_entityid_value,entitytype"})
    assert len(members) == newsletter["membercount"] > 0
    assert {m["entitytype"] for m in members} == {"contact"}
    mappings = dv.get("esc_emaildatamappings", params={"$select": "esc_datafieldtype"}).json()["value"]
    assert {m["esc_datafieldtype"] for m in mappings} == {"String", "Numeric", "Date", "Boolean"}


@pytest.mark.parametrize("orderby", ["lastname desc,contactid asc", "numberofchildren asc", "contactid"])
def test_paging_keeps_a_custom_order_across_pages(dv, orderby):
    params = {"$orderby": orderby, "$select": "lastname,numberofchildren"}
    whole = dv.get("contacts", params=params).json()["value"]
    paged, _ = all_pages(dv, "contacts", 97, **params)
    assert [r["contactid"] for r in paged] == [r["contactid"] for r in whole]
    assert len(whole) == SUITE_SANDBOX.contacts

"""FetchXML through the Web API (`GET /<entityset>?fetchXml=...`): every element and operator the stand-in runs,
each compared with the same selection computed here from the seeded rows read with plain OData queries; paging
with `count`, `page` and the paging cookie; and the 400 for FetchXML it does not run."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import all_pages, error_of, web_api

private_sandbox, pdv = helpers.private_sandbox, helpers.pdv
CONTACT_COLUMNS = ("contactid,firstname,lastname,emailaddress1,jobtitle,address1_city,address1_country,"
                   "numberofchildren,donotemail,birthdate,createdon,_parentcustomerid_value")
Row = dict[str, Any]


@pytest.fixture(scope="module")
def dv(sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with web_api(sandbox) as client:
        yield client


@pytest.fixture(scope="module")
def contacts(dv: httpx.Client) -> list[Row]:
    return all_pages(dv, "contacts", 5000, **{"$select": CONTACT_COLUMNS})[0]


@pytest.fixture(scope="module")
def accounts(dv: httpx.Client) -> dict[str, Row]:
    rows = all_pages(dv, "accounts", 5000, **{"$select": "accountid,name,address1_city,address1_country"})[0]
    return {row["accountid"]: row for row in rows}


def xml(text: str) -> ElementTree.Element:
    return ElementTree.fromstring(text)  # noqa: S314 - the sandbox's answers and this module's own queries


def fetch_pages(client: httpx.Client, entity_set: str, fetch: str, prefer: str = "") -> Iterator[dict]:
    """Every page of a FetchXML query, following the paging cookie as Microsoft documents it: decode the
    cookie's `pagingcookie` twice, set it as the fetch's `paging-cookie` and ask for its `pagenumber`."""
    while True:
        response = client.get(entity_set, params={"fetchXml": fetch}, headers={"Prefer": prefer} if prefer else {})
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        if "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie" not in page:
            return
        cookie = xml(page["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"])
        element = xml(fetch)
        element.set("paging-cookie", unquote(unquote(cookie.get("pagingcookie"))))
        element.set("page", cookie.get("pagenumber"))
        fetch = ElementTree.tostring(element, encoding="unicode")


def fetch_rows(client: httpx.Client, entity_set: str, fetch: str) -> list[Row]:
    return [row for page in fetch_pages(client, entity_set, fetch) for row in page["value"]]


def contact_ids(client: httpx.Client, filters: str, links: str = "") -> set[str]:
    rows = fetch_rows(client, "contacts", f'<fetch count="400"><entity name="contact"><attribute name="contactid"/>'
                                          f"{filters}{links}</entity></fetch>")
    found = [row["contactid"] for row in rows]
    assert len(found) == len(set(found)), "a row came back twice"
    return set(found)


def like(pattern: str) -> Callable[[str | None], bool]:
    """SQL LIKE (`%` any run, `_` one character, case-insensitive) as a predicate."""
    regex = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern),
                       re.IGNORECASE | re.DOTALL)
    return lambda value: value is not None and regex.fullmatch(value) is not None


def text(value: str | None) -> str | None:
    return None if value is None else value.lower()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def days_ago(days: int) -> str:
    return (now().date() - dt.timedelta(days=days)).isoformat()


#: Seeded history ends on 2025-01-01; a last-x-days window reaching back to 2024-11-01 selects a slice of it.
DAYS_SINCE = (dt.datetime.now(dt.UTC).date() - dt.date(2024, 11, 1)).days
#: (case, condition(s), what they select from one contact row)
CONDITIONS: list[tuple[str, str, Callable[[Row], bool]]] = [
    ("eq", '<condition attribute="address1_country" operator="eq" value="GB"/>',
     lambda r: text(r["address1_country"]) == "gb"),
    ("ne selects nulls too", '<condition attribute="address1_city" operator="ne" value="London"/>',
     lambda r: text(r["address1_city"]) != "london"),
    ("lt", '<condition attribute="numberofchildren" operator="lt" value="2"/>',
     lambda r: r["numberofchildren"] is not None and r["numberofchildren"] < 2),
    ("le", '<condition attribute="numberofchildren" operator="le" value="2"/>',
     lambda r: r["numberofchildren"] is not None and r["numberofchildren"] <= 2),
    ("gt", '<condition attribute="numberofchildren" operator="gt" value="1"/>',
     lambda r: r["numberofchildren"] is not None and r["numberofchildren"] > 1),
    ("ge", '<condition attribute="createdon" operator="ge" value="2024-10-01T00:00:00Z"/>',
     lambda r: r["createdon"] >= "2024-10-01T00:00:00Z"),
    ("like", '<condition attribute="emailaddress1" operator="like" value="%.c_.uk"/>', lambda r: like("%.c_.uk")(
        r["emailaddress1"])),
    ("not-like", '<condition attribute="emailaddress1" operator="not-like" value="%example%"/>',
     lambda r: r["emailaddress1"] is not None and not like("%example%")(r["emailaddress1"])),
    ("begins-with", '<condition attribute="lastname" operator="begins-with" value="M"/>',
     lambda r: r["lastname"] is not None and r["lastname"].lower().startswith("m")),
    ("ends-with", '<condition attribute="emailaddress1" operator="ends-with" value=".com"/>',
     lambda r: r["emailaddress1"] is not None and r["emailaddress1"].lower().endswith(".com")),
    ("in", '<condition attribute="address1_city" operator="in"><value>Paris</value><value>Berlin</value>'
           '<value>Dublin</value></condition>', lambda r: text(r["address1_city"]) in ("paris", "berlin", "dublin")),
    ("not-in", '<condition attribute="address1_country" operator="not-in"><value>GB</value><value>FR</value>'
               '</condition>', lambda r: r["address1_country"] is not None and text(r["address1_country"])
     not in ("gb", "fr")),
    ("null", '<condition attribute="jobtitle" operator="null"/>', lambda r: r["jobtitle"] is None),
    ("not-null", '<condition attribute="numberofchildren" operator="not-null"/>',
     lambda r: r["numberofchildren"] is not None),
    ("on", '<condition attribute="createdon" operator="on" value="2024-12-30"/>',
     lambda r: r["createdon"][:10] == "2024-12-30"),
    ("on-or-before", '<condition attribute="createdon" operator="on-or-before" value="2024-06-30"/>',
     lambda r: r["createdon"][:10] <= "2024-06-30"),
    ("on-or-after", '<condition attribute="createdon" operator="on-or-after" value="2024-12-01"/>',
     lambda r: r["createdon"][:10] >= "2024-12-01"),
    ("on-or-after a date-only column", '<condition attribute="birthdate" operator="on-or-after" value="1990-01-01"/>',
     lambda r: r["birthdate"] is not None and r["birthdate"] >= "1990-01-01"),
    ("last-x-days", f'<condition attribute="createdon" operator="last-x-days" value="{DAYS_SINCE}"/>',
     lambda r: r["createdon"][:10] >= days_ago(DAYS_SINCE)),
    ("next-x-days (seeded history is all past)", '<condition attribute="createdon" operator="next-x-days" '
                                                 'value="30"/>', lambda r: r["createdon"] >= now().isoformat()),
    ("between numbers", '<condition attribute="numberofchildren" operator="between"><value>1</value><value>2</value>'
                        '</condition>', lambda r: r["numberofchildren"] in (1, 2)),
    ("between whole days", '<condition attribute="createdon" operator="between"><value>2024-11-01</value>'
                           '<value>2024-11-30</value></condition>',
     lambda r: "2024-11-01" <= r["createdon"][:10] <= "2024-11-30"),
    ("boolean", '<condition attribute="donotemail" operator="eq" value="1"/>', lambda r: r["donotemail"] is True),
    ("two conditions are and-ed", '<condition attribute="address1_country" operator="eq" value="GB"/>'
                                  '<condition attribute="jobtitle" operator="not-null"/>',
     lambda r: text(r["address1_country"]) == "gb" and r["jobtitle"] is not None),
]


@pytest.mark.parametrize(("case", "conditions", "selects"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_each_operator_selects_what_the_seeded_rows_say(dv, contacts, case, conditions, selects):
    expected = {row["contactid"] for row in contacts if selects(row)}
    assert contact_ids(dv, f"<filter>{conditions}</filter>") == expected
    if case != "next-x-days (seeded history is all past)":
        assert 0 < len(expected) < len(contacts), "the case should select some contacts and leave others"


def test_a_lookup_condition_takes_the_guid_in_braces_and_any_case(dv, contacts):
    parent = next(row["_parentcustomerid_value"] for row in contacts if row["_parentcustomerid_value"])
    expected = {row["contactid"] for row in contacts if row["_parentcustomerid_value"] == parent}
    found = contact_ids(dv, '<filter><condition attribute="parentcustomerid" operator="eq" '
                            f'value="{{{parent.upper()}}}"/></filter>')
    assert found == expected and expected


def test_nested_and_or_filters(dv, contacts):
    filters = ('<filter type="or"><filter type="and"><condition attribute="address1_country" operator="eq" value="GB"/>'
               '<filter type="or"><condition attribute="numberofchildren" operator="eq" value="0"/>'
               '<condition attribute="jobtitle" operator="null"/></filter></filter>'
               '<condition attribute="address1_city" operator="eq" value="Paris"/></filter>')
    expected = {r["contactid"] for r in contacts if (text(r["address1_country"]) == "gb" and (
        r["numberofchildren"] == 0 or r["jobtitle"] is None)) or text(r["address1_city"]) == "paris"}
    assert contact_ids(dv, filters) == expected and expected


def test_inner_link_entity_filters_on_the_parent_account_and_returns_its_attributes(dv, contacts, accounts):
    rows = fetch_rows(dv, "contacts", '<fetch><entity name="contact"><attribute name="fullname"/>'
                                      '<link-entity name="account" from="accountid" to="parentcustomerid" alias="a">'
                                      '<attribute name="name"/><attribute name="address1_city"/><filter>'
                                      '<condition attribute="address1_city" operator="eq" value="London"/></filter>'
                                      '</link-entity></entity></fetch>')
    parents = {r["contactid"]: accounts.get(r["_parentcustomerid_value"]) for r in contacts}
    expected = {cid for cid, account in parents.items() if account and text(account["address1_city"]) == "london"}
    assert {row["contactid"] for row in rows} == expected and expected
    for row in rows:
        account = parents[row["contactid"]]
        assert row["a.name"] == account["name"] and row["a.address1_city"] == account["address1_city"]


def test_nested_link_entities_join_in_order(dv, contacts, accounts):
    people = {row["contactid"]: row for row in contacts}
    rows = fetch_rows(dv, "contacts", '<fetch><entity name="contact"><attribute name="contactid"/><link-entity '
                                      'name="account" from="accountid" to="parentcustomerid" alias="a"><link-entity '
                                      'name="contact" from="contactid" to="primarycontactid" alias="pc"><attribute '
                                      'name="address1_city"/><filter><condition attribute="address1_city" '
                                      'operator="eq" value="Paris"/></filter></link-entity></link-entity></entity>'
                                      '</fetch>')
    primary = {a["accountid"]: a for a in all_pages(dv, "accounts", 5000, **{
        "$select": "accountid,_primarycontactid_value"})[0]}
    expected = {cid for cid, row in people.items() if row["_parentcustomerid_value"] in primary and text(people.get(
        primary[row["_parentcustomerid_value"]]["_primarycontactid_value"], {}).get("address1_city")) == "paris"}
    assert {row["contactid"] for row in rows} == expected and expected
    assert all(row["pc.address1_city"] == "Paris" for row in rows)


def test_outer_link_entity_with_a_condition_on_its_alias_finds_contacts_without_an_account(dv, contacts, accounts):
    found = contact_ids(dv, '<filter><condition entityname="a" attribute="accountid" operator="null"/></filter>',
                        '<link-entity name="account" from="accountid" to="parentcustomerid" alias="a" '
                        'link-type="outer"/>')
    expected = {r["contactid"] for r in contacts if r["_parentcustomerid_value"] not in accounts}
    assert found == expected and expected


def test_queries_over_leads_and_accounts(dv):
    leads = all_pages(dv, "leads", 5000, **{"$select": "leadid,companyname,address1_country"})[0]
    expected = {r["leadid"] for r in leads if text(r["address1_country"]) in ("gb", "ie")}
    rows = fetch_rows(dv, "leads", '<fetch><entity name="lead"><attribute name="leadid"/><filter><condition '
                                   'attribute="address1_country" operator="in"><value>GB</value><value>IE</value>'
                                   '</condition></filter></entity></fetch>')
    assert {r["leadid"] for r in rows} == expected and expected
    accounts = all_pages(dv, "accounts", 5000, **{"$select": "accountid,name"})[0]
    expected = {r["accountid"] for r in accounts if like("%London%")(r["name"])}
    rows = fetch_rows(dv, "accounts", '<fetch><entity name="account"><attribute name="name"/><filter><condition '
                                      'attribute="name" operator="like" value="%London%"/></filter></entity></fetch>')
    assert {r["accountid"] for r in rows} == expected and expected


def test_rows_are_rendered_as_the_web_api_does_without_null_properties(dv, contacts):
    by_id = {row["contactid"]: row for row in contacts}
    rows = fetch_rows(dv, "contacts", '<fetch count="50"><entity name="contact"><attribute name="jobtitle"/>'
                                      '<attribute name="parentcustomerid"/><attribute name="donotemail"/>'
                                      '<attribute name="numberofchildren"/></entity></fetch>')
    assert len(rows) == len(contacts)
    for row in rows:
        seeded = by_id[row["contactid"]]
        assert row["@odata.etag"].startswith('W/"')
        expected = {name: seeded[name] for name in ("jobtitle", "_parentcustomerid_value", "donotemail",
                                                    "numberofchildren") if seeded[name] is not None}
        assert {k: v for k, v in row.items() if k not in ("@odata.etag", "contactid")} == expected


def test_lookup_annotations_only_when_asked(dv):
    fetch = ('<fetch top="5"><entity name="contact"><attribute name="parentcustomerid"/><filter><condition '
             'attribute="parentcustomerid" operator="not-null"/></filter></entity></fetch>')
    plain = dv.get("contacts", params={"fetchXml": fetch}).json()["value"]
    annotated = dv.get("contacts", params={"fetchXml": fetch},
                       headers={"Prefer": 'odata.include-annotations="*"'}).json()["value"]
    assert len(plain) == 5 and all(len(row) == 3 for row in plain)
    assert all(row["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
               for row in annotated)


@pytest.mark.parametrize("order", ['<order attribute="lastname"/>', '<order attribute="createdon" descending="true"/>',
                                   '<order attribute="address1_city"/><order attribute="birthdate" '
                                   'descending="true"/>', ""])
def test_paging_with_the_cookie_visits_every_row_once_in_order(dv, contacts, order):
    pages = list(fetch_pages(dv, "contacts", f'<fetch count="97"><entity name="contact"><attribute name="lastname"/>'
                                             f'<attribute name="createdon"/><attribute name="address1_city"/>'
                                             f'<attribute name="birthdate"/>{order}</entity></fetch>',
                             prefer='odata.include-annotations="Microsoft.Dynamics.CRM.fetchxmlpagingcookie,'
                                    'Microsoft.Dynamics.CRM.morerecords"'))
    rows = [row for page in pages for row in page["value"]]
    assert [len(page["value"]) for page in pages] == [97] * (len(contacts) // 97) + [len(contacts) % 97]
    assert all(page["@Microsoft.Dynamics.CRM.morerecords"] is True for page in pages[:-1])
    assert "@Microsoft.Dynamics.CRM.morerecords" not in pages[-1]
    assert sorted(row["contactid"] for row in rows) == sorted(row["contactid"] for row in contacts)
    first = xml(f"<o>{order}</o>").find("order")  # it orders the whole result
    if first is not None:
        name, descending = first.get("attribute"), first.get("descending") == "true"
        keys = [(row.get(name) is not None, text(row.get(name))) for row in rows]
        assert keys == sorted(keys, reverse=descending)


def test_the_paging_cookie_has_the_documented_shape(dv):
    page = dv.get("contacts", params={"fetchXml": '<fetch count="3"><entity name="contact"><attribute '
                                                  'name="fullname"/></entity></fetch>'}).json()
    outer = xml(page["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"])
    assert outer.tag == "cookie" and outer.get("pagenumber") == "2" and outer.get("istracking") == "False"
    assert outer.get("pagingcookie").startswith("%253ccookie%2520page%253d%25221%2522%253e")
    inner = xml(unquote(unquote(outer.get("pagingcookie"))))
    key = inner.find("contactid")
    assert inner.get("page") == "1" and key is not None
    assert key.get("first") == "{" + page["value"][0]["contactid"].upper() + "}"
    assert key.get("last") == "{" + page["value"][-1]["contactid"].upper() + "}"


def test_page_numbers_without_the_cookie_and_the_total_count(dv, contacts):
    seen, number = [], 1
    while True:
        page = dv.get("contacts", params={"fetchXml": f'<fetch count="400" page="{number}" '
                                                      f'returntotalrecordcount="true"><entity name="contact">'
                                                      '<attribute name="contactid"/></entity></fetch>'}).json()
        assert page["@Microsoft.Dynamics.CRM.totalrecordcount"] == len(contacts)
        seen += [row["contactid"] for row in page["value"]]
        if "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie" not in page:
            break
        number += 1
    assert number == -(-len(contacts) // 400) and sorted(seen) == sorted(r["contactid"] for r in contacts)


def test_top_and_distinct(dv, contacts):
    top = dv.get("contacts", params={"fetchXml": '<fetch top="7"><entity name="contact"><attribute name="fullname"/>'
                                                 '</entity></fetch>'}).json()
    assert len(top["value"]) == 7 and "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie" not in top
    rows = fetch_rows(dv, "contacts", '<fetch distinct="true" count="3"><entity name="contact"><attribute '
                                      'name="address1_city"/><order attribute="address1_city"/></entity></fetch>')
    assert [row.get("address1_city") for row in rows] == sorted({r["address1_city"] for r in contacts},
                                                               key=lambda c: (c is not None, c))


def test_a_distinct_key_query_over_a_one_to_many_link_pages_by_its_cookie(dv, contacts):
    """The accounts that have contacts, each once although joined to each of its contacts, over pages that each
    end with a paging cookie the next page is asked with."""
    fetch = ('<fetch distinct="true" count="7"><entity name="account"><attribute name="accountid"/>'
             '<order attribute="accountid"/><link-entity name="contact" from="parentcustomerid" to="accountid" '
             'link-type="inner"/></entity></fetch>')
    pages = list(fetch_pages(dv, "accounts", fetch))
    ids = [row["accountid"] for page in pages for row in page["value"]]
    expected = {row["_parentcustomerid_value"] for row in contacts if row.get("_parentcustomerid_value")}
    assert len(pages) == -(-len(expected) // 7) and len(ids) == len(set(ids)) and set(ids) == expected
    assert all(len(page["value"]) == 7 for page in pages[:-1])


def test_a_page_holds_at_most_5000_rows(dv):
    response = dv.get("contacts", params={"fetchXml": '<fetch count="5001"><entity name="contact"/></fetch>'})
    assert response.status_code == 400 and "count" in error_of(response)["message"]


@pytest.mark.parametrize(("fetch", "named"), [
    ('<fetch><entity name="contact"><attribute name="fullname"/><foo/></entity></fetch>', "<foo>"),
    ('<fetch aggregate="true"><entity name="contact"><attribute name="contactid" aggregate="count" alias="n"/>'
     '</entity></fetch>', "aggregate"),
    ('<fetch><entity name="contact"><filter><condition attribute="createdon" operator="last-fiscal-year"/></filter>'
     '</entity></fetch>', "last-fiscal-year"),
    ('<fetch><entity name="contact"><link-entity name="account" from="accountid" to="parentcustomerid" '
     'link-type="exists"/></entity></fetch>', "exists"),
    ('<fetch><entity name="contact"><filter type="xor"/></entity></fetch>', "xor"),
    ('<fetch><entity name="contact"><link-entity name="account" from="accountid" to="parentcustomerid">'
     '<order attribute="name"/></link-entity></entity></fetch>', "<order>"),
    ('<fetch><entity name="lead"/></fetch>', "lead"),
    ('<fetch><entity name="contact"><attribute name="fullname" groupby="true"/></entity></fetch>', "groupby"),
    ('<fetch><entity name="contact"><filter><condition attribute="fullname" operator="like"/></filter></entity>'
     '</fetch>', "like"),
    ('<fetch><entity name="contact"><filter><condition attribute="numberofchildren" operator="eq" value="many"/>'
     '</filter></entity></fetch>', "many"),
    ('<!DOCTYPE x [<!ENTITY a "b">]><fetch><entity name="contact"/></fetch>', "declarations"),
])
def test_fetchxml_it_does_not_run_is_a_400_naming_what(dv, fetch, named):
    response = dv.get("contacts", params={"fetchXml": fetch})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "0x80060888" and named in error["message"]


def test_an_attribute_the_table_lacks_is_dataverse_s_query_builder_error(dv):
    for fetch in ('<fetch><entity name="contact"><attribute name="nosuchcolumn"/></entity></fetch>',
                  '<fetch><entity name="contact"><filter><condition attribute="nosuchcolumn" operator="null"/>'
                  '</filter></entity></fetch>'):
        error = error_of(dv.get("contacts", params={"fetchXml": fetch}))
        assert error["code"] == "0x80041103"
        assert "'contact' entity doesn't contain attribute with Name = 'nosuchcolumn'" in error["message"]
    error = error_of(dv.get("contacts", params={"fetchXml": '<fetch><entity name="contact"><link-entity '
                                                            'name="nosuchtable" from="a" to="b"/></entity></fetch>'}))
    assert error["code"] == "0x80041102" and "nosuchtable" in error["message"]


def test_fetchxml_is_not_combined_with_odata_options(dv):
    response = dv.get("contacts", params={"fetchXml": '<fetch><entity name="contact"/></fetch>', "$top": "3"})
    assert response.status_code == 400 and "$top" in error_of(response)["message"]


def test_next_x_days_selects_what_lies_ahead(pdv):
    today = now().date()
    tag = uuid.uuid4().hex[:8]
    for days in (0, 3, 7, 8, 40, -1):
        created = pdv.post("contacts", json={"lastname": f"{tag}{days}",
                                             "birthdate": (today + dt.timedelta(days=days)).isoformat()})
        assert created.status_code == 204
    rows = fetch_rows(pdv, "contacts", f'<fetch><entity name="contact"><attribute name="lastname"/><filter>'
                                       f'<condition attribute="lastname" operator="begins-with" value="{tag}"/>'
                                       '<condition attribute="birthdate" operator="next-x-days" value="7"/></filter>'
                                       '</entity></fetch>')
    assert sorted(row["lastname"] for row in rows) == sorted(f"{tag}{days}" for days in (0, 3, 7))


#: What each seeded dynamic list selects, by the list's name (before " - <email account>"), from the rows of
#: its table: (entity set, member type code, predicate over a row, the parent accounts by id).
SEEDED_LISTS: dict[str, tuple[str, int, Callable[[Row, dict[str, Row]], bool]]] = {
    "UK contacts (dynamic)": ("contacts", 2, lambda r, _: text(r["address1_country"]) == "gb"),
    "New since December 2024 (dynamic)": ("contacts", 2, lambda r, _: r["createdon"][:10] >= "2024-12-01"),
    "Updated in the last 30 days (dynamic)": ("contacts", 2, lambda r, _: r["modifiedon"][:10] >= days_ago(30)),
    "Parents and managers in GB and IE (dynamic)": ("contacts", 2, lambda r, _: text(r["address1_country"]) in (
        "gb", "ie") and ((r["numberofchildren"] or 0) >= 2 or like("%Manager%")(r["jobtitle"]))),
    "Contacts of London accounts (dynamic)": ("contacts", 2, lambda r, parents: text(parents.get(
        r["_parentcustomerid_value"], {}).get("address1_city")) == "london"),
    "Active contacts with an email (dynamic)": ("contacts", 2, lambda r, _: r["statecode"] == 0 and r[
        "emailaddress1"] is not None),
    "UK and Irish leads (dynamic)": ("leads", 4, lambda r, _: text(r["address1_country"]) in ("gb", "ie")),
    "Accounts in Germany and France (dynamic)": ("accounts", 1, lambda r, _: text(r["address1_country"]) in (
        "de", "fr")),
}


@pytest.fixture(scope="module")
def dynamic_lists(dv: httpx.Client) -> list[Row]:
    return all_pages(dv, "lists", 5000, **{"$select": "listid,listname,createdfromcode,query,esc_activatedforemail",
                                           "$filter": "type eq true"})[0]


def test_each_email_account_has_every_seeded_dynamic_list_and_none_has_listmember_rows(dv, dynamic_lists):
    names = sorted(row["listname"].split(" - ")[0] for row in dynamic_lists)
    accounts = len(dv.get("esc_emailaccounts", params={"$select": "esc_emailaccountid"}).json()["value"])
    assert names == sorted(list(SEEDED_LISTS) * accounts)
    assert all(row["esc_activatedforemail"] for row in dynamic_lists)
    for row in dynamic_lists:
        members = dv.get("listmembers", params={"$select": "listmemberid", "$top": "1",
                                                "$filter": f"_listid_value eq {row['listid']}"}).json()["value"]
        assert members == [], row["listname"]


def test_each_seeded_dynamic_list_s_query_selects_what_the_seeded_rows_say(dv, dynamic_lists, accounts):
    rows_of = {entity_set: all_pages(dv, entity_set, 5000, **{"$select": columns})[0] for entity_set, columns in (
        ("contacts", CONTACT_COLUMNS + ",statecode,modifiedon"), ("leads", "leadid,address1_country"),
        ("accounts", "accountid,address1_country"))}
    sizes = {}
    for row in dynamic_lists:
        name = row["listname"].split(" - ")[0]
        entity_set, code, selects = SEEDED_LISTS[name]
        assert row["createdfromcode"] == code
        key = entity_set.removesuffix("s") + "id"
        expected = {r[key] for r in rows_of[entity_set] if selects(r, accounts)}
        found = [r[key] for r in fetch_rows(dv, entity_set, row["query"])]
        assert sorted(found) == sorted(expected), name
        sizes[name] = len(found)
    contacts = len(rows_of["contacts"])
    assert 0 < sizes["New since December 2024 (dynamic)"] < contacts / 20, "a handful"
    assert sizes["Active contacts with an email (dynamic)"] > contacts * 0.8, "most of the contacts"
    assert all(size > 0 for name, size in sizes.items() if name != "Updated in the last 30 days (dynamic)"), \
        "the one list relative to today is empty in the seeded history, which ends on 2025-01-01"

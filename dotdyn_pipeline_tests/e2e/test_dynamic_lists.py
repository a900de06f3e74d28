"""Dynamic marketing lists end to end: their books hold what their FetchXML selects, sync after sync, over HTTPS.

The selections are computed by the test from the rows (fetch_selection.py); the lists are written through the
sandbox's control endpoint as Dynamics would hold them, with no listmember rows.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from dotdyn_pipeline.demo import materialized_facts as facts
from dotdyn_pipeline_tests.e2e.test_audience import INCREMENTAL, _assert_books_match

COUNTRY = "address1_country"


def _query(country: str, cities: list[str]) -> str:
    """Contacts of one country or of some cities, with columns and an order a marketer would see."""
    values = "".join(f"<value>{city}</value>" for city in cities)
    by_city = f'<condition attribute="address1_city" operator="in">{values}</condition>' if cities else ""
    return ('<fetch version="1.0" mapping="logical"><entity name="contact"><attribute name="fullname" />'
            '<attribute name="emailaddress1" /><order attribute="lastname" /><filter type="and">'
            '<condition attribute="statecode" operator="eq" value="0" /><filter type="or">'
            f'<condition attribute="{COUNTRY}" operator="eq" value="{country}" />'
            f'{by_city}</filter></filter>'
            '</entity></fetch>')


def _linked_query(country: str) -> str:
    """Contacts whose parent account is in a country: a link-entity to the account."""
    return ('<fetch><entity name="contact"><attribute name="contactid" /><link-entity name="account" '
            'from="accountid" to="parentcustomerid" alias="parent" link-type="inner"><attribute name="name" />'
            f'<filter><condition attribute="{COUNTRY}" operator="eq" value="{country}" /></filter></link-entity>'
            '</entity></fetch>')


def _new_list(world, account: str, name: str, query: str) -> str:
    list_id = str(uuid.uuid4())
    world.put_row("lists", {"listid": list_id, "listname": name, "type": True, "createdfromcode": 2, "query": query,
                            "esc_activatedforemail": True, "_esc_emailaccountid_value": account})
    return list_id


def _book(world, list_id: str) -> int:
    return next(row for row in world.rows("lists") if row["listid"] == list_id)["esc_addressbookid"]


def _book_emails(world, account: str, list_id: str) -> set[str]:
    book = _book(world, list_id)
    return set(world.actual_books(account, [book])[book])


@pytest.fixture(scope="module")
def dynamic(world, pipeline):
    """Two dynamic lists of the first account, made before its first sync; the most common country and cities."""
    account = pipeline.accounts[0]
    contacts = world.rows("contacts")
    countries = Counter(c[COUNTRY] for c in contacts if c.get(COUNTRY))
    cities = Counter(c["address1_city"] for c in contacts if c.get("address1_city"))
    country = countries.most_common(1)[0][0]
    parents = Counter(a[COUNTRY] for a in world.rows("accounts") if a.get(COUNTRY))
    lists = {"by_country": _new_list(world, account, "Dynamic by country",
                                     _query(country, [city for city, _ in cities.most_common(3)[1:]])),
             "by_parent": _new_list(world, account, "Dynamic by parent", _linked_query(parents.most_common(1)[0][0]))}
    result = pipeline.sync(account)
    return account, country, lists, result


def test_a_dynamic_list_s_book_holds_exactly_the_valid_consenting_people_its_query_selects(world, pipeline, dynamic):
    account, _, lists, result = dynamic
    assert result.success
    assert not world.rows("listmembers", **{"$filter": f"_listid_value eq {lists['by_country']}"}), \
        "Dynamics holds no listmember rows for a dynamic list"
    _assert_books_match(world, account)  # every list of the account, the dynamic ones by their queries
    evaluated = facts(result)["dynamic_list_members"]
    by_list = evaluated["by_list"]
    assert {"Dynamic by country", "Dynamic by parent"} <= set(by_list) and evaluated["lists_failed"] == 0
    books = world.expected_books(account)
    for name, list_id in (("Dynamic by country", lists["by_country"]), ("Dynamic by parent", lists["by_parent"])):
        wanted = books[_book(world, list_id)]
        assert wanted and _book_emails(world, account, list_id) <= wanted, name  # and all but suppressed ones
        assert by_list[name]["members"] >= len(wanted) and by_list[name]["query_pages"] == 1


def test_people_entering_and_leaving_the_query_are_added_and_removed_at_the_next_sync(world, pipeline, dynamic):
    account, country, lists, _ = dynamic
    before = _book_emails(world, account, lists["by_country"])
    people = [c for c in world.rows("contacts") if c["statecode"] == 0 and not c.get("donotbulkemail")
              and not c.get("donotemail") and (c.get("emailaddress1") or "").strip()]
    leaving = [c for c in people if (c["emailaddress1"] or "").strip().lower() in before
               and c.get(COUNTRY) == country][:3]
    outside = [c for c in people if c.get(COUNTRY) != country and (c["emailaddress1"] or "").strip().lower()
               not in before]
    expected_before = world.expected_books(account)[_book(world, lists["by_country"])]
    for person in leaving:
        world.put_row("contacts", {"contactid": person["contactid"], COUNTRY: "Atlantis", "address1_city": "Nowhere"})
    for person in outside[:3]:
        world.put_row("contacts", {"contactid": person["contactid"], COUNTRY: country})
    expected_after = world.expected_books(account)[_book(world, lists["by_country"])]
    assert len(leaving) == 3 and expected_before - expected_after and expected_after - expected_before

    result = pipeline.sync(account)
    assert result.success
    assert facts(result)["audience_members"]["scope"] == INCREMENTAL, "only the people who entered or left"
    after = _book_emails(world, account, lists["by_country"])
    assert before - after == expected_before - expected_after
    assert after - before == expected_after - expected_before
    changed = facts(result)["dynamic_list_members"]["by_list"]["Dynamic by country"]
    assert (changed["added"], changed["removed"]) == (3, 3)
    _assert_books_match(world, account)


def test_a_broken_query_leaves_its_book_as_it_was_and_the_other_lists_sync(world, pipeline, dynamic):
    account, country, lists, _ = dynamic
    held = _book_emails(world, account, lists["by_parent"])
    assert held
    world.put_row("lists", {"listid": lists["by_parent"], "query": _linked_query(country).replace(
        f'attribute="{COUNTRY}"', 'attribute="esc_nosuchcolumn"')})
    leaving = next(c for c in world.rows("contacts") if c.get(COUNTRY) == country and c["statecode"] == 0
                   and (c.get("emailaddress1") or "").strip().lower() in _book_emails(world, account,
                                                                                      lists["by_country"]))
    world.put_row("contacts", {"contactid": leaving["contactid"], COUNTRY: "Atlantis", "address1_city": "Nowhere"})

    result = pipeline.sync(account)
    assert result.success, "one list's query fails that list alone"
    evaluated = facts(result)["dynamic_list_members"]
    assert evaluated["lists_failed"] == 1 and "Dynamic by parent" in evaluated["by_list"]["Dynamic by parent"]["error"]
    checks = {check.check_name: check for check in result.get_asset_check_evaluations()}
    assert not checks["dynamic_list_queries"].passed
    assert "Dynamic by parent" in checks["dynamic_list_queries"].description
    logged = [record.user_message for record in pipeline.instance.all_logs(result.run_id) if record.level >= 40]
    assert any("Dynamic by parent" in line and "esc_nosuchcolumn" in line for line in logged)
    assert _book_emails(world, account, lists["by_parent"]) == held, "nobody removed because a query failed"
    assert facts(result)["address_book_members"]["address_books_held_back"] == 1
    assert leaving["emailaddress1"].strip().lower() not in _book_emails(world, account, lists["by_country"]), \
        "the account's other lists synced"

    world.put_row("lists", {"listid": lists["by_parent"], "query": _linked_query(country)})
    result = pipeline.sync(account)
    assert result.success and facts(result)["dynamic_list_members"]["lists_failed"] == 0
    assert facts(result)["audience_members"]["scope"] != INCREMENTAL, "after a failure, the whole account again"
    _assert_books_match(world, account)


def test_a_list_switched_from_static_to_dynamic_and_back_keeps_only_what_its_definition_holds(world, pipeline,
                                                                                              dynamic):
    account, country, _, _ = dynamic
    static = next(row for row in world.rows("lists") if row["_esc_emailaccountid_value"] == account
                  and row["esc_activatedforemail"] and not row["type"] and row["createdfromcode"] == 2
                  and row["statecode"] == 0 and _book_emails(world, account, row["listid"]))
    as_static = _book_emails(world, account, static["listid"])
    world.put_row("lists", {"listid": static["listid"], "type": True, "query": _query(country, [])})
    result = pipeline.sync(account)
    assert result.success
    _assert_books_match(world, account)  # the book holds what the query selects (all but suppressed people)
    as_dynamic = _book_emails(world, account, static["listid"])
    assert as_static - as_dynamic and as_static & as_dynamic, "members the query holds stay, the others leave"

    world.put_row("lists", {"listid": static["listid"], "type": False, "query": None})
    result = pipeline.sync(account)
    assert result.success
    assert _book_emails(world, account, static["listid"]) == as_static
    _assert_books_match(world, account)


def test_list_members_are_read_only_while_a_static_list_is_activated_and_then_from_where_they_were(world, pipeline,
                                                                                                   dynamic):
    account = dynamic[0]
    static = [row for row in world.rows("lists") if row["esc_activatedforemail"] and not row["type"]
              and row["statecode"] == 0]
    chosen = next(row for row in static if row["_esc_emailaccountid_value"] == account and row["createdfromcode"] == 2
                  and _book_emails(world, account, row["listid"]))["listid"]
    emails = {c["contactid"]: (c.get("emailaddress1") or "").strip().lower() for c in world.rows("contacts")}
    links = [m for m in world.rows("listmembers") if m["_listid_value"] == chosen]
    booked = _book_emails(world, account, chosen)
    leaver = next(m for m in links if emails.get(m["_entityid_value"]) in booked
                  and sum(other["_entityid_value"] == m["_entityid_value"] for other in links) == 1)
    try:
        for row in static:  # every account's static lists: only dynamic lists are left to sync
            world.put_row("lists", {"listid": row["listid"], "esc_activatedforemail": False})
        result = pipeline.sync(account)
        extract = facts(result)["crm_list_members"]
        assert result.success and extract["read_mode"] == "skipped" and extract["dataverse_requests"] == 0
        _assert_books_match(world, account)

        world.delete_row("listmembers", leaver["listmemberid"])  # while no one reads the list members
        world.put_row("lists", {"listid": chosen, "esc_activatedforemail": True})
        result = pipeline.sync(account)
        extract = facts(result)["crm_list_members"]
        assert result.success and extract["read_mode"] == "delta" and extract["rows_deleted"] >= 1
        _assert_books_match(world, account)
        assert emails[leaver["_entityid_value"]] not in _book_emails(world, account, chosen)
    finally:
        for row in static:
            world.put_row("lists", {"listid": row["listid"], "esc_activatedforemail": True})

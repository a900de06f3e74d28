"""FetchXML reduced to the keys of the records it selects, and the paging cookie of the next page."""

import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest

from dotdyn_pipeline.connectors.dataverse.fetchxml import FetchXmlError, key_query, next_cookie, parse, query_entity

QUERY = """<fetch version="1.0" mapping="logical" count="50" page="3" paging-cookie="&lt;cookie/&gt;">
  <entity name="contact">
    <attribute name="fullname" />
    <all-attributes />
    <order attribute="lastname" descending="true" />
    <filter type="and">
      <condition attribute="statecode" operator="eq" value="0" />
      <filter type="or">
        <condition attribute="address1_city" operator="in"><value>Leeds</value><value>York</value></condition>
        <condition attribute="createdon" operator="last-x-days" value="30" />
      </filter>
    </filter>
    <link-entity name="account" from="accountid" to="parentcustomerid" alias="parent" link-type="outer">
      <attribute name="name" />
      <order attribute="name" />
      <filter><condition attribute="industrycode" operator="eq" value="7" /></filter>
    </link-entity>
  </entity>
</fetch>"""


def _page(text: str, number: int = 1, cookie: str | None = None) -> ET.Element:
    return parse(key_query(text, "contactid").page(number, cookie))


def test_the_key_query_keeps_what_selects_and_asks_for_the_key_alone_in_key_order():
    fetch = _page(QUERY)
    entity = fetch.find("entity")
    assert [(child.tag, child.attrib) for child in entity if child.tag in ("attribute", "order", "all-attributes")] \
        == [("attribute", {"name": "contactid"}), ("order", {"attribute": "contactid"})]
    link = entity.find("link-entity")
    assert [child.tag for child in link] == ["filter"]  # its columns and order go, its filter stays
    assert link.attrib == {"name": "account", "from": "accountid", "to": "parentcustomerid", "alias": "parent",
                           "link-type": "outer"}
    conditions = [(c.get("attribute"), c.get("operator"), c.get("value")) for c in entity.iter("condition")]
    assert conditions == [("statecode", "eq", "0"), ("address1_city", "in", None), ("createdon", "last-x-days", "30"),
                          ("industrycode", "eq", "7")]
    assert [v.text for v in entity.find("filter/filter/condition").findall("value")] == ["Leeds", "York"]
    assert entity.find("filter").get("type") == "and" and entity.find("filter/filter").get("type") == "or"
    # the query's own paging goes; the reader's is set, distinct so that a link matching twice returns once
    assert fetch.attrib == {"version": "1.0", "mapping": "logical", "distinct": "true", "count": "5000",
                            "page": "1"}


def test_later_pages_carry_the_number_and_the_cookie_and_leave_the_query_as_it_was():
    query = key_query(QUERY, "contactid")
    second = parse(query.page(2, '<cookie page="1"><contactid last="{B}" first="{A}" /></cookie>', 10))
    assert (second.get("page"), second.get("count")) == ("2", "10")
    assert second.get("paging-cookie") == '<cookie page="1"><contactid last="{B}" first="{A}" /></cookie>'
    assert parse(query.page(1, None)).get("paging-cookie") is None


def test_a_capped_query_is_read_in_one_request_with_its_cap():
    fetch = parse(key_query('<fetch top="25"><entity name="lead" /></fetch>', "leadid").page(1, None))
    assert fetch.get("top") == "25" and fetch.get("count") is None and fetch.get("page") is None


def test_the_entity_is_named_by_the_query():
    assert query_entity(QUERY) == "contact"
    assert key_query(QUERY, "contactid").entity == "contact"


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("<fetch><entity name='contact'>", "not well-formed"),
    ("<query><entity name='contact'/></query>", "root element"),
    ("<fetch><entity name='contact'/><entity name='lead'/></fetch>", "one <entity>"),
    ("<fetch><entity/></fetch>", "one <entity>"),
    ("<fetch aggregate='true'><entity name='contact'/></fetch>", "aggregate"),
    ("<fetch top='none'><entity name='contact'/></fetch>", "not a number"),
    ("<fetch top='9000'><entity name='contact'/></fetch>", "outside"),
    ('<!DOCTYPE fetch [<!ENTITY x "contact">]><fetch><entity name="&x;"/></fetch>', "DTD or entities"),
    ('<!DOCTYPE fetch SYSTEM "file:///etc/passwd"><fetch><entity name="contact"/></fetch>', "DTD or entities"),
])
def test_queries_that_select_no_record_set_are_refused_saying_why(text, reason):
    with pytest.raises(FetchXmlError, match=reason):
        key_query(text, "contactid")


def test_the_next_cookie_is_the_annotations_pagingcookie_decoded_twice():
    inner = '<cookie page="1"><contactid last="{D5026A4D}" first="{49B0BE2E}" /></cookie>'
    annotation = f'<cookie pagenumber="2" pagingcookie="{quote(quote(inner))}" istracking="False" />'
    assert next_cookie(annotation) == inner
    assert next_cookie(None) is None
    assert next_cookie('<cookie pagenumber="2" istracking="False" />') is None

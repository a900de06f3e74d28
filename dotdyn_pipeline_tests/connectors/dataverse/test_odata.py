"""OData text: literals, key segments, query strings and links, as Microsoft's Web API documents them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dotdyn_pipeline.connectors.dataverse import odata


@pytest.mark.parametrize(("value", "text"), [
    ("O'Bryan", "'O''Bryan'"),
    ("", "''"),
    (None, "null"),
    (True, "true"),
    (False, "false"),
    (42, "42"),
    (1.5, "1.5"),
    (uuid.UUID("2e451703-c686-e711-80e5-00155db19e6d"), "2e451703-c686-e711-80e5-00155db19e6d"),
    (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
    (datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2024-01-02T03:04:05Z"),
])
def test_literal(value: object, text: str) -> None:
    assert odata.literal(value) == text


def test_key_segment_for_primary_and_alternate_keys() -> None:
    guid = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
    assert odata.key_segment(guid) == f"({guid})"
    assert odata.key_segment({"firstname": "Joe", "esc_number": 3}) == "(firstname='Joe',esc_number=3)"
    assert odata.key_segment({"accountnumber": "A'1"}) == "(accountnumber='A''1')"
    assert odata.key_segment({"_primarycontactid_value": guid, "esc_email": "a@b.c"}) == (
        f"(_primarycontactid_value={guid},esc_email='a@b.c')")
    with pytest.raises(ValueError, match="GUID"):
        odata.key_segment("not-a-guid")


def test_query_encodes_values_but_keeps_odata_punctuation() -> None:
    text = odata.query(["contactid", "fullname"], filter="lastname eq 'O''Bryan' and x eq 'a+b&c'",
                       orderby=["modifiedon asc", "contactid asc"])
    assert text == ("$select=contactid,fullname"
                    "&$filter=lastname%20eq%20'O''Bryan'%20and%20x%20eq%20'a%2Bb%26c'"
                    "&$orderby=modifiedon%20asc,contactid%20asc")
    assert odata.query() == ""


def test_prefer_joins_preferences() -> None:
    assert odata.prefer(max_page_size=5000) == "odata.maxpagesize=5000"
    assert odata.prefer(track_changes=True, max_page_size=10) == "odata.track-changes,odata.maxpagesize=10"
    assert odata.prefer(continue_on_error=True) == "odata.continue-on-error"


def test_link_option_reads_the_documented_delta_link() -> None:
    link = ("https://org.crm.dynamics.com/api/data/v9.0/accounts?$select=name,accountnumber,telephone1,fax"
            "&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44")
    assert odata.link_option(link, "$deltatoken") == "919042!08/22/2017 08:10:44"
    assert odata.link_option(link, "$select") == "name,accountnumber,telephone1,fax"
    assert odata.link_option(link, "$filter") is None


def test_is_deleted_recognises_deleted_entity_rows() -> None:
    deleted = {"@odata.context": "https://o/api/data/v9.0/$metadata#accounts/$deletedEntity",
               "id": "2e451703-c686-e711-80e5-00155db19e6d", "reason": "deleted"}
    assert odata.is_deleted(deleted)
    assert not odata.is_deleted({"@odata.etag": 'W/"1"', "accountid": "x"})

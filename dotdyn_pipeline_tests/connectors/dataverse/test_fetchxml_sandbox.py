"""The keys a FetchXML query selects, read page by page with the paging cookie from the sandbox over HTTPS."""

from __future__ import annotations

import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.errors import DataverseError
from dotdyn_pipeline.connectors.dataverse.fetchxml import FetchXmlError
from dotdyn_pipeline_tests.connectors.dataverse.test_read_sandbox import web_api

ACTIVE = ('<fetch><entity name="contact"><attribute name="fullname" /><order attribute="lastname" descending="true" />'
          '<filter><condition attribute="statecode" operator="eq" value="0" /></filter></entity></fetch>')


def test_every_selected_key_is_read_once_in_pages_with_the_cookie(sandbox, dataverse: DataverseClient) -> None:
    with web_api(sandbox) as api:
        expected = {row["contactid"] for row in api.get(
            "contacts", params={"$select": "contactid", "$filter": "statecode eq 0"},
            headers={"Prefer": "odata.maxpagesize=5000"}).raise_for_status().json()["value"]}
    assert len(expected) > 1000, "the suite's contacts span several pages of 400"
    read = dataverse.read_query_keys(ACTIVE, page_rows=400)
    pages = list(read)
    keys = [key for page in pages for key in page]
    assert read.entity == "contact" and len(keys) == len(set(keys)) and set(keys) == expected
    assert read.pages == len(pages) == -(-len(expected) // 400) and all(len(page) == 400 for page in pages[:-1])
    assert dataverse.counter.snapshot()["fetchxml"] == read.pages


def test_a_query_the_service_refuses_raises_its_error_and_a_malformed_one_sends_nothing(dataverse) -> None:
    broken = ACTIVE.replace('attribute="statecode"', 'attribute="esc_nosuchcolumn"')
    with pytest.raises(DataverseError) as refused:
        list(dataverse.read_query_keys(broken))
    assert refused.value.status == 400 and "esc_nosuchcolumn" in str(refused.value)
    before = dataverse.counter.snapshot().get("fetchxml", 0)
    with pytest.raises(FetchXmlError):
        dataverse.read_query_keys("<fetch><entity name='contact'>")
    assert dataverse.counter.snapshot().get("fetchxml", 0) == before

"""Metadata, paged reads and change tracking against the sandbox's Dataverse over HTTPS."""

from __future__ import annotations

import math
import uuid
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseClient, DataverseNotFound, MsalTokenSource
from dotdyn_pipeline.connectors.dataverse.odata import link_option
from dotdyn_pipeline.connectors.http import tls_verify
from dotdyn_pipeline_tests.connectors.dataverse.conftest import PAGE_SIZE, sandbox_config

SELECT = ["contactid", "emailaddress1", "statecode"]


def web_api(sandbox: dict[str, Any]) -> httpx.Client:
    """A bare httpx client of the Web API, to change data behind the client's back."""
    config = sandbox_config(sandbox)
    token = MsalTokenSource(config.credentials(), config.org_url, ca_bundle=config.ca_bundle).token()
    return httpx.Client(base_url=config.api_root, verify=tls_verify(sandbox["ca_cert"]), timeout=30,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})


def test_entity_metadata_comes_from_entity_definitions_and_is_cached(dataverse: DataverseClient) -> None:
    info = dataverse.entity("contact")
    assert (info.entity_set, info.primary_id) == ("contacts", "contactid")
    assert dataverse.entity_set_name("contact") == "contacts"
    assert dataverse.counter.snapshot()["metadata"] == 1
    with pytest.raises(DataverseNotFound):
        dataverse.entity("esc_nosuchtable")


def test_read_streams_bounded_pages_of_only_the_selected_columns(dataverse: DataverseClient) -> None:
    pages = list(dataverse.read("contact", SELECT))
    rows = [row for page in pages for row in page]
    assert all(len(page) <= PAGE_SIZE for page in pages) and len(pages) > 2
    assert len({row["contactid"] for row in rows}) == len(rows)
    data_columns = {key for row in rows for key in row if not key.startswith("@")}
    assert data_columns == set(SELECT)
    assert dataverse.counter.snapshot()["read"] == math.ceil(len(rows) / PAGE_SIZE) == len(pages)


def test_read_filters_and_orders_on_the_service(dataverse: DataverseClient) -> None:
    everyone = [row for page in dataverse.read("contact", SELECT) for row in page]
    inactive = [row for page in dataverse.read("contact", SELECT, filter="statecode eq 1",
                                                orderby=["contactid desc"]) for row in page]
    assert inactive and len(inactive) < len(everyone)
    assert all(row["statecode"] == 1 for row in inactive)
    assert len(inactive) == sum(1 for row in everyone if row["statecode"] == 1)
    ids = [row["contactid"] for row in inactive]
    assert ids == sorted(ids, reverse=True)


def test_change_tracking_returns_changes_and_deletions_since_the_delta_link(
        dataverse: DataverseClient, sandbox: dict[str, Any]) -> None:
    assert dataverse.entity("contact").change_tracking
    first = dataverse.read_changes("contact", SELECT)
    everyone = [row for page in first for row in page.rows]
    assert first.mode == "full" and first.fallback is None
    assert first.cursor and link_option(first.cursor, "$deltatoken")
    changed, deleted = everyone[3]["contactid"], everyone[4]["contactid"]
    created = str(uuid.uuid4())
    with web_api(sandbox) as api:
        api.patch(f"contacts({changed})", json={"emailaddress1": "changed@example.com"}).raise_for_status()
        api.patch(f"contacts({created})", json={"lastname": "New", "emailaddress1": "new@example.com"}
                  ).raise_for_status()
        api.delete(f"contacts({deleted})").raise_for_status()

    second = dataverse.read_changes("contact", SELECT, first.cursor)
    assert second.mode == "delta" and second.fallback is None
    pages = list(second)
    rows = {row["contactid"]: row for page in pages for row in page.rows}
    assert rows[changed]["emailaddress1"] == "changed@example.com"
    assert created in rows
    assert [i for page in pages for i in page.deleted] == [deleted]
    assert second.cursor and second.cursor != first.cursor
    assert dataverse.counter.snapshot()["delta"] >= 1

    third = dataverse.read_changes("contact", SELECT, second.cursor)
    assert third.mode == "delta"
    assert [page.rows for page in third if page.rows or page.deleted] == []


def test_a_refused_delta_link_falls_back_to_a_full_read(dataverse: DataverseClient) -> None:
    first = dataverse.read_changes("contact", SELECT)
    expected = sorted(row["contactid"] for page in first for row in page.rows)
    assert first.cursor
    token = link_option(first.cursor, "$deltatoken")
    assert token
    bogus = httpx.URL(first.cursor).copy_set_param("$deltatoken", "0!01/01/2000 00:00:00")
    second = dataverse.read_changes("contact", SELECT, str(bogus))
    assert second.mode == "full" and second.fallback and "refused" in second.fallback
    assert sorted(row["contactid"] for page in second for row in page.rows) == expected
    assert second.cursor and link_option(second.cursor, "$deltatoken")


def test_an_expired_delta_token_falls_back_to_a_full_read(dataverse: DataverseClient,
                                                         control: httpx.Client) -> None:
    first = dataverse.read_changes("contact", SELECT)
    expected = sorted(row["contactid"] for page in first for row in page.rows)
    control.post("/dataverse/delta-tokens/expire").raise_for_status()
    second = dataverse.read_changes("contact", SELECT, first.cursor)
    assert second.mode == "full" and "refused" in (second.fallback or "")
    assert sorted(row["contactid"] for page in second for row in page.rows) == expected
    third = dataverse.read_changes("contact", SELECT, second.cursor)  # the new link is good again
    assert third.mode == "delta" and third.fallback is None


def test_a_table_without_change_tracking_is_read_by_modifiedon_watermark(
        dataverse: DataverseClient, sandbox: dict[str, Any]) -> None:
    assert not dataverse.entity("campaign").change_tracking
    first = dataverse.read_changes("campaign", ["campaignid", "name"])
    assert first.mode == "full"
    everything = [row for page in first for row in page.rows]
    assert everything and first.cursor and first.cursor.startswith("watermark:")
    stamps = [row["modifiedon"] for row in everything]
    assert stamps == sorted(stamps) and first.cursor == "watermark:" + stamps[-1]

    campaign_id = everything[0]["campaignid"]
    with web_api(sandbox) as api:
        api.patch(f"campaigns({campaign_id})", json={"name": "Renamed"}).raise_for_status()
    second = dataverse.read_changes("campaign", ["campaignid", "name"], first.cursor)
    assert second.mode == "watermark" and second.fallback is None
    changed = {row["campaignid"]: row for page in second for row in page.rows}
    assert changed[campaign_id]["name"] == "Renamed"
    assert all(row["modifiedon"] >= stamps[-1] for row in changed.values())  # at or after the watermark
    assert second.cursor == "watermark:" + changed[campaign_id]["modifiedon"] and second.cursor > first.cursor
    third = dataverse.read_changes("campaign", ["campaignid", "name"], second.cursor)
    assert [row["campaignid"] for page in third for row in page.rows] == [campaign_id]  # only the newest


def test_new_columns_mean_a_full_read(dataverse: DataverseClient) -> None:
    first = dataverse.read_changes("contact", SELECT)
    for _ in first:
        pass
    wider = dataverse.read_changes("contact", [*SELECT, "lastname"], first.cursor)
    assert wider.mode == "full" and "columns changed" in (wider.fallback or "")
    assert any("lastname" in row for page in wider for row in page.rows)

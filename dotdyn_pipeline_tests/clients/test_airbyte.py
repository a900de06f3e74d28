"""Airbyte's Dataverse source (airbyte-source-microsoft-dataverse), unchanged, against the stand-in.

The commands run through Airbyte's own entrypoint, as the platform runs the connector: spec, check,
discover, a full read and incremental reads that resume from the `$deltatoken` the source keeps as state.
"""

from __future__ import annotations

from typing import Any

from dotdyn_pipeline_tests.sandbox.dataverse_helpers import all_pages


def _of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The payloads of the Airbyte messages of one type (`RECORD` -> each message's `record`)."""
    field = "connectionStatus" if kind == "CONNECTION_STATUS" else kind.lower()
    return [message[field] for message in messages if message["type"] == kind]


def _catalog(stream: str, sync_mode: str) -> dict[str, Any]:
    """A configured catalog of one stream, as the platform passes it to `read`."""
    incremental = sync_mode == "incremental"
    return {"streams": [{
        "stream": {"name": stream, "json_schema": {"properties": {}}, "supported_sync_modes": ["full_refresh",
                                                                                              "incremental"],
                   "source_defined_cursor": True, "default_cursor_field": ["modifiedon"],
                   "source_defined_primary_key": [[f"{stream}id"]]},
        "sync_mode": sync_mode, "destination_sync_mode": "append_dedup" if incremental else "overwrite",
        "cursor_field": ["modifiedon"] if incremental else [], "primary_key": [[f"{stream}id"]]}]}


def test_spec_and_check(airbyte):
    spec = _of(airbyte("spec"), "SPEC")[0]
    assert {"url", "tenant_id", "client_id", "client_secret_value"} <= set(spec["connectionSpecification"]["required"])
    assert [s["status"] for s in _of(airbyte("check"), "CONNECTION_STATUS")] == ["SUCCEEDED"]


def test_discover_offers_the_tables_with_change_tracking_incrementally(airbyte):
    streams = {s["name"]: s for s in _of(airbyte("discover"), "CATALOG")[0]["streams"]}
    contact = streams["contact"]
    assert contact["supported_sync_modes"] == ["full_refresh", "incremental"]
    assert contact["default_cursor_field"] == ["modifiedon"]
    assert contact["source_defined_primary_key"] == [["contactid"]]
    assert {"contactid", "emailaddress1", "modifiedon"} <= set(contact["json_schema"]["properties"])
    assert "_primarycontactid_value" in streams["account"]["json_schema"]["properties"]  # a Lookup, renamed
    assert streams["campaign"]["supported_sync_modes"] == ["full_refresh"]  # campaign is not change-tracked


def test_full_read_returns_every_row(airbyte, stand_in):
    records = _of(airbyte("read", catalog=_catalog("account", "full_refresh"), page_size=7), "RECORD")
    held, _ = all_pages(stand_in, "accounts", 5000)
    assert sorted(r["data"]["accountid"] for r in records) == sorted(row["accountid"] for row in held)
    assert {r["stream"] for r in records} == {"account"}


def test_incremental_read_resumes_from_the_delta_token(airbyte, stand_in):
    catalog = _catalog("lead", "incremental")
    first = airbyte("read", catalog=catalog, page_size=15)
    held, _ = all_pages(stand_in, "leads", 5000, **{"$select": "leadid"})
    assert sorted(r["data"]["leadid"] for r in _of(first, "RECORD")) == sorted(row["leadid"] for row in held)
    state = [s for s in _of(first, "STATE")]
    assert state[-1]["stream"]["stream_state"]["$deltatoken"]

    created = stand_in.post("leads", json={"firstname": "Incremental", "lastname": "Lead"})
    created_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    gone = held[0]["leadid"]
    assert stand_in.delete(f"leads({gone})").status_code == 204
    changed = _of(airbyte("read", catalog=catalog, state=state[-1:], page_size=15), "RECORD")
    assert [(r["data"]["leadid"], r["data"].get("_ab_cdc_deleted_at") is not None) for r in changed] == [
        (created_id, False), (gone, True)]

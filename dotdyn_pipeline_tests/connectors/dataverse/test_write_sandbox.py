"""Upserts, bulk upserts with per-record outcomes, and list member removal against the sandbox over HTTPS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.odata import literal
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.connectors.dataverse.conftest import sandbox_config
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import web_api


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Writes go to a sandbox of this module's own, so the suite's shared one keeps its seeded rows."""
    settings = SandboxSettings(seed=31, contacts=300, leads=50, accounts=30, email_accounts=1, days=2)
    with running_sandbox(tmp_path_factory.mktemp("dataverse-writes"), settings) as contract:
        yield contract


def contacts_by_id(client: DataverseClient, ids: list[str], select: tuple[str, ...]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for start in range(0, len(ids), 50):
        ors = " or ".join(f"contactid eq {i}" for i in ids[start:start + 50])
        for page in client.read("contact", select, filter=ors):
            found.update({row["contactid"]: row for row in page})
    return found


def test_upsert_creates_then_updates_by_primary_key(dataverse: DataverseClient) -> None:
    contact_id = str(uuid.uuid4())
    dataverse.upsert("contact", contact_id, {"lastname": "Upsert", "emailaddress1": "one@example.com"})
    dataverse.upsert("contact", contact_id, {"emailaddress1": "two@example.com"})
    row = contacts_by_id(dataverse, [contact_id], ("lastname", "emailaddress1"))[contact_id]
    assert (row["lastname"], row["emailaddress1"]) == ("Upsert", "two@example.com")
    assert dataverse.counter.snapshot()["upsert"] == 2


def test_upsert_many_reports_every_record_across_chunks(sandbox: dict[str, Any]) -> None:
    rows = [{"contactid": str(uuid.uuid4()), "lastname": f"Bulk {n}", "emailaddress1": f"bulk{n}@example.com"}
            for n in range(25)]
    with DataverseClient(sandbox_config(sandbox, batch_size=10, max_concurrency=2)) as client:
        outcomes = client.upsert_many("contact", rows, ["contactid"])
        calls = client.counter.snapshot()
        stored = contacts_by_id(client, [r["contactid"] for r in rows], ("lastname",))
    assert [o.index for o in outcomes] == list(range(25)) and all(o.ok for o in outcomes)
    assert calls.get("upsert_multiple", 0) + calls.get("batch", 0) == 3  # 10 + 10 + 5
    assert {i: r["lastname"] for i, r in stored.items()} == {r["contactid"]: r["lastname"] for r in rows}


def test_a_bad_record_fails_alone_and_the_others_are_written(dataverse: DataverseClient) -> None:
    rows = [{"contactid": str(uuid.uuid4()), "lastname": "Good A"},
            {"contactid": str(uuid.uuid4()), "no_such_column": "x"},
            {"contactid": str(uuid.uuid4()), "lastname": "Good B"}]
    outcomes = dataverse.upsert_many("contact", rows, ["contactid"])
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].status == 400 and "no_such_column" in outcomes[1].message
    # UpsertMultiple rolls back the whole chunk; the chunk is sent again as a $batch to tell records apart.
    calls = dataverse.counter.snapshot()
    assert (calls["upsert_multiple"], calls["batch"]) == (1, 1)
    stored = contacts_by_id(dataverse, [r["contactid"] for r in rows], ("lastname",))
    assert set(stored) == {rows[0]["contactid"], rows[2]["contactid"]}


def test_an_atomic_chunk_is_written_whole_or_not_at_all(dataverse: DataverseClient) -> None:
    rows = [{"contactid": str(uuid.uuid4()), "lastname": "Atomic A"},
            {"contactid": str(uuid.uuid4()), "no_such_column": "x"},
            {"contactid": str(uuid.uuid4()), "lastname": "Atomic B"}]
    outcomes = dataverse.upsert_many("contact", rows, ["contactid"], atomic=True)
    assert not any(o.ok for o in outcomes)
    # The failed change set answers one error; as in Microsoft's example it names no Content-ID.
    assert {(o.status, o.message) for o in outcomes} == {(400, outcomes[1].message)}
    assert "no_such_column" in outcomes[1].message
    assert contacts_by_id(dataverse, [r["contactid"] for r in rows], ("lastname",)) == {}
    good = [rows[0], rows[2]]
    assert all(o.ok for o in dataverse.upsert_many("contact", good, ["contactid"], atomic=True))
    assert len(contacts_by_id(dataverse, [r["contactid"] for r in good], ("lastname",))) == 2


def test_list_members_are_removed(dataverse: DataverseClient, sandbox: dict[str, Any]) -> None:
    list_id = str(uuid.uuid4())
    dataverse.upsert("list", list_id, {"listname": "Test list", "createdfromcode": 2, "type": False})
    members = [row["contactid"] for row in next(dataverse.read("contact", ["contactid"]))[:5]]
    with web_api(sandbox) as api:  # added as Microsoft documents AddListMembersList
        api.post("AddListMembersList", json={
            "List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": list_id},
            "Members": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": m} for m in members],
        }).raise_for_status()

    def current() -> set[str]:
        return {row["_entityid_value"] for page in dataverse.read(
            "listmember", ["_entityid_value"], filter=f"_listid_value eq {literal(uuid.UUID(list_id))}")
            for row in page}

    assert current() == set(members)
    removed = dataverse.remove_list_members(list_id, members[:2], member_table="contact")
    assert all(o.ok for o in removed)
    assert current() == set(members[2:])
    with pytest.raises(ValueError, match="member_table='listmember'"):
        dataverse.remove_list_members(list_id, members[2:], member_table="listmember")
    assert current() == set(members[2:])


def test_upsert_by_alternate_key(dataverse: DataverseClient) -> None:
    api_user = f"apiuser-{uuid.uuid4().hex[:8]}@apiconnector.com"
    dataverse.upsert("esc_emailaccount", {"esc_apiuser": api_user}, {"esc_name": "First", "esc_transport": "rest"})
    dataverse.upsert("esc_emailaccount", {"esc_apiuser": api_user}, {"esc_name": "Second"})
    rows = [row for page in dataverse.read("esc_emailaccount", ["esc_name", "esc_transport"],
                                            filter=f"esc_apiuser eq {literal(api_user)}") for row in page]
    assert [(r["esc_name"], r["esc_transport"]) for r in rows] == [("Second", "rest")]


def test_upsert_many_by_an_alternate_key_with_a_lookup(dataverse: DataverseClient) -> None:
    account_id = next(dataverse.read("esc_emailaccount", ["esc_emailaccountid"]))[0]["esc_emailaccountid"]
    key = ["_esc_emailaccountid_value", "esc_email"]
    emails = [f"suppressed-{uuid.uuid4().hex[:8]}@example.com" for _ in range(3)]
    rows = [{"_esc_emailaccountid_value": account_id, "esc_email": e, "esc_reason": "HardBounced"} for e in emails]
    assert all(o.ok for o in dataverse.upsert_many("esc_emailsupression", rows, key))
    again = [{**row, "esc_reason": "Unsubscribed"} for row in rows]
    assert all(o.ok for o in dataverse.upsert_many("esc_emailsupression", again, key))
    assert dataverse.counter.snapshot()["upsert_multiple"] == 2
    found = [row for page in dataverse.read(
        "esc_emailsupression", ["esc_email", "esc_reason"],
        filter=" or ".join(f"esc_email eq {literal(e)}" for e in emails)) for row in page]
    assert sorted((r["esc_email"], r["esc_reason"]) for r in found) == [(e, "Unsubscribed") for e in sorted(emails)]


#: Each way the client writes by key, and the request whose answer the sandbox loses after writing.
WRITES_BY_KEY = {"upsert": ("PATCH", r"esc_emailsupressions\("),
                 "upsert_multiple": ("POST", r"UpsertMultiple$"),
                 "batch": ("POST", r"\$batch$")}


@pytest.mark.parametrize("way", sorted(WRITES_BY_KEY))
def test_a_write_whose_answer_was_lost_is_sent_again_and_each_row_exists_once(dataverse: DataverseClient,
                                                                               control, way: str) -> None:
    """The sandbox writes, then drops the connection before the answer: the client sends the write again, and
    since it names each row by its alternate key the second write finds the first one's rows."""
    account_id = next(dataverse.read("esc_emailaccount", ["esc_emailaccountid"]))[0]["esc_emailaccountid"]
    key = ["_esc_emailaccountid_value", "esc_email"]
    emails = sorted(f"lost-{way}-{uuid.uuid4().hex[:8]}@example.com" for _ in range(2 if way == "upsert" else 3))
    rows = [{"_esc_emailaccountid_value": account_id, "esc_email": e, "esc_reason": "HardBounced"} for e in emails]
    method, path = WRITES_BY_KEY[way]
    control.post("/faults/dataverse", json={"kind": "drop_after", "count": 1, "method": method, "path": path}
                 ).raise_for_status()
    if way == "upsert":
        for row in rows:
            dataverse.upsert("esc_emailsupression", {c: row[c] for c in key}, {"esc_reason": row["esc_reason"]})
    else:
        assert all(o.ok for o in dataverse.upsert_many("esc_emailsupression", rows, key, atomic=way == "batch"))
    calls = dataverse.counter.snapshot()
    assert calls["retry:RemoteProtocolError"] == 1 and calls[way] == (len(rows) if way == "upsert" else 1) + 1
    found = [row for page in dataverse.read("esc_emailsupression", ["esc_email", "esc_reason"],
                                            filter=" or ".join(f"esc_email eq {literal(e)}" for e in emails))
             for row in page]
    assert sorted((r["esc_email"], r["esc_reason"]) for r in found) == [(e, "HardBounced") for e in emails]

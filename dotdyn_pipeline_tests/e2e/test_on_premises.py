"""The pipeline end to end against an on-premises organisation: sign-in at AD FS, the Web API v8.2.

An audience sync fills the books; an address book unsubscribe then takes the person off the static list the
book mirrors, although v8.2 has no RemoveMemberList (the member is disassociated from the list instead).
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import httpx
import pytest

from dotdyn_pipeline.demo import materialized_facts as facts
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.defs.consent.consent_helpers import login, settle
from dotdyn_pipeline_tests.e2e.conftest import World

ON_PREMISES = SandboxSettings(seed=43, contacts=200, leads=50, accounts=30, email_accounts=1, days=2,
                              options={"identity.kind": "adfs", "dataverse.api_version": "v8.2"})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """This module's organisation, in place of the e2e tests' shared one: the `pipeline` fixture points at it."""
    with running_sandbox(tmp_path_factory.mktemp("e2e-on-premises"), ON_PREMISES) as contract, \
            httpx.Client(base_url=contract["control_url"], verify=trust(contract), timeout=60) as http:
        yield World(contract, http)


@pytest.fixture(scope="module")
def first_sync(world, pipeline) -> dg.ExecuteInProcessResult:
    [account] = pipeline.accounts
    return pipeline.sync(account)


def test_an_audience_sync_fills_the_books_from_an_on_premises_organisation(world, pipeline, first_sync):
    [account] = pipeline.accounts
    result = first_sync
    assert result.success
    expected = world.expected_books(account)
    assert expected and all(expected), "every activated list has its address book"
    assert sum(1 for wanted in expected.values() if wanted) >= len(expected) - 1, \
        "every list has members but the dynamic one whose window selects nobody in the seeded data"
    actual = world.actual_books(account, list(expected))
    for book, wanted in expected.items():
        assert set(actual[book]) == wanted - world.suppressed(account, wanted - set(actual[book])), f"book {book}"
    assert facts(result)["address_book_members"]["rows_sent"] > 0
    again = pipeline.sync(account)
    assert again.success and facts(again)["audience_members"]["scope"] == "addresses changed since the last sync"


def test_a_book_unsubscribe_takes_the_person_off_the_static_list(world, pipeline, first_sync):
    [account] = pipeline.accounts
    assert first_sync.success
    settle(pipeline)  # the consent flow catches up with the seeded history first
    lists = {row["esc_addressbookid"]: row for row in world.rows("lists")
             if row["_esc_emailaccountid_value"] == account and row.get("esc_addressbookid")}
    contact_ids: dict[str, set[str]] = {}
    for row in world.rows("contacts"):
        contact_ids.setdefault((row.get("emailaddress1") or "").strip().lower(), set()).add(row["contactid"])
    members = {(m["_listid_value"], m["_entityid_value"]) for m in world.rows("listmembers")}
    book, email = next(
        (book, email) for book, wanted in sorted(world.expected_books(account).items())
        if not lists[book]["type"] and lists[book]["createdfromcode"] == 2
        for email in sorted(wanted & set(world.actual_books(account, [book])[book]))
        if any((lists[book]["listid"], contact) in members for contact in contact_ids.get(email, ())))
    list_id = lists[book]["listid"]
    with pipeline.defs.resources["dotdigital"].client(**login(world, account)) as client:
        client.unsubscribe(email, book)

    runs = settle(pipeline)

    events = facts(runs[0])["consent_to_dynamics"]["events"]
    assert email in events and "applied" in events
    left = {m["_entityid_value"] for m in world.rows("listmembers") if m["_listid_value"] == list_id}
    assert not left & contact_ids[email], "taken off the static list the book mirrors"
    assert [row for row in world.rows("lists") if row["listid"] == list_id][0]["membercount"] == len(left)
    assert [r["_esc_listid_value"] for r in world.rows("esc_listunsubscribers") if r["esc_email"] == email] == [
        list_id]

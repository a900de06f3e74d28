"""The consent flow end to end, both ways: sandbox -> sensors -> consent_sync runs -> the other sandbox side."""

from __future__ import annotations

import threading
import time
import uuid

import dagster as dg
import pytest

from dotdyn_pipeline.demo import materialized_facts as facts
from dotdyn_pipeline.state import StateStore
from dotdyn_pipeline_tests.defs.consent.consent_helpers import login, resubscribe, settle, status, suppress


def state() -> StateStore:
    from dotdyn_pipeline.resources import state_store_resource

    return state_store_resource().open()


def ledger(account: str, email: str) -> list:
    store = state()
    try:
        return [entry for entry in store.ledger(account) if entry.event.email == email]
    finally:
        store.close()


@pytest.fixture(scope="module")
def baseline(world, pipeline):
    """Both accounts synced once (mirror, books), then the consent flow caught up with the seeded history."""
    for account in pipeline.accounts:
        assert pipeline.sync(account).success
    settle(pipeline)
    return pipeline.accounts


def contacts(world) -> dict[str, dict]:
    return {(row.get("emailaddress1") or "").strip().lower(): row for row in world.rows("contacts")}


def loaded(world, account: str) -> list[tuple[int, str]]:
    """(book, address) of subscribed members of the account's books that are CRM contacts without a flag."""
    people = contacts(world)
    found = []
    for book, wanted in world.expected_books(account).items():
        for email in sorted(set(world.actual_books(account, [book])[book]) & wanted):
            row = people.get(email)
            if row and not row.get("donotbulkemail") and not row.get("donotemail"):
                found.append((book, email))
    return found


class People:
    """Hands out loaded people, each to one test, so the tests do not step on each other."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def take(self, world, account: str) -> tuple[int, str]:
        book, email = next((b, e) for b, e in loaded(world, account) if e not in self.taken)
        self.taken.add(email)
        return book, email


@pytest.fixture(scope="module")
def people() -> People:
    return People()


def test_a_dotdigital_unsubscribe_reaches_dynamics_once(world, pipeline, baseline, people):
    account, other = baseline
    _, email = people.take(world, account)
    contact = contacts(world)[email]
    suppress(world, account, email)

    runs = settle(pipeline)

    rows = [r for r in world.rows("esc_emailsupressions") if r["esc_email"] == email]
    assert len(rows) == 1 and rows[0]["_esc_emailaccountid_value"] == account
    assert (rows[0]["esc_source"], rows[0]["esc_reason"]) == ("dotdigital", "Unsubscribed")
    assert rows[0]["_esc_contactid_value"] == contact["contactid"]
    assert contacts(world)[email]["donotbulkemail"], "the unsubscribe attribute is set on the contact"
    (entry,) = ledger(account, email)
    assert entry.event.source == "dotdigital" and entry.propagated_at is not None
    assert ledger(other, email) == [], "the flag this flow set did not come back as a Dynamics opt-out"
    table = facts(runs[0])["consent_to_dynamics"]["events"]
    assert email in table and "Unsubscribed" in table and "applied" in table
    assert status(world, other, email) in (None, "Subscribed"), "the other account is left alone"


def test_a_book_unsubscribe_becomes_a_list_unsubscriber(world, pipeline, baseline, people):
    account = baseline[0]
    book, email = people.take(world, account)
    contact = contacts(world)[email]
    with pipeline.defs.resources["dotdigital"].client(**login(world, account)) as client:
        client.unsubscribe(email, book)

    settle(pipeline)

    (lst,) = book_list(world, account, book)
    rows = [r for r in world.rows("esc_listunsubscribers") if r["esc_email"] == email]
    assert [(r["_esc_listid_value"], r["esc_addressbookid"], r["_esc_contactid_value"]) for r in rows] == [
        (lst["listid"], book, contact["contactid"])]
    members = {m["_entityid_value"] for m in world.rows("listmembers") if m["_listid_value"] == lst["listid"]}
    assert contact["contactid"] not in members, "taken off the static list the book mirrors"
    assert not contacts(world)[email]["donotbulkemail"], "a list unsubscribe is no account-wide opt-out"
    assert status(world, account, email) == "Subscribed"


def book_list(world, account: str, book: int) -> list[dict]:
    return [row for row in world.rows("lists")
            if row.get("esc_addressbookid") == book and row["_esc_emailaccountid_value"] == account]


def test_a_crm_opt_out_unsubscribes_in_every_account_and_clearing_it_resubscribes_no_one(
        world, pipeline, baseline, people):
    _, email = people.take(world, baseline[0])
    contact = contacts(world)[email]
    world.put_row("contacts", {"contactid": contact["contactid"], "donotbulkemail": True})

    settle(pipeline)

    for account in baseline:
        assert status(world, account, email) == "Unsubscribed", account
        (entry,) = ledger(account, email)
        assert (entry.event.source, entry.event.scope) == ("dynamics", "account") and entry.propagated_at
        assert "donotbulkemail set on contact" in entry.event.reason

    world.put_row("contacts", {"contactid": contact["contactid"], "donotbulkemail": False})
    assert settle(pipeline) == [], "clearing the flag asks for nothing"
    assert [status(world, account, email) for account in baseline] == ["Unsubscribed", "Unsubscribed"]


def test_rows_made_in_dynamics_apply_to_their_account_and_book_only(world, pipeline, baseline, people):
    account, other = baseline
    _, suppressed = people.take(world, other)
    book, leaver = people.take(world, account)
    (lst,) = book_list(world, account, book)
    world.put_row("esc_emailsupressions", {
        "esc_emailsupressionid": str(uuid.uuid4()), "_esc_emailaccountid_value": other, "esc_email": suppressed,
        "esc_reason": "Complained", "esc_source": "dynamics", "esc_dateremoved": "2026-01-02T03:04:05Z"})
    world.put_row("esc_listunsubscribers", {
        "esc_listunsubscriberid": str(uuid.uuid4()), "_esc_listid_value": lst["listid"],
        "_esc_emailaccountid_value": account, "esc_email": leaver, "esc_unsubscribedon": "2026-01-02T03:04:05Z"})

    settle(pipeline)

    assert status(world, other, suppressed) == "Unsubscribed"
    assert status(world, account, suppressed) in (None, "Subscribed")
    dotdigital = world.contact(account, leaver)
    assert dotdigital["status"] == "Subscribed" and book in dotdigital["unsubscribed_from"]
    assert book not in dotdigital["address_books"]
    (entry,) = ledger(account, leaver)
    assert (entry.event.scope, entry.event.address_book_id) == ("address_book", book)


def test_a_confirmed_resubscribe_lifts_the_unsubscribe_and_clears_the_flag(world, pipeline, baseline, people):
    account = baseline[0]
    _, email = people.take(world, account)
    suppress(world, account, email)
    settle(pipeline)
    assert contacts(world)[email]["donotbulkemail"]

    resubscribe(world, account, email)
    runs = settle(pipeline)

    (entry,) = ledger(account, email)
    assert entry.resubscribed_at is not None and entry.reflected_at is not None
    assert not contacts(world)[email]["donotbulkemail"], "the CRM flag is cleared"
    assert status(world, account, email) == "Subscribed"
    assert facts(runs[0])["consent_to_dynamics"]["resubscribes_cleared"] == 1
    assert settle(pipeline) == [], "clearing the flag is no new event"


def test_an_unsubscribe_during_an_import_wins(world, pipeline, baseline, people):
    account = baseline[0]
    _, email = people.take(world, account)
    contact = contacts(world)[email]
    # the import that is about to run sends this person again (changed data) ...
    world.put_row("contacts", {"contactid": contact["contactid"], "firstname": "Racing"})
    world.http.post("/faults/dotdigital", json={"kind": "import_delay", "latency_ms": 4000}).raise_for_status()
    imports_before = world.overview(account)["counts"]["imports"]
    sync: dict[str, dg.ExecuteInProcessResult] = {}
    audience = threading.Thread(target=lambda: sync.update(run=pipeline.sync(account)))
    audience.start()
    try:
        deadline = time.monotonic() + 120
        while world.overview(account)["counts"]["imports"] == imports_before:
            assert audience.is_alive() and time.monotonic() < deadline, "no import started"
            time.sleep(0.1)
        # ... and while it is in flight, the person unsubscribes in Dotdigital and the consent flow runs
        suppress(world, account, email)
        settle(pipeline)
    finally:
        audience.join()
        world.http.delete("/faults").raise_for_status()
    assert sync["run"].success
    assert status(world, account, email) == "Unsubscribed", "the import did not resubscribe them"
    assert contacts(world)[email]["donotbulkemail"]
    after = pipeline.sync(account)
    assert after.success and facts(after)["audience_members"]["skipped_opted_out"] >= 1
    assert status(world, account, email) == "Unsubscribed"

"""The consent sensors, evaluated with build_sensor_context on a real instance against the sandbox."""

from __future__ import annotations

import time
import uuid

from dotdyn_pipeline.defs.accounts.partitions import ACCOUNT_ID_TAG
from dotdyn_pipeline.defs.consent.dotdigital_reads import SUPPRESSIONS, read_account
from dotdyn_pipeline.defs.consent.dynamics_reads import CrmScope, read_dynamics
from dotdyn_pipeline.defs.consent.ledger import ACCOUNT_SCOPE, DOTDIGITAL, DYNAMICS, usable_address
from dotdyn_pipeline_tests.defs.consent.consent_helpers import crm_client, login, suppress, tick


def _address(tag: str) -> str:
    return f"{tag}.{uuid.uuid4().hex[:10]}@example.org"


def _entries(store, account: str, emails: set[str]) -> list:
    return [entry for entry in store.ledger(account) if entry.event.email in emails]


def test_the_dotdigital_sensor_records_new_unsubscribes_and_asks_for_one_run_per_account(
        world, pipeline, pipeline_store):
    mine = {account: _address("sensor") for account in pipeline.accounts}
    for account, email in mine.items():  # account 1 speaks REST, account 2 SOAP
        suppress(world, account, email, "HardBounced")

    result = tick(pipeline, "dotdigital_consent")

    assert sorted(request.tags[ACCOUNT_ID_TAG] for request in result.run_requests) == sorted(pipeline.accounts)
    assert all(request.partition_key == pipeline.key(request.tags[ACCOUNT_ID_TAG]) for request in result.run_requests)
    for account, email in mine.items():
        (entry,) = _entries(pipeline_store, account, {email})
        assert (entry.event.source, entry.event.scope, entry.event.reason) == (DOTDIGITAL, ACCOUNT_SCOPE, "HardBounced")
        assert entry.propagated_at is None
        assert pipeline_store.get_cursor(account, SUPPRESSIONS) is not None
    again = tick(pipeline, "dotdigital_consent")
    assert sorted(r.run_key for r in again.run_requests) == sorted(r.run_key for r in result.run_requests), \
        "a tick evaluated again asks for the same runs (Dagster drops repeated run keys)"


def test_a_backlog_is_read_a_page_at_a_time_and_resumed_without_loss(world, pipeline, pipeline_store):
    account = pipeline.accounts[0]
    backlog = {_address("backlog") for _ in range(1_500)}
    with pipeline.defs.resources["dotdigital"].client(**login(world, account)) as client:
        book = client.create_address_book(_address("backlog")[:40])
        client.import_contacts(book.id, ({"Email": email} for email in sorted(backlog)), ["Email"])
        client.suppress(emails=sorted(backlog))  # one call: all in about the same second
        first = read_account(client, pipeline_store, account, [], deadline=time.monotonic())
        assert not first.caught_up, "the budget was spent: a page of each feed, then stop"
        assert len([event for event in first.recording.recorded if event.email in backlog]) <= 1_000
        reads = [first]
        while not reads[-1].caught_up:
            reads.append(read_account(client, pipeline_store, account, [], deadline=time.monotonic() + 60))
    recorded = [event.email for read in reads for event in read.recording.recorded if event.email in backlog]
    assert sorted(recorded) == sorted(backlog), "every row recorded once, none lost"
    assert len(_entries(pipeline_store, account, backlog)) == len(backlog)


def test_one_accounts_failure_does_not_stop_the_others(world, pipeline, pipeline_store, monkeypatch):
    healthy, broken = pipeline.accounts
    mine = {account: _address("failing") for account in pipeline.accounts}
    for account, email in mine.items():
        suppress(world, account, email)
    monkeypatch.delenv(login(world, broken)["secret_name"])

    tick(pipeline, "dotdigital_consent")

    assert len(_entries(pipeline_store, healthy, {mine[healthy]})) == 1
    assert _entries(pipeline_store, broken, {mine[broken]}) == []
    monkeypatch.undo()
    tick(pipeline, "dotdigital_consent")
    assert len(_entries(pipeline_store, broken, {mine[broken]})) == 1, "picked up once the account works again"


def _unflagged_contacts(world, count: int) -> list[dict]:
    return [row for row in world.rows("contacts", **{"$filter": "donotbulkemail eq false and donotemail eq false"})
            if usable_address(row.get("emailaddress1")) and row["statecode"] == 0][:count]


def test_the_dynamics_sensor_applies_an_opt_out_to_every_account_and_skips_its_own_writes(
        world, pipeline, pipeline_store):
    tick(pipeline, "dynamics_consent")  # catch up with the seeded data first
    (person,) = _unflagged_contacts(world, 1)
    email = usable_address(person["emailaddress1"])
    world.put_row("contacts", {"contactid": person["contactid"], "donotbulkemail": True})
    echo = _address("echo")
    world.put_row("esc_emailsupressions", {
        "esc_emailsupressionid": str(uuid.uuid4()), "_esc_emailaccountid_value": pipeline.accounts[0],
        "esc_email": echo, "esc_reason": "Unsubscribed", "esc_source": "dotdigital"})

    result = tick(pipeline, "dynamics_consent")

    for account in pipeline.accounts:
        (entry,) = _entries(pipeline_store, account, {email})
        assert (entry.event.source, entry.event.scope) == (DYNAMICS, ACCOUNT_SCOPE)
        assert _entries(pipeline_store, account, {echo}) == [], "a row written for Dotdigital is no new event"
    assert {request.partition_key for request in result.run_requests} == {pipeline.key(a) for a in pipeline.accounts}


def test_a_crm_read_cut_short_resumes_from_its_next_page(world, pipeline, pipeline_store):
    tick(pipeline, "dynamics_consent")
    people = _unflagged_contacts(world, 120)
    for person in people:
        world.put_row("contacts", {"contactid": person["contactid"], "donotemail": True})
    emails = {usable_address(person["emailaddress1"]) for person in people}
    scope = CrmScope(accounts=frozenset(pipeline.accounts), books={}, written_flags=frozenset({"donotbulkemail"}))
    calls = 0
    with crm_client(world, max_page_size=50) as crm:
        while True:
            calls += 1
            read = read_dynamics(crm, pipeline_store, scope, deadline=time.monotonic() - 1)
            if read.caught_up:
                break
    assert calls >= 3, "each call read one page of 50 and stopped"
    for account in pipeline.accounts:
        assert len(_entries(pipeline_store, account, emails)) == len(emails), "each opt-out once, none lost"


def test_a_deleted_address_book_does_not_stop_the_accounts_other_feeds(world, pipeline, pipeline_store):
    account = pipeline.accounts[1]  # SOAP: the fault maps to the same NotFound as REST's 404
    email = _address("gone")
    suppress(world, account, email)
    with pipeline.defs.resources["dotdigital"].client(**login(world, account)) as client:
        read = read_account(client, pipeline_store, account, [987_654], deadline=time.monotonic() + 60)
    assert read.recording.skipped["address_book_gone"] == 1 and read.caught_up
    assert len(_entries(pipeline_store, account, {email})) == 1

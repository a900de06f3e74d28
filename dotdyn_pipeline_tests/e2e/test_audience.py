"""The audience flow end to end: Dataverse sandbox -> pipeline -> Dotdigital sandbox, over HTTPS."""

from __future__ import annotations

import pytest

from dotdyn_pipeline.demo import failed as failure_line
from dotdyn_pipeline.demo import materialized_facts as facts

INCREMENTAL = "addresses changed since the last sync"
PER_ACCOUNT = ("audience_members", "audience_contacts", "address_books", "address_book_members")


def _assert_books_match(world, account):
    expected = world.expected_books(account)
    assert expected and all(book for book in expected), "every activated list has its address book"
    actual = world.actual_books(account, list(expected))
    for book, wanted in expected.items():
        never_sent = world.suppressed(account, wanted - set(actual[book]))
        assert set(actual[book]) == wanted - never_sent, f"book {book}"
        assert len(actual[book]) == len(set(actual[book])), "no one twice in a book"
        assert len(never_sent) <= max(3, len(wanted) // 10), "only a few are suppressed in Dotdigital"


@pytest.fixture(scope="module")
def first_sync(pipeline):
    """The first account as a deployment runs the job (a process per step), the second in this process."""
    first, *others = pipeline.accounts
    return {first: pipeline.deployed_sync(first), **{account: pipeline.sync(account) for account in others}}


def test_accounts_become_partitions_keyed_by_their_names(world, pipeline):
    accounts = world.contract["accounts"]
    assert sorted(pipeline.accounts) == sorted(a["emailaccount_id"] for a in accounts)
    assert sorted(pipeline.instance.get_dynamic_partitions("email_account")) == sorted(
        a["name"].lower().replace(" ", "-") for a in accounts), "Account 1 -> account-1"


def test_books_hold_exactly_the_valid_consenting_members(world, pipeline, first_sync):
    for account, result in first_sync.items():
        assert result.success, account
        _assert_books_match(world, account)
        assert {facts(result)[asset]["email_account_id"] for asset in PER_ACCOUNT} == {account}, \
            "a run of the name's key is the account's, and says so beside the key"
        members = facts(result)["audience_members"]
        accounted = (members["rows_out"] + members["rows_quarantined"]
                     + sum(v for k, v in members.items() if k.startswith("skipped_")))
        assert accounted == members["rows_in"], "every member row is loaded, quarantined or skipped"


def test_a_deployed_run_extracts_tables_side_by_side_each_step_in_its_own_process(pipeline, first_sync):
    """The executor launches every step it may start before it waits on any (on a machine of two cores or more:
    as many steps at once as cores), so the event log's order shows what ran side by side, whatever the timing."""
    events = [(record.dagster_event.event_type_value, record.step_key)
              for record in pipeline.instance.all_logs(first_sync[pipeline.accounts[0]].run_id)  # as written
              if record.dagster_event]
    steps = [key for kind, key in events if kind == "STEP_START"]
    workers = [key for kind, key in events if kind == "STEP_WORKER_STARTED"]
    assert len(steps) == 11 and sorted(workers) == sorted(steps), "every step ran in a process of its own"
    launched = [key for kind, key in events if kind == "STEP_WORKER_STARTING"]
    first_done = events.index(next(event for event in events if event[0] == "STEP_SUCCESS"))
    side_by_side = [key for kind, key in events[:first_done] if kind == "STEP_WORKER_STARTING"]
    assert len(side_by_side) >= 2 and all(key.startswith("crm_") for key in side_by_side), \
        "extracts were launched together, before any step had ended"
    assert launched.index("crm_contacts") < min(launched.index(k) for k in ("crm_leads", "crm_accounts")), \
        "the largest table's step is launched before the smaller ones'"


def test_a_second_run_without_changes_writes_nothing(world, pipeline, first_sync):
    for account in pipeline.accounts:
        imports_before = world.overview(account)["counts"]["imports"]
        result = pipeline.sync(account)
        assert result.success
        load = facts(result)["address_book_members"]
        assert (load["rows_sent"], load["rows_removed"], load["email_changes"]) == (0, 0, 0)
        members = facts(result)["audience_members"]
        assert members["scope"] == INCREMENTAL, "a sync after the first looks at changed addresses only"
        assert members["rows_in"] * 10 < facts(first_sync[account])["audience_members"]["rows_in"]
        assert facts(result)["address_books"]["address_books_created"] == 0
        assert facts(result)["audience_contacts"]["data_fields_created"] == 0
        assert world.overview(account)["counts"]["imports"] == imports_before


def test_an_account_keeps_the_import_throughput_learned_from_an_import_seen_running(world, pipeline, first_sync):
    """The end of an import seen between a NotFinished and a Finished answer teaches the rate, and the account
    keeps it for its next sync. (A first sync's imports are quick: done at their first look, they teach nothing.)"""
    from dotdyn_pipeline.resources import state_store_resource

    def kept() -> float | None:
        with state_store_resource().open() as store:
            return store.import_throughput(account)

    account = pipeline.accounts[0]
    before = kept()
    _, changed = _a_loaded_member(world, account)
    world.put_row("contacts", {"contactid": changed["contactid"], "firstname": "Running"})
    world.http.post("/faults/dotdigital", json={"kind": "import_delay", "latency_ms": 3000, "count": 10}
                    ).raise_for_status()
    try:
        result = pipeline.sync(account)
    finally:
        world.http.delete("/faults").raise_for_status()
    assert result.success and facts(result)["address_book_members"]["rows_sent"] >= 1
    learned = kept()
    assert learned and learned > 0 and learned != before


def test_changes_of_every_kind_are_synced_looking_at_those_addresses_only(world, pipeline, first_sync):
    account = pipeline.accounts[0]
    touched = world.http.post("/dataverse/seed-changes", json={
        "set": "contacts", "seed": 7, "modify": 40, "change_emails": 10, "delete": 5, "create": 10}
    ).raise_for_status().json()
    member = next(m for m in world.rows("listmembers") if m["_entityid_value"] not in touched.get("deleted", ()))
    world.delete_row("listmembers", member["listmemberid"])
    result = pipeline.sync(account)
    assert result.success
    members = facts(result)["audience_members"]
    assert members["scope"] == INCREMENTAL
    assert 0 < members["addresses_in_scope"] < 200, "about the 65 people changed, their old addresses and the leaver"
    _assert_books_match(world, account)


def test_a_list_activated_makes_a_full_pass_for_its_account_only_and_a_rename_none(world, pipeline, first_sync):
    account, other = pipeline.accounts[1], pipeline.accounts[0]
    lists = [row for row in world.rows("lists") if row["_esc_emailaccountid_value"] == account]
    dormant = next(row for row in lists if not row["esc_activatedforemail"] and not row["type"])
    world.put_row("lists", {"listid": dormant["listid"], "esc_activatedforemail": True})
    result = pipeline.sync(account)
    assert result.success
    assert facts(result)["audience_members"]["scope_reason"] == "its lists or data mappings changed"
    assert facts(result)["address_books"]["address_books_created"] == 1
    _assert_books_match(world, account)
    world.put_row("lists", {"listid": dormant["listid"], "listname": f"{dormant['listname']} (renamed)"})
    assert facts(pipeline.sync(account))["audience_members"]["scope"] == INCREMENTAL, "a name changes no audience"
    assert facts(pipeline.sync(other))["audience_members"]["scope"] == INCREMENTAL, "another account's list"


def _a_loaded_member(world, account):
    """A contact on an activated list of `account` that the first sync loaded."""
    expected = world.expected_books(account)
    book, emails = next((b, e) for b, e in expected.items() if e)
    loaded = set(world.actual_books(account, [book])[book])
    contacts = {(row.get("emailaddress1") or "").strip().lower(): row for row in world.rows("contacts")}
    email = sorted(e for e in emails & loaded if e in contacts)[0]
    return book, contacts[email]


def test_an_email_change_updates_the_same_contact(world, pipeline, first_sync):
    account = pipeline.accounts[0]
    book, contact = _a_loaded_member(world, account)
    old = contact["emailaddress1"].strip().lower()
    before = world.contact(account, old)
    new = f"changed.{contact['contactid'][:8]}@example.org"
    world.put_row("contacts", {"contactid": contact["contactid"], "emailaddress1": new})
    result = pipeline.sync(account)
    assert result.success
    assert facts(result)["address_book_members"]["email_changes"] >= 1
    after = world.contact(account, new)
    assert after is not None and after["id"] == before["id"], "the same Dotdigital contact, renamed"
    assert world.contact(account, old) is None, "no second contact left under the old address"
    _assert_books_match(world, account)


def test_an_incremental_sync_quarantines_changed_members_without_an_address(world, pipeline, first_sync):
    from dotdyn_pipeline.resources import state_store_resource

    account = pipeline.accounts[0]
    book, lost = _a_loaded_member(world, account)
    world.put_row("contacts", {"contactid": lost["contactid"], "emailaddress1": None})
    on_lists = {m["_entityid_value"] for m in world.rows("listmembers")
                if m["_listid_value"] in _activated_lists(world, account)}
    never = next(c for c in world.rows("contacts") if c["contactid"] in on_lists and c["statecode"] == 0
                 and not (c.get("emailaddress1") or "").strip())
    world.put_row("contacts", {"contactid": never["contactid"], "lastname": "Changed"})
    result = pipeline.sync(account)
    assert result.success
    members = facts(result)["audience_members"]
    assert members["scope"] == INCREMENTAL and members["records_without_address_in_scope"] >= 2
    with state_store_resource().open() as store:
        quarantined = store.quarantined(account, result.run_id, limit=1000)
    required = {row.record_id for row in quarantined if row.rule == "email.required"}
    assert {lost["contactid"], never["contactid"]} <= required, "quarantined as a full pass would"
    assert lost["emailaddress1"].strip().lower() not in world.actual_books(account, [book])[book]
    _assert_books_match(world, account)


def _activated_lists(world, account):
    return {row["listid"] for row in world.rows("lists")
            if row["_esc_emailaccountid_value"] == account and row["esc_activatedforemail"] and not row["type"]}


def test_leaving_the_list_or_opting_out_removes_from_the_book(world, pipeline, first_sync):
    account = pipeline.accounts[0]
    book, leaver = _a_loaded_member(world, account)
    member = next(m for m in world.rows("listmembers") if m["_entityid_value"] == leaver["contactid"])
    world.delete_row("listmembers", member["listmemberid"])
    _, opted = _a_loaded_member(world, account)
    world.put_row("contacts", {"contactid": opted["contactid"], "donotbulkemail": True})
    result = pipeline.sync(account)
    assert result.success
    assert facts(result)["address_book_members"]["rows_removed"] >= 2
    _assert_books_match(world, account)


def test_a_deletion_the_change_tracking_lost_is_swept_by_the_full_read_that_follows(world, pipeline, first_sync):
    account = pipeline.accounts[0]
    _, leaver = _a_loaded_member(world, account)
    member = next(m for m in world.rows("listmembers") if m["_entityid_value"] == leaver["contactid"])
    world.delete_row("listmembers", member["listmemberid"])
    world.http.post("/dataverse/delta-tokens/expire").raise_for_status()  # the delta that held the deletion is gone
    result = pipeline.sync(account)
    assert result.success
    extract = facts(result)["crm_list_members"]
    assert extract["read_mode"] == "full" and extract["rows_deleted"] >= 1, "the unseen link is swept from the mirror"
    _assert_books_match(world, account)


def test_faults_on_both_sides_end_in_the_same_state(world, pipeline, first_sync):
    account = pipeline.accounts[1]
    _, changed = _a_loaded_member(world, account)
    world.put_row("contacts", {"contactid": changed["contactid"], "firstname": "Faulted"})
    for service, rule in (("dataverse", {"kind": "throttle", "count": 3, "retry_after": 1}),
                          ("dataverse", {"kind": "drop", "count": 2}),
                          ("dotdigital", {"kind": "server_error", "count": 2}),
                          ("dotdigital", {"kind": "drop", "count": 1})):
        world.http.post(f"/faults/{service}", json=rule).raise_for_status()
    try:
        result = pipeline.sync(account)
    finally:
        world.http.delete("/faults").raise_for_status()
    assert result.success
    assert facts(result)["address_book_members"]["rows_sent"] >= 1
    _assert_books_match(world, account)


def test_sign_in_blips_are_retried_and_the_sync_succeeds(world, pipeline, first_sync):
    account = pipeline.accounts[0]
    for rule in ({"kind": "server_error", "count": 1, "path": "openid-configuration"},
                 {"kind": "throttle", "count": 1, "path": "oauth2/v2.0/token", "retry_after": 1},
                 {"kind": "server_error", "count": 1, "path": "oauth2/v2.0/token"}):
        world.http.post("/faults/identity", json=rule).raise_for_status()
    try:
        result = pipeline.sync(account)
        left = world.http.get("/faults").raise_for_status().json()["identity"]
    finally:
        world.http.delete("/faults").raise_for_status()
    assert left == [], "every sign-in fault was met"
    assert result.success
    _assert_books_match(world, account)


KILLED_SYNC = """
import sys
from dotdyn_pipeline.definitions import build_definitions
import dagster as dg
job = build_definitions().resolve_job_def("audience_sync")
instance = dg.DagsterInstance.ephemeral()
instance.add_dynamic_partitions("email_account", [sys.argv[1]])
job.execute_in_process(partition_key=sys.argv[1], instance=instance)
"""


def test_a_run_killed_during_the_load_is_repaired_by_the_next(world, pipeline, first_sync):
    import os
    import subprocess
    import sys
    import time

    account = pipeline.accounts[0]
    expected = world.expected_books(account)
    contacts = {(row.get("emailaddress1") or "").strip().lower(): row for row in world.rows("contacts")}
    changed = sorted(e for emails in expected.values() for e in emails if e in contacts)[:25]
    for email in changed:
        world.put_row("contacts", {"contactid": contacts[email]["contactid"], "firstname": "Renamed"})
    contacts_before = world.overview(account)["counts"]["contacts"]
    imports_before = world.overview(account)["counts"]["imports"]
    # slow the import status polls so that the kill lands while an import is in flight
    world.http.post("/faults/dotdigital", json={"kind": "latency", "latency_ms": 1500,
                                                "path": "/contacts/import/"}).raise_for_status()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SYNC, pipeline.key(account)], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while world.overview(account)["counts"]["imports"] == imports_before:
            assert proc.poll() is None, "the sync ended before it imported anything"
            assert time.monotonic() < deadline, "no import started"
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    finally:
        world.http.delete("/faults").raise_for_status()
    assert proc.returncode != 0, "the run was killed, not finished"

    result = pipeline.sync(account)
    assert result.success
    _assert_books_match(world, account)
    assert world.overview(account)["counts"]["contacts"] == contacts_before, "no contact created twice"
    renamed = world.contact(account, changed[0])
    assert renamed["data"].get("FIRSTNAME") == "Renamed"


def test_a_missing_secret_fails_that_account_only(world, pipeline, first_sync, monkeypatch):
    broken, healthy = world.contract["accounts"][1], world.contract["accounts"][0]
    monkeypatch.delenv(broken["secret_name"])
    failed = pipeline.sync(broken["emailaccount_id"])
    assert not failed.success
    message = " ".join(str(event.event_specific_data.error.cause or event.event_specific_data.error)
                       for event in failed.all_events if event.is_step_failure)
    assert broken["secret_name"] in message and broken["api_password"] not in message
    said = failure_line(failed)  # what `dotdyn demo` prints for the account
    assert said.startswith("FAILED in ") and broken["secret_name"] in said and broken["api_password"] not in said
    assert pipeline.sync(healthy["emailaccount_id"]).success

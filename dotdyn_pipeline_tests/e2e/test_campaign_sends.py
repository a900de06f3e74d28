"""Campaign and triggered sends from Dynamics, end to end against the stand-ins: rows created in the Web API by a
marketer (through Microsoft's documented impersonation header), found by the sensors, executed by the
`campaign_send` and `triggered_send` jobs, written back; never sent twice when the run's process is killed at any
step, or the send call's answer is lost.

What a send reached is read from the Dotdigital stand-in alone: its list of sends (control endpoint) and the
campaign's activity (the vendor API), never from the pipeline's own records.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import httpx
import pytest

from dotdyn_pipeline.bench.contract import dotdigital_http
from dotdyn_pipeline.defs.engagement.windows import range_tags
from dotdyn_pipeline.defs.sends.assets import SEND_TAG, campaign_sends_sensor, send_requests, triggered_sends_sensor
from dotdyn_pipeline.defs.sends.requests import due_sends
from dotdyn_pipeline.state import StateStore
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import ODATA_HEADERS, token_response

MANAGER, PROFESSIONAL = "Morgan Manager", "Pat Professional"
KILL_POINTS = ("claimed", "prepared", "requested", "called", "sent", "settled", "written")


@pytest.fixture(scope="module")
def account(world, pipeline) -> str:
    """The first account, its audience synced so that its lists have their books."""
    first = pipeline.accounts[0]
    assert pipeline.sync(first).success
    return first


def _user(world, name: str) -> str:
    return next(row["systemuserid"] for row in world.rows("systemusers") if row["fullname"] == name)


def _web_api(world, as_user: str) -> httpx.Client:
    """The Web API as the application user acting for `as_user` (MSCRMCallerID)."""
    contract = world.contract
    token = token_response(contract).json()["access_token"]
    return httpx.Client(base_url=f"{contract['dataverse_url']}/api/data/{contract['dataverse_api_version']}/",
                        verify=trust(contract), timeout=30,
                        headers={**ODATA_HEADERS, "Authorization": f"Bearer {token}", "MSCRMCallerID": as_user})


def _lists(world, account: str) -> list[dict[str, Any]]:
    """The account's static lists activated for email, with their books, largest first."""
    lists = [row for row in world.rows("lists") if row["_esc_emailaccountid_value"] == account
             and row["esc_activatedforemail"] and not row.get("type") and row.get("esc_addressbookid")]
    return sorted(lists, key=lambda row: -len(world.book_members(account, row["esc_addressbookid"])))


def _dotdigital(world, account: str) -> httpx.Client:
    return dotdigital_http(world.contract, world.contract["accounts"][world.account_number(account) - 1], timeout=60)


def _campaign(world, account: str, index: int, status: str = "Sent") -> tuple[str, int]:
    """An esc_emailcampaign row for the account's `index`-th campaign of `status` (Sent campaigns reached the
    seeded people already; each account has two Unsent drafts): (row id, Dotdigital id)."""
    with _dotdigital(world, account) as api:
        campaigns = [c for c in api.get("/v2/campaigns", params={"select": 1000}).raise_for_status().json()
                     if c["status"] == status]
    dotdigital_id = campaigns[index]["id"]
    known = [row["esc_emailcampaignid"] for row in world.rows("esc_emailcampaigns")
             if row["_esc_emailaccountid_value"] == account and row["esc_dotdigitalcampaignid"] == dotdigital_id]
    if known:
        return known[0], dotdigital_id
    row_id = str(uuid.uuid4())
    world.put_row("esc_emailcampaigns", {"esc_emailcampaignid": row_id, "esc_name": f"campaign {dotdigital_id}",
                                         "_esc_emailaccountid_value": account,
                                         "esc_dotdigitalcampaignid": dotdigital_id})
    return row_id, dotdigital_id


def _new_send(world, account: str, lists: list[str], campaign_row: str, creator: str, **columns: Any) -> str:
    """An esc_emailsend row created in the Web API as `creator`, with its first list as the lookup and the
    others related through the many-to-many relationship."""
    with _web_api(world, _user(world, creator)) as api:
        response = api.post("esc_emailsends", json={
            "esc_name": f"send {uuid.uuid4().hex[:6]}", "esc_status": "Scheduled",
            "esc_emailaccountid@odata.bind": f"/esc_emailaccounts({account})",
            "esc_emailcampaignid@odata.bind": f"/esc_emailcampaigns({campaign_row})",
            "esc_listid@odata.bind": f"/lists({lists[0]})", **columns})
        assert response.status_code == 204, response.text
        send_id = response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        for list_id in lists[1:]:
            api.post(f"esc_emailsends({send_id})/esc_emailsend_list/$ref",
                     json={"@odata.id": f"{api.base_url}lists({list_id})"}).raise_for_status()
    return send_id


def _send_row(world, send_id: str) -> dict[str, Any]:
    return next(row for row in world.rows("esc_emailsends") if row["esc_emailsendid"] == send_id)


def _sends_made(world, account: str, campaign: int) -> list[dict[str, Any]]:
    """The campaign sends Dotdigital was asked for, as the stand-in recorded them."""
    response = world.http.get(f"/dotdigital/accounts/{world.account_number(account)}/sends",
                              params={"type": "campaign", "campaign_id": campaign})
    return response.raise_for_status().json()


def _sent_to(world, account: str, campaign: int) -> set[str]:
    """Everyone Dotdigital's activity of the campaign says was sent it."""
    found, skip = set(), 0
    with _dotdigital(world, account) as api:
        while page := api.get(f"/v2/campaigns/{campaign}/activities",
                              params={"select": 1000, "skip": skip}).raise_for_status().json():
            found |= {row["email"].lower() for row in page}
            skip += len(page)
    return found


def _subscribed(world, account: str, lists: list[dict[str, Any]]) -> set[str]:
    books = world.actual_books(account, [row["esc_addressbookid"] for row in lists])
    return {email for members in books.values() for email in members}


def _sensor_runs(pipeline) -> list[dg.RunRequest]:
    context = dg.build_sensor_context(instance=pipeline.instance, resources=pipeline.defs.resources)
    result = campaign_sends_sensor(context)
    return [] if isinstance(result, dg.SkipReason) else list(result)


def _execute(pipeline, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    job = pipeline.defs.resolve_job_def(request.job_name)
    return job.execute_in_process(run_config=request.run_config, partition_key=request.partition_key,
                                  tags=request.tags, instance=pipeline.instance, raise_on_error=False)


def _run_send(pipeline, send_id: str) -> dg.ExecuteInProcessResult:
    """The run the sensor asks for this send, executed."""
    requests = [r for r in _sensor_runs(pipeline) if r.tags.get(SEND_TAG) == send_id]
    assert len(requests) == 1, f"the sensor asked for {len(requests)} runs of send {send_id}"
    return _execute(pipeline, requests[0])


def test_a_send_reaches_its_lists_consenting_members_once_and_is_written_back(world, pipeline, account):
    lists = _lists(world, account)[:2]
    campaign_row, campaign = _campaign(world, account, 0, "Unsent")
    before = _sent_to(world, account, campaign)
    expected = _subscribed(world, account, lists) - before
    send_id = _new_send(world, account, [row["listid"] for row in lists], campaign_row, MANAGER)

    ticks = [[r.run_key for r in _sensor_runs(pipeline) if r.tags.get(SEND_TAG) == send_id] for _ in range(2)]
    assert len(ticks[0]) == 1 and ticks[0] == ticks[1], "two ticks before the run ask for the same run"
    result = _run_send(pipeline, send_id)
    assert result.success
    row = _send_row(world, send_id)
    made = _sends_made(world, account, campaign)
    assert len(made) == 1 and made[0]["status"] == "Sent" and made[0]["id"] == row["esc_sendid"]
    assert (row["esc_status"], row["esc_recipients"]) == ("Sent", len(expected)) and row["esc_datesent"]
    assert _sent_to(world, account, campaign) - before == expected and made[0]["recipients"] == len(expected)
    metadata = result.asset_materializations_for_node("campaign_sends")[0].metadata
    assert metadata["recipients"].value == len(expected) and metadata["status"].value == "Sent"
    assert metadata["lists"].value == ", ".join(row["listid"] for row in lists)
    tags = pipeline.instance.get_run_by_id(result.run_id).tags
    assert tags["dotdyn/campaign"] == str(campaign) and tags["dotdyn/lists"] == ",".join(r["listid"] for r in lists)

    assert not [r for r in _sensor_runs(pipeline) if r.tags.get(SEND_TAG) == send_id], "asked for again"
    world.put_row("esc_emailsends", {"esc_emailsendid": send_id, "esc_status": "Scheduled"})  # set back
    assert _run_send(pipeline, send_id).success
    assert len(_sends_made(world, account, campaign)) == 1, "a send set back to Scheduled was sent again"
    again = _send_row(world, send_id)
    assert again["esc_status"] == "Sent" and "never executed twice" in again["esc_resultmessage"]


def test_a_second_send_of_a_campaign_leaves_out_who_had_it_unless_repeats_are_allowed(world, pipeline, account):
    lists = _lists(world, account)[:1]
    campaign_row, campaign = _campaign(world, account, 0)
    members = _subscribed(world, account, lists)
    first = _new_send(world, account, [lists[0]["listid"]], campaign_row, MANAGER, esc_allowrepeatsends=True)
    assert _run_send(pipeline, first).success and _send_row(world, first)["esc_recipients"] == len(members)

    second = _new_send(world, account, [lists[0]["listid"]], campaign_row, MANAGER)
    assert _run_send(pipeline, second).success
    row = _send_row(world, second)
    assert row["esc_status"] == "Failed" and "already sent" in row["esc_resultmessage"]
    assert len(_sends_made(world, account, campaign)) == 1


def test_a_split_test_passes_its_options_and_a_future_send_waits_for_its_date(world, pipeline, account):
    lists = _lists(world, account)[:1]
    campaign_row, campaign = _campaign(world, account, 1)
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    waiting = _new_send(world, account, [lists[0]["listid"]], campaign_row, MANAGER, esc_senddate=later,
                        esc_allowrepeatsends=True)
    split = _new_send(world, account, [lists[0]["listid"]], campaign_row, MANAGER, esc_splittestmetric="Clicks",
                      esc_splittestpercent=20, esc_splittesthours=1, esc_allowrepeatsends=True)
    requested = {r.tags.get(SEND_TAG) for r in _sensor_runs(pipeline)}
    assert split in requested and waiting not in requested

    assert _run_send(pipeline, split).success
    made = _sends_made(world, account, campaign)
    assert len(made) == 1 and made[0]["splitTestOptions"] == {"testMetric": "Clicks", "testPercentage": 20,
                                                               "testPeriodHours": 1}
    assert _send_row(world, split)["esc_status"] == "Sent"
    assert _send_row(world, waiting)["esc_status"] == "Scheduled"


def test_a_send_whose_books_are_stale_waits_for_its_account_s_audience_sync(world, pipeline, account, store):
    lists = _lists(world, account)[:1]
    campaign_row, _ = _campaign(world, account, 2)
    send_id, other = (_new_send(world, account, [lists[0]["listid"]], campaign_row, MANAGER) for _ in range(2))
    with dg.build_resources({"dataverse": pipeline.defs.resources["dataverse"]}) as built, \
            built.dataverse.client() as crm:  # what the sensor reads
        due_sends(crm, datetime.now(UTC))  # (the table's metadata is read once per client)
        before = crm.counter.total
        every_due = due_sends(crm, datetime.now(UTC))
        reads = crm.counter.total - before
    # the sends with their lists in one read, their campaigns in another, however many sends are due
    assert {send_id, other} <= {request.id for request in every_due} and reads == 2
    due = [request for request in every_due if request.id == send_id]
    assert due[0].list_ids == (lists[0]["listid"],)
    stale = send_requests(pipeline.instance, store, due, max_sync_age=1e-6)
    assert [(r.job_name, r.partition_key) for r in stale] == [("audience_sync", pipeline.key(account))]
    fresh = send_requests(pipeline.instance, store, due, max_sync_age=3600)
    assert [(r.job_name, r.tags[SEND_TAG]) for r in fresh] == [("campaign_send", send_id)]
    for row_id in (send_id, other):  # not sent after all
        world.put_row("esc_emailsends", {"esc_emailsendid": row_id, "esc_status": "Cancelled"})


def test_only_a_marketing_manager_s_send_is_executed(world, pipeline, account):
    lists = _lists(world, account)[:1]
    campaign_row, campaign = _campaign(world, account, 2)
    send_id = _new_send(world, account, [lists[0]["listid"]], campaign_row, PROFESSIONAL)
    assert _send_row(world, send_id)["_createdby_value"] == _user(world, PROFESSIONAL)
    assert _run_send(pipeline, send_id).success
    row = _send_row(world, send_id)
    assert row["esc_status"] == "Failed" and "Email Marketing Manager" in row["esc_resultmessage"]
    assert _sends_made(world, account, campaign) == []


@pytest.fixture
def store(pipeline) -> Iterator[StateStore]:
    from dotdyn_pipeline.settings import Settings

    with StateStore.open(Settings.from_env().state_url) as opened:
        yield opened


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_a_send_killed_at_any_step_is_finished_by_the_next_run_and_made_once(world, pipeline, account, store,
                                                                            kill_at):
    lists = _lists(world, account)[:1]
    campaign_row, campaign = _campaign(world, account, 3)
    members = _subscribed(world, account, lists)
    send_id = _new_send(world, account, [lists[0]["listid"]], campaign_row, MANAGER, esc_allowrepeatsends=True)
    killed = subprocess.run([sys.executable, "-m", "dotdyn_pipeline_tests.e2e.send_child", send_id,
                             f"killed-{kill_at}", kill_at], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    stopped = store.sends.latest(f"esc_emailsend:{send_id}")
    assert stopped is not None and stopped.run_id == f"killed-{kill_at}"

    if kill_at == "written":  # the outcome was in the row before the kill: nothing is left to do
        assert not [r for r in _sensor_runs(pipeline) if r.tags.get(SEND_TAG) == send_id]
    else:
        assert _run_send(pipeline, send_id).success
    row, finished = _send_row(world, send_id), store.sends.latest(f"esc_emailsend:{send_id}")
    made = [send for send in _sends_made(world, account, campaign) if send["addressBookIds"] == [finished.book_id]]
    assert (row["esc_status"], row["esc_recipients"]) == ("Sent", len(members))
    assert len(made) == 1 and made[0]["recipients"] == len(members)
    assert finished.attempt == 1 and finished.done


@pytest.mark.parametrize(("fault", "runs"), [("drop_after", 1), ("server_error", 2)])
def test_a_send_call_whose_answer_is_lost_is_asked_about_not_repeated(world, pipeline, account, store, control_http,
                                                                     fault, runs):
    """drop_after: the send was made and its answer lost; the run finds it was made. server_error: the send was
    not made; the run cannot know, stops, and the next run finds it was not made and sends it."""
    lists = _lists(world, account)[:1]
    campaign_row, campaign = _campaign(world, account, 4)
    send_id = _new_send(world, account, [lists[0]["listid"]], campaign_row, MANAGER, esc_allowrepeatsends=True)
    control_http.post("/faults/dotdigital", json={"kind": fault, "count": 1, "method": "POST",
                                                   "path": "/v2/campaigns/send$"}).raise_for_status()
    outcomes = [_run_send(pipeline, send_id).success for _ in range(runs)]
    assert outcomes == ([True] if runs == 1 else [False, True])
    book = store.sends.latest(f"esc_emailsend:{send_id}").book_id
    assert len([send for send in _sends_made(world, account, campaign) if send["addressBookIds"] == [book]]) == 1
    assert _send_row(world, send_id)["esc_status"] == "Sent"


@pytest.fixture
def control_http(world) -> Iterator[httpx.Client]:
    yield world.http
    world.http.delete("/faults").raise_for_status()


TRIGGERED = 990001  # the first seeded triggered campaign of every account


def _new_single_send(world, account: str, creator: str, **columns: Any) -> str:
    """An esc_emailsinglesend row created in the Web API as `creator`."""
    with _web_api(world, _user(world, creator)) as api:
        response = api.post("esc_emailsinglesends", json={
            "esc_name": f"single {uuid.uuid4().hex[:6]}", "esc_status": "Scheduled",
            "esc_emailaccountid@odata.bind": f"/esc_emailaccounts({account})", **columns})
        assert response.status_code == 204, response.text
        return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def _single_row(world, row_id: str) -> dict[str, Any]:
    return next(row for row in world.rows("esc_emailsinglesends") if row["esc_emailsinglesendid"] == row_id)


def _triggered_made(world, account: str, campaign: int = TRIGGERED) -> list[dict[str, Any]]:
    response = world.http.get(f"/dotdigital/accounts/{world.account_number(account)}/sends",
                              params={"type": "triggered", "campaign_id": campaign})
    return response.raise_for_status().json()


def _run_triggered(pipeline, account: str) -> dg.ExecuteInProcessResult:
    context = dg.build_sensor_context(instance=pipeline.instance, resources=pipeline.defs.resources)
    result = triggered_sends_sensor(context)
    runs = [] if isinstance(result, dg.SkipReason) else [r for r in result if r.partition_key == pipeline.key(account)]
    assert len(runs) == 1, f"the sensor asked for {len(runs)} triggered runs of the account"
    return _execute(pipeline, runs[0])


def _mapped_values(world, account: str, contact: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """The account's data mappings of contacts with a value for this contact: field -> (type, raw value), as the
    test reads them."""
    return {row["esc_datafieldname"].upper(): (row.get("esc_datafieldtype") or "String",
                                                contact[row["esc_attributename"]])
            for row in world.rows("esc_emaildatamappings")
            if row["_esc_emailaccountid_value"] == account and row["esc_entityname"] == "contact"
            and row["statecode"] == 0 and contact.get(row["esc_attributename"]) is not None}


def test_triggered_sends_reach_good_addresses_once_and_say_why_the_others_failed(world, pipeline, account):
    contacts = [row for row in world.rows("contacts") if row.get("emailaddress1") and row["statecode"] == 0
                and "@" in row["emailaddress1"] and not row.get("donotbulkemail")]
    person, suppressed = contacts[0], contacts[1]["emailaddress1"].strip().lower()
    world.http.post(f"/dotdigital/accounts/{world.account_number(account)}/suppress",
                    json={"email": suppressed, "reason": "HardBounced"}).raise_for_status()
    good = _new_single_send(world, account, MANAGER, esc_dotdigitalcampaignid=TRIGGERED,
                            **{"esc_contactid@odata.bind": f"/contacts({person['contactid']})"},
                            esc_personalisation='{"OFFER": "10%"}')
    invalid = _new_single_send(world, account, MANAGER, esc_dotdigitalcampaignid=TRIGGERED, esc_email="not-an-address")
    blocked = _new_single_send(world, account, MANAGER, esc_dotdigitalcampaignid=TRIGGERED, esc_email=suppressed)
    unauthorised = _new_single_send(world, account, PROFESSIONAL, esc_dotdigitalcampaignid=TRIGGERED,
                                    esc_email=person["emailaddress1"])

    assert _run_triggered(pipeline, account).success
    made = _triggered_made(world, account)
    assert [send["toAddresses"] for send in made] == [[person["emailaddress1"].strip()]]
    values = {item["name"]: item["value"] for item in made[0]["personalizationValues"]}
    mapped = _mapped_values(world, account, person)
    assert set(values) == {*mapped, "OFFER"} and values["OFFER"] == "10%"
    assert all(values[name] == str(raw) for name, (kind, raw) in mapped.items() if kind == "String")
    rows = {row_id: _single_row(world, row_id) for row_id in (good, invalid, blocked, unauthorised)}
    assert (rows[good]["esc_status"], rows[good]["esc_email"]) == ("Sent", person["emailaddress1"].strip())
    assert rows[good]["esc_datesent"]
    assert rows[invalid]["esc_status"] == "Failed" and "ERROR_INVALID_EMAIL" in rows[invalid]["esc_resultmessage"]
    assert rows[blocked]["esc_status"] == "Failed" and "SUPPRESSED" in rows[blocked]["esc_resultmessage"]
    assert rows[unauthorised]["esc_status"] == "Failed"
    assert "Email Marketing Manager" in rows[unauthorised]["esc_resultmessage"]

    world.put_row("esc_emailsinglesends", {"esc_emailsinglesendid": invalid, "esc_status": "Scheduled",
                                           "esc_email": person["emailaddress1"]})  # corrected, then retried
    assert _run_triggered(pipeline, account).success
    assert _single_row(world, invalid)["esc_status"] == "Sent"
    assert len(_triggered_made(world, account)) == 2 and _single_row(world, good)["esc_status"] == "Sent"


@pytest.mark.parametrize(("kill_at", "sent"), [("requested", 0), ("called", 1)])
def test_a_triggered_send_whose_run_died_during_the_call_is_never_sent_again_by_itself(world, pipeline, account,
                                                                                      kill_at, sent):
    """Killed after the intent was recorded (before the call, or after it answered): the next run cannot tell, so
    it sends nothing and sets the row Failed, saying the email may have been sent."""
    before = len(_triggered_made(world, account, TRIGGERED + 1))
    row_id = _new_single_send(world, account, MANAGER, esc_dotdigitalcampaignid=TRIGGERED + 1,
                              esc_email=f"kill-{kill_at}-{uuid.uuid4().hex[:6]}@example.com")
    killed = subprocess.run([sys.executable, "-m", "dotdyn_pipeline_tests.e2e.send_child", "--triggered", account,
                             f"killed-{kill_at}", kill_at], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert _run_triggered(pipeline, account).success
    row = _single_row(world, row_id)
    assert row["esc_status"] == "Failed" and "may have been sent" in row["esc_resultmessage"]
    assert len(_triggered_made(world, account, TRIGGERED + 1)) == before + sent


def test_what_a_send_produced_comes_back_through_the_engagement_flow(world, pipeline, account):
    """The whole loop in the sandbox: a send of an unsent campaign of the account, then today's engagement
    import writes one send summary per recipient of that campaign to Dynamics."""
    lists = _lists(world, account)[:1]
    campaign_row, campaign = _campaign(world, account, 0, "Unsent")  # the draft the first test left, if it ran
    send_id = _new_send(world, account, [lists[0]["listid"]], campaign_row, MANAGER)
    assert _run_send(pipeline, send_id).success
    recipients = _send_row(world, send_id)["esc_recipients"]
    today = datetime.now(UTC).date()
    engaged = pipeline.defs.resolve_job_def("engagement_sync").execute_in_process(
        instance=pipeline.instance, raise_on_error=False, tags=range_tags(pipeline.key(account), today, today))
    assert engaged.success
    summaries = [row for row in world.rows("esc_emailcampaigncontactsummaries")
                 if row["_esc_emailaccountid_value"] == account and row.get("esc_dotdigitalcampaignid") == campaign]
    assert recipients > 0 and len(summaries) == recipients

"""The engagement flow end to end: Dotdigital sandbox -> pipeline -> esc_ tables in the Dataverse sandbox.

What each window must hold is asked of the Dotdigital sandbox's control endpoint (its stored rows), never
computed by the pipeline's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from dotdyn_pipeline.defs.engagement.windows import range_tags
from dotdyn_pipeline.demo import materialized_facts as facts
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.e2e.conftest import World

DAYS = 30
ENGAGEMENT_SANDBOX = SandboxSettings(seed=29, contacts=500, leads=120, accounts=40, email_accounts=2, days=DAYS)
TODAY = datetime.now(UTC).date()
TABLES = {"summaries": "esc_emailcampaigncontactsummaries", "clicks": "esc_emailcampaigncontactclicks",
          "roi": "esc_emailroidetails", "campaigns": "esc_emailcampaigns", "suppressions": "esc_emailsupressions"}
#: Columns that say when a row was written rather than what it holds.
VOLATILE = {"modifiedon", "createdon", "esc_lastsyncedon", "versionnumber", "@odata.etag"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A sandbox whose campaigns spread over 30 days (this module's own: its runs write to it)."""
    with running_sandbox(tmp_path_factory.mktemp("engagement-sandbox"), ENGAGEMENT_SANDBOX) as contract, \
            httpx.Client(base_url=contract["control_url"], verify=trust(contract), timeout=60) as http:
        yield World(contract, http)


def engage(pipeline, account: str, first: date, last: date, tags: dict[str, str] | None = None):
    """One engagement run over the days first..last of one account (a single-run backfill)."""
    return pipeline.defs.resolve_job_def("engagement_sync").execute_in_process(
        instance=pipeline.instance, raise_on_error=False,
        tags={**range_tags(pipeline.key(account), first, last), **(tags or {})})


def reported(world: World, account: str, kind: str, first: date, last: date | None = None) -> list[list]:
    """The Dotdigital sandbox's own rows of `kind` with their time in the days first..last."""
    params = {"since": f"{first}T00:00:00"}
    if last is not None:
        params["until"] = f"{last + timedelta(days=1)}T00:00:00"
    number = world.account_number(account)
    return world.http.get(f"/dotdigital/accounts/{number}/engagement/{kind}", params=params).raise_for_status().json()


def written(world: World, account: str, kind: str) -> list[dict]:
    return world.rows(TABLES[kind], **{"$filter": f"_esc_emailaccountid_value eq {account}"})


def second(stamp: str) -> str:
    """An instant to the whole second, as Dataverse keeps it."""
    return stamp[:19]


def expected_keys(world: World, account: str, first: date, last: date) -> dict[str, set]:
    """The natural keys each esc_ table must hold for the window first..last."""
    return {
        "campaigns": {row[1] for row in reported(world, account, "campaigns", first)},
        "summaries": {(row[1], row[2]) for row in reported(world, account, "activities", first)},
        "clicks": {(row[1], row[2], row[4], second(row[0])) for row in reported(world, account, "clicks", first, last)},
        "roi": {(row[1], row[2], row[4], second(row[0])) for row in reported(world, account, "roi", first, last)},
        "suppressions": {row[2] for row in reported(world, account, "suppressions", first, last)},
    }


def actual_keys(world: World, account: str) -> dict[str, set]:
    return {
        "campaigns": {r["esc_dotdigitalcampaignid"] for r in written(world, account, "campaigns")},
        "summaries": {(r["esc_dotdigitalcampaignid"], r["esc_dotdigitalcontactid"])
                      for r in written(world, account, "summaries")},
        "clicks": {(r["esc_dotdigitalcampaignid"], r["esc_dotdigitalcontactid"], r["esc_url"],
                    second(r["esc_dateclicked"])) for r in written(world, account, "clicks")},
        "roi": {(r["esc_dotdigitalcampaignid"], r["esc_dotdigitalcontactid"], r["esc_markername"],
                 second(r["esc_dateentered"])) for r in written(world, account, "roi")},
        "suppressions": {r["esc_email"] for r in written(world, account, "suppressions")},
    }


def snapshot(world: World, account: str) -> dict[str, list[dict]]:
    """Every esc_ row of the account as stored, without the columns that only say when it was written."""
    return {kind: sorted(({k: v for k, v in row.items() if k not in VOLATILE} for row in written(world, account, kind)),
                         key=repr) for kind in TABLES}


@pytest.fixture(scope="module")
def audience_synced(pipeline):
    """The audience flow has run, so the id map and the CRM mirror know who is who."""
    for account in pipeline.accounts:
        assert pipeline.sync(account).success
    return pipeline.accounts


def test_a_window_holds_exactly_what_dotdigital_reports(world, pipeline, audience_synced):
    account = pipeline.accounts[0]
    first = TODAY - timedelta(days=DAYS - 1)
    result = engage(pipeline, account, first, TODAY)
    assert result.success
    expected, actual = expected_keys(world, account, first, TODAY), actual_keys(world, account)
    assert all(expected[kind] for kind in ("campaigns", "summaries", "clicks")), "the window has engagement"
    assert actual == expected
    for asset, stats in facts(result).items():
        assert stats["rows_read"] == (stats["rows_upserted"] + stats["rows_rejected"] + stats["rows_outside_window"]
                                      + stats["rows_repeated"]), asset
        assert stats["rows_rejected"] == 0, asset
    assert {event.materialization.metadata["email_account_id"].value
            for event in result.get_asset_materialization_events()} == {account}, "each day's names its account"
    checks = [event.asset_check_evaluation_data for event in result.all_events
              if event.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert len(checks) == 5 and all(check.passed for check in checks)

    summaries = {(r["esc_dotdigitalcampaignid"], r["esc_dotdigitalcontactid"]): r
                 for r in written(world, account, "summaries")}
    for row in reported(world, account, "activities", first):
        stored = summaries[row[1], row[2]]
        assert (stored["esc_email"], stored["esc_numopens"], stored["esc_numclicks"]) == (row[3], row[4], row[5])

    # each row is linked to a CRM record holding its address; the others are kept, counted and unlinked
    holders = {}
    for kind in ("contact", "lead", "account"):
        for person in world.rows(f"{kind}s"):
            email = (person.get("emailaddress1") or "").strip().lower()
            holders.setdefault(email, set()).add(person[f"{kind}id"])
    unlinked = 0
    for row in summaries.values():
        linked = [row[f"_esc_{kind}id_value"] for kind in ("contact", "lead", "account") if row[f"_esc_{kind}id_value"]]
        assert len(linked) <= 1
        if linked:
            assert linked[0] in holders.get(row["esc_email"].lower(), set())
        else:
            unlinked += 1
            assert row["esc_email"].lower() not in holders
    assert unlinked > 0, "contacts unknown to Dynamics (sign-ups in Dotdigital) are kept, unlinked"
    assert unlinked == facts(result)["campaign_contact_summaries"]["rows_unlinked"]

    codes = {row["codename"]: row["campaignid"] for row in world.rows("campaigns")}
    linked_campaigns = {r["esc_name"]: r["_esc_campaignid_value"] for r in written(world, account, "campaigns")}
    for name, campaign_id in linked_campaigns.items():
        code = next((c for c in codes if f"[{c}]" in name), None)
        assert campaign_id == (codes[code] if code else None), name


def test_a_rerun_an_overlapping_range_and_any_order_change_nothing(world, pipeline, audience_synced):
    account = pipeline.accounts[0]
    first = TODAY - timedelta(days=6)
    assert engage(pipeline, account, first, TODAY).success
    before = snapshot(world, account)
    assert engage(pipeline, account, first, TODAY).success
    assert engage(pipeline, account, TODAY - timedelta(days=3), TODAY).success
    for day in (TODAY, TODAY - timedelta(days=2), TODAY - timedelta(days=1), first):  # single days, out of order
        assert engage(pipeline, account, day, day).success
    assert snapshot(world, account) == before


def test_faults_on_both_sides_end_in_the_same_state(world, pipeline, audience_synced):
    account = pipeline.accounts[1]
    first = TODAY - timedelta(days=4)
    for service, rule in (("dataverse", {"kind": "throttle", "count": 3, "retry_after": 1}),
                          ("dataverse", {"kind": "drop", "count": 2}),
                          ("dataverse", {"kind": "server_error", "count": 2}),
                          ("dotdigital", {"kind": "server_error", "count": 3}),
                          ("dotdigital", {"kind": "drop", "count": 2}),
                          ("dotdigital", {"kind": "throttle", "count": 2, "retry_after": 1})):
        world.http.post(f"/faults/{service}", json=rule).raise_for_status()
    try:
        result = engage(pipeline, account, first, TODAY)
        left = world.http.get("/faults").json()
    finally:
        world.http.delete("/faults").raise_for_status()
    assert result.success
    assert not any(left.values()), f"every fault fired (a rule is dropped once its count is used up): {left}"
    assert actual_keys(world, account) == expected_keys(world, account, first, TODAY)


def test_a_30_day_backfill_interrupted_and_resumed_ends_in_the_same_state(world, pipeline, audience_synced):
    account = pipeline.accounts[1]
    first, last = TODAY - timedelta(days=DAYS - 1), TODAY
    campaigns = sorted(row[1] for row in reported(world, account, "campaigns", first))
    assert len(campaigns) >= 4
    broken = campaigns[len(campaigns) // 2]  # the run fails in the middle, at this campaign's activities
    world.http.post("/faults/dotdigital", json={"kind": "status", "status": 400,
                                                "path": f"/campaigns/{broken}/activities"}).raise_for_status()
    try:
        failed = engage(pipeline, account, first, last)
    finally:
        world.http.delete("/faults").raise_for_status()
    assert not failed.success
    # Dagster gives a re-execution (and an automatic retry) the failed run's id as its root run id
    resumed = engage(pipeline, account, first, last, tags={"dagster/root_run_id": failed.run_id,
                                                           "dagster/parent_run_id": failed.run_id})
    assert resumed.success
    assert facts(resumed)["campaign_contact_summaries"]["items_resumed"] == campaigns.index(broken)
    assert actual_keys(world, account) == expected_keys(world, account, first, last)
    assert engage(pipeline, account, first, last).success, "a new run of the range starts over, harmlessly"
    assert actual_keys(world, account) == expected_keys(world, account, first, last)

"""The engagement assets: one per esc_ table, each reading its window from Dotdigital once and upserting.

Campaigns carry their summary statistics; send summaries, clicks and ROI details are read per campaign with
activity in the window; suppressions account-wide. Send summaries are snapshots (the API says only that a
contact had activity since a date), so a window takes every summary with activity since its first day and
the latest read wins; clicks, ROI details and suppressions carry their own time and are kept to the window.
"""

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient
from dotdyn_pipeline.connectors.dotdigital.models import Campaign
from dotdyn_pipeline.defs.engagement.rows import (
    CAMPAIGNS,
    CLICKS,
    ROI_DETAILS,
    SUMMARIES,
    SUPPRESSIONS,
    Target,
    campaign_row,
    click_row,
    dataverse_time,
    dynamics_campaign,
    roi_row,
    summary_row,
)
from dotdyn_pipeline.defs.engagement.run import EngagementRun, reconciled_check
from dotdyn_pipeline.defs.engagement.windows import Window, engagement_partitions
from dotdyn_pipeline.defs.people import suppression_row
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource
from dotdyn_pipeline.runtime.collector import collector_paused
from dotdyn_pipeline.runtime.read_ahead import read_ahead

ROWS_PER_BATCH = 1000  # rows resolved and shaped at once
#: What every engagement asset shares.
ENGAGEMENT_ASSET = {"group_name": "engagement", "partitions_def": engagement_partitions,
                    "kinds": {"dotdigital", "dataverse"}, "backfill_policy": dg.BackfillPolicy.single_run(),
                    "pool": "dotdigital"}


def _dynamics_campaigns(run: EngagementRun) -> dict[str, str]:
    """Dynamics campaign id by upper-case code (`codename`)."""
    return {row["codename"].upper(): row["campaignid"] for page in run.crm.read("campaign", ["codename"])
            for row in page if row.get("codename")}


def _active_campaigns(client: DotdigitalClient, window: Window) -> list[Campaign]:
    return sorted(client.campaigns_with_activity_since(window.start), key=lambda c: c.id)


@dg.asset(**ENGAGEMENT_ASSET, check_specs=reconciled_check("email_campaigns"),
          description="Campaigns with activity in the window, with their summary statistics -> esc_emailcampaign.")
def email_campaigns(context: dg.AssetExecutionContext, dataverse: DataverseResource,
                    dotdigital: DotdigitalResource, state: StateStoreResource) -> dg.MaterializeResult:
    with EngagementRun(context, dataverse, dotdigital, state) as run:
        codes, linked = _dynamics_campaigns(run), 0
        for window in run.windows:
            client = run.dotdigital(window.account)
            campaigns = _active_campaigns(client, window)
            run.tally.read += len(campaigns)
            synced = datetime.now(UTC)
            rows = []
            for campaign in campaigns:
                dynamics_id = dynamics_campaign(campaign.name, codes)
                linked += dynamics_id is not None
                rows.append(campaign_row(window.account, campaign, client.campaign_summary(campaign.id), synced,
                                         dynamics_id))
            run.write_all(CAMPAIGNS, "email_campaigns", window, rows)
        return run.result(CAMPAIGNS, campaigns_linked_to_dynamics=linked)


@dataclass(frozen=True)
class CampaignStream:
    """A per-campaign engagement read: how to read it, when a record happened (None: a snapshot), its row."""

    asset: str
    target: Target
    read: Callable[[DotdigitalClient, int, datetime], Iterator[Any]]
    happened: Callable[[Any], datetime | None] | None
    row: Callable[[str, Any, Any], dict[str, Any]]


def _campaign_pages(stream: CampaignStream, client: DotdigitalClient, window: Window,
                    campaigns: list[Campaign]) -> Iterator[tuple[int, list[Any] | None]]:
    """(campaign id, a page of its records) in order; (campaign id, None) after each campaign's last page."""
    for campaign in campaigns:
        records = stream.read(client, campaign.id, window.start)
        while page := list(itertools.islice(records, ROWS_PER_BATCH)):
            yield campaign.id, page
        yield campaign.id, None


def _import_campaign_stream(run: EngagementRun, stream: CampaignStream) -> dg.MaterializeResult:
    tally = run.tally
    for window in run.windows:
        client, people = run.dotdigital(window.account), run.people(window.account)
        finished = run.finished(stream.asset, window)
        campaigns = _active_campaigns(client, window)
        todo = [campaign for campaign in campaigns if str(campaign.id) not in finished]
        tally.resumed += len(campaigns) - len(todo)
        sink = run.stream(stream.target, stream.asset, window)
        try:
            for campaign_id, page in read_ahead(_campaign_pages(stream, client, window, todo)):
                if page is None:
                    sink.close_tag(campaign_id)
                    continue
                tally.read += len(page)
                if stream.happened is not None:
                    kept = [r for r in page if window.holds(dataverse_time(stream.happened(r)))]
                    tally.outside_window += len(page) - len(kept)
                    page = kept
                found = people.resolve((r.contact_id, r.email) for r in page)
                rows = {}
                for record in page:
                    person = found[record.contact_id, record.email]
                    row = stream.row(window.account, record, person)
                    rows[stream.target.key_of(row)] = row, person
                tally.repeated += len(page) - len(rows)
                tally.unlinked += sum(person is None for _, person in rows.values())
                sink.add((row for row, _ in rows.values()), campaign_id)
        finally:
            # also when a read fails: the campaigns read in full are written and recorded, so a retry resumes
            run.settle(stream.target, window, sink)
    return run.result(stream.target)


def _campaign_stream_asset(stream: CampaignStream, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=stream.asset, **ENGAGEMENT_ASSET, deps=[email_campaigns], check_specs=reconciled_check(stream.asset),
              description=description)
    def _asset(context: dg.AssetExecutionContext, dataverse: DataverseResource, dotdigital: DotdigitalResource,
               state: StateStoreResource) -> dg.MaterializeResult:
        with EngagementRun(context, dataverse, dotdigital, state) as run, collector_paused():
            return _import_campaign_stream(run, stream)
    return _asset


campaign_contact_summaries = _campaign_stream_asset(
    CampaignStream("campaign_contact_summaries", SUMMARIES, lambda c, cid, since: c.activities_since(cid, since),
                   None, summary_row),
    "Per-contact send summaries with activity since the window's first day -> esc_emailcampaigncontactsummary.")
campaign_clicks = _campaign_stream_asset(
    CampaignStream("campaign_clicks", CLICKS, lambda c, cid, since: c.clicks_since(cid, since),
                   lambda click: click.date_clicked, click_row),
    "Clicks (url, ip, user agent, keyword, time) in the window -> esc_emailcampaigncontactclick.")
campaign_roi_details = _campaign_stream_asset(
    CampaignStream("campaign_roi_details", ROI_DETAILS, lambda c, cid, since: c.roi_details_since(cid, since),
                   lambda detail: detail.date_entered, roi_row),
    "ROI markers (marker, type, value, time) entered in the window -> esc_emailroidetail.")


@dg.asset(**ENGAGEMENT_ASSET, check_specs=reconciled_check("email_suppressions"),
          description="Contacts suppressed in the window (unsubscribes, bounces, complaints) -> esc_emailsupression.")
def email_suppressions(context: dg.AssetExecutionContext, dataverse: DataverseResource,
                       dotdigital: DotdigitalResource, state: StateStoreResource) -> dg.MaterializeResult:
    with EngagementRun(context, dataverse, dotdigital, state) as run:
        tally = run.tally
        for window in run.windows:
            client, people = run.dotdigital(window.account), run.people(window.account)
            suppressions = list(client.suppressed_since(window.start))
            tally.read += len(suppressions)
            kept = [s for s in suppressions if window.holds(dataverse_time(s.date_removed))]
            tally.outside_window += len(suppressions) - len(kept)
            found = people.resolve((s.contact.id, s.contact.email) for s in kept)
            rows = []
            for s in kept:
                person = found[s.contact.id, s.contact.email]
                tally.unlinked += person is None
                rows.append(suppression_row(window.account, s.contact.email, s.reason, dataverse_time(s.date_removed),
                                            "dotdigital", person))
            run.write_all(SUPPRESSIONS, "email_suppressions", window, rows)
        return run.result(SUPPRESSIONS)

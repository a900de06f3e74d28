"""Dotdigital engagement shaped as rows of the esc_ tables, each with the natural key it is upserted by.

Times are whole UTC seconds, as Dataverse keeps them, so a row read twice has the same key both times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from dotdyn_pipeline.connectors.dataverse.odata import key_segment
from dotdyn_pipeline.connectors.dotdigital.dates import to_utc
from dotdyn_pipeline.connectors.dotdigital.models import Activity, Campaign, CampaignSummary, Click, RoiDetail
from dotdyn_pipeline.defs.people import SUPPRESSION_KEY, Person, person_binds

ACCOUNT = "_esc_emailaccountid_value"
#: A Dynamics campaign code written in a Dotdigital campaign's name, e.g. "Spring sale [CMP-1000]".
CAMPAIGN_CODE = re.compile(r"\[([A-Za-z0-9_-]{1,32})\]")


@dataclass(frozen=True)
class Target:
    """An esc_ table the flow writes and the natural key its rows are upserted by."""

    entity: str
    key: tuple[str, ...]

    def key_of(self, row: Mapping[str, Any]) -> str:
        return "|".join(str(row.get(column)) for column in self.key)


CAMPAIGNS = Target("esc_emailcampaign", (ACCOUNT, "esc_dotdigitalcampaignid"))
SUMMARIES = Target("esc_emailcampaigncontactsummary", (ACCOUNT, "esc_dotdigitalcampaignid", "esc_dotdigitalcontactid"))
CLICKS = Target("esc_emailcampaigncontactclick",
                (ACCOUNT, "esc_dotdigitalcampaignid", "esc_dotdigitalcontactid", "esc_url", "esc_dateclicked"))
ROI_DETAILS = Target("esc_emailroidetail",
                     (ACCOUNT, "esc_dotdigitalcampaignid", "esc_dotdigitalcontactid", "esc_markername",
                      "esc_dateentered"))
SUPPRESSIONS = Target("esc_emailsupression", SUPPRESSION_KEY)


def dataverse_time(value: datetime | None) -> datetime | None:
    """A time as Dataverse keeps it: UTC, to the whole second."""
    return None if value is None else to_utc(value).replace(microsecond=0)


def _money(text: Any) -> float | None:
    """'£1,234.50' -> 1234.5 (the summary gives revenue as text in the account's currency)."""
    digits = re.sub(r"[^0-9.\-]", "", str(text or ""))
    return float(digits) if digits not in ("", "-", ".") else None


def dynamics_campaign(name: str, campaign_ids_by_code: Mapping[str, str]) -> str | None:
    """The Dynamics campaign whose code the Dotdigital campaign's name carries in brackets, if any."""
    for code in CAMPAIGN_CODE.findall(name or ""):
        if code.upper() in campaign_ids_by_code:
            return campaign_ids_by_code[code.upper()]
    return None


def campaign_row(account: str, campaign: Campaign, summary: CampaignSummary, synced_at: datetime,
                 dynamics_campaign_id: str | None) -> dict[str, Any]:
    figures = summary.metrics
    row: dict[str, Any] = {
        ACCOUNT: account, "esc_dotdigitalcampaignid": campaign.id, "esc_name": campaign.name[:255],
        "esc_subject": (campaign.subject or "")[:255] or None, "esc_fromname": campaign.from_name,
        "esc_fromaddress": campaign.from_address, "esc_status": campaign.status,
        "esc_datesent": dataverse_time(summary.date_sent), "esc_numsent": summary.num_sent,
        "esc_numdelivered": summary.num_delivered, "esc_numuniqueopens": summary.num_unique_opens,
        "esc_numopens": summary.num_opens, "esc_numclicks": summary.num_clicks,
        "esc_numrecipientsclicked": summary.num_recipients_clicked,
        "esc_numpageviews": int(figures.get("numTotalPageViews") or 0),
        "esc_numforwards": int(figures.get("numTotalEstimatedForwards") or 0),
        "esc_numreplies": int(figures.get("numTotalReplies") or 0),
        "esc_numhardbounces": summary.num_hard_bounces, "esc_numsoftbounces": summary.num_soft_bounces,
        "esc_numunsubscribes": summary.num_unsubscribes, "esc_numispcomplaints": summary.num_isp_complaints,
        "esc_numorders": int(figures.get("numOrders") or 0), "esc_revenue": _money(figures.get("revenue")),
        "esc_lastsyncedon": dataverse_time(synced_at),
    }
    for name in ("Delivered", "UniqueOpens", "Opens", "UsersClicked", "ClicksToOpens", "Unsubscribes",
                 "HardBounces"):  # fractions of 1, as the v2 summary gives them
        row[f"esc_percentage{name.lower()}"] = float(figures.get(f"percentage{name}") or 0.0)
    if dynamics_campaign_id:
        row["esc_campaignid@odata.bind"] = f"/campaigns({dynamics_campaign_id})"
    return row


@lru_cache(maxsize=256)
def _campaign_reference(account: str, campaign_id: int) -> str:
    return "/esc_emailcampaigns" + key_segment({ACCOUNT: account, "esc_dotdigitalcampaignid": campaign_id})


def _engagement(account: str, campaign_id: int, contact_id: int, email: str, person: Person | None) -> dict[str, Any]:
    return {ACCOUNT: account, "esc_dotdigitalcampaignid": campaign_id, "esc_dotdigitalcontactid": contact_id,
            "esc_email": email, "esc_emailcampaignid@odata.bind": _campaign_reference(account, campaign_id),
            **person_binds(person)}


def summary_row(account: str, activity: Activity, person: Person | None) -> dict[str, Any]:
    return {**_engagement(account, activity.campaign_id, activity.contact_id, activity.email, person),
            "esc_name": f"{activity.email} / {activity.campaign_id}"[:255],
            "esc_numopens": activity.num_opens, "esc_numpageviews": activity.num_page_views,
            "esc_numclicks": activity.num_clicks, "esc_numforwards": activity.num_forwards,
            "esc_numestimatedforwards": activity.num_estimated_forwards, "esc_numreplies": activity.num_replies,
            "esc_datesent": dataverse_time(activity.date_sent),
            "esc_datefirstopened": dataverse_time(activity.date_first_opened),
            "esc_datelastopened": dataverse_time(activity.date_last_opened), "esc_firstopenip": activity.first_open_ip,
            "esc_unsubscribed": activity.unsubscribed, "esc_softbounced": activity.soft_bounced,
            "esc_hardbounced": activity.hard_bounced}


def click_row(account: str, click: Click, person: Person | None) -> dict[str, Any]:
    return {**_engagement(account, click.campaign_id, click.contact_id, click.email, person),
            "esc_name": f"{click.email} -> {click.url}"[:255], "esc_url": click.url,
            "esc_dateclicked": dataverse_time(click.date_clicked), "esc_ipaddress": click.ip_address,
            "esc_useragent": click.user_agent, "esc_keyword": click.keyword}


def roi_row(account: str, detail: RoiDetail, person: Person | None) -> dict[str, Any]:
    value = detail.value if detail.value is None or isinstance(detail.value, str) else str(detail.value)
    return {**_engagement(account, detail.campaign_id, detail.contact_id, detail.email, person),
            "esc_name": f"{detail.marker_name} / {detail.email}"[:255], "esc_markername": detail.marker_name,
            "esc_datatype": detail.data_type, "esc_value": value,
            "esc_dateentered": dataverse_time(detail.date_entered)}

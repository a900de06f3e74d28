"""Campaigns and their reporting (summary, activities, clicks, ROI, hard bounces, the books they went to)."""

from __future__ import annotations

import json
from typing import Any

from dotdyn_pipeline.sandbox.dotdigital.audience import get_book
from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError
from dotdyn_pipeline.sandbox.dotdigital.store import CONTACT_COLUMNS, NEVER, AccountStore, Pager, contact_json

#: (HTML field, plain-text field, total field, measure) of ApiCampaignSummary, named as in the swagger
SUMMARY_FIELDS = (
    ("numUniqueOpens", "numUniqueTextOpens", "numTotalUniqueOpens", "UniqueOpens"),
    ("numOpens", "numTextOpens", "numTotalOpens", "Opens"),
    ("numClicks", "numTextClicks", "numTotalClicks", "Clicks"),
    ("numPageViews", "numTextPageViews", "numTotalPageViews", "PageViews"),
    ("numForwards", "numTextForwards", None, "Forwards"),
    ("numEstimatedForwards", "numTextEstimatedForwards", "numTotalEstimatedForwards", "Forwards"),
    ("numReplies", "numTextReplies", "numTotalReplies", "Replies"),
    ("numHardBounces", "numTextHardBounces", "numTotalHardBounces", "HardBounces"),
    ("numSoftBounces", "numTextSoftBounces", "numTotalSoftBounces", "SoftBounces"),
    ("numUnsubscribes", "numTextUnsubscribes", "numTotalUnsubscribes", "Unsubscribes"),
    ("numIspComplaints", "numTextIspComplaints", "numTotalIspComplaints", "IspComplaints"),
    ("numMailBlocks", "numTextMailBlocks", "numTotalMailBlocks", "MailBlocks"),
    ("numSent", "numTextSent", "numTotalSent", "Sent"),
    ("numDelivered", "numTextDelivered", "numTotalDelivered", "Delivered"),
)
CAMPAIGN_SQL = "SELECT id, name, subject, from_name, from_email, status FROM campaigns"


def _campaign_json(row: tuple) -> dict[str, Any]:
    return {"id": row[0], "name": row[1], "subject": row[2], "fromName": row[3],
            "fromAddress": {"id": 1, "email": row[4]},
            "htmlContent": f"<html><body><h1>{row[2]}</h1><a href=\"$UNSUB$\">Unsubscribe</a></body></html>",
            "plainTextContent": f"{row[2]}\nUnsubscribe: $UNSUB$", "replyAction": "Unset", "replyToAddress": "",
            "isSplitTest": False, "status": row[5]}


def _campaign_row(store: AccountStore, campaign_id: int) -> tuple:
    row = store.one(f"{CAMPAIGN_SQL} WHERE id = ?", campaign_id)
    if row is None:
        raise ApiError("ERROR_CAMPAIGN_NOT_FOUND")
    return row


def campaign_type(store: AccountStore, campaign_id: int) -> str:
    """`Standard` or `Triggered` (the developer portal's campaign types); ERROR_CAMPAIGN_NOT_FOUND if none."""
    kind = store.scalar("SELECT type FROM campaigns WHERE id = ?", campaign_id)
    if kind is None:
        raise ApiError("ERROR_CAMPAIGN_NOT_FOUND")
    return kind


def list_campaigns(store: AccountStore, select: int, skip: int, activity_since: str | None = None) -> list[dict]:
    if activity_since is None:
        rows = store.all(f"{CAMPAIGN_SQL} ORDER BY id LIMIT ? OFFSET ?", select, skip)
    else:
        rows = store.all(f"{CAMPAIGN_SQL} WHERE status = 'Sent' AND last_activity >= ? ORDER BY id LIMIT ? OFFSET ?",
                         activity_since, select, skip)
    return [_campaign_json(row) for row in rows]


def campaigns_for_book(store: AccountStore, book_id: int, select: int, skip: int) -> list[dict]:
    """The campaigns sent to an address book: its history, and every send through the API that named it and
    was not cancelled (a scheduled one included: once accepted, it is not to be sent again)."""
    get_book(store, book_id)
    rows = store.all(f"{CAMPAIGN_SQL} WHERE id IN (SELECT campaign_id FROM campaign_books WHERE book_id = ?) "
                     "OR id IN (SELECT s.campaign_id FROM sends s JOIN send_books b ON b.send_id = s.id "
                     "WHERE b.book_id = ? AND s.status <> 'Cancelled') ORDER BY id LIMIT ? OFFSET ?",
                     book_id, book_id, select, skip)
    return [_campaign_json(row) for row in rows]


def get_campaign(store: AccountStore, campaign_id: int) -> dict[str, Any]:
    return _campaign_json(_campaign_row(store, campaign_id))


def summary(store: AccountStore, campaign_id: int) -> dict[str, Any]:
    """ApiCampaignSummary from the activity rows: numX counts HTML, numTextX plain text, numTotalX both."""
    _campaign_row(store, campaign_id)
    date_sent = store.scalar("SELECT date_sent FROM campaigns WHERE id = ?", campaign_id) or NEVER
    counts: dict[str, dict[int, int]] = {}
    measures = {
        "Sent": "COUNT(*)", "Delivered": "SUM(1 - soft_bounced - hard_bounced)",
        "UniqueOpens": "SUM(num_opens > 0)", "Opens": "SUM(num_opens)", "Clicks": "SUM(num_clicks)",
        "PageViews": "SUM(num_page_views)", "Forwards": "SUM(num_forwards)", "Replies": "SUM(num_replies)",
        "HardBounces": "SUM(hard_bounced)", "SoftBounces": "SUM(soft_bounced)", "Unsubscribes": "SUM(unsubscribed)",
        "Clickers": "SUM(num_clicks > 0)",
    }
    selects = ", ".join(f"COALESCE({expr}, 0)" for expr in measures.values())
    for html, *values in store.all(f"SELECT html, {selects} FROM activities WHERE campaign_id = ? GROUP BY html",
                                   campaign_id):
        for name, value in zip(measures, values, strict=True):
            counts.setdefault(name, {0: 0, 1: 0})[html] = value
    result: dict[str, Any] = {"dateSent": date_sent}
    for html_key, text_key, total_key, measure in SUMMARY_FIELDS:
        html, text = (counts[measure][1], counts[measure][0]) if measure in counts else (0, 0)
        result[html_key], result[text_key] = html, text
        if total_key:
            result[total_key] = html + text
    result["numRecipientsClicked"] = sum(counts.get("Clickers", {}).values())

    def share(part: int, whole: int) -> float:
        return round(part / whole, 4) if whole else 0.0

    sent, delivered = result["numTotalSent"], result["numTotalDelivered"]
    result.update({
        "percentageDelivered": share(delivered, sent),
        "percentageUniqueOpens": share(result["numTotalUniqueOpens"], delivered),
        "percentageOpens": share(result["numTotalOpens"], delivered),
        "percentageUnsubscribes": share(result["numTotalUnsubscribes"], delivered),
        "percentageReplies": share(result["numTotalReplies"], delivered),
        "percentageHardBounces": share(result["numTotalHardBounces"], sent),
        "percentageSoftBounces": share(result["numTotalSoftBounces"], sent),
        "percentageUsersClicked": share(result["numRecipientsClicked"], delivered),
        "percentageClicksToOpens": share(result["numTotalClicks"], result["numTotalOpens"]),
    })
    revenue, orders = store.one("SELECT COALESCE(SUM(CAST(value AS REAL)), 0), COUNT(*) FROM roi "
                                "WHERE campaign_id = ? AND marker_name = 'Revenue'", campaign_id)
    result.update({"revenue": f"£{revenue:,.2f}", "conversionRate": share(orders, delivered),
                   "assistedRevenue": "£0.00", "numOrders": orders, "numAssistedOrders": 0})
    return result


def activities(store: AccountStore, pager: Pager, campaign_id: int, since: str | None, select: int,
               skip: int) -> list[dict]:
    """Every recipient's ApiCampaignContactSummary, or those with activity (a send counts) since a date."""
    _campaign_row(store, campaign_id)
    where = "AND last_activity >= ?" if since else ""
    rows = pager.page(store, "SELECT contact_id, email, num_opens, num_page_views, num_clicks, num_forwards, "
                             "num_replies, date_sent, date_first_opened, date_last_opened, first_open_ip, "
                             f"unsubscribed, soft_bounced, hard_bounced FROM activities WHERE campaign_id = ? {where} "
                             "{after} ORDER BY contact_id",
                      (campaign_id, since) if since else (campaign_id,), "contact_id", select, skip)
    return [{"contactId": r[0], "email": r[1], "numOpens": r[2], "numPageViews": r[3], "numClicks": r[4],
             "numForwards": r[5], "numEstimatedForwards": r[5], "numReplies": r[6], "dateSent": r[7],
             "dateFirstOpened": r[8], "dateLastOpened": r[9], "firstOpenIp": r[10], "unsubscribed": bool(r[11]),
             "softBounced": bool(r[12]), "hardBounced": bool(r[13])} for r in rows]


def clicks(store: AccountStore, pager: Pager, campaign_id: int, since: str, select: int, skip: int) -> list[dict]:
    _campaign_row(store, campaign_id)
    rows = pager.page(store, "SELECT id, contact_id, email, url, ip_address, user_agent, date_clicked, keyword "
                             "FROM clicks WHERE campaign_id = ? AND date_clicked >= ? {after} ORDER BY id",
                      (campaign_id, since), "id", select, skip)
    return [{"contactId": r[1], "email": r[2], "url": r[3], "ipAddress": r[4], "userAgent": r[5],
             "dateClicked": r[6], "keyword": r[7]} for r in rows]


def roi_details(store: AccountStore, pager: Pager, campaign_id: int, since: str, select: int,
                skip: int) -> list[dict]:
    _campaign_row(store, campaign_id)
    rows = pager.page(store, "SELECT id, contact_id, email, marker_name, data_type, value, date_entered FROM roi "
                             "WHERE campaign_id = ? AND date_entered >= ? {after} ORDER BY id",
                      (campaign_id, since), "id", select, skip)
    return [{"contactId": r[1], "email": r[2], "markerName": r[3], "dataType": r[4], "value": json.loads(r[5]),
             "dateEntered": r[6]} for r in rows]


def hard_bouncing(store: AccountStore, campaign_id: int, with_data: bool, select: int, skip: int) -> list[dict]:
    _campaign_row(store, campaign_id)
    rows = store.all(f"SELECT {CONTACT_COLUMNS} FROM activities a JOIN contacts c ON c.id = a.contact_id "
                     "WHERE a.campaign_id = ? AND a.hard_bounced = 1 ORDER BY c.id LIMIT ? OFFSET ?",
                     campaign_id, select, skip)
    return [contact_json(row, with_data) for row in rows]

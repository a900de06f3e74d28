"""What a campaign send asked for in Dynamics (an esc_emailsend row), and whether its author may send.

A marketer creates the row: the account, the Dotdigital campaign (through esc_emailcampaign), the marketing lists
(one lookup plus the many-to-many relationship for more), an optional send date and split test. Only a row created
by a user who holds the Email Marketing Manager role is executed (the role the solution gives the right to send).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.odata import literal
from dotdyn_pipeline.connectors.dotdigital.models import SplitTest
from dotdyn_pipeline.solution.schema import ROLES

SEND_TABLE = "esc_emailsend"
LISTS_NAVIGATION = "esc_emailsend_list"
SENDER_ROLE = ROLES[1].name  # Email Marketing Manager
SCHEDULED, SENDING, SENT, FAILED, CANCELLED = "Scheduled", "Sending", "Sent", "Failed", "Cancelled"
SEND_COLUMNS = ("esc_emailsendid", "esc_name", "_esc_emailaccountid_value", "_esc_emailcampaignid_value",
                "_esc_listid_value", "esc_senddate", "esc_status", "esc_sendid", "esc_splittestmetric",
                "esc_splittestpercent", "esc_splittesthours", "esc_allowrepeatsends", "_createdby_value",
                "modifiedon")


@dataclass(frozen=True)
class CampaignSendRequest:
    """One esc_emailsend row, with its campaign and every list it names."""

    id: str
    name: str
    account_id: str
    campaign_id: int | None  # Dotdigital's id, from the esc_emailcampaign row; None when the row names none
    list_ids: tuple[str, ...]
    send_date: datetime | None
    status: str
    split_test: SplitTest | None
    allow_repeat_sends: bool
    created_by: str | None
    modified_on: str
    problem: str | None = None  # what in the row cannot be sent as it stands (a split test out of range)

    @property
    def send_key(self) -> str:
        """The row's key in the send ledger."""
        return f"{SEND_TABLE}:{self.id}"

    def due(self, now: datetime) -> bool:
        """Scheduled, with its send date empty or reached."""
        return self.status == SCHEDULED and (self.send_date is None or self.send_date <= now)


def moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _split_test(row: dict[str, Any]) -> tuple[SplitTest | None, str | None]:
    """The row's split test, or what is wrong with it."""
    metric = (row.get("esc_splittestmetric") or "").strip()
    if not metric:
        return None, None
    try:
        return SplitTest(metric=metric, percent=int(row.get("esc_splittestpercent") or 0),
                         hours=int(row.get("esc_splittesthours") or 0)), None
    except ValueError as error:
        return None, str(error)


def _campaign_ids(crm: DataverseClient, rows: list[dict[str, Any]]) -> dict[str, int]:
    """esc_emailcampaign id -> Dotdigital campaign id, for the campaigns `rows` name."""
    wanted = sorted({row["_esc_emailcampaignid_value"] for row in rows if row.get("_esc_emailcampaignid_value")})
    if not wanted:
        return {}
    condition = " or ".join(f"esc_emailcampaignid eq {literal(uuid.UUID(value))}" for value in wanted)
    return {row["esc_emailcampaignid"]: int(row["esc_dotdigitalcampaignid"])
            for page in crm.read("esc_emailcampaign", ("esc_emailcampaignid", "esc_dotdigitalcampaignid"),
                                 filter=condition)
            for row in page if row.get("esc_dotdigitalcampaignid") is not None}


def _lists(row: dict[str, Any]) -> tuple[str, ...]:
    """The row's list lookup and the lists of its many-to-many relationship (expanded in the row), each once, in
    that order."""
    ids = [row.get("_esc_listid_value"), *(item["listid"] for item in row.get(LISTS_NAVIGATION) or ())]
    return tuple(dict.fromkeys(value for value in ids if value))


def campaign_sends(crm: DataverseClient, *, condition: str) -> list[CampaignSendRequest]:
    """The esc_emailsend rows that match the OData `condition`, oldest first, with the lists each names."""
    rows = [row for page in crm.read(SEND_TABLE, SEND_COLUMNS, filter=condition, orderby="createdon",
                                     expand=f"{LISTS_NAVIGATION}($select=listid)")
            for row in page]
    campaigns = _campaign_ids(crm, rows)
    return [_request(row, campaigns, _lists(row)) for row in rows]


def _request(row: dict[str, Any], campaigns: dict[str, int], list_ids: tuple[str, ...]) -> CampaignSendRequest:
    split_test, problem = _split_test(row)
    return CampaignSendRequest(
        id=row["esc_emailsendid"], name=row.get("esc_name") or row["esc_emailsendid"],
        account_id=row.get("_esc_emailaccountid_value") or "",
        campaign_id=campaigns.get(row.get("_esc_emailcampaignid_value") or ""), list_ids=list_ids,
        send_date=moment(row.get("esc_senddate")), status=row.get("esc_status") or "", split_test=split_test,
        allow_repeat_sends=row.get("esc_allowrepeatsends") is True, created_by=row.get("_createdby_value"),
        modified_on=row.get("modifiedon") or "", problem=problem)


def campaign_send(crm: DataverseClient, send_id: str) -> CampaignSendRequest | None:
    """The esc_emailsend row with this id, or None when it is gone."""
    found = campaign_sends(crm, condition=f"esc_emailsendid eq {literal(uuid.UUID(send_id))}")
    return found[0] if found else None


def due_sends(crm: DataverseClient, now: datetime) -> list[CampaignSendRequest]:
    """The Scheduled rows whose send date is empty or reached, and the Sending ones (a run follows them)."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return campaign_sends(crm, condition=f"(esc_status eq '{SCHEDULED}' and (esc_senddate eq null or "
                                         f"esc_senddate le {stamp})) or esc_status eq '{SENDING}'")


def may_send(crm: DataverseClient, user_id: str | None) -> bool:
    """Whether the user holds the role that may send."""
    if not user_id:
        return False
    roles = crm.get(f"systemusers({user_id})/systemuserroles_association?$select=name")["value"]
    return any(role.get("name") == SENDER_ROLE for role in roles)

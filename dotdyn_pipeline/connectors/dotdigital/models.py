"""The Dotdigital objects the pipeline uses, as plain Python values (datetimes parsed, UTC).

Each `from_api` reads the REST v2 JSON shape (camelCase); the SOAP transport hands over the same shape, so
one parser serves both.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dotdyn_pipeline.connectors.dotdigital.dates import parse_datetime

DATA_FIELD_TYPES = ("String", "Numeric", "Date", "Boolean")
_DATA_FIELD_NAME = re.compile(r"[A-Za-z0-9_-]{1,20}")
ADDRESS_BOOK_NAME_MAX = 128


def check_data_field_name(name: str) -> str:
    """The name, upper-cased, if Dotdigital accepts it: 1-20 letters, digits, '_' or '-'."""
    if not _DATA_FIELD_NAME.fullmatch(name or ""):
        raise ValueError(f"invalid data field name {name!r}: use 1-20 letters, digits, '_' or '-'")
    return name.upper()


def _int(value: Any) -> int:
    return int(value or 0)


@dataclass(frozen=True)
class AccountInfo:
    id: int
    properties: dict[str, str]

    @property
    def api_endpoint(self) -> str | None:
        """The REST root of the account's region, e.g. https://r1-api.dotdigital.com (no trailing slash)."""
        value = self.properties.get("ApiEndpoint")
        return value.rstrip("/") if value else None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> AccountInfo:
        props = {p["name"]: p.get("value") for p in data.get("properties") or []}
        return cls(id=_int(data.get("id")), properties=props)


@dataclass(frozen=True)
class DataField:
    name: str
    type: str
    visibility: str = "Private"
    default_value: Any = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> DataField:
        return cls(name=data["name"], type=data.get("type") or "String",
                   visibility=data.get("visibility") or "Private", default_value=data.get("defaultValue"))


@dataclass(frozen=True)
class AddressBook:
    id: int
    name: str
    visibility: str = "Private"
    contacts: int = 0

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> AddressBook:
        return cls(id=_int(data.get("id")), name=data.get("name") or "",
                   visibility=data.get("visibility") or "Private", contacts=_int(data.get("contacts")))


@dataclass(frozen=True)
class Contact:
    id: int
    email: str
    status: str | None = None
    opt_in_type: str | None = None
    email_type: str | None = None
    data_fields: dict[str, Any] | None = None  # None unless asked for with full data

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Contact:
        fields = data.get("dataFields")
        return cls(id=_int(data.get("id")), email=data.get("email") or "", status=data.get("status"),
                   opt_in_type=data.get("optInType"), email_type=data.get("emailType"),
                   data_fields=None if fields is None else {f["key"]: f.get("value") for f in fields})

    def to_api(self) -> dict[str, Any]:
        """The request body of a create or update (only what is set)."""
        body: dict[str, Any] = {"email": self.email}
        if self.id:
            body["id"] = self.id
        if self.opt_in_type:
            body["optInType"] = self.opt_in_type
        if self.email_type:
            body["emailType"] = self.email_type
        if self.data_fields is not None:
            body["dataFields"] = [{"key": k, "value": v} for k, v in self.data_fields.items()]
        return body


@dataclass(frozen=True)
class ContactImport:
    """An import's id and status: Finished, NotFinished, or one of the failure statuses."""

    id: str
    status: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ContactImport:
        return cls(id=str(data["id"]), status=data.get("status") or "Unknown")


#: Counters of the import report that mean "these rows were not imported as given".
REPORT_FAULT_COUNTERS = ("globallySuppressed", "invalidEntries", "duplicateEmails", "blocked", "unsubscribed",
                         "hardBounced", "softBounced", "ispComplaints", "mailBlocked", "domainSuppressed",
                         "pendingDoubleOptin", "failures", "suppressedContacts")


@dataclass(frozen=True)
class ImportReport:
    new_contacts: int
    updated_contacts: int
    faults: dict[str, int]  # non-zero fault counters by API name (duplicateEmails, invalidEntries, ...)

    @property
    def fault_count(self) -> int:
        return sum(self.faults.values())

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ImportReport:
        faults = {name: _int(data.get(name)) for name in REPORT_FAULT_COUNTERS if _int(data.get(name))}
        return cls(new_contacts=_int(data.get("newContacts")), updated_contacts=_int(data.get("updatedContacts")),
                   faults=faults)


@dataclass(frozen=True)
class RowFault:
    """One row of an import's faults CSV: why it was not imported, and the row as uploaded."""

    reason: str
    email: str
    values: dict[str, str]


def parse_faults_csv(data: bytes) -> list[RowFault]:
    """Parse report-faults: a CSV whose first column is Reason, then the columns as uploaded."""
    text = data.decode("utf-8-sig")
    if not text.strip():
        return []
    faults = []
    for row in csv.DictReader(io.StringIO(text)):
        by_key = {(k or "").strip().lower(): k for k in row}
        reason = row.get(by_key.get("reason", "Reason")) or ""
        email = row.get(by_key.get("email", "Email")) or ""
        values = {k: v for k, v in row.items() if k is not None and k.strip().lower() != "reason"}
        faults.append(RowFault(reason=reason.strip(), email=email.strip(), values=values))
    return faults


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    subject: str | None = None
    from_name: str | None = None
    from_address: str | None = None
    status: str | None = None
    is_split_test: bool = False

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Campaign:
        sender = data.get("fromAddress") or {}
        return cls(id=_int(data.get("id")), name=data.get("name") or "", subject=data.get("subject"),
                   from_name=data.get("fromName"), from_address=sender.get("email"), status=data.get("status"),
                   is_split_test=bool(data.get("isSplitTest")))


@dataclass(frozen=True)
class CampaignSummary:
    campaign_id: int
    date_sent: datetime | None
    num_sent: int
    num_delivered: int
    num_unique_opens: int
    num_opens: int
    num_clicks: int
    num_recipients_clicked: int
    num_unsubscribes: int
    num_hard_bounces: int
    num_soft_bounces: int
    num_isp_complaints: int
    metrics: dict[str, Any] = field(default_factory=dict)  # every other figure, by API name

    @classmethod
    def from_api(cls, campaign_id: int, data: dict[str, Any]) -> CampaignSummary:
        return cls(
            campaign_id=campaign_id, date_sent=parse_datetime(data.get("dateSent")),
            num_sent=_int(data.get("numTotalSent")), num_delivered=_int(data.get("numTotalDelivered")),
            num_unique_opens=_int(data.get("numTotalUniqueOpens")), num_opens=_int(data.get("numTotalOpens")),
            num_clicks=_int(data.get("numTotalClicks")),
            num_recipients_clicked=_int(data.get("numRecipientsClicked")),
            num_unsubscribes=_int(data.get("numTotalUnsubscribes")),
            num_hard_bounces=_int(data.get("numTotalHardBounces")),
            num_soft_bounces=_int(data.get("numTotalSoftBounces")),
            num_isp_complaints=_int(data.get("numTotalIspComplaints")),
            metrics={k: v for k, v in data.items() if k != "dateSent"},
        )


@dataclass(frozen=True)
class Activity:
    """One contact's activity on a campaign (ApiCampaignContactSummary)."""

    campaign_id: int
    contact_id: int
    email: str
    num_opens: int
    num_page_views: int
    num_clicks: int
    num_forwards: int
    num_estimated_forwards: int
    num_replies: int
    date_sent: datetime | None
    date_first_opened: datetime | None
    date_last_opened: datetime | None
    first_open_ip: str | None
    unsubscribed: bool
    soft_bounced: bool
    hard_bounced: bool

    @classmethod
    def from_api(cls, campaign_id: int, data: dict[str, Any]) -> Activity:
        return cls(
            campaign_id=campaign_id, contact_id=_int(data.get("contactId")), email=data.get("email") or "",
            num_opens=_int(data.get("numOpens")), num_page_views=_int(data.get("numPageViews")),
            num_clicks=_int(data.get("numClicks")), num_forwards=_int(data.get("numForwards")),
            num_estimated_forwards=_int(data.get("numEstimatedForwards")),
            num_replies=_int(data.get("numReplies")), date_sent=parse_datetime(data.get("dateSent")),
            date_first_opened=parse_datetime(data.get("dateFirstOpened")),
            date_last_opened=parse_datetime(data.get("dateLastOpened")),
            first_open_ip=data.get("firstOpenIp") or None, unsubscribed=bool(data.get("unsubscribed")),
            soft_bounced=bool(data.get("softBounced")), hard_bounced=bool(data.get("hardBounced")),
        )


@dataclass(frozen=True)
class Click:
    campaign_id: int
    contact_id: int
    email: str
    url: str
    date_clicked: datetime | None
    ip_address: str | None = None
    user_agent: str | None = None
    keyword: str | None = None

    @classmethod
    def from_api(cls, campaign_id: int, data: dict[str, Any]) -> Click:
        return cls(campaign_id=campaign_id, contact_id=_int(data.get("contactId")), email=data.get("email") or "",
                   url=data.get("url") or "", date_clicked=parse_datetime(data.get("dateClicked")),
                   ip_address=data.get("ipAddress"), user_agent=data.get("userAgent"),
                   keyword=data.get("keyword"))


@dataclass(frozen=True)
class RoiDetail:
    campaign_id: int
    contact_id: int
    email: str
    marker_name: str
    data_type: str | None
    value: Any
    date_entered: datetime | None

    @classmethod
    def from_api(cls, campaign_id: int, data: dict[str, Any]) -> RoiDetail:
        return cls(campaign_id=campaign_id, contact_id=_int(data.get("contactId")), email=data.get("email") or "",
                   marker_name=data.get("markerName") or "", data_type=data.get("dataType"),
                   value=data.get("value"), date_entered=parse_datetime(data.get("dateEntered")))


@dataclass(frozen=True)
class Suppression:
    """A suppressed or unsubscribed contact (ApiContactSuppression), account-wide or for one address book."""

    contact: Contact
    date_removed: datetime | None
    reason: str | None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Suppression:
        return cls(contact=Contact.from_api(data.get("suppressedContact") or {}),
                   date_removed=parse_datetime(data.get("dateRemoved")), reason=data.get("reason"))


@dataclass(frozen=True)
class SuppressResult:
    suppressed: list[Contact]
    not_found: list[Contact]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> SuppressResult:
        return cls(suppressed=[Contact.from_api(c) for c in data.get("suppressed") or []],
                   not_found=[Contact.from_api(c) for c in data.get("notFound") or []])


@dataclass(frozen=True)
class ResubscribeResult:
    """ContactAdded, ContactChallenged (stays unsubscribed until confirmed) or ContactCannotBeUnsuppressed."""

    contact: Contact | None
    status: str

    @classmethod
    def from_api(cls, data: dict[str, Any] | str) -> ResubscribeResult:
        if isinstance(data, str):  # SOAP v2 answers the status alone (ApiResubscribeResult is an enum there)
            return cls(contact=None, status=data)
        contact = data.get("contact")
        return cls(contact=Contact.from_api(contact) if contact else None, status=data.get("status") or "")


SPLIT_TEST_METRICS = ("Opens", "Clicks", "ROI")


@dataclass(frozen=True)
class SplitTest:
    """ApiSplitTestSendOptions: send `percent` of the recipients the campaign's versions first, wait `hours`,
    then send the version that won on `metric` to the rest."""

    metric: str
    percent: int
    hours: int

    def __post_init__(self) -> None:
        if self.metric not in SPLIT_TEST_METRICS:
            raise ValueError(f"split test metric must be one of {SPLIT_TEST_METRICS}, not {self.metric!r}")
        if isinstance(self.percent, bool) or not isinstance(self.percent, int) or not 1 <= self.percent <= 100:
            raise ValueError(f"split test percent must be a whole number within 1..100, not {self.percent!r}")
        if isinstance(self.hours, bool) or not isinstance(self.hours, int) or self.hours < 1:
            raise ValueError(f"split test hours must be a whole number of at least 1, not {self.hours!r}")

    def to_api(self) -> dict[str, Any]:
        return {"testMetric": self.metric, "testPercentage": self.percent, "testPeriodHours": self.hours}

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> SplitTest | None:
        """The options as echoed; the portal's example spells the keys with capitals."""
        if not data:
            return None
        lowered = {key.lower(): value for key, value in data.items()}
        return cls(metric=str(lowered.get("testmetric")), percent=_int(lowered.get("testpercentage")),
                   hours=_int(lowered.get("testperiodhours")))


#: ApiCampaignSendStatuses a send can end in: it will not change after them.
SEND_FINAL_STATUSES = ("Sent", "Cancelled")


@dataclass(frozen=True)
class CampaignSend:
    """ApiCampaignSend: status NotSent, Scheduled, Sending, Sent or Cancelled."""

    id: str
    campaign_id: int
    status: str | None
    address_book_ids: list[int] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)
    send_date: datetime | None = None
    split_test: SplitTest | None = None

    @property
    def finished(self) -> bool:
        return self.status in SEND_FINAL_STATUSES

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> CampaignSend:
        return cls(id=str(data.get("id") or ""), campaign_id=_int(data.get("campaignId")),
                   status=data.get("status"), address_book_ids=_ids(data.get("addressBookIds")),
                   contact_ids=_ids(data.get("contactIds")), send_date=parse_datetime(data.get("sendDate")),
                   split_test=SplitTest.from_api(data.get("splitTestOptions")))


def _ids(value: Any) -> list[int]:
    """A list of ids as echoed: null, a list, or (the portal's example) a single number."""
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, list) else [int(value)]

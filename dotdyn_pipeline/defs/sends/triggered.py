"""Triggered sends (esc_emailsinglesend rows): one email of a triggered campaign to one person, each exactly once.

A Dynamics workflow (or a person) creates the row for a contact, lead or account, Scheduled, now or for a date.
The run of the row's account sends every due row with Dotdigital's triggered send (`POST /v2/email/triggered-
campaign`): to the row's address, or the person's when the row has none, with personalisation values from the
account's data mappings of the person's table, plus the row's own JSON object of extra values. Each row's outcome
(Sent, or Failed with Dotdigital's reason) is written back to it; a Failed row set back to Scheduled is sent again.

The send ledger records each row's intent before the call. A triggered send leaves nothing that tells one send
from another of the same campaign to the same person, so a send whose answer no run heard (the call stopped by a
server error, a lost connection, or the run's death) is never guessed about: the row is set Failed with a message
saying it may have been sent, for a person to look at and set back to Scheduled. Nothing is sent twice by the
pipeline, and nothing is dropped without the row saying so.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.errors import DataverseNotFound
from dotdyn_pipeline.connectors.dataverse.odata import literal
from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient, DotdigitalError, SendOutcomeUnknown
from dotdyn_pipeline.defs.audience.datafields import convert
from dotdyn_pipeline.defs.audience.extract import PERSON_TABLES
from dotdyn_pipeline.defs.audience.mappings import check_mappings, mapping_rows
from dotdyn_pipeline.defs.sends.requests import FAILED, SCHEDULED, SENDER_ROLE, SENT, may_send, moment
from dotdyn_pipeline.state import StateStore
from dotdyn_pipeline.state.sends import CLAIMED, PREPARED, REQUESTED, SETTLED, SendAttempt

SINGLE_TABLE = "esc_emailsinglesend"
SINGLE_COLUMNS = ("esc_emailsinglesendid", "esc_name", "_esc_emailaccountid_value", "esc_dotdigitalcampaignid",
                  "_esc_contactid_value", "_esc_leadid_value", "_esc_accountid_value", "esc_email", "esc_status",
                  "esc_senddate", "esc_personalisation", "_createdby_value", "modifiedon")
#: The column that holds a person table's email address.
EMAIL_COLUMN = "emailaddress1"
MAYBE_SENT = ("Dotdigital's answer to the send was lost: the email may have been sent. Check the person's activity "
              "in Dotdigital, and set the row back to Scheduled to send it (again).")


@dataclass(frozen=True)
class TriggeredSendRequest:
    """One esc_emailsinglesend row."""

    id: str
    name: str
    account_id: str
    campaign_id: int | None
    person: tuple[str, str] | None  # (table, id) of the contact, lead or account it is for
    email: str
    status: str
    send_date: datetime | None
    personalisation: str  # the row's JSON object of extra values
    created_by: str | None

    @property
    def send_key(self) -> str:
        return f"{SINGLE_TABLE}:{self.id}"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TriggeredSendRequest:
        person = next(((table, row[f"_esc_{table}id_value"]) for table in PERSON_TABLES
                       if row.get(f"_esc_{table}id_value")), None)
        campaign = row.get("esc_dotdigitalcampaignid")
        return cls(id=row["esc_emailsinglesendid"], name=row.get("esc_name") or row["esc_emailsinglesendid"],
                   account_id=row.get("_esc_emailaccountid_value") or "",
                   campaign_id=int(campaign) if campaign is not None else None, person=person,
                   email=(row.get("esc_email") or "").strip(), status=row.get("esc_status") or "",
                   send_date=moment(row.get("esc_senddate")), personalisation=row.get("esc_personalisation") or "",
                   created_by=row.get("_createdby_value"))


def due_triggered_sends(crm: DataverseClient, now: datetime, account: str | None = None) -> list[TriggeredSendRequest]:
    """The Scheduled rows whose send date is empty or reached (of `account`, when given), oldest first."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = f"esc_status eq '{SCHEDULED}' and (esc_senddate eq null or esc_senddate le {stamp})"
    if account:
        condition += f" and _esc_emailaccountid_value eq {literal(uuid.UUID(account))}"
    return [TriggeredSendRequest.from_row(row)
            for page in crm.read(SINGLE_TABLE, SINGLE_COLUMNS, filter=condition, orderby="createdon")
            for row in page]


class TriggeredSender:
    """Sends the due triggered sends of one account."""

    def __init__(self, crm: DataverseClient, dotdigital: DotdigitalClient, store: StateStore, run_id: str, *,
                 on_step: Callable[[str, str], None] = lambda key, step: None) -> None:
        self.crm, self.dotdigital, self.store, self.run_id, self.on_step = crm, dotdigital, store, run_id, on_step
        self.ledger = store.sends
        self._mappings: dict[str, list[Any]] | None = None

    def execute(self, request: TriggeredSendRequest) -> SendAttempt | None:
        """Send one row's email unless it was sent; write its outcome back; None when there was nothing to do."""
        latest = self.ledger.latest(request.send_key)
        if latest is not None and not latest.done:
            attempt = self.ledger.take_over(latest, self.run_id)
        elif latest is None or (latest.outcome == FAILED and request.status == SCHEDULED):
            attempt = self.ledger.claim(request.send_key, (latest.attempt + 1) if latest else 1, request.account_id,
                                        request.campaign_id or 0, self.run_id)
            if attempt is None:
                return None  # another run claimed it this instant
        else:
            return None
        self.on_step(request.send_key, attempt.step)
        if attempt.step == CLAIMED:
            attempt = self._prepare(request, attempt)
        if attempt.step == PREPARED:
            attempt = self._send(request, attempt)
        elif attempt.step == REQUESTED:  # a run stopped during the call: whether it sent is not known
            attempt = self.ledger.settle(attempt, FAILED, MAYBE_SENT)
        if attempt.step == SETTLED and attempt.written_at is None:
            attempt = self._write_back(request, attempt)
        return attempt

    def _prepare(self, request: TriggeredSendRequest, attempt: SendAttempt) -> SendAttempt:
        refusal = self._refusal(request)
        if refusal:
            return self.ledger.settle(attempt, FAILED, refusal, recipients=0)
        return self.ledger.advance(attempt, PREPARED, recipients=1)

    def _refusal(self, request: TriggeredSendRequest) -> str | None:
        if not may_send(self.crm, request.created_by):
            return (f"Not sent: the row was created by a user who does not hold the {SENDER_ROLE} role; only that "
                    "role's holders may send.")
        if request.campaign_id is None:
            return "Not sent: the row names no Dotdigital triggered campaign."
        if request.personalisation:
            try:
                extra = json.loads(request.personalisation)
            except ValueError:
                extra = None
            if not isinstance(extra, dict):
                return "Not sent: esc_personalisation is not a JSON object of names and values."
        if not request.email and request.person is None:
            return "Not sent: the row has neither an email address nor a contact, lead or account."
        return None

    def _send(self, request: TriggeredSendRequest, attempt: SendAttempt) -> SendAttempt:
        """Resolve the address and values, record the intent, then make the one call."""
        try:
            email, values = self._address_and_values(request)
        except DataverseNotFound:
            return self.ledger.settle(attempt, FAILED, "Not sent: the row's person no longer exists.")
        if not email:
            return self.ledger.settle(attempt, FAILED, "Not sent: the person has no email address.")
        if not request.email:  # the row shows the address it is sent to
            self.crm.update(SINGLE_TABLE, request.id, {"esc_email": email})
        attempt = self.ledger.advance(attempt, REQUESTED)
        self.on_step(request.send_key, REQUESTED)
        try:
            self.dotdigital.send_triggered_campaign(request.campaign_id or 0, [email], values)
        except SendOutcomeUnknown:
            return self.ledger.settle(attempt, FAILED, MAYBE_SENT)
        except DotdigitalError as refusal:
            return self.ledger.settle(attempt, FAILED, f"Dotdigital refused the send: {refusal}")
        self.on_step(request.send_key, "called")
        return self.ledger.settle(attempt, SENT, f"Sent to {email}.", date_sent=_now())

    def _address_and_values(self, request: TriggeredSendRequest) -> tuple[str, dict[str, str]]:
        """The address to send to, and the personalisation: the account's mapped data fields of the person, then
        the row's own values."""
        values: dict[str, str] = {}
        email = request.email
        if request.person is not None:
            table, person_id = request.person
            mappings = self._table_mappings(request.account_id, table)
            columns = sorted({EMAIL_COLUMN, *(mapping.attribute for mapping in mappings)})
            row = self.crm.get(f"{self.crm.entity_set_name(table)}({person_id})?$select={','.join(columns)}")
            email = email or (row.get(EMAIL_COLUMN) or "").strip()
            for mapping in mappings:  # as the audience flow sends them; a value it could not convert is left out
                text, failed, _ = convert(pd.Series([row.get(mapping.attribute)], dtype=object), mapping.type)
                if not failed.iloc[0] and not pd.isna(text.iloc[0]):
                    values[mapping.field] = str(text.iloc[0])
        if request.personalisation:
            values.update({str(name): "" if value is None else str(value)
                           for name, value in json.loads(request.personalisation).items()})
        return email, values

    def _table_mappings(self, account: str, table: str) -> list[Any]:
        if self._mappings is None:
            rows = mapping_rows(self.store, account)
            self._mappings = {}
            for mapping in check_mappings(rows, PERSON_TABLES, self.crm.attributes).valid:
                self._mappings.setdefault(mapping.entity, []).append(mapping)
        return self._mappings.get(table, [])

    def _write_back(self, request: TriggeredSendRequest, attempt: SendAttempt) -> SendAttempt:
        row: dict[str, Any] = {"esc_status": attempt.outcome, "esc_resultmessage": (attempt.message or "")[:2000],
                               "esc_datesent": attempt.date_sent}
        try:
            self.crm.update(SINGLE_TABLE, request.id, row)
        except DataverseNotFound:
            pass  # the row was deleted: its outcome stays in the ledger
        written = self.ledger.written_back(attempt)
        self.on_step(request.send_key, "written")
        return written


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

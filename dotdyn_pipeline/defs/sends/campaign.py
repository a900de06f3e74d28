"""One campaign send, executed exactly once, whatever stops its run and wherever.

The send goes through an address book of its own (`dotdyn send <row id> #<attempt>`), as the vendor's connector
sends: the recipients are the members of the lists' books less those unsubscribed and, unless the row allows
repeat sends, those already sent the campaign. Each step is recorded in the send ledger (state/sends.py) before
the next acts:

1. claimed: the row's checks (its author's role, its campaign, its lists, how fresh their books are) and its
   recipients; a refusal settles it Failed, saying why. The recipients go into the send's own book (an import
   by address: doing it again changes nothing), then
2. prepared; then 3. requested, recorded before the send call. Whoever finds a send requested asks Dotdigital
   first whether the campaign was sent to the send's book (`GET /v2/address-books/{id}/campaigns`), and calls
   only when it was not; the call itself is never repeated by the client (a server error or a dropped
   connection is an unknown outcome, asked about in the same way).
4. sent: the send id; the run follows it to Sent or Cancelled for up to DOTDYN_SEND_FOLLOW_SECONDS, leaving it
   Sending for a later run otherwise. 5. settled, then written back to the row (status, result message, send
   id, date sent, recipients), and the book is deleted.

A Failed row set back to Scheduled is tried again as a new attempt (a Failed send reached nobody); a row sent
once and set back is written back as sent, never sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.errors import DataverseNotFound
from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient, DotdigitalError, NotFound, SendOutcomeUnknown
from dotdyn_pipeline.connectors.http import calls_made
from dotdyn_pipeline.defs.accounts.accounts import email_account
from dotdyn_pipeline.defs.audience.changes import CURSOR
from dotdyn_pipeline.defs.audience.members import account_lists
from dotdyn_pipeline.defs.sends.requests import (
    CANCELLED,
    FAILED,
    SCHEDULED,
    SEND_TABLE,
    SENDER_ROLE,
    SENDING,
    SENT,
    CampaignSendRequest,
    campaign_send,
    may_send,
)
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource
from dotdyn_pipeline.state import StateStore
from dotdyn_pipeline.state.sends import CLAIMED, PREPARED, REQUESTED, SETTLED, SendAttempt
from dotdyn_pipeline.state.sends import SENT as SENT_STEP

#: Where a send stands, told to an observer as each step is recorded (and "called" once the send call has
#: answered, before its answer is recorded): the points at which a stopped run must leave nothing done twice.
StepObserver = Callable[[str], None]
CALLED = "called"
WRITTEN = "written"
RESULT_MESSAGE_MAX = 2000


def books_synced_at(store: StateStore, account: str) -> datetime | None:
    """When the account's audience sync last brought its address books up to date, or None if never."""
    cursor = store.get_cursor(account, CURSOR)
    return datetime.fromisoformat(cursor.watermark) if cursor and cursor.watermark else None


def books_fresh(synced: datetime | None, max_age: float) -> bool:
    """Whether books last synced at `synced` (None: never) were synced at most `max_age` seconds ago (0: any age
    will do)."""
    return not max_age or (synced is not None and (datetime.now(UTC) - synced).total_seconds() <= max_age)


@dataclass(frozen=True)
class SendSettings:
    max_sync_age: float  # seconds; 0: the lists' books are not checked for age
    follow_seconds: float  # how long a run follows a send towards Sent
    poll_max: float = 30.0  # the longest wait between two looks at a send's progress


def book_name(request: CampaignSendRequest, attempt: int) -> str:
    return f"dotdyn send {request.id} #{attempt}"


class CampaignSender:
    """Executes campaign sends of one account."""

    def __init__(self, crm: DataverseClient, dotdigital: DotdigitalClient, store: StateStore, run_id: str,
                 settings: SendSettings, *, on_step: StepObserver = lambda step: None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.crm, self.dotdigital, self.store, self.run_id = crm, dotdigital, store, run_id
        self.settings, self.on_step, self._sleep = settings, on_step, sleep
        self.ledger = store.sends

    def execute(self, request: CampaignSendRequest) -> SendAttempt:
        """Take the send as far as it goes now; return its attempt as it stands."""
        attempt = self._current(request)
        if attempt.step == CLAIMED:
            attempt = self._prepare(request, attempt)
        if attempt.step == PREPARED:
            attempt = self._step(self.ledger.advance(attempt, REQUESTED))
        if attempt.step == REQUESTED:
            attempt = self._request(request, attempt)
        if attempt.step == SENT_STEP:
            attempt = self._follow(attempt)
        if attempt.step == SETTLED and attempt.written_at is None:
            attempt = self._write_back(request, attempt)
        elif attempt.step == SENT_STEP and request.status != SENDING:
            self.crm.update(SEND_TABLE, request.id, {"esc_status": SENDING, "esc_sendid": attempt.send_id})
        return attempt

    def _step(self, attempt: SendAttempt) -> SendAttempt:
        self.on_step(attempt.step)
        return attempt

    def _current(self, request: CampaignSendRequest) -> SendAttempt:
        """The attempt this run works on: a new one, an unfinished one taken over, or the last one as it ended."""
        latest = self.ledger.latest(request.send_key)
        if latest is not None and not latest.done:
            return self.ledger.take_over(latest, self.run_id)
        if latest is not None and not (latest.outcome == FAILED and request.status == SCHEDULED):
            if request.status == SCHEDULED:  # sent once, then set back: said again, never sent again
                return self._write_back(request, latest, again=True)
            return latest
        number = latest.attempt + 1 if latest else 1
        claimed = self.ledger.claim(request.send_key, number, request.account_id, request.campaign_id or 0,
                                    self.run_id)
        if claimed is None:  # another run claimed it this instant: it goes on with it
            raise RuntimeError(f"send {request.name} was claimed by another run")
        return self._step(claimed)

    # -- 1. checks and recipients ---------------------------------------------------------------------

    def _refusal(self, request: CampaignSendRequest, books: dict[str, int]) -> str | None:
        if not may_send(self.crm, request.created_by):
            return (f"Not sent: the send was created by a user who does not hold the {SENDER_ROLE} role; only "
                    "that role's holders may send.")
        if request.problem:
            return f"Not sent: {request.problem}."
        if request.campaign_id is None:
            return "Not sent: the send names no email campaign with a Dotdigital campaign id."
        if not request.list_ids:
            return "Not sent: the send names no marketing list."
        missing = [list_id for list_id in request.list_ids if list_id not in books]
        if missing:
            return (f"Not sent: marketing list(s) {', '.join(missing)} are not activated for email in this "
                    "account, or have no address book yet (the audience sync creates it).")
        return self._stale_books(request)

    def _stale_books(self, request: CampaignSendRequest) -> str | None:
        synced = books_synced_at(self.store, request.account_id)
        if books_fresh(synced, self.settings.max_sync_age):
            return None
        when = f"last synced at {synced.isoformat(timespec='seconds')}" if synced else "never synced"
        return (f"Not sent: the lists' address books were {when}, longer ago than DOTDYN_SEND_MAX_SYNC_AGE "
                f"({self.settings.max_sync_age:g} s) allows; run the account's audience sync, then set the send "
                "back to Scheduled.")

    def _recipients(self, request: CampaignSendRequest, books: dict[str, int]) -> tuple[list[str], dict[str, int]]:
        """The addresses to send to, and how many were left out, by reason."""
        members = pd.concat([self.store.books.members(request.account_id, books[list_id])[["email_key"]]
                             for list_id in request.list_ids], ignore_index=True)
        excluded: dict[str, int] = {}
        unique = members["email_key"].drop_duplicates()
        excluded["in_several_lists"] = len(members) - len(unique)
        unsubscribed = unique.isin(self.store.unsubscribed_emails(request.account_id))
        excluded["unsubscribed"] = int(unsubscribed.sum())
        chosen = unique[~unsubscribed]
        if not request.allow_repeat_sends:
            sent_before = {activity.email.strip().lower() for activity in
                           self.dotdigital.campaign_activities(request.campaign_id or 0) if activity.email}
            repeated = chosen.isin(sent_before)
            excluded["already_sent"] = int(repeated.sum())
            chosen = chosen[~repeated]
        return sorted(chosen), {reason: n for reason, n in excluded.items() if n}

    def _prepare(self, request: CampaignSendRequest, attempt: SendAttempt) -> SendAttempt:
        books = {row["listid"]: int(row["esc_addressbookid"]) for row in account_lists(self.store, request.account_id)
                 if row.get("esc_addressbookid")}
        refusal = self._refusal(request, books)
        if refusal:
            return self._step(self.ledger.settle(attempt, FAILED, refusal, recipients=0))
        recipients, excluded = self._recipients(request, books)
        if not recipients:
            return self._step(self.ledger.settle(
                attempt, FAILED, f"Not sent: nobody in the lists may be sent the campaign ({_counts(excluded)}).",
                recipients=0, excluded=excluded))
        name = book_name(request, attempt.attempt)
        book = self.dotdigital.find_address_book(name) or self.dotdigital.create_address_book(name)
        result = self.dotdigital.import_contacts(book.id, ({"Email": email} for email in recipients), ["Email"])
        refused = sum(len(outcome.faults) for outcome in result.outcomes)
        if refused:
            excluded["refused_by_dotdigital"] = refused
        return self._step(self.ledger.advance(attempt, PREPARED, book_id=book.id,
                                              recipients=len(recipients) - refused, excluded=excluded))

    # -- 3. the send call -----------------------------------------------------------------------------

    def _sent_to_book(self, attempt: SendAttempt) -> bool:
        """Whether Dotdigital sent (or scheduled) the campaign to the send's own book: a send call whose answer
        no run heard did happen exactly when this holds."""
        return any(campaign.id == attempt.campaign_id
                   for campaign in self.dotdigital.campaigns_sent_to_address_book(attempt.book_id or 0))

    def _request(self, request: CampaignSendRequest, attempt: SendAttempt) -> SendAttempt:
        if self._sent_to_book(attempt):
            return self._step(self.ledger.advance(attempt, SENT_STEP))
        try:
            send = self.dotdigital.send_campaign(attempt.campaign_id, [attempt.book_id or 0],
                                                 split_test=request.split_test)
        except SendOutcomeUnknown:
            if self._sent_to_book(attempt):
                return self._step(self.ledger.advance(attempt, SENT_STEP))
            raise  # not known to have happened: the next run asks again before sending
        except DotdigitalError as refusal:  # refused: nothing was sent
            return self._step(self.ledger.settle(attempt, FAILED, f"Dotdigital refused the send: {refusal}"))
        self.on_step(CALLED)
        return self._step(self.ledger.advance(attempt, SENT_STEP, send_id=send.id))

    # -- 4. following it ------------------------------------------------------------------------------

    def _follow(self, attempt: SendAttempt) -> SendAttempt:
        if attempt.send_id is None:
            return self._step(self.ledger.settle(
                attempt, SENT, f"Sent to {attempt.recipients} recipients (Dotdigital's answer to the send call was "
                               "lost, so its send id is not known).", date_sent=_now()))
        deadline, wait = time.monotonic() + self.settings.follow_seconds, 1.0
        while True:
            progress = self.dotdigital.send_status(attempt.send_id)
            if progress.status == "Sent":
                return self._step(self.ledger.settle(attempt, SENT, f"Sent to {attempt.recipients} recipients.",
                                                     date_sent=_now()))
            if progress.status == CANCELLED:
                return self._step(self.ledger.settle(attempt, CANCELLED, "The send was cancelled in Dotdigital."))
            if time.monotonic() + wait > deadline:
                return attempt  # still under way: a later run follows it
            self._sleep(wait)
            wait = min(self.settings.poll_max, wait * 2)

    # -- 5. writing back ------------------------------------------------------------------------------

    def _write_back(self, request: CampaignSendRequest, attempt: SendAttempt, again: bool = False) -> SendAttempt:
        message = attempt.message or ""
        if again:
            message = (f"{message} This send was executed once already; a campaign send is never executed twice: "
                       "create a new send to send again.").strip()
        row = {"esc_status": attempt.outcome, "esc_resultmessage": message[:RESULT_MESSAGE_MAX],
               "esc_recipients": attempt.recipients, "esc_sendid": attempt.send_id,
               "esc_datesent": attempt.date_sent}
        try:
            self.crm.update(SEND_TABLE, request.id, row)
        except DataverseNotFound:
            pass  # the row was deleted: its outcome stays in the ledger
        if again:
            return attempt
        written = self.ledger.written_back(attempt)
        self.on_step(WRITTEN)
        if attempt.book_id and attempt.outcome in (SENT, CANCELLED):
            try:
                self.dotdigital.delete_address_book(attempt.book_id)
            except NotFound:
                pass
        return written


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _counts(excluded: dict[str, int]) -> str:
    return ", ".join(f"{reason.replace('_', ' ')}: {n}" for reason, n in sorted(excluded.items())) or "lists empty"


@dataclass(frozen=True)
class SendDone:
    """What one run did to one send."""

    request: CampaignSendRequest
    attempt: SendAttempt
    dataverse_requests: int
    dotdigital_calls: int


def execute_send(send_id: str, run_id: str, dataverse: DataverseResource, dotdigital: DotdigitalResource,
                 state: StateStoreResource, settings: SendSettings, *, account: str | None = None,
                 on_step: StepObserver = lambda step: None) -> SendDone:
    """Take the esc_emailsend row `send_id` as far as it goes now (of `account`, when given)."""
    with dataverse.client() as crm:
        request = campaign_send(crm, send_id)
        if request is None or (account is not None and request.account_id != account):
            raise LookupError(f"esc_emailsend {send_id} is not a campaign send of account {account}")
        with state.open() as store, email_account(crm, request.account_id).dotdigital(dotdigital) as client:
            attempt = CampaignSender(crm, client, store, run_id, settings, on_step=on_step).execute(request)
            return SendDone(request, attempt, calls_made(crm.counter.snapshot()),
                            calls_made(client.counter.snapshot()))

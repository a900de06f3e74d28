"""Sending through the client, on both transports, against the sandbox over HTTPS: campaign sends (split
test, schedule, recipients, how a send is found again) and triggered sends, and that a send is never made
twice by the client when its answer is lost."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.connectors.dotdigital import (
    CampaignSend,
    ContactSuppressed,
    DotdigitalClient,
    InvalidEmail,
    NotFound,
    NotTriggeredCampaign,
    SendOutcomeUnknown,
    ServiceUnavailable,
    SplitTest,
    ValidationError,
    connect,
)
from dotdyn_pipeline.connectors.dotdigital.models import Contact
from dotdyn_pipeline.connectors.dotdigital.rest import RestTransport
from dotdyn_pipeline.connectors.http import CallCounter
from dotdyn_pipeline_tests.connectors.dotdigital.conftest import FAST_RETRY, Sleeps, client_config, unique
from dotdyn_pipeline_tests.sandbox.dotdigital_helpers import poll

#: Where a campaign send goes on each transport (SOAP: every operation is a POST to the one endpoint).
SEND_PATH = {"rest": "/v2/campaigns/send$", "soap": "Api.svc"}
TRIGGERED_PATH = "/v2/email/triggered-campaign$"  # SOAP v2 has none: the client sends it over REST


def _fault(control: httpx.Client, **rule: Any) -> None:
    control.post("/faults/dotdigital", json={"method": "POST", **rule}).raise_for_status()


def _campaign(client: DotdigitalClient) -> int:
    """A standard campaign sent before (the drafts are left to the tests of a first send)."""
    return max(c.id for c in client.campaigns() if c.status == "Sent")


def _triggered(client: DotdigitalClient) -> int:
    return next(c.id for c in client.campaigns() if c.status == "Triggered")


def _book(client: DotdigitalClient, n: int) -> tuple[int, list[str]]:
    book = client.create_address_book(unique("send"))
    emails = [f"{unique('to')}@example.com" for _ in range(n)]
    for email in emails:
        client.add_contact_to_address_book(book.id, Contact(0, email))
    return book.id, emails


def _sends_to(control: httpx.Client, book_id: int) -> list[dict[str, Any]]:
    """The campaign sends the stand-in accepted for this address book."""
    sends = control.get("/dotdigital/accounts/1/sends", params={"type": "campaign"}).raise_for_status().json()
    return [send for send in sends if book_id in send["addressBookIds"]]


def _triggered_sends(control: httpx.Client, email: str) -> list[dict[str, Any]]:
    sends = control.get("/dotdigital/accounts/1/sends", params={"type": "triggered"}).raise_for_status().json()
    return [send for send in sends if email in send["toAddresses"]]


def _finished(client: DotdigitalClient, send: CampaignSend, timeout: float = 30) -> CampaignSend:
    return poll(lambda: (status := client.send_status(send.id)).finished and status, timeout=timeout)


def _retries(client: DotdigitalClient) -> dict[str, int]:
    return {kind: n for kind, n in client.counter.snapshot().items() if kind.startswith("retry:")}


@pytest.mark.parametrize("options", [("Opens", 0, 1), ("Clicks", 101, 1), ("ROI", 10, 0), ("Replies", 10, 1),
                                     ("Opens", True, 1), ("Opens", 10, 1.5)])
def test_split_test_options_outside_the_documented_ranges_are_refused_before_any_call(options) -> None:
    with pytest.raises(ValueError):
        SplitTest(*options)


def test_a_split_test_is_echoed_and_the_send_followed_to_sent(client: DotdigitalClient, transport: str) -> None:
    book_id, _ = _book(client, 4)
    split = SplitTest("ROI" if transport == "rest" else "Clicks", 50, 1)
    send = client.send_campaign(_campaign(client), [book_id], split_test=split)
    assert (send.split_test, send.address_book_ids, send.status) == (split, [book_id], "Sending")
    final = _finished(client, send)
    assert (final.status, final.split_test, final.campaign_id) == ("Sent", split, send.campaign_id)


def test_soap_cannot_carry_an_roi_split_test_and_says_so_without_a_call(sandbox, sleeps) -> None:
    with connect(client_config(sandbox, "soap"), sleep=sleeps) as client:
        calls = client.counter.total
        with pytest.raises(ValidationError, match="ROI"):
            client.send_campaign(1, [2], split_test=SplitTest("ROI", 10, 2))
        assert client.counter.total == calls


def test_a_scheduled_send_stays_scheduled_until_its_date_then_is_sent(client: DotdigitalClient) -> None:
    book_id, _ = _book(client, 2)
    campaign = _campaign(client)
    when = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    send = client.send_campaign(campaign, [book_id], send_date=when)
    assert (send.status, send.send_date) == ("Scheduled", when)
    assert client.send_status(send.id).status == "Scheduled"
    assert campaign in {c.id for c in client.campaigns_sent_to_address_book(book_id)}, "an accepted send counts"
    assert _finished(client, send).status == "Sent"


def test_a_send_reaches_the_members_neither_suppressed_nor_unsubscribed_and_leaves_their_activity(
        client: DotdigitalClient, control: httpx.Client) -> None:
    book_id, emails = _book(client, 5)
    control.post("/dotdigital/accounts/1/suppress", json={"email": emails[0], "reason": "HardBounced"})
    client.unsubscribe(emails[1])
    client.unsubscribe(emails[2], address_book_id=book_id)
    campaign = _campaign(client)
    assert campaign not in {c.id for c in client.campaigns_sent_to_address_book(book_id)}
    send = client.send_campaign(campaign, [book_id])
    assert _finished(client, send).status == "Sent"
    reached = {a.email: a for a in client.campaign_activities(campaign) if a.email in emails}
    assert set(reached) == set(emails[3:])
    assert all(a.campaign_id == campaign and a.date_sent is not None for a in reached.values())
    assert [s["recipients"] for s in _sends_to(control, book_id)] == [2]
    assert campaign in {c.id for c in client.campaigns_sent_to_address_book(book_id)}
    client.delete_address_book(book_id)
    with pytest.raises(NotFound) as caught:
        client.campaigns_sent_to_address_book(book_id)
    assert caught.value.code == "ERROR_ADDRESSBOOK_NOT_FOUND"


def test_a_send_whose_answer_is_lost_is_not_sent_again(client: DotdigitalClient, control: httpx.Client,
                                                       transport: str) -> None:
    book_id, _ = _book(client, 1)
    campaign = _campaign(client)
    _fault(control, kind="drop_after", count=1, path=SEND_PATH[transport])
    with pytest.raises(SendOutcomeUnknown) as caught:
        client.send_campaign(campaign, [book_id])
    assert caught.value.operation == "send_campaign"
    assert len(_sends_to(control, book_id)) == 1, "it happened, once"
    assert client.counter.snapshot()["send_campaign"] == 1 and not _retries(client)
    assert campaign in {c.id for c in client.campaigns_sent_to_address_book(book_id)}, "and can be found"


def test_a_server_error_on_a_send_is_not_retried(client: DotdigitalClient, control: httpx.Client,
                                                 transport: str) -> None:
    book_id, _ = _book(client, 1)
    campaign = _campaign(client)
    _fault(control, kind="server_error", count=1, path=SEND_PATH[transport])
    with pytest.raises(SendOutcomeUnknown):
        client.send_campaign(campaign, [book_id])
    assert client.counter.snapshot()["send_campaign"] == 1 and not _retries(client)
    assert _sends_to(control, book_id) == []  # the stand-in failed before the service saw it


@pytest.mark.parametrize(("status", "reason"), [(429, "throttle"), (400, "quota")])
def test_a_throttled_send_was_not_processed_and_is_retried(client: DotdigitalClient, control: httpx.Client,
                                                           transport: str, status: int, reason: str) -> None:
    book_id, _ = _book(client, 1)
    campaign = _campaign(client)
    _fault(control, kind="throttle", status=status, count=2, retry_after=1, path=SEND_PATH[transport])
    send = client.send_campaign(campaign, [book_id])
    assert _retries(client) == {f"retry:{reason}": 2}
    assert [s["id"] for s in _sends_to(control, book_id)] == [send.id]


def test_a_send_that_never_reached_the_server_is_tried_again(sandbox, sleeps: Sleeps) -> None:
    with socket.socket() as probe:  # a port nobody listens on: every connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = client_config(sandbox, "rest")
    with DotdigitalClient(RestTransport(config, f"https://127.0.0.1:{port}", CallCounter(), sleeps), config,
                          sleep=sleeps) as client:
        with pytest.raises(ServiceUnavailable):
            client.send_campaign(1, [2])
        assert client.counter.snapshot()["send_campaign"] == FAST_RETRY.max_attempts


def test_a_triggered_send_reaches_its_address_with_its_personalisation(client: DotdigitalClient,
                                                                        control: httpx.Client) -> None:
    email, campaign = f"{unique('one')}@example.com", _triggered(client)
    client.send_triggered_campaign(campaign, [email], {"FIRSTNAME": "Ada", "ORDERNO": "A-17"})
    [recorded] = _triggered_sends(control, email)
    assert recorded["campaignId"] == campaign and recorded["personalizationValues"] == [
        {"name": "FIRSTNAME", "value": "Ada"}, {"name": "ORDERNO", "value": "A-17"}]
    assert email in {a.email for a in client.campaign_activities(campaign)}
    assert client.counter.snapshot()["send_triggered_campaign"] == 1


@pytest.mark.parametrize(("case", "error", "code"), [
    ("not found", NotFound, "ERROR_CAMPAIGN_NOT_FOUND"),
    ("not triggered", NotTriggeredCampaign, "ERROR_CAMPAIGN_INVALID"),
    ("invalid address", InvalidEmail, "ERROR_INVALID_EMAIL"),
    ("suppressed address", ContactSuppressed, "ERROR_CONTACT_SUPPRESSED"),
])
def test_triggered_send_refusals_are_typed_and_send_nothing(client: DotdigitalClient, control: httpx.Client,
                                                            case: str, error: type, code: str) -> None:
    email = f"{unique('refused')}@example.com"
    campaign = {"not found": 987_654, "not triggered": _campaign(client)}.get(case, _triggered(client))
    if case == "suppressed address":
        control.post("/dotdigital/accounts/1/suppress", json={"email": email}).raise_for_status()
    address = "not an address@" if case == "invalid address" else email
    with pytest.raises(error) as caught:
        client.send_triggered_campaign(campaign, [address], {"FIRSTNAME": "Ada"})
    assert caught.value.code == code
    assert _triggered_sends(control, email) == [] and not _retries(client)


def test_a_triggered_send_whose_answer_is_lost_is_not_sent_again(client: DotdigitalClient,
                                                                 control: httpx.Client) -> None:
    email, campaign = f"{unique('lost')}@example.com", _triggered(client)
    _fault(control, kind="drop_after", count=1, path=TRIGGERED_PATH)
    with pytest.raises(SendOutcomeUnknown):
        client.send_triggered_campaign(campaign, [email])
    assert len(_triggered_sends(control, email)) == 1
    assert client.counter.snapshot()["send_triggered_campaign"] == 1 and not _retries(client)

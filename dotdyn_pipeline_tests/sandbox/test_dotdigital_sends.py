"""The Dotdigital stand-in's sends, over REST (checked against the swagger) and SOAP (zeep and the WSDL):
campaign sends with their recipients, schedule, split test and refusals; triggered sends; the control routes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from zeep.exceptions import Fault

from dotdyn_pipeline.sandbox.dotdigital.engagement import TRIGGERED_CAMPAIGNS
from dotdyn_pipeline.sandbox.dotdigital.sends import in_test_group
from dotdyn_pipeline_tests.sandbox.dotdigital_helpers import (
    check_swagger,
    message_of,
    poll,
    rest,
    soap,
    trust,
    unique,
)

TRIGGERED = min(TRIGGERED_CAMPAIGNS)


@pytest.fixture
def api(sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with rest(sandbox) as client:
        yield client


def _campaign(api: httpx.Client) -> int:
    """A standard campaign sent before (the drafts are left to the tests of a first send)."""
    return max(c["id"] for c in check_swagger(api.get("/v2/campaigns")) if c["status"] == "Sent")


def _book_with(api: httpx.Client, emails: list[str]) -> int:
    book = check_swagger(api.post("/v2/address-books", json={"name": unique("Send ")}))["id"]
    for email in emails:
        api.post(f"/v2/address-books/{book}/contacts", json={"email": email}).raise_for_status()
    return book


def _emails(n: int) -> list[str]:
    prefix = unique("to.")
    return [f"{prefix}.{i}@example.com" for i in range(n)]


def _sent_to(api: httpx.Client, campaign: int, emails: list[str]) -> set[str]:
    """Which of `emails` have an activity row of the campaign."""
    wanted, found, skip = set(emails), set(), 0
    while page := check_swagger(api.get(f"/v2/campaigns/{campaign}/activities", params={"select": 1000,
                                                                                         "skip": skip})):
        found |= {row["email"] for row in page} & wanted
        skip += len(page)
    return found


def _sends(control: httpx.Client, campaign: int, kind: str = "campaign") -> list[dict[str, Any]]:
    return control.get("/dotdigital/accounts/1/sends", params={"type": kind, "campaign_id": campaign}
                       ).raise_for_status().json()


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_send_reaches_the_subscribed_members_of_its_books_and_the_contacts_it_names(api, control):
    members, named = _emails(6), _emails(3)
    book = _book_with(api, members)
    control.post("/dotdigital/accounts/1/suppress", json={"email": members[0], "reason": "HardBounced"})
    api.post("/v2/contacts/unsubscribe", json={"email": members[1]}).raise_for_status()
    api.post(f"/v2/address-books/{book}/contacts/unsubscribe", json={"email": members[2]}).raise_for_status()
    named_ids = [api.post("/v2/contacts", json={"email": e}).json()["id"] for e in named]
    control.post("/dotdigital/accounts/1/suppress", json={"email": named[0]}).raise_for_status()
    member_id = api.get(f"/v2/contacts/{members[3]}").json()["id"]  # named and in the book: sent once
    campaign = _campaign(api)
    send = check_swagger(api.post("/v2/campaigns/send", json={
        "campaignId": campaign, "addressBookIds": [book], "contactIds": [*named_ids, member_id]}))
    assert send["status"] == "Sending" and send["splitTestOptions"] is None
    poll(lambda: check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["status"] == "Sent")
    expected = {*members[3:], *named[1:]}
    assert _sent_to(api, campaign, members + named) == expected
    recorded = next(s for s in _sends(control, campaign) if s["id"] == send["id"])
    assert recorded["recipients"] == len(expected) and recorded["finished"]
    assert campaign in {c["id"] for c in check_swagger(api.get(f"/v2/address-books/{book}/campaigns"))}


def test_split_test_options_are_checked_as_documented_and_echoed(api):
    campaign, book = _campaign(api), _book_with(api, _emails(1))
    for wrong in ({"testMetric": "Replies", "testPercentage": 50, "testPeriodHours": 1},
                  {"testMetric": "Opens", "testPercentage": 0, "testPeriodHours": 1},
                  {"testMetric": "Opens", "testPercentage": 101, "testPeriodHours": 1},
                  {"testMetric": "Clicks", "testPercentage": 20, "testPeriodHours": 0},
                  {"testMetric": "Clicks", "testPercentage": 20}):
        refused = api.post("/v2/campaigns/send", json={"campaignId": campaign, "addressBookIds": [book],
                                                       "splitTestOptions": wrong})
        assert refused.status_code == 400 and message_of(refused).endswith("ERROR_CAMPAIGN_SEND_INVALID"), wrong
    options = {"testMetric": "ROI", "testPercentage": 25, "testPeriodHours": 3}
    send = check_swagger(api.post("/v2/campaigns/send", json={"campaignId": campaign, "addressBookIds": [book],
                                                              "sendDate": _later(3600), "splitTestOptions": options}))
    assert send["splitTestOptions"] == options
    assert check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["splitTestOptions"] == options


def test_a_split_test_sends_its_test_group_then_the_rest_after_the_test_period(api, control):
    emails = _emails(10)
    book, campaign = _book_with(api, emails), _campaign(api)
    send = check_swagger(api.post("/v2/campaigns/send", json={
        "campaignId": campaign, "addressBookIds": [book],
        "splitTestOptions": {"testMetric": "Opens", "testPercentage": 30, "testPeriodHours": 1}}))
    first = poll(lambda: _sent_to(api, campaign, emails))
    assert len(first) == 3  # ceil(10 * 30%), spread over the recipients
    assert check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["status"] == "Sending"
    poll(lambda: check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["status"] == "Sent", timeout=30)
    assert _sent_to(api, campaign, emails) == set(emails)
    assert [in_test_group(i, 30) for i in range(10)].count(True) == 3


def test_a_future_send_date_keeps_the_send_scheduled_until_then(api):
    emails = _emails(2)
    book, campaign = _book_with(api, emails), _campaign(api)
    send = check_swagger(api.post("/v2/campaigns/send", json={"campaignId": campaign, "addressBookIds": [book],
                                                              "sendDate": _later(4)}))
    assert send["status"] == "Scheduled"
    assert check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["status"] == "Scheduled"
    assert not _sent_to(api, campaign, emails)
    in_use = api.delete(f"/v2/address-books/{book}")
    assert in_use.status_code == 400 and message_of(in_use).endswith("ERROR_ADDRESSBOOK_IN_USE")
    assert campaign in {c["id"] for c in check_swagger(api.get(f"/v2/address-books/{book}/campaigns"))}
    poll(lambda: check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["status"] == "Sent", timeout=30)
    assert _sent_to(api, campaign, emails) == set(emails)
    check_swagger(api.delete(f"/v2/address-books/{book}"))
    assert api.get(f"/v2/address-books/{book}").status_code == 404


def test_a_cancelled_send_never_goes_out(api, control):
    emails = _emails(2)
    book, campaign = _book_with(api, emails), _campaign(api)
    send = check_swagger(api.post("/v2/campaigns/send", json={"campaignId": campaign, "addressBookIds": [book],
                                                              "sendDate": _later(2)}))
    cancelled = control.post(f"/dotdigital/accounts/1/sends/{send['id']}/cancel").raise_for_status().json()
    assert cancelled["status"] == "Cancelled"
    again = control.post(f"/dotdigital/accounts/1/sends/{send['id']}/cancel")
    assert again.status_code == 400 and "ERROR_CAMPAIGN_SEND_INVALID" in again.json()["error"]
    assert campaign not in {c["id"] for c in check_swagger(api.get(f"/v2/address-books/{book}/campaigns"))}
    recorded = next(s for s in _sends(control, campaign) if s["id"] == send["id"])
    assert recorded["status"] == "Cancelled" and recorded["recipients"] is None
    time.sleep(3)  # past the send date
    assert check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["status"] == "Cancelled"
    assert not _sent_to(api, campaign, emails)


def test_a_split_test_cancelled_in_its_test_period_reaches_its_test_group_only(api, control):
    emails = _emails(4)
    book, campaign = _book_with(api, emails), _campaign(api)
    send = check_swagger(api.post("/v2/campaigns/send", json={
        "campaignId": campaign, "addressBookIds": [book],
        "splitTestOptions": {"testMetric": "Clicks", "testPercentage": 50, "testPeriodHours": 1}}))
    tested = poll(lambda: _sent_to(api, campaign, emails))
    control.post(f"/dotdigital/accounts/1/sends/{send['id']}/cancel").raise_for_status()
    time.sleep(7)  # past the test period (an hour at the default time scale is five seconds)
    assert check_swagger(api.get(f"/v2/campaigns/send/{send['id']}"))["status"] == "Cancelled"
    assert len(tested) == 2 and _sent_to(api, campaign, emails) == tested
    assert check_swagger(api.get(f"/v2/campaigns/{campaign}"))["status"] == "Sent"


def test_campaign_send_refusals(api):
    campaign, book = _campaign(api), _book_with(api, [])
    cases = [({"campaignId": 987_654}, 404, "ERROR_CAMPAIGN_NOT_FOUND"),
             ({"campaignId": campaign, "addressBookIds": [987_654]}, 404, "ERROR_ADDRESSBOOK_NOT_FOUND"),
             ({"campaignId": campaign, "contactIds": [5]}, 404, "ERROR_CONTACT_NOT_FOUND"),
             ({"campaignId": TRIGGERED, "addressBookIds": [book]}, 400, "ERROR_CAMPAIGN_SENDNOTPERMITTED")]
    for body, status, code in cases:
        refused = api.post("/v2/campaigns/send", json=body)
        assert (refused.status_code, message_of(refused).split()[-1]) == (status, code), body
    missing = api.get("/v2/campaigns/send/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and message_of(missing).endswith("ERROR_CAMPAIGN_SEND_INVALID")
    test_book = api.delete("/v2/address-books/1")
    assert test_book.status_code == 400 and message_of(test_book).endswith("ERROR_ADDRESSBOOK_NOTWRITABLE")


def test_triggered_campaigns_are_listed_as_triggered(api):
    listed = {c["id"]: c for c in check_swagger(api.get("/v2/campaigns"))}
    assert {listed[i]["status"] for i in TRIGGERED_CAMPAIGNS} == {"Triggered"}


def test_a_triggered_send_reaches_its_address_with_its_personalisation(api, control):
    email = _emails(1)[0]
    body = {"toAddresses": [email], "campaignId": TRIGGERED,
            "personalizationValues": [{"name": "ORDERNO", "value": "A-17"}]}
    assert check_swagger(api.post("/v2/email/triggered-campaign", json=body)) == b""
    assert _sent_to(api, TRIGGERED, [email]) == {email}
    recorded = _sends(control, TRIGGERED, "triggered")[-1]
    assert recorded["toAddresses"] == [email] and recorded["recipients"] == 1
    assert recorded["personalizationValues"] == [{"name": "ORDERNO", "value": "A-17"}]


@pytest.mark.parametrize(("refusal", "status", "code"), [
    (lambda body, draft, suppressed: {**body, "campaignId": 987_654}, 404, "ERROR_CAMPAIGN_NOT_FOUND"),
    (lambda body, standard, suppressed: {**body, "campaignId": standard}, 400, "ERROR_CAMPAIGN_INVALID"),
    (lambda body, draft, suppressed: {**body, "toAddresses": ["not-an-address"]}, 400, "ERROR_INVALID_EMAIL"),
    (lambda body, draft, suppressed: {**body, "toAddresses": []}, 400, "ERROR_INVALID_EMAIL"),
    (lambda body, draft, suppressed: {**body, "toAddresses": [*body["toAddresses"], suppressed]}, 400,
     "ERROR_CONTACT_SUPPRESSED"),
], ids=["not found", "not triggered", "invalid address", "no address", "suppressed address"])
def test_triggered_send_refusals_send_nothing(api, control, refusal, status, code):
    email, suppressed = _emails(2)
    control.post("/dotdigital/accounts/1/suppress", json={"email": suppressed}).raise_for_status()
    body = refusal({"toAddresses": [email], "campaignId": TRIGGERED}, _campaign(api), suppressed)
    before = len(_sends(control, TRIGGERED, "triggered"))
    refused = api.post("/v2/email/triggered-campaign", json=body)
    assert (refused.status_code, message_of(refused).split()[-1]) == (status, code)
    assert len(_sends(control, TRIGGERED, "triggered")) == before
    assert not _sent_to(api, TRIGGERED, [email])


def test_a_triggered_batch_is_refused_whole_when_one_email_is(api, control):
    good, bad = _emails(1)[0], "bad@"
    before = len(_sends(control, TRIGGERED, "triggered"))
    batch = [{"toAddresses": [good], "campaignId": TRIGGERED}, {"toAddresses": [bad], "campaignId": TRIGGERED}]
    refused = api.post("/v2/email/triggered-campaign/batch", json=batch)
    assert refused.status_code == 400 and message_of(refused).endswith("ERROR_INVALID_EMAIL")
    assert len(_sends(control, TRIGGERED, "triggered")) == before
    check_swagger(api.post("/v2/email/triggered-campaign/batch", json=batch[:1] * 2))
    assert len(_sends(control, TRIGGERED, "triggered")) == before + 2


def test_soap_sends_with_the_wsdls_split_test_metrics_and_lists_campaigns_of_a_book(sandbox):
    emails = _emails(2)
    with rest(sandbox, 1) as second:
        book = _book_with(second, emails)
        campaign = _campaign(second)
    with soap(sandbox) as service:
        options = {"TestMetric": "Clicks", "TestPercentage": 50, "TestPeriodHours": 2}
        send = service.SendCampaign(apiCampaignSend={"CampaignId": campaign, "AddressBookIds": {"int": [book]},
                                                     "SplitTestOptions": options})
        assert (send.SplitTestOptions.TestMetric, send.SplitTestOptions.TestPercentage,
                send.SplitTestOptions.TestPeriodHours) == ("Clicks", 50, 2)
        assert service.GetCampaignSendProgress(sendId=send.Id).Status in ("Sending", "Sent")
        with pytest.raises(Fault, match="ERROR_CAMPAIGN_SEND_INVALID"):
            service.SendCampaign(apiCampaignSend={"CampaignId": campaign, "AddressBookIds": {"int": [book]},
                                                  "SplitTestOptions": {**options, "TestMetric": "ROI"}})
        assert campaign in [c.Id for c in service.GetCampaignsForAddressBook(addressBookId=book, select=100,
                                                                                 skip=0)]
        spare = service.CreateAddressBook(apiAddressBook={"Name": unique("Spare "), "Visibility": "Private"})
        service.DeleteAddressBook(id=spare.Id)
        with pytest.raises(Fault, match="ERROR_ADDRESSBOOK_NOT_FOUND"):
            service.GetAddressBookContactCount(id=spare.Id)


def test_the_wsdl_has_no_send_to_address_books_or_contacts_and_naming_them_gets_a_fault(sandbox):
    served = httpx.get(sandbox["dotdigital_wsdl"], verify=trust(sandbox)).text
    assert 'name="SendCampaign"' in served
    assert "SendCampaignToAddressBooks" not in served and "SendCampaignToContacts" not in served
    login = sandbox["accounts"][0]
    envelope = ('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
                '<SendCampaignToAddressBooks xmlns="http://apiconnector.com/v2"><campaignId>1</campaignId>'
                '</SendCampaignToAddressBooks></s:Body></s:Envelope>')
    answer = httpx.post(sandbox["dotdigital_wsdl"].split("?")[0], content=envelope, verify=trust(sandbox),
                        auth=(login["api_user"], login["api_password"]), headers={"Content-Type": "text/xml"})
    assert answer.status_code == 500 and "SendCampaignToAddressBooks" in answer.text

"""The SOAP v2 endpoint, driven by zeep from the WSDL the sandbox serves (the vendor's, address replaced)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import zeep
from zeep.exceptions import Fault, TransportError

from dotdyn_pipeline.vendor import DOTDIGITAL_WSDL
from dotdyn_pipeline_tests.sandbox.dotdigital_helpers import poll, rest, soap, trust, unique


@pytest.fixture(scope="module")
def service(sandbox: dict[str, Any]) -> Iterator[Any]:
    with soap(sandbox) as proxy:
        yield proxy


def test_the_served_wsdl_is_the_vendors_with_only_the_address_replaced(sandbox):
    served = httpx.get(sandbox["dotdigital_wsdl"], verify=trust(sandbox)).text
    address = sandbox["dotdigital_wsdl"].split("?")[0]
    assert f'<soap:address location="{address}" />' in served
    original = DOTDIGITAL_WSDL.read_text(encoding="utf-8")
    assert served.replace(address, "https://apiconnector.com/v2/Api.svc") == original


def test_account_info(service, sandbox):
    info = service.GetCurrentAccountInfo()
    properties = {p.Name: p.Value for p in info.Properties.ApiAccountProperty}
    assert properties["ApiEndpoint"] == sandbox["dotdigital_url"] + "/"
    assert properties["MainEmail"] == sandbox["accounts"][1]["api_user"]


def test_address_books_contacts_and_data_fields(service, sandbox):
    field = unique("SOAPF").upper()
    service.CreateDataField(dataField={"Name": field, "Type": "Numeric", "Visibility": "Private"})
    assert field in {f.Name for f in service.GetDataFields()}
    book = service.CreateAddressBook(apiAddressBook={"Name": unique("Soap book "), "Visibility": "Private"})
    assert book.Id in {b.Id for b in service.GetAddressBooks(select=1000, skip=0)}
    value = zeep.xsd.AnyObject(zeep.xsd.Int(), 42)
    email = f"{unique('soap.')}@example.com"
    contact = service.AddContactToAddressBook(addressBookId=book.Id, apiContact={
        "Email": email, "OptInType": "Single", "EmailType": "Html",
        "DataFields": {"ApiContactData": [{"Key": field, "Value": value}]}})
    assert contact.Email == email and contact.Status == "Subscribed"
    assert {d.Key: d.Value for d in contact.DataFields.ApiContactData}[field] == 42  # typed by xsi:type
    assert service.GetContactByEmail(email=email).Id == contact.Id
    members = service.GetContactsInAddressBook(addressBookId=book.Id, withFullData=False, select=10, skip=0)
    assert [m.Id for m in members] == [contact.Id]
    with rest(sandbox, 1) as api:  # the same account's store behind both transports
        assert api.get(f"/v2/contacts/{contact.Id}").json()["email"] == email


def test_import_progress_report_and_faults(service):
    book = service.CreateAddressBook(apiAddressBook={"Name": unique("Soap import "), "Visibility": "Private"})
    good = f"{unique('imp.')}@example.com"
    data = f"Email,FIRSTNAME\n{good},Zed\nbroken,Nope\n{good},Again\n".encode()
    started = service.ImportContactsToAddressBook(addressBookId=book.Id, data=data, dataType="CSV")
    assert started.Status == "NotFinished"
    progress = poll(lambda: (p := service.GetContactImportProgress(importId=started.Id)).Status != "NotFinished" and p)
    assert progress.Status == "Finished"
    report = service.GetContactImportReport(importId=started.Id)
    assert (report.NewContacts, report.InvalidEntries, report.DuplicateEmails) == (1, 1, 1)
    faults = list(csv.reader(io.StringIO(service.GetContactImportReportFaults(importId=started.Id).decode())))
    assert faults[0] == ["Reason", "Email", "FIRSTNAME"]
    assert sorted(row[0] for row in faults[1:]) == ["Duplicate", "InvalidEmail"]
    assert service.GetAddressBookContactCount(id=book.Id) == 1


def test_campaign_summary_activities_and_roi(service):
    campaigns = service.GetCampaigns(select=1000, skip=0)
    sent = next(c for c in campaigns if c.Status == "Sent")
    summary = service.GetCampaignSummary(campaignId=sent.Id)
    since = datetime(2000, 1, 1)
    rows = service.GetCampaignActivitiesSinceDate(campaignId=sent.Id, startDate=since, select=1000, skip=0)
    assert summary.NumTotalSent == len(rows) > 0
    assert summary.NumTotalOpens == sum(r.NumOpens for r in rows)
    roi = service.GetCampaignRoiDetailsSinceDate(campaignId=sent.Id, startDate=since, select=1000, skip=0)
    assert {r.MarkerName for r in roi} == {"Revenue", "ProductCategory"}
    active = service.GetSentCampaignsWithActivitySinceDate(startDate=since, select=1000, skip=0)
    assert sent.Id in {c.Id for c in active}


def test_unsubscribe_and_suppressed_since(service):
    email = f"{unique('soapleaver.')}@example.com"
    before = datetime.now()
    service.CreateContact(apiContact={"Email": email, "OptInType": "Unknown", "EmailType": "Html"})
    service.UnsubscribeContact(apiContact={"Email": email, "OptInType": "Unknown", "EmailType": "Html"})
    suppressed = service.GetSuppressedContacts(startDate=before.replace(year=before.year - 1), select=1000, skip=0)
    match = [s for s in suppressed if s.SuppressedContact.Email == email]
    assert [s.Reason for s in match] == ["Unsubscribed"]
    contact = {"Email": email, "OptInType": "Unknown", "EmailType": "Html"}
    assert service.ResubscribeContact(apiContactResubscription={"UnsubscribedContact": contact}) == "ContactChallenged"


def test_errors_are_soap_faults_with_the_code(service):
    with pytest.raises(Fault, match="ERROR_CAMPAIGN_NOT_FOUND"):
        service.GetCampaignSummary(campaignId=987654)
    with pytest.raises(Fault, match="ERROR_PARAMETER_INVALID"):
        service.GetAddressBooks(select=5000, skip=0)


def test_an_operation_not_implemented_is_a_fault_naming_it(service):
    with pytest.raises(Fault, match="DeleteAllContactsFromAddressBook"):
        service.DeleteAllContactsFromAddressBook(addressBookId=2)


def test_wrong_password_is_refused_by_the_transport(sandbox):
    status = None
    try:
        with soap(sandbox, password="wrong") as proxy:
            proxy.GetCurrentAccountInfo()
    except TransportError as error:  # not kept: its traceback would hold the connection open
        status = error.status_code
    assert status == 401

"""SOAP requests and replies in the real WSDL's shapes: what the SOAP transport sends and how it reads back.

Envelopes are built and parsed by zeep from the shipped WSDL, without a network.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree
from zeep.helpers import serialize_object

from dotdyn_pipeline.connectors.dotdigital import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.models import AddressBook, Contact
from dotdyn_pipeline.connectors.dotdigital.rest import ROUTES
from dotdyn_pipeline.connectors.dotdigital.soap import BINDING, OPERATIONS, SUPPRESS, SoapTransport, _from_soap
from dotdyn_pipeline.connectors.http import CallCounter

NS = {"a": "http://apiconnector.com", "v2": "http://apiconnector.com/v2",
      "xsi": "http://www.w3.org/2001/XMLSchema-instance",
      "arr": "http://schemas.microsoft.com/2003/10/Serialization/Arrays"}


@pytest.fixture(scope="module")
def soap() -> SoapTransport:
    return SoapTransport(DotdigitalConfig("apiuser@apiconnector.com", "pw"), "https://127.0.0.1:9/v2/Api.svc",
                         CallCounter())


def _request(soap: SoapTransport, operation: str, **params) -> etree._Element:
    return soap._zeep.create_message(soap._service, operation, **params)


def _reply(soap: SoapTransport, operation: str, result_xml: str):
    envelope = (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
                f'<{operation}Response xmlns="http://apiconnector.com/v2">{result_xml}</{operation}Response>'
                f'</s:Body></s:Envelope>')
    result = soap._zeep.wsdl.bindings[BINDING].get(operation).process_reply(etree.fromstring(envelope))
    return _from_soap(serialize_object(result, dict))


def test_both_transports_implement_the_same_operations_but_those_the_wsdl_lacks(soap) -> None:
    rest_only = {"remove_contacts_from_address_book", "deletion_progress", "send_triggered_campaign",
                 "contacts_by_emails"}
    assert set(OPERATIONS) | {SUPPRESS} | rest_only == set(ROUTES)
    assert not set(OPERATIONS) & rest_only
    names = {operation.name for operation in soap._zeep.wsdl.bindings[BINDING].all().values()}
    assert "DeleteContactFromAddressBook" in names
    assert not {name for name in names if name.startswith("DeleteContacts")}, "the WSDL has a bulk removal now"
    assert not {name for name in names if name.startswith("GetContactsByEmail")}, "the WSDL has a bulk lookup now"
    assert (soap.supports("remove_contacts_from_address_book"), soap.supports("remove_contact_from_address_book")
            ) == (False, True)
    assert not {name for name in names if "Triggered" in name or name.startswith("SendCampaignTo")}, (
        "the WSDL has a triggered or per-book send now")


def test_every_mapped_soap_operation_exists_in_the_wsdl_with_those_parameters(soap: SoapTransport) -> None:
    binding = soap._zeep.wsdl.bindings[BINDING]
    for spec in OPERATIONS.values():
        signature = binding.get(spec.name).input.body.type.signature(schema=soap._zeep.wsdl.types)
        for parameter in [*spec.args.values(), *spec.fixed]:
            assert f"{parameter}:" in signature, (spec.name, parameter)


def test_contact_data_fields_are_sent_with_their_xsi_types(soap: SoapTransport) -> None:
    body = Contact(id=5, email="jo@example.com", data_fields={"FIRSTNAME": "Jo", "AGE": 3, "VIP": True}).to_api()
    envelope = _request(soap, "UpdateContact", apiContact=soap._to_soap(body))
    contact = envelope.find(".//v2:apiContact", NS)
    assert contact.findtext("a:Id", namespaces=NS) == "5"
    assert contact.findtext("a:Email", namespaces=NS) == "jo@example.com"
    values = contact.findall("a:DataFields/a:ApiContactData/a:Value", NS)
    assert [(v.text, v.get(f"{{{NS['xsi']}}}type").split(":")[1]) for v in values] == [
        ("Jo", "string"), ("3", "int"), ("true", "boolean")]


def test_campaign_send_ids_are_arrays_of_int_and_dates_utc(soap: SoapTransport) -> None:
    body = {"campaignId": 1, "addressBookIds": [4, 5], "contactIds": [],
            "sendDate": datetime(2024, 5, 1, 12, 0, tzinfo=UTC)}
    envelope = _request(soap, "SendCampaign", apiCampaignSend=soap._to_soap(body))
    assert [e.text for e in envelope.findall(".//a:AddressBookIds/arr:int", NS)] == ["4", "5"]
    assert envelope.findtext(".//a:SendDate", namespaces=NS).startswith("2024-05-01T12:00:00")


def test_replies_are_read_in_the_rest_shape(soap: SoapTransport) -> None:
    books = _reply(soap, "GetAddressBooks", (
        '<GetAddressBooksResult xmlns:a="http://apiconnector.com">'
        "<a:ApiAddressBook><a:Id>1</a:Id><a:Name>Newsletter</a:Name><a:Visibility>Private</a:Visibility>"
        "</a:ApiAddressBook><a:ApiAddressBook><a:Id>2</a:Id><a:Name>B</a:Name><a:Visibility>Public</a:Visibility>"
        "</a:ApiAddressBook></GetAddressBooksResult>"))
    assert [AddressBook.from_api(b) for b in books] == [AddressBook(1, "Newsletter", "Private"),
                                                        AddressBook(2, "B", "Public")]
    # an empty result reads as nothing at all; the client pages treat that as an empty page
    assert not _reply(soap, "GetAddressBooks", '<GetAddressBooksResult xmlns:a="http://apiconnector.com"/>')
    contact = _reply(soap, "GetContactById", (
        '<GetContactByIdResult xmlns:a="http://apiconnector.com" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns:b="http://www.w3.org/2001/XMLSchema">'
        "<a:Id>9</a:Id><a:Email>x@example.com</a:Email><a:OptInType>Single</a:OptInType>"
        "<a:EmailType>Html</a:EmailType><a:DataFields><a:ApiContactData><a:Key>FIRSTNAME</a:Key>"
        '<a:Value i:type="b:string">Jo</a:Value></a:ApiContactData></a:DataFields>'
        "<a:Status>Subscribed</a:Status></GetContactByIdResult>"))
    assert Contact.from_api(contact) == Contact(9, "x@example.com", "Subscribed", "Single", "Html",
                                                {"FIRSTNAME": "Jo"})

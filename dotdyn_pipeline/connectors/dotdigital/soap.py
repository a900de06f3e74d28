"""SOAP v2 transport over zeep, built from Dotdigital's own WSDL with the endpoint address as configuration.

The HTTP underneath is the same httpx client as REST's (TLS trust, Basic auth, retries, call counting):
zeep hands its envelope to `_HttpxTransport.post`. Results are turned into the REST JSON shape (camelCase
keys, plain lists instead of ArrayOf wrappers) so one set of parsers serves both transports. SOAP faults
carry the ERROR_ code in their faultstring and become the same typed errors as REST's.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import httpx
import zeep
from zeep import xsd
from zeep.exceptions import Fault, TransportError
from zeep.helpers import serialize_object

from dotdyn_pipeline.connectors.dotdigital.config import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.dates import to_utc
from dotdyn_pipeline.connectors.dotdigital.errors import NotFound, ValidationError, error_for
from dotdyn_pipeline.connectors.dotdigital.limits import retry_decision
from dotdyn_pipeline.connectors.dotdigital.wire import http_client, send
from dotdyn_pipeline.connectors.http import CallCounter, Retry
from dotdyn_pipeline.vendor import DOTDIGITAL_WSDL

BINDING = "{http://apiconnector.com/v2}Secure_ApiService"
_FAULTSTRING = re.compile(r"<faultstring[^>]*>(.*?)</faultstring>", re.S)


@dataclass(frozen=True)
class SoapOperation:
    """A WSDL operation and how the client's arguments map onto its parameters."""

    name: str
    args: dict[str, str] = field(default_factory=dict)  # client argument -> SOAP parameter
    fixed: dict[str, Any] = field(default_factory=dict)


_PAGE = {"select": "select", "skip": "skip"}
_BOOK = {"address_book_id": "addressBookId"}
_SINCE = {"date": "startDate", **_PAGE}
OPERATIONS: dict[str, SoapOperation] = {
    "account_info": SoapOperation("GetCurrentAccountInfo"),
    "data_fields": SoapOperation("GetDataFields"),
    "create_data_field": SoapOperation("CreateDataField", {"body": "dataField"}),
    "address_books": SoapOperation("GetAddressBooks", _PAGE),
    "create_address_book": SoapOperation("CreateAddressBook", {"body": "apiAddressBook"}),
    "delete_address_book": SoapOperation("DeleteAddressBook", {"address_book_id": "id"}),
    "campaigns_sent_to_address_book": SoapOperation("GetCampaignsForAddressBook", {**_BOOK, **_PAGE}),
    "address_book_contacts": SoapOperation("GetContactsInAddressBook",
                                           {**_BOOK, "with_full_data": "withFullData", **_PAGE}),
    "add_contact_to_address_book": SoapOperation("AddContactToAddressBook", {**_BOOK, "body": "apiContact"}),
    "remove_contact_from_address_book": SoapOperation("DeleteContactFromAddressBook",
                                                      {**_BOOK, "contact_id": "contactId"}),
    "start_import": SoapOperation("ImportContactsToAddressBook", {**_BOOK, "data": "data"}, {"dataType": "CSV"}),
    "import_progress": SoapOperation("GetContactImportProgress", {"import_id": "importId"}),
    "import_report": SoapOperation("GetContactImportReport", {"import_id": "importId"}),
    "import_faults": SoapOperation("GetContactImportReportFaults", {"import_id": "importId"}),
    "contact_by_id": SoapOperation("GetContactById", {"contact_id": "id"}),
    "contact_by_email": SoapOperation("GetContactByEmail", {"email": "email"}),
    "update_contact": SoapOperation("UpdateContact", {"body": "apiContact"}),
    "unsubscribe": SoapOperation("UnsubscribeContact", {"body": "apiContact"}),
    "unsubscribe_from_address_book": SoapOperation("UnsubscribeContactFromAddressBook",
                                                   {**_BOOK, "body": "apiContact"}),
    "resubscribe": SoapOperation("ResubscribeContact", {"body": "apiContactResubscription"}),
    "resubscribe_to_address_book": SoapOperation("ResubscribeContactToAddressBook",
                                                 {**_BOOK, "body": "apiContactResubscription"}),
    "campaigns": SoapOperation("GetCampaigns", _PAGE),
    "campaigns_with_activity_since": SoapOperation("GetSentCampaignsWithActivitySinceDate", _SINCE),
    "campaign_summary": SoapOperation("GetCampaignSummary", {"campaign_id": "campaignId"}),
    "campaign_activities": SoapOperation("GetCampaignActivities", {"campaign_id": "campaignId", **_PAGE}),
    "activities_since": SoapOperation("GetCampaignActivitiesSinceDate", {"campaign_id": "campaignId", **_SINCE}),
    # SOAP v2 has no clicks-since-date operation: page all clicks; the client keeps those since the date.
    "clicks_since": SoapOperation("GetCampaignClicks", {"campaign_id": "campaignId", **_PAGE}),
    "roi_details_since": SoapOperation("GetCampaignRoiDetailsSinceDate", {"campaign_id": "campaignId", **_SINCE}),
    "suppressed_since": SoapOperation("GetSuppressedContacts", _SINCE),
    "unsubscribed_since": SoapOperation("GetUnsubscribedContacts", _SINCE),
    "address_book_unsubscribed_since": SoapOperation("GetUnsubscribedContactsInAddressBook", {**_BOOK, **_SINCE}),
    "contacts_modified_since": SoapOperation("GetModifiedContacts", {"with_full_data": "withFullData", **_SINCE}),
    "send_campaign": SoapOperation("SendCampaign", {"body": "apiCampaignSend"}),
    "send_status": SoapOperation("GetCampaignSendProgress", {"send_id": "sendId"}),
}
#: `suppress` has no SOAP v2 counterpart (PUT suppress-contacts is REST only); see SoapTransport.suppress.
SUPPRESS = "suppress"
#: The WSDL's ApiSplitTestMetrics (REST adds ROI). There is no triggered-campaign operation either: the client
#: sends those over REST (DotdigitalClient.send_triggered_campaign).
SPLIT_TEST_METRICS = ("Opens", "Clicks")


class _HttpxTransport(zeep.Transport):
    """zeep's HTTP layer replaced by the shared httpx client, retry policy and call counter."""

    def __init__(self, owner: SoapTransport) -> None:
        super().__init__()
        self._owner = owner

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> httpx.Response:
        owner = self._owner
        operation = getattr(owner.current, "operation", "call")  # counted as the client's operation name
        body = message.encode() if isinstance(message, str) else message
        return send(owner.http, lambda: owner.http.build_request("POST", address, content=body, headers=headers),
                    operation=operation, classify=owner.classify, config=owner.config, counter=owner.counter,
                    sleep=owner.sleep)


class SoapTransport:
    """Dotdigital SOAP v2 (Api.svc) at `address`, from the shipped WSDL."""

    name = "soap"

    def __init__(self, config: DotdigitalConfig, address: str, counter: CallCounter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config, self.address, self.counter, self.sleep = config, address, counter, sleep
        self.current = threading.local()  # the operation being called, per thread
        self.http = http_client(config)
        self._zeep = zeep.Client(str(DOTDIGITAL_WSDL), transport=_HttpxTransport(self))
        self._service = self._zeep.create_service(BINDING, address)
        self._string = xsd.String()
        self._any_types = {bool: xsd.Boolean(), int: xsd.Int(), float: xsd.Double(), datetime: xsd.DateTime()}

    def close(self) -> None:
        self.http.close()

    def supports(self, operation: str) -> bool:
        return operation == SUPPRESS or operation in OPERATIONS

    def classify(self, response: httpx.Response) -> Retry | None:
        if response.status_code < 400:
            return None
        response.read()
        fault = _FAULTSTRING.search(response.text)
        return retry_decision(response.status_code, response.headers, fault.group(1) if fault else response.text,
                              quota_wait=self.config.quota_wait)

    def call(self, operation: str, **args: Any) -> Any:
        """Perform `operation`; returns the result in the REST JSON shape."""
        if operation == SUPPRESS:
            return self.suppress(args["body"])
        spec = OPERATIONS[operation]
        if operation == "send_campaign":
            _check_split_test(args["body"])
        params = {soap: self._to_soap(args[mine]) for mine, soap in spec.args.items() if mine in args}
        self.current.operation = operation
        try:
            result = getattr(self._service, spec.name)(**params, **spec.fixed)
        except Fault as fault:
            raise error_for(fault.message, status=None, operation=operation) from None
        except TransportError as exc:
            text = exc.content.decode(errors="replace") if isinstance(exc.content, bytes) else str(exc.message)
            raise error_for(text, status=exc.status_code, operation=operation) from None
        return _from_soap(serialize_object(result, dict))

    def suppress(self, contacts: list[dict[str, Any]]) -> dict[str, Any]:
        """Suppress contacts one by one with UnsubscribeContact (a global unsubscribe is a suppression)."""
        outcome: dict[str, list[dict[str, Any]]] = {"suppressed": [], "notFound": []}
        for contact in contacts:
            try:
                self.call("unsubscribe", body=contact)
            except NotFound:
                outcome["notFound"].append(contact)
            else:
                outcome["suppressed"].append(contact)
        return outcome

    def _to_soap(self, value: Any, key: str = "") -> Any:
        """The REST-shaped argument as zeep wants it: PascalCase keys, ArrayOf wrappers, typed anyType values."""
        if isinstance(value, dict):
            return {k[:1].upper() + k[1:]: self._to_soap(v, k) for k, v in value.items()}
        if key == "dataFields":
            return {"ApiContactData": [{"Key": f["key"], "Value": self._any(f.get("value"))} for f in value]}
        if isinstance(value, list):
            return {"int": value} if key.endswith("Ids") else [self._to_soap(v) for v in value]
        if isinstance(value, datetime):
            return to_utc(value).replace(tzinfo=None)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        return value

    def _any(self, value: Any) -> Any:
        """An xs:anyType value needs its xsi:type on the wire."""
        if value is None:
            return None
        kind = self._any_types.get(type(value), self._string)
        return xsd.AnyObject(kind, self._to_soap(value) if kind is not self._string else str(value))


def _check_split_test(body: dict[str, Any]) -> None:
    """Refuse, before sending, a split test metric the WSDL cannot carry."""
    metric = (body.get("splitTestOptions") or {}).get("testMetric")
    if metric is not None and metric not in SPLIT_TEST_METRICS:
        raise ValidationError(f"SOAP v2 has no {metric} split test metric (only {', '.join(SPLIT_TEST_METRICS)}); "
                              "send it over REST", operation="send_campaign")


def _from_soap(value: Any) -> Any:
    """zeep's serialized result in the REST JSON shape."""
    if isinstance(value, dict):
        if len(value) == 1:
            (inner,) = value.values()
            if isinstance(inner, list) or inner is None:  # an ArrayOfX wrapper
                return [_from_soap(v) for v in inner or []]
        return {k[:1].lower() + k[1:]: _from_soap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_soap(v) for v in value]
    return value

"""The SOAP v2 endpoint (WCF basicHttpBinding, SOAP 1.1 document/literal) described by the real WSDL.

The WSDL is served as shipped, only its soap:address pointing here. Requests are read with lxml and their
parameters, and the answers, are (de)serialised by zeep from the WSDL's own schema, so every element and
namespace is the WSDL's. Operations run the same rules, over the same store, as REST; results are the REST
objects re-keyed to the WSDL's PascalCase types. Errors are SOAP faults whose faultstring ends with the
ERROR_* code, as v1 did (the WSDL declares no fault messages). An operation not implemented here answers a
fault naming it.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import zeep
from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from zeep.xsd import AnyObject, AnyType, ComplexType
from zeep.xsd.types import builtins

from dotdyn_pipeline.sandbox.dotdigital import audience, reporting
from dotdyn_pipeline.sandbox.dotdigital.backend import Account, Backend
from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError
from dotdyn_pipeline.sandbox.dotdigital.limits import soap_tier
from dotdyn_pipeline.sandbox.dotdigital.rest import drain
from dotdyn_pipeline.sandbox.dotdigital.sends import SOAP_METRICS
from dotdyn_pipeline.sandbox.dotdigital.store import NEVER, iso
from dotdyn_pipeline.vendor import DOTDIGITAL_WSDL

log = logging.getLogger(__name__)

ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
BINDING = "{http://apiconnector.com/v2}Secure_ApiService"
SOAP_PATH = "/v2/Api.svc"
XML = "text/xml; charset=utf-8"
ANY_TYPES = ((bool, builtins.Boolean()), (int, builtins.Long()), (float, builtins.Double()))


def _since(args: dict[str, Any]) -> str:
    moment = args.get("startDate")
    if not isinstance(moment, datetime):
        raise ApiError("ERROR_PARAMETER_INVALID", "startDate is required.")
    return iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _page(args: dict[str, Any]) -> tuple[int, int]:
    select, skip = args.get("select"), args.get("skip") or 0
    if select is None or not 1 <= select <= 1000 or skip < 0:
        raise ApiError("ERROR_PARAMETER_INVALID", "select must be between 1 and 1000 and skip at least 0.")
    return select, skip


def _import(backend: Backend, account: Account, args: dict[str, Any], path: str) -> dict[str, str]:
    if str(args.get("dataType") or "csv").lower() != "csv":
        raise ApiError("ERROR_IMPORT_UNSUPPORTED_FORMAT", "Only CSV files are accepted.")
    upload = backend.imports.upload_path(account.store)
    upload.write_bytes(args.get("data") or b"")
    return backend.imports.create(account.store, args.get("addressBookId"), "Overwrite", upload, "POST", path)


def _faults_file(backend: Backend, account: Account, import_id: str) -> bytes:
    return backend.imports.faults_csv(account.store, str(import_id)).read_bytes()


Operation = Callable[[Backend, Account, dict[str, Any], str], Any]
b, r = audience, reporting
#: The implemented operations: (backend, account, parameters by WSDL name, fault path) -> REST-shaped result.
OPERATIONS: dict[str, Operation] = {
    "GetCurrentAccountInfo": lambda be, a, p, _: be.account_info(a),
    "GetServerTime": lambda be, a, p, _: datetime.now(UTC),
    "GetDataFields": lambda be, a, p, _: b.list_data_fields(a.store),
    "CreateDataField": lambda be, a, p, _: b.create_data_field(a.store, p["dataField"]),
    "GetAddressBooks": lambda be, a, p, _: b.list_books(a.store, *_page(p)),
    "CreateAddressBook": lambda be, a, p, _: b.create_book(a.store, p["apiAddressBook"]),
    "DeleteAddressBook": lambda be, a, p, _: b.delete_book(a.store, p["id"]),
    "GetAddressBookContactCount": lambda be, a, p, _: b.get_book(a.store, p["id"])["contacts"],
    "GetContactsInAddressBook": lambda be, a, p, _: b.book_contacts(
        a.store, be.pager, p["addressBookId"], bool(p["withFullData"]), *_page(p)),
    "GetModifiedContactsInAddressBook": lambda be, a, p, _: b.book_contacts(
        a.store, be.pager, p["addressBookId"], bool(p["withFullData"]), *_page(p), _since(p)),
    "AddContactToAddressBook": lambda be, a, p, _: b.add_contact_to_book(a.store, p["addressBookId"],
                                                                         p["apiContact"]),
    "DeleteContactFromAddressBook": lambda be, a, p, _: b.remove_from_book(a.store, p["addressBookId"],
                                                                           [p["contactId"]]),
    "UnsubscribeContactFromAddressBook": lambda be, a, p, _: b.unsubscribe_from_book(
        a.store, p["addressBookId"], p["apiContact"]),
    "ResubscribeContactToAddressBook": lambda be, a, p, _: b.resubscribe(  # this WSDL answers only the status
        a.store, p["apiContactResubscription"], True, p["addressBookId"])["status"],
    "GetUnsubscribedContactsInAddressBook": lambda be, a, p, _: b.book_unsubscribed_since(
        a.store, p["addressBookId"], _since(p), *_page(p)),
    "GetContactById": lambda be, a, p, _: b.get_contact(a.store, p["id"]),
    "GetContactByEmail": lambda be, a, p, _: b.get_contact(a.store, p["email"] or ""),
    "CreateContact": lambda be, a, p, _: b.create_contact(a.store, p["apiContact"]),
    "UpdateContact": lambda be, a, p, _: b.update_contact(
        a.store, audience.as_int(audience.field(p["apiContact"], "id"), "Id"), p["apiContact"]),
    "GetContacts": lambda be, a, p, _: b.list_contacts(a.store, be.pager, bool(p["withFullData"]), *_page(p)),
    "GetModifiedContacts": lambda be, a, p, _: b.list_contacts(
        a.store, be.pager, bool(p["withFullData"]), *_page(p), "modified", _since(p)),
    "GetNewContacts": lambda be, a, p, _: b.list_contacts(
        a.store, be.pager, bool(p["withFullData"]), *_page(p), "created", _since(p)),
    "UnsubscribeContact": lambda be, a, p, _: b.unsubscribe(a.store, p["apiContact"]),
    "ResubscribeContact": lambda be, a, p, _: b.resubscribe(a.store, p["apiContactResubscription"], True)["status"],
    "GetSuppressedContacts": lambda be, a, p, _: b.suppressions_since(a.store, _since(p), *_page(p)),
    "GetUnsubscribedContacts": lambda be, a, p, _: b.suppressions_since(
        a.store, _since(p), *_page(p), reasons=("Unsubscribed",)),
    "ImportContacts": lambda be, a, p, path: _import(be, a, p, path),
    "ImportContactsToAddressBook": lambda be, a, p, path: _import(be, a, p, path),
    "GetContactImportProgress": lambda be, a, p, _: be.imports.status(a.store, str(p["importId"])),
    "GetContactImportReport": lambda be, a, p, _: be.imports.report(a.store, str(p["importId"])),
    "GetContactImportReportFaults": lambda be, a, p, _: _faults_file(be, a, p["importId"]),
    "GetCampaigns": lambda be, a, p, _: r.list_campaigns(a.store, *_page(p)),
    "GetCampaignById": lambda be, a, p, _: r.get_campaign(a.store, p["id"]),
    "GetCampaignsForAddressBook": lambda be, a, p, _: r.campaigns_for_book(a.store, p["addressBookId"], *_page(p)),
    "GetSentCampaignsWithActivitySinceDate": lambda be, a, p, _: r.list_campaigns(a.store, *_page(p), _since(p)),
    "GetCampaignSummary": lambda be, a, p, _: r.summary(a.store, p["campaignId"]),
    "GetCampaignActivities": lambda be, a, p, _: r.activities(a.store, be.pager, p["campaignId"], None,
                                                              *_page(p)),
    "GetCampaignActivitiesSinceDate": lambda be, a, p, _: r.activities(
        a.store, be.pager, p["campaignId"], _since(p), *_page(p)),
    "GetCampaignClicks": lambda be, a, p, _: r.clicks(a.store, be.pager, p["campaignId"], NEVER, *_page(p)),
    "GetCampaignRoiDetailsSinceDate": lambda be, a, p, _: r.roi_details(
        a.store, be.pager, p["campaignId"], _since(p), *_page(p)),
    "GetCampaignHardBouncingContacts": lambda be, a, p, _: r.hard_bouncing(
        a.store, p["campaignId"], bool(p["withFullData"]), *_page(p)),
    "SendCampaign": lambda be, a, p, _: be.sends.send(a.store, p["apiCampaignSend"], SOAP_METRICS),
    "GetCampaignSendProgress": lambda be, a, p, _: be.sends.status(a.store, str(p["sendId"])),
}


def to_soap(value: Any, xsd_type: Any) -> Any:
    """A REST-shaped value re-keyed and typed for a WSDL type (PascalCase elements, array wrappers, anyType)."""
    if value is None:
        return None
    if type(xsd_type) is AnyType:  # xs:anyType itself, not one of the types derived from it
        kind = next((t for python, t in ANY_TYPES if isinstance(value, python)), builtins.String())
        return AnyObject(kind, value if not isinstance(kind, builtins.String) else str(value))
    if isinstance(xsd_type, builtins.DateTime) and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(xsd_type, builtins.Base64Binary) and isinstance(value, str):
        return base64.b64decode(value)
    if not isinstance(xsd_type, ComplexType):
        return value
    elements = xsd_type.elements
    if len(elements) == 1 and elements[0][1].max_occurs == "unbounded":  # ArrayOfX
        name, element = elements[0]
        return {name: [to_soap(item, element.type) for item in value]}
    return {name: to_soap(audience.field(value, name), element.type) for name, element in elements}


def from_soap(value: Any) -> Any:
    """zeep's parsed parameters as plain dicts and lists (array wrappers are unwrapped where read)."""
    return zeep.helpers.serialize_object(value, dict)


def fault_response(error: ApiError, status: int = 500, headers: dict[str, str] | None = None) -> Response:
    """A SOAP 1.1 fault whose faultstring carries the Dotdigital error code."""
    envelope = etree.Element(f"{{{ENVELOPE}}}Envelope", nsmap={"s": ENVELOPE})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{ENVELOPE}}}Body"), f"{{{ENVELOPE}}}Fault")
    etree.SubElement(fault, "faultcode").text = "s:Server" if error.status >= 500 else "s:Client"
    text = etree.SubElement(fault, "faultstring")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en-GB")
    text.text = error.message
    return Response(etree.tostring(envelope, xml_declaration=False), status_code=status, headers=headers,
                    media_type=XML)


class SoapEndpoint:
    """Serves the WSDL and answers the operations in OPERATIONS."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.binding = zeep.Client(str(DOTDIGITAL_WSDL)).wsdl.bindings[BINDING]
        self.address = f"{backend.url}{SOAP_PATH}"
        text = DOTDIGITAL_WSDL.read_text(encoding="utf-8")
        self.wsdl = text.replace('location="https://apiconnector.com/v2/Api.svc"', f'location="{self.address}"')

    def routes(self) -> list[Route]:
        return [Route(path, self.serve, methods=["GET", "POST"]) for path in (SOAP_PATH, SOAP_PATH.lower())]

    async def serve(self, request: Request) -> Response:
        if request.method == "GET":
            return Response(self.wsdl, media_type=XML)
        account = self.backend.authenticate(request)
        if account is None:  # transport security: IIS refuses the request before WCF sees it
            await drain(request)
            return Response("401 - Unauthorized: Access is denied due to invalid credentials.", status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="apiconnector.com"'}, media_type="text/html")
        try:
            body = etree.fromstring(await request.body()).find(f"{{{ENVELOPE}}}Body")
            name = etree.QName(body[0]).localname
        except (etree.XMLSyntaxError, TypeError, IndexError, AttributeError):
            return fault_response(ApiError("ERROR_MALFORMED_REQUEST", "The request is not a SOAP 1.1 envelope."))
        verdict = self.backend.admit(account, soap_tier(name))
        if not verdict.allowed:
            return fault_response(ApiError("ERROR_APIUSAGE_EXCEEDED"), verdict.status if verdict.status == 429
                                  else 500, verdict.headers)
        path = f"{request.url.path}/{name}"
        rule = self.backend.faults.take("soap_fault", request.method, path)
        if rule is not None:
            code = str(rule.params.get("code", "ERROR_UNKNOWN"))
            return fault_response(ApiError(code, rule.params.get("message")), 500, verdict.headers)
        if name not in OPERATIONS:
            return fault_response(ApiError("ERROR_FEATURENOTACTIVE", f"The operation {name} is not available in "
                                                                     "this sandbox."), 500, verdict.headers)
        try:
            result = await run_in_threadpool(self._run, account, name, body.getparent(), path)
        except ApiError as error:
            return fault_response(error, 500, verdict.headers)
        except Exception:  # a sandbox bug still answers as the service would, and is logged
            log.exception("SOAP %s failed", name)
            return fault_response(ApiError("ERROR_UNKNOWN"), 500, verdict.headers)
        return Response(result, headers=verdict.headers, media_type=XML)

    def _run(self, account: Account, name: str, envelope: etree._Element, path: str) -> bytes:
        operation = self.binding.get(name)
        parsed = operation.input.deserialize(envelope)
        names = [element_name for element_name, _ in operation.input.body.type.elements]
        params = from_soap(parsed) if len(names) != 1 else {names[0]: from_soap(parsed)}
        params = {key: params.get(key) for key in names}
        result = OPERATIONS[name](self.backend, account, params, path)
        outputs = operation.output.body.type.elements
        if not outputs:
            return etree.tostring(operation.output.serialize().content)
        result_name, result_element = outputs[0]
        value = to_soap(result, result_element.type)
        return etree.tostring(operation.output.serialize(**{result_name: value}).content)

"""REST v2 transport over httpx: each operation is a route; JSON in, JSON out (camelCase, as documented)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx

from dotdyn_pipeline.connectors.dotdigital.config import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.dates import format_date
from dotdyn_pipeline.connectors.dotdigital.errors import error_for
from dotdyn_pipeline.connectors.dotdigital.limits import retry_decision
from dotdyn_pipeline.connectors.dotdigital.wire import http_client, send
from dotdyn_pipeline.connectors.http import CallCounter, Retry

#: operation -> (method, path). Path fields come from the call's arguments; select/skip/withFullData go
#: in the query, `body` is sent as JSON and `data` (CSV bytes) as the import file.
ROUTES: dict[str, tuple[str, str]] = {
    "account_info": ("GET", "/v2/account-info"),
    "data_fields": ("GET", "/v2/data-fields"),
    "create_data_field": ("POST", "/v2/data-fields"),
    "address_books": ("GET", "/v2/address-books"),
    "create_address_book": ("POST", "/v2/address-books"),
    "delete_address_book": ("DELETE", "/v2/address-books/{address_book_id}"),
    "campaigns_sent_to_address_book": ("GET", "/v2/address-books/{address_book_id}/campaigns"),
    "address_book_contacts": ("GET", "/v2/address-books/{address_book_id}/contacts"),
    "add_contact_to_address_book": ("POST", "/v2/address-books/{address_book_id}/contacts"),
    "remove_contact_from_address_book": ("DELETE", "/v2/address-books/{address_book_id}/contacts/{contact_id}"),
    "remove_contacts_from_address_book": ("POST", "/v2/address-books/{address_book_id}/contacts/delete"),
    "deletion_progress": ("GET", "/v2/contacts/deletion/{deletion_id}"),
    "start_import": ("POST", "/v2/address-books/{address_book_id}/contacts/import"),
    "import_progress": ("GET", "/v2/contacts/import/{import_id}"),
    "import_report": ("GET", "/v2/contacts/import/{import_id}/report"),
    "import_faults": ("GET", "/v2/contacts/import/{import_id}/report-faults"),
    "contact_by_id": ("GET", "/v2/contacts/{contact_id}"),
    "contact_by_email": ("GET", "/v2/contacts/{email}"),
    "contacts_by_emails": ("GET", "/v2/contacts/retrieve-collection"),
    "update_contact": ("PUT", "/v2/contacts/{contact_id}"),
    "unsubscribe": ("POST", "/v2/contacts/unsubscribe"),
    "unsubscribe_from_address_book": ("POST", "/v2/address-books/{address_book_id}/contacts/unsubscribe"),
    "suppress": ("PUT", "/v2/contacts/suppress-contacts"),
    "resubscribe": ("POST", "/v2/contacts/resubscribe"),
    "resubscribe_to_address_book": ("POST", "/v2/address-books/{address_book_id}/contacts/resubscribe"),
    "campaigns": ("GET", "/v2/campaigns"),
    "campaigns_with_activity_since": ("GET", "/v2/campaigns/with-activity-since/{date}"),
    "campaign_summary": ("GET", "/v2/campaigns/{campaign_id}/summary"),
    "campaign_activities": ("GET", "/v2/campaigns/{campaign_id}/activities"),
    "activities_since": ("GET", "/v2/campaigns/{campaign_id}/activities/since-date/{date}"),
    "clicks_since": ("GET", "/v2/campaigns/{campaign_id}/clicks/since-date/{date}"),
    "roi_details_since": ("GET", "/v2/campaigns/{campaign_id}/roi-details/since-date/{date}"),
    "suppressed_since": ("GET", "/v2/contacts/suppressed-since/{date}"),
    "unsubscribed_since": ("GET", "/v2/contacts/unsubscribed-since/{date}"),
    "address_book_unsubscribed_since": (
        "GET", "/v2/address-books/{address_book_id}/contacts/unsubscribed-since/{date}"),
    "contacts_modified_since": ("GET", "/v2/contacts/modified-since/{date}"),
    "send_campaign": ("POST", "/v2/campaigns/send"),
    "send_status": ("GET", "/v2/campaigns/send/{send_id}"),
    "send_triggered_campaign": ("POST", "/v2/email/triggered-campaign"),
}
_QUERY = {"select": "select", "skip": "skip", "with_full_data": "withFullData"}
_B64_SLICE = 3 * 1024 * 1024  # a multiple of 3, so slices encode to base64 that concatenates cleanly


def message_of(response: httpx.Response) -> str:
    """The error text of a refused call: the JSON `message` (v2), else the body as text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()
    if isinstance(body, dict):
        return str(body.get("message") or body.get("Message") or body.get("detail") or body.get("title") or "")
    return str(body)


def file_media(data: bytes | bytearray | memoryview, file_name: str = "contacts.csv",
               ) -> tuple[dict[str, str], Callable[[], Iterator[bytes]]]:
    """The import body, ApiFileMedia {"fileName", "data": base64}, streamed so no encoded copy is held."""
    head = json.dumps({"fileName": file_name, "data": ""})[:-2].encode()  # ends with '"data": "'
    tail = b'"}'
    view = memoryview(data)

    def stream() -> Iterator[bytes]:
        yield head
        for start in range(0, len(view), _B64_SLICE):
            yield base64.b64encode(view[start:start + _B64_SLICE])
        yield tail

    length = len(head) + 4 * ((len(view) + 2) // 3) + len(tail)
    return {"Content-Type": "application/json", "Content-Length": str(length)}, stream


class RestTransport:
    """Dotdigital REST v2 at `base_url` (the account's regional endpoint)."""

    name = "rest"

    def __init__(self, config: DotdigitalConfig, base_url: str, counter: CallCounter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config, self.base_url, self.counter, self._sleep = config, base_url.rstrip("/"), counter, sleep
        self._http = http_client(config, self.base_url)

    def close(self) -> None:
        self._http.close()

    def supports(self, operation: str) -> bool:
        return operation in ROUTES

    def _classify(self, response: httpx.Response) -> Retry | None:
        if response.status_code < 400:
            return None
        response.read()
        return retry_decision(response.status_code, response.headers, message_of(response),
                              quota_wait=self.config.quota_wait)

    def call(self, operation: str, **args: Any) -> Any:
        """Perform `operation`; returns the decoded JSON, raw bytes (faults CSV) or None (no content)."""
        method, template = ROUTES[operation]
        path_args = {k: quote(format_date(v) if isinstance(v, date) else str(v), safe="@:")
                     for k, v in args.items() if "{" + k + "}" in template}
        url = template.format(**path_args)
        params = {_QUERY[k]: (str(v).lower() if isinstance(v, bool) else v)
                  for k, v in args.items() if k in _QUERY}
        headers: dict[str, str] = {}
        content: Callable[[], Any] | None = None
        if "data" in args:
            headers, content = file_media(args["data"])
        elif "body" in args:
            headers = {"Content-Type": "application/json"}
            encoded = json.dumps(args["body"], default=_json_default).encode()
            content = lambda: encoded  # noqa: E731

        def build() -> httpx.Request:
            return self._http.build_request(method, url, params=params, headers=headers,
                                            content=content() if content else None)

        response = send(self._http, build, operation=operation, classify=self._classify, config=self.config,
                        counter=self.counter, sleep=self._sleep)
        if response.status_code >= 400:
            raise error_for(message_of(response), status=response.status_code, operation=operation)
        if not response.content:
            return None
        if operation == "import_faults":
            return response.content
        try:
            return response.json()
        except ValueError:
            return response.content


def _json_default(value: object) -> str:
    if isinstance(value, date):
        return format_date(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")

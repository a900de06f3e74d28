"""The one Dotdigital interface the pipeline uses, written once over either transport.

A transport knows how to perform a named operation on its wire (`call(operation, **args)`, results in the
REST JSON shape); `DotdigitalClient` turns that into typed operations, paging and bulk import. `connect`
discovers the account's region once and returns a client on the configured transport.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from dotdyn_pipeline.connectors.dotdigital.config import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.dates import to_utc
from dotdyn_pipeline.connectors.dotdigital.errors import AlreadyExists, NotFound, ValidationError
from dotdyn_pipeline.connectors.dotdigital.imports import Importer, ImportResult, Throughput, csv_chunks
from dotdyn_pipeline.connectors.dotdigital.models import (
    ADDRESS_BOOK_NAME_MAX,
    DATA_FIELD_TYPES,
    AccountInfo,
    Activity,
    AddressBook,
    Campaign,
    CampaignSend,
    CampaignSummary,
    Click,
    Contact,
    ContactImport,
    DataField,
    ImportReport,
    ResubscribeResult,
    RoiDetail,
    RowFault,
    SplitTest,
    Suppression,
    SuppressResult,
    check_data_field_name,
    parse_faults_csv,
)
from dotdyn_pipeline.connectors.dotdigital.paging import MAX_SELECT, page_size, pages
from dotdyn_pipeline.connectors.dotdigital.rest import RestTransport
from dotdyn_pipeline.connectors.dotdigital.soap import SoapTransport
from dotdyn_pipeline.connectors.http import CallCounter


class Transport(Protocol):
    """A wire to one account: performs named operations, counts every call in `counter`."""

    name: str
    counter: CallCounter

    def call(self, operation: str, **args: Any) -> Any: ...
    def supports(self, operation: str) -> bool: ...
    def close(self) -> None: ...


Since = datetime | date


class DotdigitalClient:
    """Every Dotdigital operation the pipeline uses, on one account, whichever transport carries it."""

    def __init__(self, transport: Transport, config: DotdigitalConfig, account: AccountInfo | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.transport, self.config, self.account = transport, config, account
        self._sleep = sleep
        self.import_throughput = Throughput()  # learned from this account's imports; the pipeline keeps it
        self._select: dict[str, int] = {}  # page sizes learned to be the most an operation accepts
        self._rest: Transport | None = None  # for what the SOAP transport lacks, made when first needed

    @property
    def counter(self) -> CallCounter:
        """Calls made through this client, by operation (and retries, as `retry:<reason>`)."""
        return self.transport.counter

    def close(self) -> None:
        self.transport.close()
        if self._rest is not None:
            self._rest.close()

    def __enter__(self) -> DotdigitalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pages(self, operation: str, parse: Callable[[dict[str, Any]], Any], start: int = 0,
               **args: Any) -> Iterator[Any]:
        """Every row of a select/skip list, from row `start` on, a page at a time (fetched as iterated)."""
        select = self._select.get(operation) or page_size(operation, self.config.page_size)
        fetch = lambda sel, skip: self.transport.call(operation, select=sel, skip=skip, **args) or []  # noqa: E731
        if start:
            fetch = _skipping(fetch, start)
        if select > MAX_SELECT:
            # The swagger's default says more than 1000 is allowed here; the portal says 1000 at most. Try
            # the larger page once per client and settle for 1000 if it is refused.
            try:
                first = fetch(select, 0)
            except ValidationError:
                select = self._select[operation] = MAX_SELECT
            else:
                yield from (parse(row) for row in first)
                if len(first) < select:
                    return
                fetch = _skipping(fetch, len(first))
        for page in pages(fetch, select):
            yield from (parse(row) for row in page)

    # account and data fields

    def account_info(self) -> AccountInfo:
        return AccountInfo.from_api(self.transport.call("account_info"))

    def data_fields(self) -> list[DataField]:
        return [DataField.from_api(f) for f in self.transport.call("data_fields") or []]

    def create_data_field(self, name: str, type: str = "String", visibility: str = "Private",
                          default: Any = None) -> DataField:
        """Create a contact data field; names are 1-20 of [A-Za-z0-9_-], types String|Numeric|Date|Boolean."""
        if type not in DATA_FIELD_TYPES:
            raise ValueError(f"data field type must be one of {DATA_FIELD_TYPES}, not {type!r}")
        if visibility not in ("Private", "Public"):
            raise ValueError("visibility must be Private or Public")
        body = {"name": check_data_field_name(name), "type": type, "visibility": visibility,
                "defaultValue": default}
        created = self.transport.call("create_data_field", body=body)
        return DataField.from_api(created) if created else DataField(body["name"], type, visibility, default)

    def ensure_data_fields(self, wanted: Mapping[str, str]) -> list[DataField]:
        """Create the data fields (name -> type) that do not exist yet; return all of `wanted`."""
        existing = {f.name.upper(): f for f in self.data_fields()}
        for name, kind in wanted.items():
            if check_data_field_name(name) not in existing:
                try:
                    existing[name.upper()] = self.create_data_field(name, kind)
                except AlreadyExists:  # created meanwhile by someone else: fine
                    existing[name.upper()] = DataField(name.upper(), kind)
        return [existing[name.upper()] for name in wanted]

    # address books

    def address_books(self) -> Iterator[AddressBook]:
        return self._pages("address_books", AddressBook.from_api)

    def delete_address_book(self, address_book_id: int) -> None:
        """Delete an address book (its contacts stay in the account)."""
        self.transport.call("delete_address_book", address_book_id=address_book_id)

    def create_address_book(self, name: str, visibility: str = "Private") -> AddressBook:
        if not name or len(name) > ADDRESS_BOOK_NAME_MAX:
            raise ValueError(f"address book names have 1-{ADDRESS_BOOK_NAME_MAX} characters")
        return AddressBook.from_api(self.transport.call("create_address_book",
                                                        body={"name": name, "visibility": visibility}))

    def find_address_book(self, name: str) -> AddressBook | None:
        """The address book called `name` (names are unique per account, compared case-insensitively)."""
        wanted = name.casefold()
        return next((book for book in self.address_books() if book.name.casefold() == wanted), None)

    def address_book_contacts(self, address_book_id: int, with_full_data: bool = False) -> Iterator[Contact]:
        return self._pages("address_book_contacts", Contact.from_api, address_book_id=address_book_id,
                           with_full_data=with_full_data)

    def add_contact_to_address_book(self, address_book_id: int, contact: Contact) -> Contact:
        """Create or update the contact (by email) and add it to the address book."""
        return Contact.from_api(self.transport.call("add_contact_to_address_book",
                                                    address_book_id=address_book_id, body=contact.to_api()))

    def remove_contact_from_address_book(self, address_book_id: int, contact_id: int) -> None:
        self.transport.call("remove_contact_from_address_book", address_book_id=address_book_id,
                            contact_id=contact_id)

    def contact_ids(self, emails: Sequence[str]) -> dict[str, int]:
        """The ids of the contacts holding these addresses (lower-cased address -> id); addresses no contact holds
        are left out. REST asks for `lookup_chunk` at once (GET /v2/contacts/retrieve-collection); SOAP, whose
        WSDL has no such operation, a call each."""
        if not self.transport.supports("contacts_by_emails"):
            found = {}
            for email in emails:
                try:
                    found[email.strip().lower()] = self.contact(email).id
                except NotFound:
                    pass
            return found
        found = {}
        for start in range(0, len(emails), self.config.lookup_chunk):
            body = {"contacts": [{"email": email} for email in emails[start:start + self.config.lookup_chunk]],
                    "withFullData": False}
            answer = self.transport.call("contacts_by_emails", body=body) or {}
            found.update({row["email"].strip().lower(): int(row["id"]) for row in answer.get("contacts") or []})
        return found

    def lookup_calls(self, count: int) -> int:
        """The calls `contact_ids` makes for `count` addresses."""
        if not self.transport.supports("contacts_by_emails"):
            return count
        return -(-count // self.config.lookup_chunk)

    def remove_contacts_from_address_book(self, address_book_id: int, contact_ids: Sequence[int]) -> None:
        """Take contacts out of an address book (they stay contacts of the account; one not in it is no error).

        REST removes up to `deletion_chunk` at once in a background deletion, followed here to its end; SOAP has
        no such operation, and a deletion that fails or is not offered falls back to one call per contact."""
        if not self.transport.supports("remove_contacts_from_address_book"):
            self._remove_one_by_one(address_book_id, contact_ids)
            return
        for start in range(0, len(contact_ids), self.config.deletion_chunk):
            chunk = list(contact_ids[start:start + self.config.deletion_chunk])
            deletion = self.transport.call("remove_contacts_from_address_book", address_book_id=address_book_id,
                                           body=chunk)
            if self._deletion_outcome(deletion) != "Completed":
                self._remove_one_by_one(address_book_id, chunk)

    def _deletion_outcome(self, deletion: Mapping[str, Any]) -> str:
        """Follow a bulk deletion to Completed, Failed or NotAvailableInThisVersion (the documented statuses;
        one example spells the keys with capitals)."""
        deletion_id = deletion.get("id") or deletion.get("Id")
        status, wait, waited = deletion.get("status") or deletion.get("Status"), 0.0, 0.0
        while status == "Started":
            if waited > self.config.import_timeout:
                raise TimeoutError(f"the removal of contacts {deletion_id} did not finish")
            self._sleep(wait)
            waited, wait = waited + wait, min(self.config.poll_max, max(0.25, 2 * wait))
            progress = self.transport.call("deletion_progress", deletion_id=deletion_id)
            status = progress.get("status") or progress.get("Status")
        return str(status)

    def _remove_one_by_one(self, address_book_id: int, contact_ids: Iterable[int]) -> None:
        for contact_id in contact_ids:
            try:
                self.remove_contact_from_address_book(address_book_id, contact_id)
            except NotFound:
                pass  # already out of the book

    # bulk import

    def start_import(self, address_book_id: int, data: bytes | bytearray) -> ContactImport:
        """Upload one CSV file (at most the 50 MB limit) into an address book; the import runs asynchronously.

        When the connection drops, the file is sent again even though Dotdigital may have started an import
        from it: no call lists imports, so one whose id was never heard cannot be found, and only an import
        whose id the client holds gives the report and faults its caller needs. The same rows into the same
        book, matched by address, change nothing more; Dotdigital keeps one import more in its history."""
        return ContactImport.from_api(self.transport.call("start_import", address_book_id=address_book_id,
                                                          data=data))

    def import_progress(self, import_id: str) -> ContactImport:
        return ContactImport.from_api(self.transport.call("import_progress", import_id=import_id))

    def import_report(self, import_id: str) -> ImportReport:
        return ImportReport.from_api(self.transport.call("import_report", import_id=import_id))

    def import_faults(self, import_id: str) -> list[RowFault]:
        return parse_faults_csv(self.transport.call("import_faults", import_id=import_id) or b"")

    def import_contacts(self, address_book_id: int, rows: Iterable[Mapping[str, Any]],
                        columns: Sequence[str]) -> ImportResult:
        """Import `rows` (mappings keyed by `columns`: Email, then data field names) in chunks under the limit.

        Raises ImportFailed (with the report attached, and the outcomes of the chunks that finished) when an
        import ends in a status other than Finished.
        """
        chunks = csv_chunks(rows, columns, self.config.import_chunk_bytes)
        return Importer(self, self.config, self.import_throughput, sleep=self._sleep).run(address_book_id, chunks)

    # contacts and consent

    def contact(self, id_or_email: int | str) -> Contact:
        """A contact by id or email (by id, suppressed contacts are not returned)."""
        if isinstance(id_or_email, int):
            return Contact.from_api(self.transport.call("contact_by_id", contact_id=id_or_email))
        return Contact.from_api(self.transport.call("contact_by_email", email=id_or_email))

    def update_contact(self, contact: Contact) -> Contact:
        """Update the contact with `contact.id` in place, email included: it stays the same contact."""
        if not contact.id:
            raise ValueError("update_contact needs the contact's id")
        return Contact.from_api(self.transport.call("update_contact", contact_id=contact.id,
                                                    body=contact.to_api()))

    def unsubscribe(self, email: str, address_book_id: int | None = None) -> Suppression | None:
        """Unsubscribe from the account (a suppression) or from one address book only.

        REST answers with the suppression; SOAP answers nothing (None).
        """
        if address_book_id is None:
            result = self.transport.call("unsubscribe", body={"email": email})
        else:
            result = self.transport.call("unsubscribe_from_address_book", address_book_id=address_book_id,
                                         body={"email": email})
        return Suppression.from_api(result) if result else None

    def suppress(self, emails: Iterable[str] = (), ids: Iterable[int] = ()) -> SuppressResult:
        """Suppress contacts account-wide, by email or id."""
        body = [{"email": e} for e in emails] + [{"id": i} for i in ids]
        return SuppressResult.from_api(self.transport.call("suppress", body=body))

    def resubscribe(self, email: str, address_book_id: int | None = None, preferred_locale: str | None = None,
                    return_url: str | None = None) -> ResubscribeResult:
        """Resubscribe an unsubscribed contact (the contact may be challenged to confirm first)."""
        body: dict[str, Any] = {"unsubscribedContact": {"email": email}}
        if preferred_locale:
            body["preferredLocale"] = preferred_locale
        if return_url:
            body["returnUrlToUseIfChallenged"] = return_url
        if address_book_id is None:
            return ResubscribeResult.from_api(self.transport.call("resubscribe", body=body))
        return ResubscribeResult.from_api(self.transport.call("resubscribe_to_address_book",
                                                              address_book_id=address_book_id, body=body))

    def suppressed_since(self, since: Since, start: int = 0) -> Iterator[Suppression]:
        """Suppressions (every reason) since `since`, oldest first, from row `start` on."""
        return self._pages("suppressed_since", Suppression.from_api, start, date=since)

    def unsubscribed_since(self, since: Since, address_book_id: int | None = None,
                           start: int = 0) -> Iterator[Suppression]:
        """Unsubscribes since `since`, account-wide or from one address book, oldest first, from row `start` on."""
        if address_book_id is None:
            return self._pages("unsubscribed_since", Suppression.from_api, start, date=since)
        return self._pages("address_book_unsubscribed_since", Suppression.from_api, start, date=since,
                           address_book_id=address_book_id)

    def contacts_modified_since(self, since: Since, start: int = 0, with_full_data: bool = False
                                ) -> Iterator[Contact]:
        """Contacts changed since `since` (a resubscribe changes the contact), by id, from row `start` on."""
        return self._pages("contacts_modified_since", Contact.from_api, start, date=since,
                           with_full_data=with_full_data)

    # campaigns and engagement

    def campaigns(self) -> Iterator[Campaign]:
        return self._pages("campaigns", Campaign.from_api)

    def campaigns_with_activity_since(self, since: Since) -> Iterator[Campaign]:
        return self._pages("campaigns_with_activity_since", Campaign.from_api, date=since)

    def campaign_summary(self, campaign_id: int) -> CampaignSummary:
        return CampaignSummary.from_api(campaign_id, self.transport.call("campaign_summary",
                                                                         campaign_id=campaign_id))

    def activities_since(self, campaign_id: int, since: Since) -> Iterator[Activity]:
        return self._pages("activities_since", lambda row: Activity.from_api(campaign_id, row),
                           campaign_id=campaign_id, date=since)

    def clicks_since(self, campaign_id: int, since: Since) -> Iterator[Click]:
        # Filtered here too: SOAP v2 can only list all clicks of a campaign.
        floor = to_utc(since if isinstance(since, datetime) else datetime(since.year, since.month, since.day))
        clicks = self._pages("clicks_since", lambda row: Click.from_api(campaign_id, row),
                             campaign_id=campaign_id, date=since)
        return (c for c in clicks if c.date_clicked is None or c.date_clicked >= floor)

    def roi_details_since(self, campaign_id: int, since: Since) -> Iterator[RoiDetail]:
        return self._pages("roi_details_since", lambda row: RoiDetail.from_api(campaign_id, row),
                           campaign_id=campaign_id, date=since)

    def campaign_activities(self, campaign_id: int) -> Iterator[Activity]:
        """Everyone who was sent the campaign, with their activity: who already had it."""
        return self._pages("campaign_activities", lambda row: Activity.from_api(campaign_id, row),
                           campaign_id=campaign_id)

    def campaigns_sent_to_address_book(self, address_book_id: int) -> list[Campaign]:
        """The campaigns sent to an address book (a send accepted for it counts from then on)."""
        return list(self._pages("campaigns_sent_to_address_book", Campaign.from_api,
                                address_book_id=address_book_id))

    # sending: never sent twice by the client (see wire.SENDS); SendOutcomeUnknown when the answer is lost

    def send_campaign(self, campaign_id: int, address_book_ids: Sequence[int] = (),
                      contact_ids: Sequence[int] = (), send_date: datetime | None = None,
                      split_test: SplitTest | None = None) -> CampaignSend:
        """Send a campaign, or schedule it for `send_date`; no address books and no contacts means All Contacts.

        Raises SendOutcomeUnknown when the request went out and no answer said what became of it (a server error,
        a dropped connection): it is not sent again. SOAP v2 cannot carry an ROI split test (ValidationError)."""
        body: dict[str, Any] = {"campaignId": campaign_id, "addressBookIds": list(address_book_ids),
                                "contactIds": list(contact_ids)}
        if send_date is not None:
            body["sendDate"] = send_date
        if split_test is not None:
            body["splitTestOptions"] = split_test.to_api()
        return CampaignSend.from_api(self.transport.call("send_campaign", body=body))

    def send_status(self, send_id: str) -> CampaignSend:
        return CampaignSend.from_api(self.transport.call("send_status", send_id=send_id))

    def send_triggered_campaign(self, campaign_id: int, to_addresses: Sequence[str],
                                personalisation: Mapping[str, str] | None = None) -> None:
        """Send a triggered campaign to `to_addresses` with personalisation values (name -> value).

        Refusals carry Dotdigital's code: NotFound (ERROR_CAMPAIGN_NOT_FOUND), NotTriggeredCampaign,
        InvalidEmail, ContactSuppressed. Never sent twice; SendOutcomeUnknown as for send_campaign. SOAP v2 has
        no such operation, so a SOAP account sends it over REST, with the same API user at the same endpoint."""
        body = {"toAddresses": list(to_addresses), "campaignId": campaign_id,
                "personalizationValues": [{"name": name, "value": value}
                                          for name, value in (personalisation or {}).items()]}
        self._transport_for("send_triggered_campaign").call("send_triggered_campaign", body=body)

    def _transport_for(self, operation: str) -> Transport:
        """This client's transport, or a REST one beside it for an operation the transport lacks."""
        if self.transport.supports(operation):
            return self.transport
        if self._rest is None:
            endpoint = self.account.api_endpoint if self.account and self.config.discover_region else None
            self._rest = RestTransport(self.config, endpoint or self.config.base_url, self.transport.counter,
                                       self._sleep)
        return self._rest


def _skipping(fetch: Callable[[int, int], list[Any]], offset: int) -> Callable[[int, int], list[Any]]:
    return lambda select, skip: fetch(select, skip + offset)


def _transport(config: DotdigitalConfig, api_root: str, counter: CallCounter,
               sleep: Callable[[float], None]) -> Transport:
    if config.transport == "soap":
        return SoapTransport(config, config.soap_address or f"{api_root}/v2/Api.svc", counter, sleep)
    return RestTransport(config, api_root, counter, sleep)


def connect(config: DotdigitalConfig, sleep: Callable[[float], None] = time.sleep) -> DotdigitalClient:
    """A client of the account on its configured transport, pointed at its region (account-info, once)."""
    counter = CallCounter()
    root = config.base_url.rstrip("/")
    transport = _transport(config, root, counter, sleep)
    try:
        account = AccountInfo.from_api(transport.call("account_info"))
    except BaseException:
        transport.close()
        raise
    endpoint = account.api_endpoint
    if config.discover_region and endpoint and endpoint != root:
        transport.close()
        transport = _transport(config, endpoint, counter, sleep)
    return DotdigitalClient(transport, config, account, sleep)

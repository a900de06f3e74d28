"""The Dataverse Web API client: paged reads, change tracking, bulk upserts and marketing list membership.

Reads are sequential (each page names the next) and yield one page at a time, so memory stays bounded
whatever the table size. Bulk writes go out in chunks of at most 1000 records, up to `max_concurrency` at
once, and report an outcome for every record. Every request goes through `connectors.http`, which retries
429/503 after Retry-After, other 5xx and dropped connections with backoff, and counts each call by kind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from dotdyn_pipeline.connectors.dataverse import odata
from dotdyn_pipeline.connectors.dataverse.auth import ClientCredentials, MsalTokenSource, TokenSource
from dotdyn_pipeline.connectors.dataverse.batch import BatchRequest, BatchResponse, decode_batch, encode_batch
from dotdyn_pipeline.connectors.dataverse.errors import (
    DataverseAuthError,
    DataverseError,
    DataverseNotFound,
    DataverseThrottled,
    DataverseUnavailable,
    error_from_response,
    parse_error_body,
    scrub,
)
from dotdyn_pipeline.connectors.dataverse.fetchxml import (
    MAX_PAGE_ROWS,
    KeyQuery,
    key_query,
    next_cookie,
    query_entity,
)
from dotdyn_pipeline.connectors.dataverse.versions import check_version, has_bulk_messages, has_remove_member_list
from dotdyn_pipeline.connectors.http import (
    CallCounter,
    RetriesExhausted,
    Retry,
    RetryPolicy,
    decode_json,
    retry_after_seconds,
    send_with_retries,
    tls_verify,
)

Row = dict[str, Any]
WATERMARK = "watermark:"  # prefix of a modifiedon cursor; a delta cursor is the delta link itself


@dataclass(frozen=True)
class DataverseConfig:
    """Where the organisation is, who the app is, and how hard to push."""

    org_url: str  # e.g. https://contoso.crm4.dynamics.com
    authority: str  # e.g. https://login.microsoftonline.com/<tenant id>
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)  # PEM, with `thumbprint`, instead of a secret
    thumbprint: str | None = None
    ca_bundle: str | None = None  # CA file to trust instead of the system's (the sandbox's CA)
    api_version: str = "v9.2"  # one of versions.API_VERSIONS; what an older one lacks is not asked for
    change_tracking: bool = True  # False: every table is read by its modifiedon watermark, never by delta links
    token_scope: str | None = None  # what the token is asked for; None: `{org_url}/.default`
    max_page_size: int = 5000  # the service's maximum
    max_concurrency: int = 4  # bulk requests in flight at once
    batch_size: int = 1000  # records per $batch / UpsertMultiple request (the $batch cap is 1000)
    timeout: float = 120.0  # the service's own limit per operation is about two minutes
    retry: RetryPolicy = RetryPolicy()

    def __post_init__(self) -> None:
        try:
            check_version(self.api_version)
        except ValueError as error:
            raise ValueError(f"api_version={self.api_version!r}: {error}") from None

    @property
    def api_root(self) -> str:
        return f"{self.org_url.rstrip('/')}/api/data/{self.api_version}/"

    def credentials(self) -> ClientCredentials:
        return ClientCredentials(self.authority, self.client_id, self.client_secret, self.private_key,
                                 self.thumbprint)


@dataclass(frozen=True)
class EntityInfo:
    """What EntityDefinitions says about a table."""

    logical_name: str
    entity_set: str
    primary_id: str
    change_tracking: bool


#: The tables a marketing list's members come from (its `createdfromcode` says which one).
LIST_MEMBER_TABLES = ("account", "contact", "lead")
#: Attribute types whose value the Web API serves as `_<name>_value`, the id of the record they point at.
LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})


@dataclass(frozen=True)
class AttributeInfo:
    """What EntityDefinitions(...)/Attributes says about one column of a table."""

    logical_name: str
    type: str  # AttributeType: String, Integer, Lookup, Virtual...
    attribute_of: str | None = None  # set on a column derived from another: a lookup's record name, a label
    valid_for_read: bool = True

    @property
    def web_name(self) -> str | None:
        """The name `$select` and the rows give it (a lookup's is `_<name>_value`); None when the Web API serves
        no such property: the column is derived from another, or not valid for read."""
        if self.attribute_of or not self.valid_for_read:
            return None
        return f"_{self.logical_name}_value" if self.type in LOOKUP_TYPES else self.logical_name


#: Dataverse's error code for a record that does not exist.
RECORD_NOT_FOUND = "0x80040217"


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to one record of a bulk write (`index` is its position in the input)."""

    index: int
    ok: bool
    status: int | None = None
    code: str = ""
    message: str = ""

    @property
    def record_gone(self) -> bool:
        """The record does not exist (deleted meanwhile): a 404 with Dataverse's record-not-found code, not a
        404 for a path or action the service does not have."""
        return self.status == 404 and self.code.lower() == RECORD_NOT_FOUND


@dataclass
class ChangePage:
    """One page of an incremental read: new or changed rows, and the ids of deleted rows."""

    rows: list[Row]
    deleted: list[str] = field(default_factory=list)


@dataclass
class ChangeRead:
    """An incremental read: iterate it for pages; afterwards `cursor` is where the next read starts.

    `mode` is "delta" (changes since the cursor, deletions included), "watermark" (rows modified since
    the cursor; deletions are not visible) or "full" (every row: a first read, or a fallback whose reason
    is in `fallback`). Both are known when `read_changes` returns. After each page of a tracked read,
    `resume` is the link that continues it from the next page (None after the last one): a reader that must
    stop early keeps it and passes it to `read_changes` later as the cursor.
    """

    mode: str = ""
    cursor: str | None = None
    fallback: str | None = None
    resume: str | None = None
    pages: Iterator[ChangePage] = field(default_factory=lambda: iter(()), repr=False)

    def __iter__(self) -> Iterator[ChangePage]:
        return self.pages


#: The annotations a FetchXML page carries when more pages follow (Microsoft: "Page results using FetchXml").
PAGING_COOKIE = "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"
MORE_RECORDS = "@Microsoft.Dynamics.CRM.morerecords"


@dataclass
class QueryKeys:
    """The keys a FetchXML query selects, read page by page: iterate it for the pages (lists of ids of
    `entity`); `pages` counts those read so far."""

    entity: str
    source: Iterator[list[str]] = field(repr=False)
    pages: int = 0

    def __iter__(self) -> Iterator[list[str]]:
        for page in self.source:
            self.pages += 1
            yield page


class DataverseClient:
    """A client of one Dataverse organisation's Web API; thread-safe; close it (or use `with`)."""

    def __init__(self, config: DataverseConfig, *, tokens: TokenSource | None = None,
                 counter: CallCounter | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.counter = counter or CallCounter()
        self._tokens = tokens or MsalTokenSource(config.credentials(), config.org_url, scope=config.token_scope,
                                                 ca_bundle=config.ca_bundle, counter=self.counter,
                                                 retry=config.retry, sleep=sleep)
        self._http = httpx.Client(
            base_url=config.api_root, verify=tls_verify(config.ca_bundle), timeout=config.timeout, transport=transport,
            headers={"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"})
        self._sleep = sleep
        self._paged = odata.prefer(max_page_size=config.max_page_size)
        self._entities: dict[str, EntityInfo] = {}
        self._attributes: dict[str, dict[str, AttributeInfo]] = {}
        self._upsert_multiple: dict[str, bool] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DataverseClient(org_url={self.config.org_url!r})"

    def __enter__(self) -> DataverseClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._tokens.close()

    # -- metadata ---------------------------------------------------------------------------------

    def entity(self, logical_name: str) -> EntityInfo:
        """The table's entity set, primary key and change tracking flag, from EntityDefinitions (cached)."""
        with self._lock:
            if logical_name in self._entities:
                return self._entities[logical_name]
        url = "EntityDefinitions?" + odata.query(
            select=("LogicalName", "EntitySetName", "PrimaryIdAttribute", "ChangeTrackingEnabled"),
            filter=f"LogicalName eq {odata.literal(logical_name)}")
        found = self._send("GET", url, kind="metadata").json().get("value", [])
        if not found:
            raise DataverseNotFound(f"no table with logical name {logical_name!r}", status=404)
        row = found[0]
        info = EntityInfo(row["LogicalName"], row["EntitySetName"], row["PrimaryIdAttribute"],
                          bool(row.get("ChangeTrackingEnabled")))
        with self._lock:
            self._entities[logical_name] = info
        return info

    def entity_set_name(self, logical_name: str) -> str:
        return self.entity(logical_name).entity_set

    def attributes(self, logical_name: str) -> dict[str, AttributeInfo]:
        """The table's columns by logical name, from EntityDefinitions(...)/Attributes (cached)."""
        with self._lock:
            if logical_name in self._attributes:
                return self._attributes[logical_name]
        url = f"EntityDefinitions(LogicalName={odata.literal(logical_name)})/Attributes?" + odata.query(
            select=("LogicalName", "AttributeType", "AttributeOf", "IsValidForRead"))
        found = {row["LogicalName"]: AttributeInfo(row["LogicalName"], row.get("AttributeType") or "",
                                                   row.get("AttributeOf"), row.get("IsValidForRead") is not False)
                 for row in decode_json(self._send("GET", url, kind="metadata")).get("value", [])}
        with self._lock:
            self._attributes[logical_name] = found
        return found

    def supports_upsert_multiple(self, logical_name: str) -> bool:
        """Whether the table has the UpsertMultiple message (its sdkmessagefilter exists), cached. A Web API
        version older than the bulk messages has it for no table, and is not asked."""
        if not has_bulk_messages(self.config.api_version):
            return False
        with self._lock:
            if logical_name in self._upsert_multiple:
                return self._upsert_multiple[logical_name]
        url = "sdkmessagefilters?" + odata.query(
            select=("sdkmessagefilterid",),
            filter="sdkmessageid/name eq 'UpsertMultiple' and primaryobjecttypecode eq "
                   + odata.literal(logical_name))
        supported = bool(self._send("GET", url, kind="metadata").json().get("value"))
        with self._lock:
            self._upsert_multiple[logical_name] = supported
        return supported

    # -- reads ------------------------------------------------------------------------------------

    def read(self, entity: str, select: Iterable[str], *, filter: str | None = None,
             orderby: Sequence[str] | str | None = None, expand: str | None = None) -> Iterator[list[Row]]:
        """Every matching row of table `entity`, one page (up to `max_page_size` rows) at a time; `expand` is an
        OData `$expand` value (related rows nested in each row)."""
        options = odata.query(select, filter, orderby, **({"expand": expand} if expand else {}))
        url = f"{self.entity_set_name(entity)}?{options}"
        for body in self._pages(url, kind="read", prefer=self._paged):
            yield body["value"]

    def read_changes(self, entity: str, select: Iterable[str], cursor: str | None = None) -> ChangeRead:
        """Rows changed since `cursor` (a previous read's `cursor`; None reads everything).

        Tables with change tracking are read through delta links; a delta link the service refuses
        (expired, or for other columns) falls back to a full read. Other tables, and every table when the
        configuration turns change tracking off, use a `modifiedon` watermark.
        """
        info, columns = self.entity(entity), list(select)
        if info.change_tracking and self.config.change_tracking:
            return self._delta_read(info, columns, cursor)
        return self._watermark_read(info, columns, cursor)

    def _pages(self, url: str, *, kind: str, prefer: str) -> Iterator[Row]:
        """Response bodies from `url` on, following `@odata.nextLink` unchanged."""
        next_url: str | None = url
        while next_url:
            body = decode_json(self._send("GET", next_url, kind=kind, headers={"Prefer": prefer}))
            next_url = body.get("@odata.nextLink")
            yield body

    def _delta_read(self, info: EntityInfo, select: list[str], cursor: str | None) -> ChangeRead:
        """Follow the delta link when it still fits (its first page is fetched now), else read everything."""
        prefer = odata.prefer(track_changes=True, max_page_size=self.config.max_page_size)
        result, bodies = ChangeRead(mode="full"), None
        if cursor is None:
            pass
        elif cursor.startswith(WATERMARK):
            result.fallback = "the table now has change tracking; the cursor was a modifiedon watermark"
        elif (issued := odata.link_option(cursor, "$select")) and sorted(issued.split(",")) != sorted(select):
            result.fallback = "the selected columns changed since the delta link was issued"
        else:
            bodies = self._pages(cursor, kind="delta", prefer=prefer)
            try:
                first = next(bodies)
            except DataverseError as exc:
                if not _is_client_error(exc):  # expired, unknown or malformed links are refused with a 4xx
                    raise
                result.fallback, bodies = f"the delta link was refused: {exc}", None
            else:
                result.mode, bodies = "delta", _chain(first, bodies)
        if bodies is None:
            bodies = self._pages(f"{info.entity_set}?{odata.query(select)}", kind="read", prefer=prefer)
        result.pages = self._delta_pages(result, info, bodies)
        return result

    @staticmethod
    def _delta_pages(result: ChangeRead, info: EntityInfo, bodies: Iterator[Row]) -> Iterator[ChangePage]:
        for body in bodies:
            if "@odata.deltaLink" in body:  # only on the last page
                result.cursor = body["@odata.deltaLink"]
            result.resume = body.get("@odata.nextLink")
            yield _split_deletions(body["value"]) if result.mode == "delta" else ChangePage(body["value"])
        if result.cursor is None:
            raise DataverseError(f"{info.entity_set}: change tracking is on but no delta link came back (a Web API "
                                 "that offers none is read with change tracking turned off)", code="NoDeltaLink")

    def _watermark_read(self, info: EntityInfo, select: list[str], cursor: str | None) -> ChangeRead:
        """Rows with `modifiedon` at or after the watermark (all rows without one), oldest first."""
        since = cursor[len(WATERMARK):] if cursor and cursor.startswith(WATERMARK) else None
        result = ChangeRead(mode="watermark", cursor=cursor) if since else ChangeRead(mode="full")
        if cursor and not since:
            result.fallback = "the table is not read by change tracking; the cursor was a delta link"
        columns = select if "modifiedon" in select else [*select, "modifiedon"]
        url = f"{info.entity_set}?" + odata.query(
            columns, filter=f"modifiedon ge {since}" if since else None,
            orderby=("modifiedon asc", f"{info.primary_id} asc"))
        result.pages = self._watermark_pages(result, self._pages(url, kind="read", prefer=self._paged))
        return result

    @staticmethod
    def _watermark_pages(result: ChangeRead, bodies: Iterator[Row]) -> Iterator[ChangePage]:
        for body in bodies:
            rows = body["value"]
            if rows and rows[-1].get("modifiedon"):
                result.cursor = WATERMARK + rows[-1]["modifiedon"]
            yield ChangePage(rows)

    def read_query_keys(self, fetch_xml: str, *, page_rows: int = MAX_PAGE_ROWS) -> QueryKeys:
        """The primary keys of the records a FetchXML query selects: iterate the result for pages of ids.

        The query is rewritten to ask for the key alone (fetchxml.py) and read with `?fetchXml=` on its entity
        set, `page_rows` a page, each page after the first with the paging cookie the last one returned (simple
        paging, by page number, for a query the service gives no cookie for). A query that cannot be read raises
        FetchXmlError before any request; one the service refuses raises DataverseError while iterating.
        """
        entity = query_entity(fetch_xml)
        info = self.entity(entity)
        return QueryKeys(entity, self._query_key_pages(key_query(fetch_xml, info.primary_id), info.entity_set,
                                                       min(page_rows, MAX_PAGE_ROWS)))

    def _query_key_pages(self, query: KeyQuery, entity_set: str, page_rows: int) -> Iterator[list[str]]:
        prefer = odata.prefer(annotations=(PAGING_COOKIE.lstrip("@"), MORE_RECORDS.lstrip("@")))
        number, cookie = 1, None
        while True:
            url = f"{entity_set}?fetchXml={quote(query.page(number, cookie, page_rows), safe='')}"
            body = decode_json(self._send("GET", url, kind="fetchxml", headers={"Prefer": prefer}))
            yield [row[query.primary_key] for row in body.get("value", [])]
            if query.top is not None or not body.get(MORE_RECORDS):
                return
            following = next_cookie(body.get(PAGING_COOKIE))
            if following is not None and following == cookie:
                raise DataverseError(f"{entity_set}: the service answered the same paging cookie twice",
                                     code="PagingCookieRepeated")
            number, cookie = number + 1, following

    def get(self, path: str) -> dict[str, Any]:
        """One GET of `path` below the Web API root (a record, a navigation, a function), its JSON body."""
        return decode_json(self._send("GET", path, kind="read"))

    # -- writes -----------------------------------------------------------------------------------

    def update(self, entity: str, record_id: str, row: Mapping[str, Any]) -> None:
        """Change columns of one existing record; a record deleted meanwhile is not created again
        (`If-Match: *`, as Microsoft documents preventing create in upsert): DataverseNotFound."""
        url = self.entity_set_name(entity) + odata.key_segment(record_id)
        self._send("PATCH", url, kind="update", headers={"If-Match": "*"}, json_body=dict(row))

    def upsert(self, entity: str, key: str | Mapping[str, Any], row: Mapping[str, Any]) -> None:
        """Create or update one record by primary key (a GUID) or alternate key (column -> value mapping)."""
        url = self.entity_set_name(entity) + odata.key_segment(key)
        self._send("PATCH", url, kind="upsert", json_body=dict(row))

    def upsert_many(self, entity: str, rows: Sequence[Mapping[str, Any]], key_columns: Sequence[str], *,
                    atomic: bool = False) -> list[RecordOutcome]:
        """Create or update `rows` by `key_columns` (the primary key, or an alternate key's columns).

        Uses UpsertMultiple where the Web API version and the table support it, else `$batch`; either way in chunks of
        `batch_size`, `max_concurrency` at a time. When an UpsertMultiple chunk fails (the service rolls it
        back whole), the chunk is sent again as a `$batch` so each record gets its own outcome. With
        `atomic`, each `$batch` chunk is one change set: all of it is written or none.
        """
        info = self.entity(entity)
        use_bulk_action = not atomic and self.supports_upsert_multiple(entity)

        def write(offset: int, chunk: Sequence[Mapping[str, Any]]) -> list[RecordOutcome]:
            if use_bulk_action:
                try:
                    self._send("POST", f"{info.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple",
                               kind="upsert_multiple", json_body={"Targets": [
                                   self._upsert_target(info, row, key_columns) for row in chunk]})
                    return [RecordOutcome(offset + i, True, 204) for i in range(len(chunk))]
                except DataverseError as exc:
                    if not _is_client_error(exc):
                        raise
            requests = [self._upsert_request(info, row, key_columns) for row in chunk]
            return self._batch_outcomes(offset, requests, atomic=atomic)

        return self._in_chunks(rows, write)

    def update_many(self, entity: str, rows: Sequence[Mapping[str, Any]]) -> list[RecordOutcome]:
        """Update existing records (each row holds its primary key) and never create one.

        `$batch` PATCH with `If-Match: *`, in chunks as `upsert_many`: a record deleted meanwhile gets a 404
        outcome instead of coming back as a new, nearly empty record.
        """
        info = self.entity(entity)

        def write(offset: int, chunk: Sequence[Mapping[str, Any]]) -> list[RecordOutcome]:
            requests = [BatchRequest("PATCH", info.entity_set + odata.key_segment(row[info.primary_id]),
                                     {c: v for c, v in row.items() if c != info.primary_id}, {"If-Match": "*"})
                        for row in chunk]
            return self._batch_outcomes(offset, requests, atomic=False)

        return self._in_chunks(rows, write)

    def remove_list_members(self, list_id: str, member_ids: Sequence[str], *,
                            member_table: str) -> list[RecordOutcome]:
        """Remove members (records of `member_table`: account, contact or lead) from a static marketing list.

        RemoveMemberList per member where the Web API version has it; before v9.0, which has no such action, the
        member is disassociated through the list's many-to-many relationship to its table
        (`DELETE lists(<id>)/listcontact_association(<member id>)/$ref`). Either way in `$batch` chunks, with one
        outcome per member.
        """
        if member_table not in LIST_MEMBER_TABLES:
            raise ValueError(f"member_table={member_table!r}: must be one of {', '.join(LIST_MEMBER_TABLES)}")

        def request(member_id: str) -> BatchRequest:
            if has_remove_member_list(self.config.api_version):
                return BatchRequest("POST", f"lists({list_id})/Microsoft.Dynamics.CRM.RemoveMemberList",
                                    {"EntityId": member_id})
            return BatchRequest("DELETE", f"lists({list_id})/list{member_table}_association({member_id})/$ref")

        def remove(offset: int, chunk: Sequence[str]) -> list[RecordOutcome]:
            return self._batch_outcomes(offset, [request(member_id) for member_id in chunk], atomic=False)

        return self._in_chunks(member_ids, remove)

    @staticmethod
    def _upsert_target(info: EntityInfo, row: Mapping[str, Any], key_columns: Sequence[str]) -> Row:
        # As Microsoft's UpsertMultiple example: the row with its key values, plus `@odata.id` naming the
        # alternate key. Lookup values (`_x_value`) are read-only names; in a key they only go in `@odata.id`.
        target = {"@odata.type": f"Microsoft.Dynamics.CRM.{info.logical_name}"}
        target.update((c, odata.json_value(v)) for c, v in row.items() if not (c in key_columns and c.startswith("_")))
        if tuple(key_columns) != (info.primary_id,):
            target["@odata.id"] = info.entity_set + odata.key_segment({c: row[c] for c in key_columns})
        return target

    @staticmethod
    def _upsert_request(info: EntityInfo, row: Mapping[str, Any], key_columns: Sequence[str]) -> BatchRequest:
        key: str | dict[str, Any] = (row[info.primary_id] if tuple(key_columns) == (info.primary_id,)
                                     else {c: row[c] for c in key_columns})
        body = {column: odata.json_value(value) for column, value in row.items() if column not in key_columns}
        return BatchRequest("PATCH", info.entity_set + odata.key_segment(key), body)

    def _in_chunks(self, items: Sequence[Any],
                   work: Callable[[int, Sequence[Any]], list[RecordOutcome]]) -> list[RecordOutcome]:
        """Run `work(offset, chunk)` over chunks of `batch_size`, `max_concurrency` at a time, in order.

        A chunk that still fails after retries (throttling, outage) reports the failure on each of its
        records; authentication failures are raised, since no other chunk can succeed either.
        """
        size = self.config.batch_size

        def guarded(offset: int) -> list[RecordOutcome]:
            chunk = items[offset:offset + size]
            try:
                return work(offset, chunk)
            except DataverseAuthError:
                raise
            except DataverseError as exc:
                return [RecordOutcome(offset + i, False, exc.status, exc.code, exc.message)
                        for i in range(len(chunk))]

        offsets = range(0, len(items), size)
        if len(offsets) <= 1:
            return [outcome for offset in offsets for outcome in guarded(offset)]
        with ThreadPoolExecutor(max_workers=self.config.max_concurrency) as pool:
            return [outcome for outcomes in pool.map(guarded, offsets) for outcome in outcomes]

    def _batch_outcomes(self, offset: int, requests: list[BatchRequest], *,
                        atomic: bool) -> list[RecordOutcome]:
        """Send `requests` as one `$batch` (one change set if `atomic`); map each response to its record."""
        content_type, body = encode_batch([requests] if atomic else requests,
                                          api_path=httpx.URL(self.config.api_root).path)
        headers = {"Content-Type": content_type}
        if not atomic:
            headers["Prefer"] = odata.prefer(continue_on_error=True)
        response = self._send("POST", "$batch", kind="batch", headers=headers, content=body,
                              accept_status=(400,))
        responses = decode_batch(response.headers.get("content-type", ""), response.content)
        return _outcomes(offset, len(requests), responses, atomic=atomic)

    # -- the wire ---------------------------------------------------------------------------------

    def _send(self, method: str, url: str, *, kind: str, headers: Mapping[str, str] | None = None,
              json_body: Any = None, content: bytes | None = None,
              accept_status: tuple[int, ...] = ()) -> httpx.Response:
        """One request with a current token, retried per policy; a failure becomes a typed DataverseError.

        `accept_status` are error statuses returned to the caller when they come with a multipart body
        (a `$batch` that stopped at a failing request answers 400 with the responses so far).
        """
        refused_once = False

        def build() -> httpx.Request:
            return self._http.build_request(
                method, url, json=json_body, content=content,
                headers={**(headers or {}), "Authorization": f"Bearer {self._tokens.token()}"})

        def classify(response: httpx.Response) -> Retry | None:
            nonlocal refused_once
            status = response.status_code
            if status == 401 and not refused_once:  # the token expired or was revoked early: renew once
                refused_once = True
                self._tokens.invalidate()
                return Retry("unauthorized", after=0)
            if status in (429, 503):
                code, _ = parse_error_body(response.content)
                return Retry(f"{'throttled' if status == 429 else 'unavailable'}: {code}",
                             after=retry_after_seconds(response.headers.get("retry-after")))
            if status >= 500 and status != 501:
                return Retry(f"server_error: HTTP {status}")
            return None

        try:
            response = send_with_retries(self._http, build, kind=kind, classify=classify,
                                         policy=self.config.retry, counter=self.counter, sleep=self._sleep)
        except RetriesExhausted as exc:
            error = DataverseThrottled if exc.reason.startswith("throttled") else DataverseUnavailable
            raise error(scrub(str(exc), self._tokens.secrets()), code="RetriesExhausted") from None
        if response.status_code >= 400 and not (
                response.status_code in accept_status
                and response.headers.get("content-type", "").startswith("multipart/")):
            raise error_from_response(response, self._tokens.secrets())
        return response


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def _split_deletions(rows: list[Row]) -> ChangePage:
    page = ChangePage([])
    for row in rows:
        if odata.is_deleted(row):
            page.deleted.append(row["id"])
        else:
            page.rows.append(row)
    return page


def _is_client_error(exc: DataverseError) -> bool:
    """A refusal of this request's content (not of who sent it, nor of how often)."""
    return exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 429)


def _outcomes(offset: int, count: int, responses: list[BatchResponse], *,
              atomic: bool) -> list[RecordOutcome]:
    """Per-record outcomes of one `$batch`: responses come in request order.

    A failed change set answers with one error response; when it names the failing request (Content-ID)
    that record gets the error and the others are rolled back, otherwise every record gets the error.
    """

    def failure(response: BatchResponse, index: int) -> RecordOutcome:
        code, message = parse_error_body(response.body)
        return RecordOutcome(offset + index, False, response.status, code, message or f"HTTP {response.status}")

    if atomic:
        failed = next((r for r in responses if not r.ok), None)
        if failed is None and len(responses) == count:
            return [RecordOutcome(offset + i, True, r.status) for i, r in enumerate(responses)]
        if failed is None:
            failed = BatchResponse(500, {}, b"", None)  # fewer answers than requests, none of them an error
        blamed = int(failed.content_id) - 1 if (failed.content_id or "").isdigit() else None
        return [failure(failed, i) if blamed in (None, i) else
                RecordOutcome(offset + i, False, None, "RolledBack",
                              "not written: another request in its change set failed")
                for i in range(count)]
    outcomes = [RecordOutcome(offset + i, True, r.status) if r.ok else failure(r, i)
                for i, r in enumerate(responses[:count])]
    outcomes += [RecordOutcome(offset + i, False, None, "NotRun", "the batch stopped before this request")
                 for i in range(len(outcomes), count)]
    return outcomes

"""Extract: the org-wide CRM tables into the state store's mirror, incrementally, once per run.

Each table is read with change tracking from where the last read stopped (a modifiedon watermark where the
table has none); a refused delta link falls back to a full read, which re-stamps every row it sees and
sweeps the rest. People are read with only the columns a rule or some account's data mapping needs. Each
page of changes marks the addresses it touches, so that each account's sync can look at those only
(changes.py).
A lease keeps two runs (of two accounts) from extracting the same table at once; it ends with the run that
holds it (state/leases.py).
A table no account needs is not read: list members while no account has an email-activated static list (a
dynamic list's members are its query's, dynamic.py). Its cursor stays where it was, so the first read once a
static list is activated takes the changes since then (or everything, the first time).
"""

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from dotdyn_pipeline.connectors.dataverse.client import WATERMARK, ChangePage, DataverseClient
from dotdyn_pipeline.connectors.http import calls_made
from dotdyn_pipeline.defs.audience.changes import mark_page, require_full_sync
from dotdyn_pipeline.defs.audience.mappings import Attributes, check_mappings, mapping_rows, table_name
from dotdyn_pipeline.defs.runs import run_in_progress
from dotdyn_pipeline.resources import DataverseResource, StateStoreResource
from dotdyn_pipeline.runtime.collector import collector_paused
from dotdyn_pipeline.runtime.read_ahead import read_ahead
from dotdyn_pipeline.schemas.email import address_key
from dotdyn_pipeline.state import ORG_SCOPE, Holder, MirrorRow, StateStore

PERSON_TABLES = ("contact", "lead", "account")
#: list.createdfromcode (the list's member type) -> the table every member of the list comes from.
MEMBER_TYPES = {1: "account", 2: "contact", 4: "lead"}
#: Columns every person row needs for the rules (consent, validation, precedence).
PERSON_COLUMNS = ("emailaddress1", "donotbulkemail", "donotemail", "statecode", "modifiedon")
#: A lease on a table's extract lives this long unless renewed; its holder renews it a few times as often, so a
#: holder on another host that died is taken over when it runs out (one on this host, or whose run has ended, at
#: once).
EXTRACT_LEASE_TTL = timedelta(minutes=2)
#: How long a run waits for another run's extract of the same table, which may be a long first read.
EXTRACT_LEASE_WAIT = 3 * 3600.0
#: Rows written to the mirror per transaction. Its indexes take keys at random places and a commit writes every
#: page it touched, so larger commits write much less, the same index page once for many rows. An interrupted
#: extract reads again from its saved cursor, so nothing needs smaller.
ROWS_PER_COMMIT = 100_000


@dataclass(frozen=True)
class CrmTable:
    """One CRM table the audience flow mirrors."""

    asset_name: str
    logical_name: str
    columns: tuple[str, ...]
    description: str
    to_mirror: Callable[[dict[str, Any]], MirrorRow]  # a row read, its annotations taken out
    mapped: bool = False  # add the attributes that data mappings name for this table
    #: Start before the other tables when steps run side by side: the largest tables, and what they wait on, so
    #: that the longest path through the run starts at once. The other tables still start before the account's
    #: own steps, so that a small table never holds back the members' step after the largest read has ended.
    first: bool = False
    #: Why no account needs the table now (then it is not read), or None when one does.
    unneeded: Callable[[StateStore], str | None] = lambda store: None


def without_annotations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` without their OData annotations (`@odata.etag` and the like), which the mirror does not keep. The
    page's annotation names are found once and taken out of each row in place: a million rows are not copied."""
    annotations = [key for key in set().union(*rows) if "@" in key]
    for row in rows:
        for key in annotations:
            row.pop(key, None)
    return rows


def _person(primary: str) -> Callable[[dict[str, Any]], MirrorRow]:
    def to_mirror(row: dict[str, Any]) -> MirrorRow:
        return MirrorRow(row[primary], row, email_key=address_key(row.get("emailaddress1")),
                         opted_out=bool(row.get("donotbulkemail") or row.get("donotemail")))
    return to_mirror


def _plain(primary: str) -> Callable[[dict[str, Any]], MirrorRow]:
    return lambda row: MirrorRow(row[primary], row)


def _list_member(row: dict[str, Any]) -> MirrorRow:
    # A link is its two ends, which the mirror keeps as columns: its data would only repeat them, and writing
    # that copy would cost a large first read time for nothing.
    return MirrorRow(row["listmemberid"], {}, parent_id=row.get("_listid_value"),
                     ref_id=row.get("_entityid_value"))


def activated_lists(store: StateStore) -> Iterator[dict[str, Any]]:
    """Every account's active marketing lists that are activated for email, as the mirror holds them."""
    return (row for row in store.mirror.rows("list")
            if row.get("esc_activatedforemail") and row.get("statecode", 0) == 0)


def is_dynamic(row: dict[str, Any]) -> bool:
    """Whether a list is dynamic (`type` true): its members are what its query selects, not listmember rows."""
    return bool(row.get("type"))


def _no_static_list_activated(store: StateStore) -> str | None:
    static = (row for row in activated_lists(store) if not is_dynamic(row))
    return None if next(static, None) else "no account has an email-activated static list"


DATA_MAPPINGS = CrmTable(
    "crm_data_mappings", "esc_emaildatamapping",
    ("esc_emaildatamappingid", "_esc_emailaccountid_value", "esc_entityname", "esc_attributename",
     "esc_datafieldname", "esc_datafieldtype", "statecode"),
    "Which CRM attribute feeds which Dotdigital data field, per email account.", _plain("esc_emaildatamappingid"),
    first=True)
MARKETING_LISTS = CrmTable(
    "crm_marketing_lists", "list",
    ("listid", "listname", "type", "query", "createdfromcode", "statecode", "esc_activatedforemail",
     "_esc_emailaccountid_value", "esc_addressbookid"),
    "Marketing lists: which sync to email, their account, their address book and a dynamic list's query.",
    _plain("listid"), first=True)
LIST_MEMBERS = CrmTable(
    "crm_list_members", "listmember", ("listmemberid", "_listid_value", "_entityid_value"),
    "Who is on each static marketing list (contacts, leads and accounts); read while some account has an "
    "email-activated static list.", _list_member, first=True, unneeded=_no_static_list_activated)
PEOPLE = tuple(
    CrmTable(f"crm_{plural}", name, (f"{name}id", *PERSON_COLUMNS), f"CRM {plural}: email, consent, mapped attributes.",
             _person(f"{name}id"), mapped=True, first=name == "contact")
    for name, plural in (("contact", "contacts"), ("lead", "leads"), ("account", "accounts")))
ALL_TABLES = (DATA_MAPPINGS, MARKETING_LISTS, LIST_MEMBERS, *PEOPLE)


def mapped_attributes(store: StateStore, entity: str, attributes: Attributes) -> list[str]:
    """Columns of `entity` that an active data mapping of any account reads, sorted. A mapping that fails its
    check (mappings.py) is left out, so that no account's mapping can make the read fail for all of them."""
    checked = check_mappings([row for row in mapping_rows(store) if table_name(row) == entity], PERSON_TABLES,
                             attributes)
    if checked.bad:
        dg.get_dagster_logger().warning(
            "%s: %d data mappings left out of the read (their accounts' audience_contacts quarantine them): %s",
            entity, len(checked.bad), "; ".join(f"{bad.mapping_id} of account {bad.account}: {bad.reason}"
                                                for bad in checked.bad))
    return sorted({mapping.attribute for mapping in checked.valid})


def select_for(table: CrmTable, store: StateStore, client: DataverseClient) -> list[str]:
    """The columns to read of `table`: its own, and for people those their data mappings read."""
    extra = mapped_attributes(store, table.logical_name, client.attributes) if table.mapped else []
    return list(dict.fromkeys([*table.columns, *extra]))


def extract(table: CrmTable, context: dg.AssetExecutionContext, dataverse: DataverseResource,
            store: StateStore) -> dg.MaterializeResult:
    """Bring the mirror of `table` up to date; report what changed."""
    started = time.monotonic()
    name = table.logical_name
    if reason := table.unneeded(store):
        context.log.info("%s: not read: %s", name, reason)
        return dg.MaterializeResult(metadata={"read_mode": "skipped", "skipped_because": reason,
                                              "dataverse_requests": dg.MetadataValue.int(0)})
    with store.leases.hold(f"extract:{name}", Holder(context.run.run_id), EXTRACT_LEASE_TTL, EXTRACT_LEASE_WAIT,
                           run_alive=run_in_progress(context.instance)), dataverse.client() as client:
        select = select_for(table, store, client)
        saved = store.get_cursor(ORG_SCOPE, name)
        read = client.read_changes(name, select, (saved.delta_link or saved.watermark) if saved else None)
        if read.fallback:
            context.log.warning("%s: full read instead of changes: %s", name, read.fallback)
        stamp = datetime.now(UTC).isoformat()
        # a full read sweeps away the rows it did not see; into an empty mirror there can be none (and the sweep
        # reads every row, so it is left out there)
        sweep = read.mode == "full" and store.mirror.holds_any(name)
        changed = deleted = pages = marked = 0
        into_empty = read.mode == "full" and not sweep
        with collector_paused(), store.mirror.writer(name, stamp, into_empty=into_empty) as write:
            # the next pages arrive while this one is written to the mirror
            for page in in_transactions(store, read_ahead(read), ROWS_PER_COMMIT):
                pages += 1
                rows = [table.to_mirror(row) for row in without_annotations(page.rows)]
                if read.mode != "full":
                    marked += mark_page(store, name, rows, page.deleted, PERSON_TABLES, LIST_MEMBERS.logical_name)
                changed += write(rows)
                deleted += store.mirror.delete(name, page.deleted)
        if sweep:
            deleted += store.mirror.delete_unseen(name, stamp)
        if read.mode == "full":
            require_full_sync(store)  # the read says nothing of what changed: every account looks at every address
        by_watermark = (read.cursor or "").startswith(WATERMARK)
        store.save_cursor(ORG_SCOPE, name, delta_link=None if by_watermark else read.cursor,
                          watermark=read.cursor if by_watermark else None)
        calls = client.counter.snapshot()
    store.add_api_calls(ORG_SCOPE, "dataverse", calls)
    return dg.MaterializeResult(metadata={
        "read_mode": read.mode,
        "fallback": read.fallback or "",
        "columns": dg.MetadataValue.int(len(select)),
        "rows_changed": dg.MetadataValue.int(changed),
        "rows_deleted": dg.MetadataValue.int(deleted),
        "changes_marked": dg.MetadataValue.int(marked),
        # counted after a full read only: counting a million mirrored rows costs a change read most of its time
        **({"rows_in_mirror": dg.MetadataValue.int(store.mirror.count(name))} if read.mode == "full" else {}),
        "pages": dg.MetadataValue.int(pages),
        "dataverse_requests": dg.MetadataValue.int(calls_made(calls)),
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
    })


def in_transactions(store: StateStore, pages: Iterable[ChangePage], rows_per_commit: int
                    ) -> Iterator[ChangePage]:
    """Yield `pages`, so that what is written meanwhile commits about every `rows_per_commit` rows (and rolls back,
    with the uncommitted rest, when the reader stops with an error)."""
    pages = iter(pages)
    while True:
        with store.backend.transaction():
            written = 0
            for page in pages:
                yield page
                written += len(page.rows) + len(page.deleted)
                if written >= rows_per_commit:
                    break
            else:
                return


def extract_asset(table: CrmTable, deps: tuple[str, ...] = ()) -> dg.AssetsDefinition:
    @dg.asset(name=table.asset_name, group_name="audience", kinds={"dataverse"}, pool="dataverse",
              deps=list(deps), description=table.description,
              op_tags={"dagster/priority": "2" if table.first else "1"})
    def _extract(context: dg.AssetExecutionContext, dataverse: DataverseResource,
                 state: StateStoreResource) -> dg.MaterializeResult:
        with state.open() as store:
            return extract(table, context, dataverse, store)

    return _extract


crm_data_mappings = extract_asset(DATA_MAPPINGS)
crm_marketing_lists = extract_asset(MARKETING_LISTS)
crm_list_members = extract_asset(LIST_MEMBERS, deps=(MARKETING_LISTS.asset_name,))
crm_contacts, crm_leads, crm_accounts = (extract_asset(t, deps=(DATA_MAPPINGS.asset_name,)) for t in PEOPLE)
EXTRACT_ASSETS = (crm_data_mappings, crm_marketing_lists, crm_list_members, crm_contacts, crm_leads, crm_accounts)

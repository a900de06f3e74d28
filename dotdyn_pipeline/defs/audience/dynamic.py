"""Dynamic marketing lists: their members are what their FetchXML query selects, evaluated at each sync.

Dynamics keeps no `listmember` rows for a dynamic list (`list.type` true): its query (`list.query`) is its
membership. Each sync of an account runs the query of each of its email-activated dynamic lists, reading only
the keys of the records it selects (the mirror holds their columns), and keeps the result in the state store as
link rows shaped as a static list's (state/evaluations.py); from there on the flow treats both kinds alike.
A query cannot be change-tracked, so the evaluation is compared with the last one: the addresses of the people
who entered or left are marked changed, and an incremental sync looks at those only.

A list whose query fails (malformed, naming an attribute since deleted, refused, timed out) fails alone: its
members stay those of its last success, its book is held back from this sync's load (nobody is removed
because a query failed), and the error is logged and reported with the list's name; once it evaluates again,
the account's next sync is a full pass, so that nothing changed meanwhile is missed.
"""

import time
from dataclasses import dataclass
from typing import Any

import dagster as dg

from dotdyn_pipeline.connectors.dataverse.client import DataverseClient
from dotdyn_pipeline.connectors.dataverse.errors import DataverseAuthError, DataverseError
from dotdyn_pipeline.connectors.dataverse.fetchxml import FetchXmlError, query_entity
from dotdyn_pipeline.connectors.http import calls_made
from dotdyn_pipeline.defs.accounts.accounts import email_account_partitions
from dotdyn_pipeline.defs.accounts.partitions import partition_account
from dotdyn_pipeline.defs.audience.changes import require_full_sync
from dotdyn_pipeline.defs.audience.extract import MEMBER_TYPES, PERSON_TABLES, crm_marketing_lists, is_dynamic
from dotdyn_pipeline.defs.audience.members import account_lists
from dotdyn_pipeline.resources import DataverseResource, StateStoreResource
from dotdyn_pipeline.state import StateStore

QUERIES_CHECK = "dynamic_list_queries"


@dataclass(frozen=True)
class ListOutcome:
    """What evaluating one dynamic list did."""

    list_id: str
    name: str
    members: int = 0
    added: int = 0
    removed: int = 0
    pages: int = 0
    duration_s: float = 0.0
    error: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        row: dict[str, Any] = {"list_id": self.list_id, "members": self.members, "added": self.added,
                               "removed": self.removed, "query_pages": self.pages, "duration_s": self.duration_s}
        return row | ({"error": self.error} if self.error else {})


class QueryRefused(Exception):
    """A list whose query cannot be its membership (the wrong table, or none)."""


def member_table(row: dict[str, Any]) -> str:
    """The table a dynamic list's members come from: its query's entity, which must be a people table and agree
    with the list's member type (`createdfromcode`)."""
    entity = query_entity(row.get("query") or "")
    if entity not in PERSON_TABLES:
        raise QueryRefused(f"the query selects {entity!r} records; a list's members are contacts, leads or accounts")
    expected = MEMBER_TYPES.get(row.get("createdfromcode"))
    if expected is not None and entity != expected:
        raise QueryRefused(f"the query selects {entity} records, but the list's members are {expected} records "
                           f"(createdfromcode {row.get('createdfromcode')})")
    return entity


def evaluate(crm: DataverseClient, store: StateStore, account: str, row: dict[str, Any]) -> ListOutcome:
    """Run one dynamic list's query, keep its result and mark who entered or left; a failure is the outcome's
    error, and leaves the list's members as its last success left them."""
    started, list_id, name = time.monotonic(), row["listid"], row.get("listname") or row["listid"]
    read = None
    try:
        table = member_table(row)
        read = crm.read_query_keys(row["query"])
        selected = [record_id for page in read for record_id in page]
    except DataverseAuthError:
        raise  # the account's credentials, not this list: no other list could be read either
    except (FetchXmlError, QueryRefused, DataverseError) as error:
        message = f"dynamic list {name!r}: its query failed: {error}"
        store.evaluations.fail(account, list_id, message)
        return ListOutcome(list_id, name, pages=read.pages if read else 0, error=message,
                           duration_s=round(time.monotonic() - started, 3))
    change = store.evaluations.save(account, list_id, table, selected)
    if change.before is None or change.before.error is not None:
        # a first evaluation, or the first success after a failure: what changed meanwhile is not known by marks
        require_full_sync(store, {account})
    else:
        _mark(store, table, [*change.entered, *change.left])
    return ListOutcome(list_id, name, members=len(set(selected)), added=len(change.entered),
                       removed=len(change.left), pages=read.pages, duration_s=round(time.monotonic() - started, 3))


def _mark(store: StateStore, table: str, record_ids: list[str]) -> None:
    """Mark the addresses of these records (and those without one by id), so an incremental sync looks at them."""
    held = store.mirror.addresses([table], record_ids)
    store.mirror.mark_changed(key for _, _, key in held if key)
    store.mirror.mark_records_changed((table, crm_id) for table, crm_id, key in held if not key)


def _by_name(outcomes: list[ListOutcome]) -> dict[str, dict[str, Any]]:
    """Each list's figures by its name (with its id where two lists share a name)."""
    names = [o.name for o in outcomes]
    return {(o.name if names.count(o.name) == 1 else f"{o.name} ({o.list_id})"): o.as_metadata() for o in outcomes}


def _table(outcomes: list[ListOutcome]) -> str:
    lines = ["| list | members | added | removed | pages | seconds | error |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {o.name} | {o.members} | {o.added} | {o.removed} | {o.pages} | {o.duration_s} | {o.error or ''} |"
              for o in outcomes]
    return "\n".join(lines)


@dg.asset(
    group_name="audience", partitions_def=email_account_partitions, deps=[crm_marketing_lists],
    kinds={"dataverse"}, pool="dataverse",
    op_tags={"dagster/priority": "1"},  # on the longest path of a run: beside the largest extracts, not after them
    check_specs=[dg.AssetCheckSpec(QUERIES_CHECK, asset="dynamic_list_members",
                                   description="Warns while a dynamic list's query fails (its book is held back).")],
    description="The members of the account's dynamic lists: what each list's FetchXML query selects now.",
)
def dynamic_list_members(context: dg.AssetExecutionContext, dataverse: DataverseResource, state: StateStoreResource):
    started, account = time.monotonic(), partition_account(context, state)
    with state.open() as store:
        lists = [row for row in account_lists(store, account) if is_dynamic(row)]
        with dataverse.client() as crm:
            outcomes = [evaluate(crm, store, account, row) for row in lists]
            calls = crm.counter.snapshot()
        store.evaluations.forget_others(account, [row["listid"] for row in lists])
        store.add_api_calls(account, "dataverse", calls)
    failed = [outcome for outcome in outcomes if outcome.error]
    for outcome in failed:
        context.log.error("%s; its address book is left as it was", outcome.error)
    yield dg.MaterializeResult(metadata={
        "lists": dg.MetadataValue.int(len(outcomes)),
        "lists_failed": dg.MetadataValue.int(len(failed)),
        "members_evaluated": dg.MetadataValue.int(sum(o.members for o in outcomes)),
        "members_added": dg.MetadataValue.int(sum(o.added for o in outcomes)),
        "members_removed": dg.MetadataValue.int(sum(o.removed for o in outcomes)),
        "query_pages": dg.MetadataValue.int(sum(o.pages for o in outcomes)),
        "by_list": dg.MetadataValue.json(_by_name(outcomes)),
        "summary": dg.MetadataValue.md(_table(outcomes)),
        "dataverse_requests": dg.MetadataValue.int(calls_made(calls)),
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
    })
    yield dg.AssetCheckResult(
        check_name=QUERIES_CHECK, passed=not failed, severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(o.error for o in failed) if failed else f"{len(outcomes)} dynamic lists evaluated",
        metadata={"failed": dg.MetadataValue.json({o.name: o.error for o in failed})})

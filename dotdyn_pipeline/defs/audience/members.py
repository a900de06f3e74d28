"""Validate: each account's list members, from the mirror, with consent applied, checked and de-duplicated.

A sync looks at every member, or, when its account has synced before, only at the members holding an address
that changed since (changes.py); the frame carries that scope down to the load.

Every member row ends in exactly one place: kept, quarantined (with the rule it broke and the value), or
skipped under one counted reason (see selection.py), and the metadata says how many went where.
"""

import json
import time
from collections.abc import Iterable
from itertools import chain
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from dotdyn_pipeline.defs.accounts.accounts import email_account_partitions
from dotdyn_pipeline.defs.accounts.partitions import partition_account
from dotdyn_pipeline.defs.audience.changes import SCOPE_ATTR, Scope, scope_for
from dotdyn_pipeline.defs.audience.extract import (
    EXTRACT_ASSETS,
    LIST_MEMBERS,
    MEMBER_TYPES,
    PERSON_TABLES,
    activated_lists,
    is_dynamic,
)
from dotdyn_pipeline.defs.audience.mappings import Attributes, DataMapping, check_mappings, mapping_rows
from dotdyn_pipeline.defs.audience.selection import SKIP_REASONS, apply_consent, one_per_email
from dotdyn_pipeline.resources import DataverseResource, StateStoreResource
from dotdyn_pipeline.runtime.collector import collector_paused
from dotdyn_pipeline.runtime.forked import forked
from dotdyn_pipeline.schemas.audience import AudienceMember
from dotdyn_pipeline.schemas.email import normalise_emails
from dotdyn_pipeline.schemas.frame_type import ModelFrameType
from dotdyn_pipeline.schemas.quarantine import split_valid
from dotdyn_pipeline.settings import Settings
from dotdyn_pipeline.state import QuarantinedRow, StateStore
from dotdyn_pipeline.state.evaluations import QUERY_MEMBERS

_DEFAULTS = Settings.from_env()


class MemberQualityConfig(dg.Config):
    """When a batch of members is unsafe to send; a run may set them, the environment gives their defaults."""

    max_quarantine_share: float = Field(
        default=_DEFAULTS.max_quarantine_share, ge=0, le=1,
        description="The run fails when more than this share of the checked rows is quarantined "
                    "(DOTDYN_MAX_QUARANTINE_SHARE).")
    quarantine_min_rows: int = Field(
        default=_DEFAULTS.quarantine_min_rows, ge=0,
        description="...once the batch has at least this many checked rows: a few bad rows among the handful "
                    "an incremental sync looks at say nothing of the batch (DOTDYN_QUARANTINE_MIN_ROWS).")

#: Where record ids (GUIDs, in hex) are split in two: eight of the sixteen digits on either side, in either case.
HALFWAY_RECORD_ID = "8"
QUALITY_CHECK = "member_quality"
AUDIENCE_MEMBERS = ModelFrameType(AudienceMember)
BASE_COLUMNS = ["list_id", "crm_table", "crm_id", "email_raw", "donotbulkemail", "donotemail", "active",
                "modifiedon"]
TEXT_COLUMNS = ("list_id", "crm_table", "crm_id")
#: Where a frame carries the ids of the lists held back from this sync (a dynamic list whose query failed: its
#: book is left as it was), as one JSON text, down to the load.
HELD_BACK_ATTR = "dotdyn_held_back_lists"
#: The asset that evaluates the dynamic lists' queries (dynamic.py, which reads the lists as this module does).
DYNAMIC_LISTS_ASSET = "dynamic_list_members"


def account_lists(store: StateStore, account_id: str) -> list[dict[str, Any]]:
    """The account's active marketing lists that are activated for email."""
    return [row for row in activated_lists(store) if row.get("_esc_emailaccountid_value") == account_id]


def link_table(row: dict[str, Any]) -> str:
    """The mirror's table of the list's links to its members: its listmember rows, or for a dynamic list the
    records its query selected (dynamic.py)."""
    return QUERY_MEMBERS if is_dynamic(row) else LIST_MEMBERS.logical_name


def by_link_table(lists: Iterable[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The lists' ids grouped by the mirror table that holds their links."""
    groups: dict[str, list[str]] = {}
    for row in lists:
        groups.setdefault(link_table(row), []).append(row["listid"])
    return sorted(groups.items())


def by_member_table(lists: Iterable[dict[str, Any]]) -> list[tuple[tuple[str, tuple[str, ...]], list[str]]]:
    """The lists' ids grouped by the table of their links and the table their members come from: the list's
    member type, or every people table for a list without a known one, so that a member is looked up in one
    table instead of three."""
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for row in lists:
        table = MEMBER_TYPES.get(row.get("createdfromcode"))
        groups.setdefault((link_table(row), (table,) if table else PERSON_TABLES), []).append(row["listid"])
    return list(groups.items())


def account_mappings(store: StateStore, account_id: str, attributes: Attributes) -> list[DataMapping]:
    """The account's active data mappings that pass their check, as the extract read them (mappings.py): a bad
    one is left out here as it was there, and audience_contacts quarantines it."""
    return check_mappings(mapping_rows(store, account_id), PERSON_TABLES, attributes).valid


def member_frame(members: Iterable[tuple[str, str, str, dict[str, Any]]],
                 mappings: list[DataMapping]) -> pd.DataFrame:
    """One row per (list, record), built column by column so a million members stay compact."""
    fields = sorted({m.field for m in mappings})
    columns: dict[str, list[Any]] = {name: [] for name in [*BASE_COLUMNS, *fields]}
    sources: dict[str, dict[str, str]] = {}  # entity -> field -> attribute (the last mapping of a field wins)
    for mapping in mappings:
        sources.setdefault(mapping.entity, {})[mapping.field] = mapping.attribute
    # for each entity, every field column with the attribute that fills it (None: no value for this entity)
    fill = {entity: [(columns[name], attributes.get(name)) for name in fields]
            for entity, attributes in sources.items()}
    unmapped = [(columns[name], None) for name in fields]
    tables, crm_ids, raw, bulk, never, active, modified = (columns[name] for name in BASE_COLUMNS[1:])
    lists = columns["list_id"]
    shared: dict[Any, Any] = {}  # one object per distinct value: lists, tables, cities... are held once
    with collector_paused():  # each row read is a tuple and a dict: see collector.py
        for list_id, table, crm_id, data in members:
            lists.append(shared.setdefault(list_id, list_id))
            tables.append(shared.setdefault(table, table))
            crm_ids.append(crm_id)  # the values of one record are its own: sharing them would only cost
            raw.append(data.get("emailaddress1"))
            bulk.append(bool(data.get("donotbulkemail")))
            never.append(bool(data.get("donotemail")))
            active.append(data.get("statecode", 0) == 0)
            modified.append(data.get("modifiedon"))
            for column, attribute in fill.get(table, unmapped):
                value = data.get(attribute)
                column.append(shared.setdefault(value, value) if type(value) is str else value)
    # Column by column, each list let go once it is an array, and no copy into one block: built from all the
    # lists at once, a frame holds two more copies of them at its peak. Text stays text with no member in scope.
    frame = pd.DataFrame({name: pd.Series(columns.pop(name), dtype="string" if name in TEXT_COLUMNS else None)
                          for name in list(columns)}, copy=False)
    frame["email_raw"] = frame["email_raw"].astype("string")
    frame["email"] = normalise_emails(frame["email_raw"])
    frame["modifiedon"] = pd.to_datetime(frame["modifiedon"], utc=True, format="ISO8601")
    for flag in ("donotbulkemail", "donotemail", "active"):
        frame[flag] = frame[flag].astype(bool)
    return frame


def every_member(state: StateStoreResource, store: StateStore, lists: list[dict[str, Any]],
                 mappings: list[DataMapping], *, in_two: bool) -> pd.DataFrame:
    """The frame of every member of `lists` (a full pass). `in_two`: the members of half of the records are
    read and shaped in a forked copy of this process meanwhile, on another core."""
    groups = by_member_table(lists)

    def frame_of(source: StateStore, record_ids: tuple[str | None, str | None]) -> pd.DataFrame:
        return member_frame(chain.from_iterable(source.mirror.members(links, ids, tables, record_ids)
                                                for (links, tables), ids in groups), mappings)

    if not in_two:
        return frame_of(store, (None, None))

    def upper_half() -> pd.DataFrame:
        with state.open() as own:  # the copy's own connection: the parent's is not its to use
            return frame_of(own, (HALFWAY_RECORD_ID, None))

    with forked(upper_half) as other_half:
        lower = frame_of(store, (None, HALFWAY_RECORD_ID))
        upper = other_half()
    if lower.empty or upper.empty:  # concatenated with an empty frame, a column could change its type
        return upper if lower.empty else lower
    return pd.concat([lower, upper], ignore_index=True)


def quarantine_rows(frame: pd.DataFrame, failures: pd.DataFrame, account: str, run_id: str) -> list[QuarantinedRow]:
    """State store rows for pandera or conversion failures (`FAILURE_COLUMNS`) of `frame`'s rows."""
    rows = frame.loc[failures["index"], ["crm_table", "crm_id", "email_raw"]]
    reasons = {"email.syntax": "not a valid email address", "email.required": "no email address",
               "email.too_long": "longer than 254 characters"}
    return [QuarantinedRow(account=account, source_table=table, record_id=crm_id, rule=rule,
                           reason=reasons.get(rule, rule.replace(".", ": ").replace("_", " ")),
                           column_name=column, value=_text(raw if column == "email" else value), run_id=run_id)
            for (table, crm_id, raw), rule, column, value in zip(
                rows.itertuples(index=False, name=None), failures["rule"], failures["column"], failures["value"],
                strict=True)]


def batch_is_safe(quarantined: int, checked: int, config: MemberQualityConfig) -> bool:
    """Whether a batch may be sent: too small to judge, or no more than the configured share of it quarantined."""
    return checked < config.quarantine_min_rows or quarantined <= config.max_quarantine_share * checked


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _sample(rows: list[QuarantinedRow], limit: int = 10) -> str:
    lines = ["| table | record | rule | value |", "|---|---|---|---|"]
    lines += [f"| {r.source_table} | {r.record_id} | {r.rule} | {str(r.value)[:60]} |" for r in rows[:limit]]
    return "\n".join(lines)


@dg.asset(
    group_name="audience", partitions_def=email_account_partitions, deps=[*EXTRACT_ASSETS, DYNAMIC_LISTS_ASSET],
    dagster_type=AUDIENCE_MEMBERS.dagster_type, kinds={"pandas"},
    check_specs=[dg.AssetCheckSpec(QUALITY_CHECK, asset="audience_members", blocking=True,
                                   description="Fails the run when the batch as a whole is unsafe "
                                               "(too large a share of rows quarantined).")],
    description="The account's list members who may be emailed: consenting, valid, one per address per list.",
)
def audience_members(context: dg.AssetExecutionContext, config: MemberQualityConfig, state: StateStoreResource,
                     dataverse: DataverseResource):
    started, account = time.monotonic(), partition_account(context, state)
    with state.open() as store:
        scope = scope_for(store, account)
        lists, held_back = lists_to_sync(store, account)
        for row in held_back:
            context.log.warning("list %r is held back from this sync: its query failed (see %s); its address book "
                                "is left as it was", row.get("listname"), DYNAMIC_LISTS_ASSET)
        with dataverse.client() as crm:  # the mappings are checked against the tables' metadata
            mappings = account_mappings(store, account, crm.attributes)
        frame, without_record = read_members(state, store, account, scope, lists, mappings)
        rows_in = len(frame)
        consent = apply_consent(frame, **consent_facts(store, account, scope, lists))
        del frame  # the batch is held once at a time: what consent keeps is checked and de-duplicated
        split = split_valid(consent.kept, AudienceMember)
        quarantined = quarantine_rows(consent.kept, split.failures, account, context.run.run_id)
        store.quarantine(quarantined)
        unique = one_per_email(split.valid)
    skipped = {reason: 0 for reason in SKIP_REASONS} | consent.skipped_counts() | unique.skipped_counts()
    checked, quarantined_rows = len(consent.kept), split.quarantined_rows
    by_rule = split.failures["rule"].value_counts().to_dict() if len(split.failures) else {}
    del consent, split  # the output is written while this step waits at `yield`: hold only what it sends
    unique.kept.attrs[SCOPE_ATTR] = scope.to_attr()
    unique.kept.attrs[HELD_BACK_ATTR] = json.dumps(sorted(row["listid"] for row in held_back))
    yield dg.Output(AUDIENCE_MEMBERS.mark_validated(unique.kept), metadata={  # rows of split.valid only
        **_scope_metadata(scope),
        "lists": dg.MetadataValue.int(len(lists)),
        "lists_held_back": dg.MetadataValue.int(len(held_back)),
        "rows_in": dg.MetadataValue.int(rows_in),
        **({} if without_record is None else {"members_without_record": dg.MetadataValue.int(without_record)}),
        "rows_out": dg.MetadataValue.int(len(unique.kept)),
        "rows_quarantined": dg.MetadataValue.int(quarantined_rows),
        **{f"skipped_{reason}": dg.MetadataValue.int(n) for reason, n in skipped.items()},
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
        "dagster/row_count": dg.MetadataValue.int(len(unique.kept)),
    })
    yield quality_check(quarantined, quarantined_rows, checked, by_rule, config)


def read_members(state: StateStoreResource, store: StateStore, account: str, scope: Scope,
                 lists: list[dict[str, Any]], mappings: list[DataMapping]) -> tuple[pd.DataFrame, int | None]:
    """The members a sync looks at, before consent and validation, with a column per mapped data field: every
    member of the account's lists on a full pass, with how many list members have no record in the mirror; on an
    incremental pass, those of the addresses and records in scope (and None)."""
    groups = by_link_table(lists)
    if not scope.full:
        frame = member_frame(chain.from_iterable(store.mirror.members_with_keys(
            links, list_ids, PERSON_TABLES, scope.keys, scope.records) for links, list_ids in groups), mappings)
        return frame, None
    links = sum(store.mirror.link_count(table, list_ids) for table, list_ids in groups)
    in_two = links >= Settings.from_env().members_in_two_from
    frame = every_member(state, store, lists, mappings, in_two=in_two)
    return frame, links - len(frame)


def lists_to_sync(store: StateStore, account: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The account's lists that this sync loads, and those it holds back: the dynamic lists whose members are
    not known as of now (their query failed, or has never run)."""
    lists = account_lists(store, account)
    unknown = store.evaluations.unusable(row["listid"] for row in lists if is_dynamic(row))
    return ([row for row in lists if row["listid"] not in unknown], [row for row in lists if row["listid"] in unknown])


def consent_facts(store: StateStore, account: str, scope: Scope, lists: list[dict[str, Any]]) -> dict[str, Any]:
    """What consent says of the addresses in scope: opted out in Dynamics, unsubscribed from the account, and
    unsubscribed from one list's address book (apply_consent's arguments)."""
    books = {row["esc_addressbookid"]: row["listid"] for row in lists if row.get("esc_addressbookid")}
    account_wide = store.unsubscribed_emails(account)
    return {"opted_out": store.mirror.opted_out_keys(scope.keys), "unsubscribed": account_wide,
            "list_unsubscribed": {list_id: store.unsubscribed_emails(account, book) - account_wide
                                  for book, list_id in books.items()}}


def quality_check(quarantined: list[QuarantinedRow], quarantined_rows: int, checked: int, by_rule: dict[str, int],
                  config: MemberQualityConfig) -> dg.AssetCheckResult:
    """The member quality check: fails, blocking the load, when the batch as a whole is unsafe."""
    share = quarantined_rows / checked if checked else 0.0
    return dg.AssetCheckResult(
        check_name=QUALITY_CHECK, passed=batch_is_safe(quarantined_rows, checked, config),
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{quarantined_rows} of {checked} checked rows quarantined ({share:.1%}); a batch of "
                    f"{config.quarantine_min_rows} rows or more is unsafe above {config.max_quarantine_share:.0%}",
        metadata={"quarantined": dg.MetadataValue.int(quarantined_rows),
                  "checked": dg.MetadataValue.int(checked), "share": dg.MetadataValue.float(round(share, 4)),
                  "by_rule": dg.MetadataValue.json(by_rule), "sample": dg.MetadataValue.md(_sample(quarantined))})


def _scope_metadata(scope: Scope) -> dict[str, dg.MetadataValue]:
    metadata = {"scope": dg.MetadataValue.text("every address" if scope.full
                                               else "addresses changed since the last sync"),
                "scope_reason": dg.MetadataValue.text(scope.reason)}
    if not scope.full:
        metadata |= {"addresses_in_scope": dg.MetadataValue.int(len(scope.keys)),
                     "records_without_address_in_scope": dg.MetadataValue.int(len(scope.records))}
    return metadata

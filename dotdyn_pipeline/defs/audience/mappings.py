"""Data mappings (`esc_emaildatamapping`): which CRM attribute feeds which Dotdigital data field, per account,
checked before anything uses them.

The people extracts serve every account at once: each selects the attributes that any account's mappings name
for its table, and Dataverse refuses a whole read when its `$select` names one column the table does not serve.
One account's misspelt attribute would so fail every account's sync. Each mapping is therefore checked first:
its table must be one whose people sync, its attribute one the table's metadata (EntityDefinitions(...)/
Attributes) lists and the Web API serves, its data field name and type ones Dotdigital takes. A mapping that
fails is left out of the shared reads and of its account's sync, which goes on with its other mappings and
quarantines the bad one with the rule it broke (audience_contacts). The extract and the account's steps run the
same check on the same metadata, so they agree on it without recording it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from dotdyn_pipeline.connectors.dataverse.client import AttributeInfo
from dotdyn_pipeline.connectors.dotdigital.models import DATA_FIELD_TYPES, check_data_field_name
from dotdyn_pipeline.defs.audience.changes import ACCOUNT_COLUMN
from dotdyn_pipeline.state import QuarantinedRow, StateStore

MAPPING_TABLE = "esc_emaildatamapping"
MAPPINGS_CHECK = "data_mappings"
#: A table's columns by logical name, from its metadata (`DataverseClient.attributes`).
Attributes = Callable[[str], Mapping[str, AttributeInfo]]
_TYPES = {kind.casefold(): kind for kind in DATA_FIELD_TYPES}


@dataclass(frozen=True)
class DataMapping:
    """One CRM attribute -> Dotdigital data field, for one table of one account."""

    entity: str
    attribute: str  # the column the rows hold the value in (a lookup's is `_<name>_value`)
    field: str
    type: str


@dataclass(frozen=True)
class BadMapping:
    """A mapping left out: what it says, the rule it broke and why, and the column of its row at fault."""

    mapping_id: str
    account: str
    entity: str
    attribute: str
    field: str
    rule: str
    reason: str
    column: str
    value: str | None

    def quarantined(self, run_id: str) -> QuarantinedRow:
        return QuarantinedRow(account=self.account, source_table=MAPPING_TABLE, record_id=self.mapping_id,
                              rule=self.rule, reason=self.reason, column_name=self.column, value=self.value,
                              run_id=run_id)


@dataclass(frozen=True)
class MappingCheck:
    valid: list[DataMapping]
    bad: list[BadMapping]


def table_name(row: dict[str, Any]) -> str:
    """The mapping's table as a logical name (always lower case in Dataverse)."""
    return (row.get("esc_entityname") or "").strip().lower()


def mapping_rows(store: StateStore, account: str | None = None) -> list[dict[str, Any]]:
    """The active data mappings of `account` (None: of every account) in the mirror."""
    return [row for row in store.mirror.rows(MAPPING_TABLE)
            if row.get("statecode", 0) == 0 and row.get(ACCOUNT_COLUMN)
            and (account is None or row[ACCOUNT_COLUMN] == account)]


def check_mappings(rows: Iterable[dict[str, Any]], tables: Collection[str], attributes: Attributes) -> MappingCheck:
    """Split mapping rows into those to use and those to leave out; `tables` are those a mapping may name.
    Metadata is read only for the tables the rows name."""
    valid, bad = [], []
    for row in rows:
        checked = check_mapping(row, tables, attributes)
        (valid if isinstance(checked, DataMapping) else bad).append(checked)
    return MappingCheck(valid, bad)


def check_mapping(row: dict[str, Any], tables: Collection[str], attributes: Attributes) -> DataMapping | BadMapping:
    entity, attribute = table_name(row), (row.get("esc_attributename") or "").strip().lower()
    field, kind = (row.get("esc_datafieldname") or "").strip(), (row.get("esc_datafieldtype") or "String").strip()

    def bad(rule: str, column: str, reason: str) -> BadMapping:
        value = row.get(column)
        return BadMapping(row["esc_emaildatamappingid"], row.get(ACCOUNT_COLUMN) or "", entity, attribute, field,
                          f"mapping.{rule}", reason, column, None if value is None else str(value))

    if not attribute or not field:
        return bad("incomplete", "esc_attributename" if not attribute else "esc_datafieldname",
                   f"names no {'CRM attribute' if not attribute else 'Dotdigital data field'}")
    if entity not in tables:
        return bad("unknown_table", "esc_entityname",
                   f"{entity or 'no table'} is not a table whose people sync ({', '.join(tables)})")
    try:
        field = check_data_field_name(field)
    except ValueError as exc:
        return bad("invalid_data_field_name", "esc_datafieldname", str(exc))
    if kind.casefold() not in _TYPES:
        return bad("unknown_type", "esc_datafieldtype",
                   f"data field type {kind!r} is not one of {', '.join(DATA_FIELD_TYPES)}")
    column = attributes(entity).get(attribute)
    if column is None:
        return bad("unknown_attribute", "esc_attributename", f"{entity} has no attribute {attribute!r}")
    if column.web_name is None:
        why = (f"derived from {column.attribute_of}" if column.attribute_of else "not valid for read")
        return bad("attribute_not_readable", "esc_attributename",
                   f"{entity}.{attribute} is {why}: the Web API serves no value of that name")
    return DataMapping(entity, column.web_name, field, _TYPES[kind.casefold()])


def bad_mappings_table(bad: list[BadMapping]) -> str:
    lines = ["| mapping | table | attribute | data field | rule | reason |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(text) for text in (b.mapping_id, b.entity, b.attribute, b.field, b.rule,
                                                          b.reason)) + " |" for b in bad]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Text from CRM data as one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def mappings_check(bad: list[BadMapping]) -> dg.AssetCheckResult:
    """Warns while the account has data mappings left out, naming each with the rule it broke."""
    named = "; ".join(f"{b.entity or '?'}.{b.attribute or '?'} -> {b.field or '?'} ({b.mapping_id}): {b.reason}"
                      for b in bad)
    return dg.AssetCheckResult(
        check_name=MAPPINGS_CHECK, passed=not bad, severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(bad)} data mappings left out and quarantined: {named}" if bad
        else "every active data mapping of the account is in use",
        metadata={"mappings_quarantined": dg.MetadataValue.int(len(bad)),
                  "quarantined_mappings": dg.MetadataValue.md(bad_mappings_table(bad))})

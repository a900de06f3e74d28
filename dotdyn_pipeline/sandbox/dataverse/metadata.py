"""Metadata the Web API serves: EntityDefinitions rows, their Attributes and Keys, `$metadata`, the service document."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import quoteattr

from dotdyn_pipeline.sandbox.dataverse.schema import BULK_MESSAGES, TABLES, Column, Table
from dotdyn_pipeline.sandbox.people import record_id

#: ObjectTypeCode of the standard tables (custom tables count up from 10000).
TYPE_CODES = {"account": 1, "contact": 2, "lead": 4, "list": 4300, "listmember": 4301, "campaign": 4400}
DATA_TABLES = [t for t in TABLES if t.system]


def _schema_name(logical: str) -> str:
    return logical if logical.startswith("esc_") else logical.capitalize()


def entity_definitions(tracked: set[str]) -> list[dict[str, Any]]:
    """One EntityDefinitions row per data table."""
    rows = []
    for number, table in enumerate(DATA_TABLES):
        rows.append({
            "MetadataId": record_id(0, "entity", number), "LogicalName": table.logical_name,
            "SchemaName": _schema_name(table.logical_name), "EntitySetName": table.entity_set,
            "PrimaryIdAttribute": table.primary_key, "PrimaryNameAttribute": table.primary_name,
            "ChangeTrackingEnabled": int(table.logical_name in tracked),
            "CanChangeTrackingBeEnabled": json.dumps({"Value": True, "CanBeChanged": True,
                                                      "ManagedPropertyLogicalName": "canchangetrackingbeenabled"}),
            "IsCustomEntity": int(table.custom),
            "ObjectTypeCode": TYPE_CODES.get(table.logical_name, 10_000 + number),
        })
    return rows


def message_filters() -> list[dict[str, Any]]:
    """sdkmessagefilters rows: which tables support CreateMultiple, UpdateMultiple and UpsertMultiple."""
    return [{"sdkmessagefilterid": record_id(0, f"filter:{message}", number), "primaryobjecttypecode": t.logical_name,
             "sdkmessagename": message}
            for number, t in enumerate(DATA_TABLES) if t.bulk_operations for message in BULK_MESSAGES]


def attributes(table: Table) -> list[dict[str, Any]]:
    """The table's AttributeMetadata: its columns, then the columns derived from them (`AttributeOf` set), which
    a real organisation lists too although the Web API serves no property of that name."""
    rows = []
    for number, column in enumerate(table.columns):
        rows.append({"MetadataId": record_id(0, f"attribute:{table.logical_name}", number),
                     "LogicalName": column.name, "SchemaName": column.name, "AttributeType": column.type
                     if column.type != "DateOnly" else "DateTime", "AttributeOf": None,
                     "IsPrimaryId": number == 0, "IsPrimaryName": column.name == table.primary_name,
                     "IsValidForRead": True,
                     "IsValidForCreate": column.name not in ("createdon", "modifiedon", "versionnumber"),
                     "IsValidForUpdate": number != 0 and column.name not in ("createdon", "modifiedon",
                                                                             "versionnumber"),
                     "MaxLength": column.max_length, "Targets": list(column.targets) or None})
    derived = [(name, kind, column) for column in table.columns for name, kind in _derived(column)]
    for number, (name, kind, column) in enumerate(derived):
        rows.append({"MetadataId": record_id(0, f"derived attribute:{table.logical_name}", number),
                     "LogicalName": name, "SchemaName": name, "AttributeType": kind, "AttributeOf": column.name,
                     "IsPrimaryId": False, "IsPrimaryName": False, "IsValidForRead": True,
                     "IsValidForCreate": False, "IsValidForUpdate": False, "MaxLength": None, "Targets": None})
    return rows


def _derived(column: Column) -> list[tuple[str, str]]:
    """(logical name, type) of the columns Dataverse derives from `column`: a lookup's record name (and, when it
    may point at more than one table, the table's name), an option's or a Boolean's label."""
    if column.is_lookup:
        return [(f"{column.name}name", "String")] + ([(f"{column.name}type", "EntityName")]
                                                      if len(column.targets) > 1 else [])
    if column.type in ("Picklist", "State", "Status", "Boolean"):
        return [(f"{column.name}name", "Virtual")]
    return []


def keys(table: Table) -> list[dict[str, Any]]:
    return [{"MetadataId": record_id(0, f"key:{table.logical_name}", number),
             "LogicalName": f"{table.logical_name}_key{number}", "SchemaName": f"{table.logical_name}_key{number}",
             "KeyAttributes": list(key), "EntityKeyIndexStatus": "Active"} for number, key in enumerate(table.keys)]


def service_document(api_url: str) -> dict[str, Any]:
    return {"@odata.context": f"{api_url}/$metadata",
            "value": [{"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set} for t in TABLES]}


def csdl(tracked: set[str]) -> str:
    """A compact CSDL document: entity types with keys and properties, entity sets, change-tracking annotations."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
             '<edmx:DataServices><Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" '
             'xmlns="http://docs.oasis-open.org/odata/ns/edm">']
    for table in TABLES:
        lines.append(f"<EntityType Name={quoteattr(table.logical_name)}><Key><PropertyRef "
                     f"Name={quoteattr(table.primary_key)} /></Key>")
        lines += [f"<Property Name={quoteattr(c.web_name)} Type={quoteattr(c.edm_type)} />" for c in table.columns
                  if c.type != "Complex"]
        lines += [f"<NavigationProperty Name={quoteattr(c.name)} Type={quoteattr('mscrm.' + c.targets[0])} />"
                  for c in table.columns if c.is_lookup]
        lines.append("</EntityType>")
    lines.append('<EntityContainer Name="System">')
    for table in TABLES:
        annotation = ('<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record><PropertyValue '
                      'Property="Supported" Bool="true" /></Record></Annotation>'
                      if table.logical_name in tracked else "")
        lines.append(f"<EntitySet Name={quoteattr(table.entity_set)} "
                     f"EntityType={quoteattr('Microsoft.Dynamics.CRM.' + table.logical_name)}>{annotation}</EntitySet>")
    lines.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return "\n".join(lines)

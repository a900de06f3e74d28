"""Metadata the Web API serves: EntityDefinitions rows, their Attributes and Keys, `$metadata`, the service document."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import quoteattr

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.schema import BULK_MESSAGES, Column, Table
from dotdyn_pipeline.sandbox.people import record_id


def _schema_name(logical: str) -> str:
    return logical if logical.startswith("esc_") else logical.capitalize()


def entity_definitions(catalog: Catalog) -> list[dict[str, Any]]:
    """One EntityDefinitions row per data table."""
    rows = []
    for number, table in enumerate(catalog.data_tables()):
        rows.append({
            "MetadataId": record_id(0, "entity", number), "LogicalName": table.logical_name,
            "SchemaName": _schema_name(table.logical_name), "EntitySetName": table.entity_set,
            "PrimaryIdAttribute": table.primary_key, "PrimaryNameAttribute": table.primary_name,
            "ChangeTrackingEnabled": int(catalog.is_tracked(table.logical_name)),
            "CanChangeTrackingBeEnabled": json.dumps({"Value": True, "CanBeChanged": True,
                                                      "ManagedPropertyLogicalName": "canchangetrackingbeenabled"}),
            "IsCustomEntity": int(table.custom),
            "ObjectTypeCode": catalog.type_code(table.logical_name),
        })
    return rows


def message_filters(catalog: Catalog) -> list[dict[str, Any]]:
    """sdkmessagefilters rows: which tables support CreateMultiple, UpdateMultiple and UpsertMultiple."""
    return [{"sdkmessagefilterid": record_id(0, f"filter:{message}", number), "primaryobjecttypecode": t.logical_name,
             "sdkmessagename": message}
            for number, t in enumerate(catalog.data_tables()) if t.bulk_operations for message in BULK_MESSAGES]


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


def service_document(catalog: Catalog, api_url: str) -> dict[str, Any]:
    return {"@odata.context": f"{api_url}/$metadata",
            "value": [{"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set} for t in catalog.tables()]}


def csdl(catalog: Catalog) -> str:
    """A compact CSDL document: entity types with keys and properties, entity sets, change-tracking annotations."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
             '<edmx:DataServices><Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" '
             'xmlns="http://docs.oasis-open.org/odata/ns/edm">']
    for table in catalog.tables():
        lines.append(f"<EntityType Name={quoteattr(table.logical_name)}><Key><PropertyRef "
                     f"Name={quoteattr(table.primary_key)} /></Key>")
        lines += [f"<Property Name={quoteattr(c.web_name)} Type={quoteattr(c.edm_type)} />" for c in table.columns
                  if c.type != "Complex"]
        lines += [f"<NavigationProperty Name={quoteattr(c.name)} Type={quoteattr('mscrm.' + c.targets[0])} />"
                  for c in table.columns if c.is_lookup]
        lines.append("</EntityType>")
    lines.append('<EntityContainer Name="System">')
    for table in catalog.tables():
        annotation = ('<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record><PropertyValue '
                      'Property="Supported" Bool="true" /></Record></Annotation>'
                      if catalog.is_tracked(table.logical_name) else "")
        lines.append(f"<EntitySet Name={quoteattr(table.entity_set)} "
                     f"EntityType={quoteattr('Microsoft.Dynamics.CRM.' + table.logical_name)}>{annotation}</EntitySet>")
    lines.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return "\n".join(lines)

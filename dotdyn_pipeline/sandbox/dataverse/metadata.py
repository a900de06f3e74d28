"""The Web API's description of itself: `$metadata`, the service document and sdkmessagefilters rows, all from
the catalog's current tables."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import quoteattr

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.schema import BULK_MESSAGES
from dotdyn_pipeline.sandbox.people import record_id

#: The metadata entity sets (served by definitions_api.py, not stored).
METADATA_SETS = ("EntityDefinitions", "RelationshipDefinitions")


def message_filters(catalog: Catalog) -> list[dict[str, Any]]:
    """sdkmessagefilters rows: which tables support CreateMultiple, UpdateMultiple and UpsertMultiple."""
    return [{"sdkmessagefilterid": record_id(0, f"filter:{message}", number), "primaryobjecttypecode": t.logical_name,
             "sdkmessagename": message}
            for number, t in enumerate(catalog.data_tables()) if t.bulk_operations for message in BULK_MESSAGES]


def service_document(catalog: Catalog, api_url: str) -> dict[str, Any]:
    sets = [t.entity_set for t in catalog.tables()] + list(METADATA_SETS)
    return {"@odata.context": f"{api_url}/$metadata",
            "value": [{"name": name, "kind": "EntitySet", "url": name} for name in sets]}


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

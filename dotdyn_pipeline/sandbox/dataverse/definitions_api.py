"""The metadata routes: `EntityDefinitions` and `RelationshipDefinitions`, read from the catalog (definitions.py)
and changed through customization.py.

Reads: the EntityDefinitions collection (`$select`, `$filter`, `$expand` of Attributes, Keys and the
relationship collections with nested `$select;$filter`, every row in one response), one definition by
`(LogicalName='x')` or `(<MetadataId>)`, its `Attributes` (also cast to one type, e.g.
`/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=OptionSet`), one attribute by logical
name or id (optionally cast), its `Keys`, `OneToManyRelationships`, `ManyToOneRelationships` and
`ManyToManyRelationships`, and RelationshipDefinitions of both kinds (`$filter=SchemaName eq '...'`, or by id or
schema name), as RelationshipMetadataBase or cast to `Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata` or
`Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata` (the kind's own properties only with the cast).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from dotdyn_pipeline.sandbox.dataverse import metadata_query as mq
from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.definitions import (
    ATTRIBUTE_PROPERTIES,
    CRM,
    ENTITY_NAVIGATIONS,
    ENTITY_PROPERTIES,
    KEY_PROPERTIES,
    MANY_TO_MANY_PROPERTIES,
    OPTION_SETS,
    RELATIONSHIP_BASE_PROPERTIES,
    RELATIONSHIP_PROPERTIES,
    TYPED_PROPERTIES,
    Definitions,
)
from dotdyn_pipeline.sandbox.dataverse.errors import NOT_FOUND, DataverseError, bad_request, segment_not_found
from dotdyn_pipeline.sandbox.dataverse.messages import ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.odata import split_segment, split_top_level
from dotdyn_pipeline.sandbox.dataverse.schema import Table

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NAMED = re.compile(r"^(LogicalName|SchemaName)\s*=\s*'((?:[^']|'')*)'$")
#: What each collection-valued navigation of an entity holds: (properties, type name).
NAVIGATION_TYPES = {"Attributes": (ATTRIBUTE_PROPERTIES, "AttributeMetadata"),
                    "Keys": (KEY_PROPERTIES, "EntityKeyMetadata"),
                    "OneToManyRelationships": (RELATIONSHIP_PROPERTIES, "OneToManyRelationshipMetadata"),
                    "ManyToOneRelationships": (RELATIONSHIP_PROPERTIES, "OneToManyRelationshipMetadata"),
                    "ManyToManyRelationships": (MANY_TO_MANY_PROPERTIES, "ManyToManyRelationshipMetadata")}
#: The relationship kinds RelationshipDefinitions may be cast to, and their properties.
RELATIONSHIP_TYPES = {"OneToManyRelationshipMetadata": RELATIONSHIP_PROPERTIES,
                      "ManyToManyRelationshipMetadata": MANY_TO_MANY_PROPERTIES}


class Customizer(Protocol):
    """The metadata writes (customization.py)."""

    def handle(self, request: ApiRequest, table: Table | None, rest: str) -> ApiResponse: ...


def _key(text: str | None) -> tuple[str, str] | None:
    """`LogicalName='x'` -> ("LogicalName", "x"); `<guid>` -> ("MetadataId", guid); None without a key."""
    if text is None:
        return None
    text = text.strip()
    named = _NAMED.match(text)
    if named:
        return named.group(1), named.group(2).replace("''", "'")
    if _GUID.match(text):
        return "MetadataId", text.lower()
    raise bad_request(f"The key '{text}' is not valid for a metadata entity: use LogicalName='name' or the "
                      "MetadataId.")


def _missing_entity(name: str, mapping: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND, f"The entity with a name = '{name}' with namemapping = '{mapping}' was "
                                          "not found in the MetadataCache.")


class DefinitionsApi:
    def __init__(self, catalog: Catalog, api_url: str, customizer: Customizer | None = None) -> None:
        self.catalog, self.api_url, self.customizer = catalog, api_url, customizer
        self.definitions = Definitions(catalog)

    def handle(self, request: ApiRequest) -> ApiResponse:
        name, key, rest = split_segment(request.path.strip("/"))
        if name == "RelationshipDefinitions":
            if request.method != "GET":
                return self._write(request, None, "RelationshipDefinitions" + (f"({key})" if key else "") +
                                   (f"/{rest}" if rest else ""))
            return self._relationships(_key(key), rest, request)
        located = _key(key)
        if located is None:
            if request.method == "GET" and rest == "":
                return self._entities(request)
            if rest:
                raise segment_not_found(rest)
            return self._write(request, None, "")
        table = self._table(*located)
        if request.method != "GET":
            return self._write(request, table, rest)
        if rest == "":
            return self._entity(table, request)
        head, attribute_key, tail = split_segment(rest)
        if head == "Attributes":
            if attribute_key is None:
                return self._attributes(table, tail, request)
            return self._attribute(table, _key(attribute_key), tail, request)
        if head == "Keys" and attribute_key is not None and not tail:
            return self._key_definition(table, _key(attribute_key), request)
        if head in ENTITY_NAVIGATIONS and attribute_key is None and not tail:
            return self._navigation(table, head, request)
        raise segment_not_found(rest)

    def _write(self, request: ApiRequest, table: Table | None, rest: str) -> ApiResponse:
        if self.customizer is None:
            raise DataverseError(405, "0x80060888", f"The HTTP method '{request.method}' is not allowed on metadata.")
        return self.customizer.handle(request, table, rest)

    def _table(self, by: str, value: str) -> Table:
        if by == "MetadataId":
            table = next((t for t in self.catalog.tables() if self.catalog.table_id(t.logical_name) == value), None)
        else:
            table = self.catalog.get(value.lower())
        if table is None:
            raise _missing_entity(value, "Logical" if by != "MetadataId" else "MetadataId")
        return table

    # -- EntityDefinitions -------------------------------------------------------------------------------
    def _entities(self, request: ApiRequest) -> ApiResponse:
        query = request.query
        mq.check_options(query, ("$select", "$filter", "$expand"))
        tables = self.catalog.tables()
        items = [self.definitions.entity(t) for t in tables]
        if query.get("$filter"):
            keep = mq.parse_filter(query["$filter"], ENTITY_PROPERTIES, "EntityMetadata")
            chosen = [(t, i) for t, i in zip(tables, items, strict=True) if keep(i)]
            tables, items = [t for t, _ in chosen], [i for _, i in chosen]
        items = self._expanded(tables, mq.select(items, query.get("$select"), ENTITY_PROPERTIES, "EntityMetadata"),
                               query.get("$expand"))
        return ApiResponse.json({"@odata.context": self._context("EntityDefinitions", query), "value": items})

    def _entity(self, table: Table, request: ApiRequest) -> ApiResponse:
        query = request.query
        mq.check_options(query, ("$select", "$expand"))
        item = mq.select([self.definitions.entity(table)], query.get("$select"), ENTITY_PROPERTIES, "EntityMetadata")
        item = self._expanded([table], item, query.get("$expand"))[0]
        return ApiResponse.json({"@odata.context": self._context("EntityDefinitions", query) + "/$entity", **item})

    def _expanded(self, tables: list[Table], items: list[dict[str, Any]], text: str | None) -> list[dict[str, Any]]:
        if not text:
            return items
        for expansion in split_top_level(text):
            name, options, rest = split_segment(expansion)
            if rest or name not in ENTITY_NAVIGATIONS:
                raise mq.no_property(expansion, "EntityMetadata")
            nested = mq.split_options(options or "")
            mq.check_options(nested, ("$select", "$filter"))
            properties, type_name = NAVIGATION_TYPES[name]
            keep = mq.parse_filter(nested["$filter"], properties, type_name) if nested.get("$filter") else None
            for table, item in zip(tables, items, strict=True):
                related = [r for r in self.definitions.navigation(table, name) if keep is None or keep(r)]
                item[name] = mq.select(related, nested.get("$select"), properties, type_name)
        return items

    def _navigation(self, table: Table, name: str, request: ApiRequest) -> ApiResponse:
        properties, type_name = NAVIGATION_TYPES[name]
        items = self._filtered(self.definitions.navigation(table, name), request, properties, type_name)
        return ApiResponse.json({"@odata.context": self._entity_context(table, name, request.query), "value": items})

    def _filtered(self, items: list[dict[str, Any]], request: ApiRequest, properties: set[str],
                  type_name: str) -> list[dict[str, Any]]:
        query = request.query
        mq.check_options(query, ("$select", "$filter"))
        if query.get("$filter"):
            keep = mq.parse_filter(query["$filter"], properties, type_name)
            items = [i for i in items if keep(i)]
        return mq.select(items, query.get("$select"), properties, type_name)

    # -- Attributes --------------------------------------------------------------------------------------
    def _attributes(self, table: Table, cast: str, request: ApiRequest) -> ApiResponse:
        items = self.definitions.attributes(table)
        if not cast:
            items = self._filtered(items, request, ATTRIBUTE_PROPERTIES, "AttributeMetadata")
            return ApiResponse.json({"@odata.context": self._entity_context(table, "Attributes", request.query),
                                     "value": items})
        type_name = self._cast(cast)
        items = [i for i in items if i["@odata.type"] == "#" + CRM + type_name]
        query = request.query
        mq.check_options(query, ("$select", "$filter", "$expand"))
        properties = ATTRIBUTE_PROPERTIES | TYPED_PROPERTIES[type_name]
        if query.get("$filter"):
            keep = mq.parse_filter(query["$filter"], properties, type_name)
            items = [i for i in items if keep(i)]
        chosen = mq.select(items, query.get("$select"), properties, type_name)
        self._option_sets(table, chosen, type_name, query.get("$expand"))
        return ApiResponse.json({"@odata.context": self._entity_context(table, f"Attributes/{CRM}{type_name}", query),
                                 "value": chosen})

    def _attribute(self, table: Table, located: tuple[str, str] | None, cast: str,
                   request: ApiRequest) -> ApiResponse:
        by, value = located or ("", "")
        found = next((i for i in self.definitions.attributes(table)
                      if (i["MetadataId"] == value if by == "MetadataId" else i["LogicalName"] == value.lower())),
                     None)
        if found is None:
            raise DataverseError(404, NOT_FOUND, f"Could not find attribute with {by} = '{value}' on entity "
                                                 f"'{table.logical_name}'.")
        type_name = found["@odata.type"].removeprefix("#" + CRM)
        if cast and self._cast(cast) != type_name:
            raise bad_request(f"The attribute '{found['LogicalName']}' is not a {cast.removeprefix(CRM)}.")
        query = request.query
        mq.check_options(query, ("$select", "$expand"))
        typed = TYPED_PROPERTIES[type_name] if cast else set()  # without a cast it is an AttributeMetadata
        item = mq.select([found], query.get("$select"), ATTRIBUTE_PROPERTIES | typed,
                         type_name if cast else "AttributeMetadata")
        self._option_sets(table, item, type_name if cast else "AttributeMetadata", query.get("$expand"))
        return ApiResponse.json({"@odata.context": self._entity_context(table, "Attributes", query) + "/$entity",
                                 **item[0]})

    @staticmethod
    def _cast(segment: str) -> str:
        type_name = segment.removeprefix(CRM)
        if not segment.startswith(CRM) or type_name not in TYPED_PROPERTIES:
            raise segment_not_found(segment)
        return type_name

    def _option_sets(self, table: Table, items: list[dict[str, Any]], type_name: str, text: str | None) -> None:
        """`$expand=OptionSet` / `GlobalOptionSet` (with a nested `$select`) on typed attributes."""
        if not text:
            return
        for expansion in split_top_level(text):
            name, options, rest = split_segment(expansion)
            if rest or name not in OPTION_SETS or name not in TYPED_PROPERTIES[type_name]:
                raise mq.no_property(expansion, type_name)
            nested = mq.split_options(options or "")
            mq.check_options(nested, ("$select",))
            for item in items:
                column = table.by_name.get(item["LogicalName"])
                option_set = self.definitions.option_set(table, column) if column and name == "OptionSet" else None
                if option_set is not None and nested.get("$select"):
                    option_set = mq.select([option_set], nested["$select"], set(option_set), "OptionSetMetadata")[0]
                item[name] = option_set

    # -- Keys and relationships --------------------------------------------------------------------------
    def _key_definition(self, table: Table, located: tuple[str, str] | None, request: ApiRequest) -> ApiResponse:
        by, value = located or ("", "")
        field = {"MetadataId": "MetadataId", "LogicalName": "LogicalName", "SchemaName": "SchemaName"}[by]
        found = next((k for k in self.definitions.keys(table) if str(k[field]).lower() == value.lower()), None)
        if found is None:
            raise DataverseError(404, NOT_FOUND, f"Could not find key with {by} = '{value}' on entity "
                                                 f"'{table.logical_name}'.")
        mq.check_options(request.query, ("$select",))
        item = mq.select([found], request.query.get("$select"), KEY_PROPERTIES, "EntityKeyMetadata")[0]
        return ApiResponse.json({"@odata.context": self._entity_context(table, "Keys", request.query) + "/$entity",
                                 **item})

    def _relationships(self, located: tuple[str, str] | None, rest: str, request: ApiRequest) -> ApiResponse:
        items = self.definitions.relationships()
        properties, type_name = RELATIONSHIP_BASE_PROPERTIES, "RelationshipMetadataBase"
        context = f"{self.api_url}/$metadata#RelationshipDefinitions"
        if rest:
            type_name = rest.removeprefix(CRM)
            if not rest.startswith(CRM) or type_name not in RELATIONSHIP_TYPES:
                raise segment_not_found(rest)
            properties = RELATIONSHIP_TYPES[type_name]
            items = [i for i in items if i["@odata.type"] == "#" + CRM + type_name]
            context += "/" + rest
        if located is None:
            items = self._filtered(items, request, properties, type_name)
            return ApiResponse.json({"@odata.context": context, "value": items})
        by, value = located
        field = "MetadataId" if by == "MetadataId" else "SchemaName"
        found = [i for i in items if str(i[field]).lower() == value.lower()]
        if not found:
            raise DataverseError(404, NOT_FOUND, f"Could not find relationship with {field} = '{value}'.")
        mq.check_options(request.query, ("$select",))
        item = mq.select(found, request.query.get("$select"), properties, type_name)[0]
        return ApiResponse.json({"@odata.context": context + "/$entity", **item})

    # -- contexts ----------------------------------------------------------------------------------------
    def _context(self, entity_set: str, query: dict[str, str]) -> str:
        chosen = query.get("$select")
        return f"{self.api_url}/$metadata#{entity_set}" + (f"({chosen})" if chosen else "")

    def _entity_context(self, table: Table, path: str, query: dict[str, str]) -> str:
        chosen = query.get("$select")
        return (f"{self.api_url}/$metadata#EntityDefinitions('{self.catalog.table_id(table.logical_name)}')/{path}"
                + (f"({chosen})" if chosen else ""))

"""Metadata writes as the Web API documents them: create a table (POST EntityDefinitions), a column (POST
.../Attributes), a one-to-many relationship with its lookup or a many-to-many relationship with its intersect
table (POST RelationshipDefinitions), an alternate key (POST .../Keys), and update a table (PUT
EntityDefinitions(...): change tracking, labels).

Each write first checks the caller's privilege as Microsoft lists it per message (prvCreateEntity,
prvWriteEntity, prvCreateAttribute, prvCreateRelationship, prvCreateEntityKey), then changes the catalog (a
new Table object) and the store (CREATE TABLE, ALTER TABLE ADD COLUMN, CREATE UNIQUE INDEX) together; rows are
never dropped. Names must carry the prefix of a publisher of the organisation; `MSCRM.SolutionUniqueName` must
name one of its solutions, which then holds the component (a new table with its columns, a relationship with
its lookup column), as `solutioncomponents` lists it. A many-to-many relationship links two different tables
(one relating a table to itself is not offered); each side's navigation property is named as the request says, or
after the relationship. An alternate key's index is Pending for
`dataverse.key_index_seconds`, then Active, or Failed when the rows are not unique on the key (as Dataverse
builds it asynchronously and leaves a failed key inactive). Deleting tables and columns is not offered: 405.
"""

from __future__ import annotations

from typing import Any, Protocol

from dotdyn_pipeline.sandbox.dataverse.catalog import ATTRIBUTE, ENTITY_KEY, RELATIONSHIP, Catalog, metadata_id
from dotdyn_pipeline.sandbox.dataverse.definitions import CRM, label_text
from dotdyn_pipeline.sandbox.dataverse.errors import (
    BAD_REQUEST,
    NOT_FOUND,
    DataverseError,
    bad_request,
    missing_solution,
)
from dotdyn_pipeline.sandbox.dataverse.messages import ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.schema import BULK_MESSAGES, Column, ManyToMany, Table, column, intersect_table
from dotdyn_pipeline.sandbox.dataverse.store import Store, q
from dotdyn_pipeline.solution import schema as solution

#: AttributeMetadata type a column may be created as -> the stand-in's attribute type.
COLUMN_TYPES = {"StringAttributeMetadata": "String", "MemoAttributeMetadata": "Memo",
                "IntegerAttributeMetadata": "Integer", "BigIntAttributeMetadata": "BigInt",
                "DoubleAttributeMetadata": "Double", "DecimalAttributeMetadata": "Decimal",
                "MoneyAttributeMetadata": "Money", "BooleanAttributeMetadata": "Boolean",
                "DateTimeAttributeMetadata": "DateTime", "PicklistAttributeMetadata": "Picklist"}
#: Columns Dataverse adds to a user-owned table: the owner (a user or a team) and where it belongs.
OWNERSHIP_COLUMNS = (column("ownerid", "Lookup", "systemuser", "team"), column("owninguser", "Lookup", "systemuser"),
                     column("owningteam", "Lookup", "team"),
                     column("owningbusinessunit", "Lookup", "businessunit"))
#: Table properties a PUT may change (the rest must keep their values).
UPDATABLE = ("DisplayName", "DisplayCollectionName", "Description", "HasActivities", "HasNotes")
DUPLICATE_NAME = "0x80044363"  # a table, column, relationship or key with that name exists (the stand-in's code)
INVALID_NAME = "0x80040203"  # InvalidArgument: no known prefix


class Guard(Protocol):
    def require(self, user_id: str, privilege: str) -> None: ...


def plural(logical_name: str) -> str:
    """The entity set name Dataverse derives from a logical name: y -> ies, s/x/ch/sh -> es, else s."""
    if logical_name.endswith("y") and logical_name[-2:-1] not in "aeiou":
        return logical_name[:-1] + "ies"
    if logical_name.endswith(("s", "x", "ch", "sh")):
        return logical_name + "es"
    return logical_name + "s"


def _schema_name(body: dict[str, Any], what: str) -> str:
    name = body.get("SchemaName")
    if not isinstance(name, str) or not name:
        raise bad_request(f"The {what} needs a SchemaName.")
    return name


def _duplicate(what: str, name: str) -> DataverseError:
    return DataverseError(400, DUPLICATE_NAME, f"A {what} with the name '{name}' already exists. Choose another "
                                               "SchemaName.")


def _missing_table(name: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND, f"The entity with a name = '{name}' with namemapping = 'Logical' was not "
                                          "found in the MetadataCache.")


class Customizer:
    """Answers the metadata writes for one organisation."""

    def __init__(self, store: Store, catalog: Catalog, api_url: str, guard: Guard, user_id: str,
                 bulk_messages: bool = True) -> None:
        self.store, self.catalog, self.api_url, self.guard, self.user_id = store, catalog, api_url, guard, user_id
        self.bulk_messages = bulk_messages

    def handle(self, request: ApiRequest, table: Table | None, rest: str) -> ApiResponse:
        method = request.method
        if method == "DELETE":
            raise DataverseError(405, BAD_REQUEST, "Deleting tables, columns, keys and relationships is not offered "
                                                   "by this organisation.")
        if rest.startswith("RelationshipDefinitions"):
            if method != "POST" or rest != "RelationshipDefinitions":
                raise DataverseError(405, BAD_REQUEST, f"The HTTP method '{method}' is not allowed here.")
            return self._relationship(request)
        if table is None and rest == "" and method == "POST":
            return self._table(request)
        if table is not None and rest == "" and method == "PUT":
            return self._update_table(request, table)
        if table is not None and rest in ("Attributes", "Keys") and method == "POST":
            return self._column(request, table) if rest == "Attributes" else self._key(request, table)
        raise DataverseError(405, BAD_REQUEST, f"The HTTP method '{method}' is not allowed here.")

    # -- checks ------------------------------------------------------------------------------------------
    def _check_name(self, name: str, what: str) -> str:
        """The logical name of a new component, which must start with a publisher's prefix."""
        prefix, sep, rest = name.partition("_")
        prefixes = self._prefixes()
        if not sep or not rest or prefix.lower() not in prefixes:
            raise DataverseError(400, INVALID_NAME, f"The {what} name '{name}' must begin with the customization "
                                                    f"prefix of a publisher of this organisation "
                                                    f"({', '.join(sorted(prefixes)) or 'none exists'}) and '_'.")
        return name.lower()

    def _prefixes(self) -> set[str]:
        publisher = self.catalog.get("publisher")
        if publisher is None:
            return {solution.PREFIX}
        return {row[0].lower() for row in self.store.db.execute(
            f"SELECT customizationprefix FROM {q(publisher.logical_name)} WHERE customizationprefix IS NOT NULL")}

    def _solution(self, request: ApiRequest) -> str | None:
        """The solution `MSCRM.SolutionUniqueName` names (which must exist), to hold what the request creates."""
        name = request.headers.get("mscrm.solutionuniquename")
        if not name:
            return None
        table = self.catalog.get("solution")
        if table is not None and self.store.find(table, {"uniquename": name}) is None:
            raise missing_solution(name)
        return name

    def _created(self, url: str) -> ApiResponse:
        return ApiResponse(204, headers={"OData-EntityId": url})

    # -- tables ------------------------------------------------------------------------------------------
    def _table(self, request: ApiRequest) -> ApiResponse:
        self.guard.require(self.user_id, "prvCreateEntity")
        body = _object(request)
        if body.get("@odata.type", CRM + "EntityMetadata").removeprefix("#") != CRM + "EntityMetadata":
            raise bad_request("The body of POST EntityDefinitions must be a Microsoft.Dynamics.CRM.EntityMetadata.")
        schema_name = _schema_name(body, "table")
        logical = self._check_name(schema_name, "table")
        entity_set = body.get("EntitySetName") or plural(logical)
        if self.catalog.get(logical) is not None or self.catalog.by_set(entity_set) is not None:
            raise _duplicate("table", schema_name)
        primary = [a for a in body.get("Attributes") or [] if isinstance(a, dict) and a.get("IsPrimaryName")]
        if len(primary) != 1 or primary[0].get("@odata.type", "").removeprefix("#") != CRM + "StringAttributeMetadata":
            raise bad_request("A new table needs exactly one StringAttributeMetadata with IsPrimaryName true in "
                              "'Attributes'.")
        name_column = self._new_column(primary[0], logical, set())
        ownership = body.get("OwnershipType", "UserOwned")
        if ownership not in ("UserOwned", "OrganizationOwned"):
            raise bad_request(f"The OwnershipType '{ownership}' is not valid: UserOwned or OrganizationOwned.")
        columns = (column(f"{logical}id", "Uniqueidentifier"), name_column, *solution.SYSTEM_COLUMNS,
                   *(OWNERSHIP_COLUMNS if ownership == "UserOwned" else ()))
        table = Table(logical, entity_set, name_column.name, columns, bulk_operations=True, custom=True,
                      description=label_text(body.get("Description")) or "",
                      display_name=label_text(body.get("DisplayName")) or "", schema_name=schema_name)
        solution_name = self._solution(request)
        with self.store.transaction():
            self.store.add_table(table)
            if self.bulk_messages:
                filters = self.catalog.table("sdkmessagefilter")
                for message in BULK_MESSAGES:
                    self.store.insert(filters, {"sdkmessagefilterid": metadata_id("filter", logical, message),
                                                "primaryobjecttypecode": logical, "sdkmessagename": message})
        self.catalog.add_table(table, bool(body.get("ChangeTrackingEnabled")))
        if solution_name:
            self.catalog.add_table_component(solution_name, logical)
        self.catalog.properties[(logical,)] = {
            "SchemaName": schema_name, "OwnershipType": ownership, "IsCustomEntity": True,
            **{name: bool(body.get(name)) for name in ("HasActivities", "HasNotes", "IsActivity")},
            **{name: label_text(body.get(name)) for name in ("DisplayName", "DisplayCollectionName", "Description")
               if label_text(body.get(name))}}
        self.catalog.properties[(logical, name_column.name)] = self._column_properties(primary[0])
        return self._created(f"{self.api_url}/EntityDefinitions({self.catalog.table_id(logical)})")

    def _update_table(self, request: ApiRequest, table: Table) -> ApiResponse:
        self.guard.require(self.user_id, "prvWriteEntity")
        body = _object(request)
        for name, current in (("LogicalName", table.logical_name), ("EntitySetName", table.entity_set)):
            if name in body and str(body[name]).lower() != current.lower():
                raise bad_request(f"The {name} of a table cannot be changed.")
        properties = self.catalog.properties.setdefault((table.logical_name,), {})
        merge = request.headers.get("mscrm.mergelabels", "").lower() == "true"
        for name in UPDATABLE:
            if name not in body:
                continue
            text = label_text(body[name]) if name in ("DisplayName", "DisplayCollectionName", "Description") \
                else bool(body[name])
            if text is not None or not merge:
                properties[name] = text
        if "ChangeTrackingEnabled" in body:
            wanted = bool(body["ChangeTrackingEnabled"])
            if wanted and not table.system:
                raise bad_request(f"Change tracking cannot be enabled for the entity '{table.logical_name}'.")
            if wanted != self.catalog.is_tracked(table.logical_name):
                self.catalog.set_tracking(table.logical_name, wanted)
        return ApiResponse(204)

    # -- columns -----------------------------------------------------------------------------------------
    def _new_column(self, body: dict[str, Any], table: str, existing: set[str]) -> Column:
        schema_name = _schema_name(body, "column")
        name = self._check_name(schema_name, "column")
        if name in existing:
            raise _duplicate("column", schema_name)
        type_name = str(body.get("@odata.type", "")).removeprefix("#").removeprefix(CRM)
        kind = COLUMN_TYPES.get(type_name)
        if kind is None:
            raise bad_request(f"The attribute type '{body.get('@odata.type')}' cannot be created here: use one of "
                              + ", ".join(CRM + t for t in COLUMN_TYPES)
                              + " (lookups through RelationshipDefinitions).")
        if kind == "DateTime" and (body.get("Format") == "DateOnly" or
                                   (body.get("DateTimeBehavior") or {}).get("Value") == "DateOnly"):
            kind = "DateOnly"
        max_length = body.get("MaxLength") if kind in ("String", "Memo") else None
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise bad_request("MaxLength must be a positive integer.")
        options: tuple[tuple[int, str], ...] = ()
        if kind == "Picklist":
            options = tuple((int(o["Value"]), label_text(o.get("Label")) or str(o["Value"]))
                            for o in ((body.get("OptionSet") or {}).get("Options") or []) if isinstance(o, dict))
        default = bool(body.get("DefaultValue")) if kind == "Boolean" else None
        return column(name, kind, max_length=max_length, doc=label_text(body.get("Description")) or "",
                      options=options, default=default)

    @staticmethod
    def _column_properties(body: dict[str, Any]) -> dict[str, Any]:
        properties: dict[str, Any] = {"SchemaName": body["SchemaName"], "IsCustomAttribute": True}
        if label_text(body.get("DisplayName")):
            properties["DisplayName"] = label_text(body.get("DisplayName"))
        required = body.get("RequiredLevel")
        if isinstance(required, dict) and required.get("Value"):
            properties["RequiredLevel"] = required["Value"]
        if isinstance(body.get("FormatName"), dict) and body["FormatName"].get("Value"):
            properties["Format"] = body["FormatName"]["Value"]
        option_set = body.get("OptionSet") or {}
        if body.get("@odata.type", "").endswith("BooleanAttributeMetadata"):
            properties["BooleanLabels"] = (label_text((option_set.get("TrueOption") or {}).get("Label")) or "Yes",
                                           label_text((option_set.get("FalseOption") or {}).get("Label")) or "No")
        return properties

    def _add_column(self, table: Table, new: Column) -> Table:
        with self.store.transaction():
            changed = self.catalog.add_column(table, new)
            self.store.add_column(changed, new)
        return changed

    def _column(self, request: ApiRequest, table: Table) -> ApiResponse:
        self.guard.require(self.user_id, "prvCreateAttribute")
        body = _object(request)
        new = self._new_column(body, table.logical_name, set(table.by_name))
        solution_name = self._solution(request)
        self._add_column(table, new)
        if solution_name:
            self.catalog.add_component(solution_name, ATTRIBUTE, self.catalog.column_id(table.logical_name, new.name),
                                       table=table.logical_name)
        self.catalog.properties[(table.logical_name, new.name)] = self._column_properties(body)
        return self._created(f"{self.api_url}/EntityDefinitions({self.catalog.table_id(table.logical_name)})/"
                             f"Attributes({self.catalog.column_id(table.logical_name, new.name)})")

    # -- relationships -----------------------------------------------------------------------------------
    def _relationship(self, request: ApiRequest) -> ApiResponse:
        self.guard.require(self.user_id, "prvCreateRelationship")
        body = _object(request)
        kind = str(body.get("@odata.type", "")).removeprefix("#")
        if kind not in (CRM + "OneToManyRelationshipMetadata", CRM + "ManyToManyRelationshipMetadata"):
            raise bad_request(f"The relationship type '{kind}' is not offered: create a "
                              f"{CRM}OneToManyRelationshipMetadata or a {CRM}ManyToManyRelationshipMetadata.")
        schema_name = _schema_name(body, "relationship")
        self._check_name(schema_name, "relationship")
        if self.catalog.relationship_taken(schema_name):
            raise _duplicate("relationship", schema_name)
        if kind == CRM + "ManyToManyRelationshipMetadata":
            return self._many_to_many(request, body, schema_name)
        referenced = self.catalog.get(str(body.get("ReferencedEntity", "")).lower())
        referencing = self.catalog.get(str(body.get("ReferencingEntity", "")).lower())
        if referenced is None or referencing is None:
            raise _missing_table(str(body.get("ReferencedEntity" if referenced is None else "ReferencingEntity")))
        if body.get("ReferencedAttribute", referenced.primary_key) != referenced.primary_key:
            raise bad_request(f"ReferencedAttribute must be the primary key of {referenced.logical_name}: "
                              f"{referenced.primary_key}.")
        lookup = body.get("Lookup")
        if not isinstance(lookup, dict) or str(lookup.get("@odata.type", "")).removeprefix("#") != (
                CRM + "LookupAttributeMetadata"):
            raise bad_request(f"The relationship needs a 'Lookup' of type {CRM}LookupAttributeMetadata.")
        lookup_name = self._check_name(_schema_name(lookup, "lookup"), "column")
        if lookup_name in referencing.by_name:
            raise _duplicate("column", lookup["SchemaName"])
        solution_name = self._solution(request)
        self._add_column(referencing, column(lookup_name, "Lookup", referenced.logical_name))
        self.catalog.name_relationship(referencing.logical_name, lookup_name, referenced.logical_name, schema_name)
        if solution_name:
            self.catalog.add_component(solution_name, RELATIONSHIP, self.catalog.relationship_id(schema_name))
            self.catalog.add_component(solution_name, ATTRIBUTE, self.catalog.column_id(referencing.logical_name,
                                                                                        lookup_name),
                                       table=referencing.logical_name)
        self.catalog.properties[(referencing.logical_name, lookup_name)] = self._column_properties(lookup)
        return self._created(f"{self.api_url}/RelationshipDefinitions({self.catalog.relationship_id(schema_name)})")

    def _many_to_many(self, request: ApiRequest, body: dict[str, Any], schema_name: str) -> ApiResponse:
        tables = []
        for side in ("Entity1LogicalName", "Entity2LogicalName"):
            found = self.catalog.get(str(body.get(side, "")).lower())
            if found is None:
                raise _missing_table(str(body.get(side)))
            tables.append(found.logical_name)
        if tables[0] == tables[1]:
            raise bad_request("A many-to-many relationship of a table with itself is not offered by this "
                              "organisation.")
        intersect = self._check_name(str(body.get("IntersectEntityName") or ""), "intersect entity")
        relationship = ManyToMany(schema_name, tables[0], tables[1], intersect,
                                  str(body.get("Entity1NavigationPropertyName") or ""),
                                  str(body.get("Entity2NavigationPropertyName") or ""))
        new_table = intersect_table(relationship)
        if self.catalog.get(intersect) is not None or self.catalog.by_set(new_table.entity_set) is not None:
            raise _duplicate("table", intersect)
        for logical, navigation in ((tables[0], relationship.entity1_navigation),
                                    (tables[1], relationship.entity2_navigation)):
            if self.catalog.side(logical, navigation) is not None or navigation in self.catalog.table(
                    logical).by_name:
                raise _duplicate(f"navigation property of {logical}", navigation)
        solution_name = self._solution(request)
        with self.store.transaction():
            self.store.add_table(new_table)
        self.catalog.add_many_to_many(relationship, new_table)
        if solution_name:
            self.catalog.add_component(solution_name, RELATIONSHIP, self.catalog.relationship_id(schema_name))
        return self._created(f"{self.api_url}/RelationshipDefinitions({self.catalog.relationship_id(schema_name)})")

    # -- keys --------------------------------------------------------------------------------------------
    def _key(self, request: ApiRequest, table: Table) -> ApiResponse:
        self.guard.require(self.user_id, "prvCreateEntityKey")
        body = _object(request)
        schema_name = _schema_name(body, "key")
        self._check_name(schema_name, "key")
        if any(k.schema_name.lower() == schema_name.lower() for k in self.catalog.keys(table.logical_name)):
            raise _duplicate("key", schema_name)
        attributes = body.get("KeyAttributes")
        if not isinstance(attributes, list) or not attributes or not all(isinstance(a, str) for a in attributes):
            raise bad_request("KeyAttributes must list the logical names of the key's columns.")
        columns = tuple(a.lower() for a in attributes)
        unknown = [c for c in columns if c not in table.by_name]
        if unknown:
            raise bad_request(f"The attribute '{unknown[0]}' does not exist on entity '{table.logical_name}'.")
        if columns in table.keys:
            raise _duplicate("key on the same columns as", schema_name)
        solution_name = self._solution(request)
        with self.store.transaction():
            unique = self.store.add_key_index(table, len(table.keys), columns)
            changed = self.catalog.add_key(table, schema_name, columns, unique)
            self.store.tables[table.logical_name] = changed
        if solution_name:
            self.catalog.add_component(solution_name, ENTITY_KEY, self.catalog.key_id(table.logical_name, schema_name),
                                       table=table.logical_name)
        if label_text(body.get("DisplayName")):
            self.catalog.properties[(table.logical_name, "key:" + schema_name)] = {
                "DisplayName": label_text(body.get("DisplayName"))}
        return self._created(f"{self.api_url}/EntityDefinitions({self.catalog.table_id(table.logical_name)})/"
                             f"Keys({self.catalog.key_id(table.logical_name, schema_name)})")


def _object(request: ApiRequest) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body

"""The Web API's metadata and security operations: what an organisation has, and creating what it lacks.

Written from Microsoft's documents ("Create and update table definitions using the Web API", "Create columns",
"Create and update table relationships" (one-to-many with their lookups, and many-to-many), "Define alternate
keys", "Query table definitions", the publisher, solution, role, solutioncomponent and systemuser entity types,
AddPrivilegesRole, AddSolutionComponent, WhoAmI and RetrieveVersion). Every metadata create names the solution in
the `MSCRM.SolutionUniqueName` header, so that what it makes joins the solution; a record (a role) joins it through
AddSolutionComponent, as Microsoft documents the header for metadata only. A refusal for a missing privilege
becomes `MissingPrivilege`, which names the privilege.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dotdyn_pipeline.connectors.dataverse import odata
from dotdyn_pipeline.connectors.dataverse.client import DataverseClient
from dotdyn_pipeline.connectors.dataverse.errors import DataverseAuthError, DataverseError
from dotdyn_pipeline.connectors.http import decode_json
from dotdyn_pipeline.solution.schema import Column, ManyToMany, Table

#: Dataverse's code for "the caller lacks a privilege" (HTTP 403), and how its message names the privilege.
MISSING_PRIVILEGE_CODE = "0x80040220"
_MISSING_PRIVILEGE = re.compile(r"missing (prv\w+) privilege")
#: Attribute types as the solution's definition names them -> AttributeType as EntityDefinitions reports it.
ATTRIBUTE_TYPES = {"DateOnly": "DateTime"}
#: Names per `name eq ... or ...` filter: keeps each query's URL far below the Web API's length limit.
NAMES_PER_QUERY = 40
LANGUAGE = 1033  # the labels' language: English
_KEYS = "Keys($select=SchemaName,KeyAttributes,EntityKeyIndexStatus)"
#: solutioncomponent.componenttype of a security role (Microsoft's option value).
ROLE_COMPONENT = 20


class MissingPrivilege(DataverseAuthError):
    """403: the user the client signs in as lacks a privilege; `privilege` names it when the service did."""

    def __init__(self, error: DataverseError) -> None:
        super().__init__(error.message, status=error.status, code=error.code, request_id=error.request_id)
        found = _MISSING_PRIVILEGE.search(error.message)
        self.privilege = found.group(1) if found else None


@dataclass(frozen=True)
class KeyState:
    schema_name: str
    columns: tuple[str, ...]
    status: str  # EntityKeyIndexStatus: Pending, InProgress, Active or Failed


@dataclass
class TableState:
    """What EntityDefinitions says about one table: its columns by type, its lookups' targets, its keys."""

    logical_name: str
    metadata_id: str
    entity_set: str
    change_tracking: bool
    attributes: dict[str, str] = field(default_factory=dict)  # logical name -> AttributeType
    lookups: dict[str, str] = field(default_factory=dict)  # referencing attribute -> referenced table
    keys: list[KeyState] = field(default_factory=list)
    #: many-to-many relationship schema name -> the two tables it links (Entity1LogicalName, Entity2LogicalName)
    many_to_many: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RoleState:
    role_id: str
    business_unit_id: str
    privileges: frozenset[str]


def label(text: str) -> dict[str, Any]:
    """A Label as metadata payloads carry it (one English localized label)."""
    return {"@odata.type": "Microsoft.Dynamics.CRM.Label",
            "LocalizedLabels": [{"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text,
                                 "LanguageCode": LANGUAGE}]}


def _required_none() -> dict[str, Any]:
    return {"Value": "None", "CanBeChanged": True, "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"}


def _option(value: int, text: str) -> dict[str, Any]:
    return {"Value": value, "Label": label(text)}


def attribute_body(col: Column) -> dict[str, Any]:
    """The typed AttributeMetadata that creates `col` (not a lookup: those are created as relationships)."""
    common: dict[str, Any] = {"SchemaName": col.name, "DisplayName": label(col.label),
                              "Description": label(col.description), "RequiredLevel": _required_none()}
    kind = col.type
    if kind == "String":
        return {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata", **common,
                "MaxLength": col.max_length, "FormatName": {"Value": "Text"}}
    if kind == "Memo":
        return {"@odata.type": "Microsoft.Dynamics.CRM.MemoAttributeMetadata", **common,
                "MaxLength": col.max_length, "Format": "TextArea"}
    if kind == "Integer":
        return {"@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata", **common, "Format": "None",
                "MinValue": -2_147_483_648, "MaxValue": 2_147_483_647}
    if kind == "BigInt":
        return {"@odata.type": "Microsoft.Dynamics.CRM.BigIntAttributeMetadata", **common}
    if kind == "Double":
        return {"@odata.type": "Microsoft.Dynamics.CRM.DoubleAttributeMetadata", **common, "Precision": 2,
                "MinValue": -100_000_000_000.0, "MaxValue": 100_000_000_000.0}
    if kind == "Decimal":
        return {"@odata.type": "Microsoft.Dynamics.CRM.DecimalAttributeMetadata", **common, "Precision": 2,
                "MinValue": -100_000_000_000.0, "MaxValue": 100_000_000_000.0}
    if kind == "Money":
        return {"@odata.type": "Microsoft.Dynamics.CRM.MoneyAttributeMetadata", **common, "PrecisionSource": 2}
    if kind == "Boolean":
        return {"@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata", **common,
                "DefaultValue": bool(col.default),
                "OptionSet": {"@odata.type": "Microsoft.Dynamics.CRM.BooleanOptionSetMetadata",
                              "OptionSetType": "Boolean", "TrueOption": _option(1, "Yes"),
                              "FalseOption": _option(0, "No")}}
    if kind in ("DateTime", "DateOnly"):
        return {"@odata.type": "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata", **common,
                "Format": "DateOnly" if kind == "DateOnly" else "DateAndTime"}
    if kind == "Picklist":
        return {"@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata", **common,
                "OptionSet": {"@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata", "IsGlobal": False,
                              "OptionSetType": "Picklist",
                              "Options": [_option(value, text) for value, text in col.options]}}
    raise ValueError(f"column {col.name}: a {kind} column cannot be created")


def table_body(table: Table) -> dict[str, Any]:
    """The EntityMetadata that creates `table` with its primary name column."""
    primary = table.by_name[table.primary_name]
    name = table.display_name or _table_label(table)
    return {"@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata", "SchemaName": table.schema_name,
            "EntitySetName": table.entity_set, "DisplayName": label(name),
            "DisplayCollectionName": label(name + "s"), "Description": label(table.description),
            "OwnershipType": "UserOwned", "HasActivities": False, "HasNotes": False, "IsActivity": False,
            "ChangeTrackingEnabled": table.change_tracking,
            "Attributes": [{**attribute_body(primary), "IsPrimaryName": True}]}


def _table_label(table: Table) -> str:
    return _label(table.logical_name)


def _label(logical_name: str) -> str:
    """A table's display name from its logical name: without the publisher's prefix, capitalised."""
    return (logical_name.partition("_")[2] or logical_name).capitalize()


def relationship_name(table: str, col: Column) -> str:
    """The one-to-many relationship behind lookup `col` of `table`, `<lookup without id>_<table>`: unique, and
    beginning with the publisher's prefix as the lookup's name does (Dataverse requires it of custom ones)."""
    return f"{col.name.removesuffix('id')}_{table}"


def relationship_body(table: str, col: Column, referenced_key: str) -> dict[str, Any]:
    """The OneToManyRelationshipMetadata that creates lookup `col` on `table`, pointing at its one target."""
    return {"@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
            "SchemaName": relationship_name(table, col), "ReferencedEntity": col.targets[0],
            "ReferencedAttribute": referenced_key, "ReferencingEntity": table,
            "CascadeConfiguration": {"Assign": "NoCascade", "Delete": "RemoveLink", "Merge": "NoCascade",
                                     "Reparent": "NoCascade", "Share": "NoCascade", "Unshare": "NoCascade"},
            "AssociatedMenuConfiguration": {"Behavior": "UseCollectionName", "Group": "Details",
                                            "Label": label(col.label), "Order": 10000},
            "Lookup": {"@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata", "SchemaName": col.name,
                       "DisplayName": label(col.label), "Description": label(col.description),
                       "RequiredLevel": _required_none()}}


def many_to_many_body(relationship: ManyToMany) -> dict[str, Any]:
    """The ManyToManyRelationshipMetadata that creates `relationship` with its intersect table."""
    def menu(entity: str) -> dict[str, Any]:
        return {"Behavior": "UseCollectionName", "Group": "Details", "Label": label(_label(entity)), "Order": 10000}

    return {"@odata.type": "Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata",
            "SchemaName": relationship.schema_name, "IntersectEntityName": relationship.intersect,
            "Entity1LogicalName": relationship.entity1, "Entity2LogicalName": relationship.entity2,
            "Entity1NavigationPropertyName": relationship.entity1_navigation,
            "Entity2NavigationPropertyName": relationship.entity2_navigation,
            "Entity1AssociatedMenuConfiguration": menu(relationship.entity2),
            "Entity2AssociatedMenuConfiguration": menu(relationship.entity1)}


def key_body(schema_name: str, columns: Sequence[str]) -> dict[str, Any]:
    return {"SchemaName": schema_name, "DisplayName": label(" ".join(columns)), "KeyAttributes": list(columns)}


def _entity_id(response_headers: Any) -> str:
    """The id in an `OData-EntityId` header (`.../EntityDefinitions(<id>)`)."""
    link = response_headers.get("OData-EntityId", "")
    return link.rsplit("(", 1)[-1].rstrip(")") if "(" in link else ""


def _chunks(names: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(names), NAMES_PER_QUERY):
        yield names[start:start + NAMES_PER_QUERY]


def _any_of(field_name: str, names: Iterable[str]) -> str:
    return " or ".join(f"{field_name} eq {odata.literal(n)}" for n in names)


class MetadataClient(DataverseClient):
    """A DataverseClient that also reads and creates tables, columns, relationships, keys, roles and the rest."""

    def _call(self, method: str, url: str, *, solution: str | None = None, json_body: Any = None,
              headers: dict[str, str] | None = None) -> Any:
        """One metadata request; a refusal for a missing privilege is raised as MissingPrivilege."""
        sent = dict(headers or {})
        if solution:
            sent["MSCRM.SolutionUniqueName"] = solution
        try:
            return self._send(method, url, kind="metadata", headers=sent, json_body=json_body)
        except DataverseAuthError as error:
            if error.status == 403 or error.code == MISSING_PRIVILEGE_CODE:
                raise MissingPrivilege(error) from None
            raise

    def _get(self, url: str) -> Any:
        # Straight after a change, a read from the metadata cache may not show it yet: ask for the store's view.
        return decode_json(self._call("GET", url, headers={"Consistency": "Strong"}))

    def sign_in(self) -> None:
        """Ask the authority for a token now (the first request would otherwise)."""
        self._tokens.token()

    # -- reads ------------------------------------------------------------------------------------------
    def tables(self, logical_names: Sequence[str]) -> dict[str, TableState]:
        """The tables among `logical_names` that exist, with columns, lookups and keys (one request per 40)."""
        found: dict[str, TableState] = {}
        for names in _chunks(list(logical_names)):
            url = "EntityDefinitions?" + odata.query(
                select=("MetadataId", "LogicalName", "EntitySetName", "ChangeTrackingEnabled"),
                filter=_any_of("LogicalName", names), expand=f"Attributes($select=LogicalName,AttributeType),{_KEYS},"
                "ManyToOneRelationships($select=SchemaName,ReferencedEntity,ReferencingAttribute),"
                "ManyToManyRelationships($select=SchemaName,Entity1LogicalName,Entity2LogicalName)")
            for row in self._get(url).get("value", []):
                found[row["LogicalName"]] = TableState(
                    row["LogicalName"], row.get("MetadataId") or "", row.get("EntitySetName") or "",
                    bool(row.get("ChangeTrackingEnabled")),
                    {a["LogicalName"]: a.get("AttributeType") or "" for a in row.get("Attributes") or []},
                    {r["ReferencingAttribute"]: r["ReferencedEntity"]
                     for r in row.get("ManyToOneRelationships") or []},
                    _keys(row.get("Keys") or []),
                    {r["SchemaName"]: (r["Entity1LogicalName"], r["Entity2LogicalName"])
                     for r in row.get("ManyToManyRelationships") or []})
        return found

    def keys(self, logical_names: Sequence[str]) -> dict[str, list[KeyState]]:
        """The alternate keys of each of the tables, with their index status (one request per 40 tables)."""
        found: dict[str, list[KeyState]] = {}
        for names in _chunks(list(logical_names)):
            url = "EntityDefinitions?" + odata.query(select=("LogicalName",), filter=_any_of("LogicalName", names),
                                                     expand=_KEYS)
            found.update((row["LogicalName"], _keys(row.get("Keys") or [])) for row in self._get(url)["value"])
        return found

    def find_one(self, entity_set: str, select: Sequence[str], filter: str) -> dict[str, Any] | None:
        rows = self._get(f"{entity_set}?" + odata.query(select=select, filter=filter)).get("value", [])
        return rows[0] if rows else None

    def root_business_unit(self) -> str:
        row = self.find_one("businessunits", ("businessunitid",), "_parentbusinessunitid_value eq null")
        if row is None:
            raise DataverseError("the organisation has no root business unit", code="NoRootBusinessUnit")
        return row["businessunitid"]

    def roles(self, names: Sequence[str]) -> dict[tuple[str, str], RoleState]:
        """Roles by (name, business unit id), each with the names of its privileges."""
        found: dict[tuple[str, str], RoleState] = {}
        for chunk in _chunks(list(names)):
            for row in self._get("roles?" + odata.query(select=("roleid", "name", "_businessunitid_value"),
                                                        filter=_any_of("name", chunk)))["value"]:
                privileges = self._get(f"roles({row['roleid']})/roleprivileges_association?"
                                       + odata.query(select=("name",)))["value"]
                found[(row["name"], row["_businessunitid_value"])] = RoleState(
                    row["roleid"], row["_businessunitid_value"], frozenset(p["name"] for p in privileges))
        return found

    def privilege_ids(self, names: Sequence[str]) -> dict[str, str]:
        """Privilege name -> id, for those of `names` that exist."""
        found: dict[str, str] = {}
        for chunk in _chunks(list(names)):
            rows = self._get("privileges?" + odata.query(select=("privilegeid", "name"),
                                                         filter=_any_of("name", chunk)))["value"]
            found.update((row["name"], row["privilegeid"]) for row in rows)
        return found

    def who_am_i(self) -> tuple[str, str]:
        """(user id, business unit id) of the user the client signs in as."""
        body = self._get("WhoAmI")
        return body["UserId"], body["BusinessUnitId"]

    def user_roles(self, user_id: str) -> dict[str, str]:
        """Role id -> name of the roles the user holds."""
        rows = self._get(f"systemusers({user_id})/systemuserroles_association?"
                         + odata.query(select=("roleid", "name")))["value"]
        return {row["roleid"]: row["name"] for row in rows}

    def version(self) -> str:
        return self._get("RetrieveVersion()")["Version"]

    def solution_components(self, solution_id: str, component_type: int) -> set[str]:
        """The object ids (in lower case) of the solution's components of one type, as solutioncomponents lists
        them."""
        rows = self._get("solutioncomponents?" + odata.query(select=("objectid",), filter=(
            f"_solutionid_value eq {solution_id} and componenttype eq {component_type}")))["value"]
        return {row["objectid"].lower() for row in rows}

    # -- writes -----------------------------------------------------------------------------------------
    def create(self, entity_set: str, record: dict[str, Any]) -> str:
        """Create a record (publisher, solution, role) and return its id."""
        return _entity_id(self._call("POST", entity_set, json_body=record).headers)

    def add_solution_component(self, component_id: str, component_type: int, solution: str) -> str:
        """Add an existing component (a role) to the solution with AddSolutionComponent; the solutioncomponent's
        id."""
        body = decode_json(self._call("POST", "AddSolutionComponent", json_body={
            "ComponentId": component_id, "ComponentType": component_type, "SolutionUniqueName": solution,
            "AddRequiredComponents": False, "DoNotIncludeSubcomponents": False}))
        return body["id"]

    def create_table(self, table: Table, solution: str) -> str:
        return _entity_id(self._call("POST", "EntityDefinitions", json_body=table_body(table),
                                     solution=solution).headers)

    def create_column(self, table: str, col: Column, solution: str) -> str:
        return _entity_id(self._call("POST", f"EntityDefinitions(LogicalName={odata.literal(table)})/Attributes",
                                     json_body=attribute_body(col), solution=solution).headers)

    def create_lookup(self, table: str, col: Column, referenced_key: str, solution: str) -> str:
        return _entity_id(self._call("POST", "RelationshipDefinitions",
                                     json_body=relationship_body(table, col, referenced_key),
                                     solution=solution).headers)

    def create_many_to_many(self, relationship: ManyToMany, solution: str) -> str:
        return _entity_id(self._call("POST", "RelationshipDefinitions", json_body=many_to_many_body(relationship),
                                     solution=solution).headers)

    def create_key(self, table: str, schema_name: str, columns: Sequence[str], solution: str) -> str:
        return _entity_id(self._call("POST", f"EntityDefinitions(LogicalName={odata.literal(table)})/Keys",
                                     json_body=key_body(schema_name, columns), solution=solution).headers)

    def enable_change_tracking(self, table: str) -> None:
        """Turn change tracking on: PUT the table's definition back with ChangeTrackingEnabled true."""
        path = f"EntityDefinitions(LogicalName={odata.literal(table)})"
        definition = {k: v for k, v in self._get(path).items() if not k.startswith("@odata.context")}
        definition["ChangeTrackingEnabled"] = True
        self._call("PUT", path, json_body=definition, headers={"MSCRM.MergeLabels": "true"})

    def add_privileges(self, role_id: str, business_unit_id: str, privileges: dict[str, tuple[str, str]]) -> None:
        """Give the role privileges: name -> (privilege id, depth)."""
        self._call("POST", f"roles({role_id})/Microsoft.Dynamics.CRM.AddPrivilegesRole", json_body={"Privileges": [
            {"PrivilegeId": privilege_id, "Depth": depth, "BusinessUnitId": business_unit_id, "PrivilegeName": name}
            for name, (privilege_id, depth) in privileges.items()]})

    def assign_role(self, user_id: str, role_id: str) -> None:
        self._call("POST", f"systemusers({user_id})/systemuserroles_association/$ref",
                   json_body={"@odata.id": f"{self.config.api_root}roles({role_id})"})


def _keys(rows: list[dict[str, Any]]) -> list[KeyState]:
    return [KeyState(k["SchemaName"], tuple(k.get("KeyAttributes") or ()), str(k.get("EntityKeyIndexStatus") or ""))
            for k in rows]


def attribute_type(col: Column) -> str:
    """The AttributeType EntityDefinitions reports for a column of the solution's definition."""
    return ATTRIBUTE_TYPES.get(col.type, col.type)

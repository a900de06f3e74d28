"""The components of the organisation's solutions, as Dataverse lists them, and AddSolutionComponent.

The catalog records which solution holds which table, column, relationship, alternate key and role (the metadata
writes add what they create to the solution `MSCRM.SolutionUniqueName` names; a record such as a role joins
through the unbound action `AddSolutionComponent`). The entity set `solutioncomponents` (read only: `$select`,
`$filter` and paging as on any entity set) serves those records with Microsoft's columns: `componenttype` (1
Entity, 2 Attribute, 10 Entity Relationship, 14 Entity Key, 20 Role), `objectid` (the MetadataId the metadata
reads answer, or the role's id), `_solutionid_value`, `rootcomponentbehavior` (0 include subcomponents, 1 do not;
null for a subcomponent) and `_rootsolutioncomponentid_value` (the table a column or key came with).

`POST AddSolutionComponent` takes Microsoft's parameters (ComponentId, ComponentType, SolutionUniqueName,
AddRequiredComponents, DoNotIncludeSubcomponents, IncludedComponentSettingsValues), needs the privilege Microsoft
lists for the message (prvReadSystemForm) and answers `{"id": <solutioncomponentid>}`. Adding a component the
solution holds answers its id again. An unknown solution or component answers 404, a managed solution or a
component type the stand-in does not keep 400. With AddRequiredComponents a column or key brings its table and a
relationship its two tables (without their subcomponents).
"""

from __future__ import annotations

import uuid
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.catalog import (
    ATTRIBUTE,
    DO_NOT_INCLUDE_SUBCOMPONENTS,
    ENTITY,
    ENTITY_KEY,
    INCLUDE_SUBCOMPONENTS,
    RELATIONSHIP,
    ROLE,
    Catalog,
)
from dotdyn_pipeline.sandbox.dataverse.customization import Guard
from dotdyn_pipeline.sandbox.dataverse.errors import NOT_FOUND, DataverseError, bad_request, missing_solution, not_found
from dotdyn_pipeline.sandbox.dataverse.messages import ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.odata import split_segment
from dotdyn_pipeline.sandbox.dataverse.schema import SOLUTION_COMPONENT
from dotdyn_pipeline.sandbox.dataverse.store import Store, now_text
from dotdyn_pipeline.solution import schema as solution

#: The component types kept here and the name Microsoft's option set gives each.
COMPONENT_TYPES = {ENTITY: "Entity", ATTRIBUTE: "Attribute", RELATIONSHIP: "Entity Relationship",
                   ENTITY_KEY: "Entity Key", ROLE: "Role"}
#: The privilege Microsoft lists for the AddSolutionComponent message.
ADD_PRIVILEGE = "prvReadSystemForm"


class SolutionComponents:
    """`solutioncomponents` and AddSolutionComponent for one organisation."""

    def __init__(self, store: Store, catalog: Catalog, api_url: str, guard: Guard, user_id: str) -> None:
        self.store, self.catalog, self.api_url, self.guard, self.user_id = store, catalog, api_url, guard, user_id
        self._served = 0  # how many of the catalog's components the store's rows cover

    def handle(self, request: ApiRequest) -> ApiResponse | None:
        """Answer AddSolutionComponent; before a read of `solutioncomponents`, bring its rows up to date."""
        path = request.path.strip("/")
        if path == "AddSolutionComponent" and request.method == "POST":
            return self._add(request)
        if split_segment(path)[0] == SOLUTION_COMPONENT.entity_set:
            self.sync()
        return None

    def install(self) -> None:
        """The installed solution's components, as installing it leaves them: its tables with their columns and
        keys, its columns on standard tables, the relationships behind its lookups, its many-to-many relationships
        and its roles."""
        name = solution.SOLUTION.unique_name
        for table in solution.TABLES:
            self.catalog.add_table_component(name, table.logical_name)
        for logical, columns in solution.EXTENSIONS.items():
            for column in columns:
                self.catalog.add_component(name, ATTRIBUTE, self.catalog.column_id(logical, column.name),
                                           table=logical)
        for relationship in self.catalog.relationships():  # the lookups the solution defines
            if relationship.lookup.startswith(solution.PREFIX + "_"):
                self.catalog.add_component(name, RELATIONSHIP, relationship.metadata_id)
        for many in solution.MANY_TO_MANY:
            self.catalog.add_component(name, RELATIONSHIP, self.catalog.relationship_id(many.schema_name))
        role_table = self.catalog.table("role")
        for role in solution.ROLES:
            row = self.store.find(role_table, {"name": role.name})
            if row is not None:
                self.catalog.add_component(name, ROLE, row["roleid"])

    def sync(self) -> None:
        """Write a row for every component the catalog recorded since the last call (components are never
        removed here: RemoveSolutionComponent is not offered)."""
        components = list(self.catalog.components.values())[self._served:]
        if not components:
            return
        solutions = self.catalog.table("solution")
        with self.store.transaction():
            for component in components:
                found = self.store.find(solutions, {"uniquename": component.solution})
                stamp = now_text()
                self.store.insert(SOLUTION_COMPONENT, {
                    "solutioncomponentid": component.id, "componenttype": component.component_type,
                    "objectid": component.object_id, "solutionid": found["solutionid"] if found else None,
                    "rootcomponentbehavior": component.behavior, "ismetadata": component.component_type != ROLE,
                    "rootsolutioncomponentid": self.catalog.components[(component.solution.lower(),
                                                                        *component.root)].id
                    if component.root else None, "createdon": stamp, "modifiedon": stamp})
        self._served += len(components)

    # -- AddSolutionComponent --------------------------------------------------------------------------
    def _add(self, request: ApiRequest) -> ApiResponse:
        self.guard.require(self.user_id, ADD_PRIVILEGE)
        body = request.json()
        if not isinstance(body, dict):
            raise bad_request("The body of AddSolutionComponent must be a JSON object of its parameters.")
        component_id = _guid(body.get("ComponentId"))
        component_type = body.get("ComponentType")
        name = body.get("SolutionUniqueName")
        required = body.get("AddRequiredComponents")
        if not isinstance(component_type, int) or isinstance(component_type, bool):
            raise bad_request("AddSolutionComponent needs 'ComponentType' (Edm.Int32).")
        if not isinstance(name, str) or not name:
            raise bad_request("AddSolutionComponent needs 'SolutionUniqueName' (Edm.String).")
        if not isinstance(required, bool):
            raise bad_request("AddSolutionComponent needs 'AddRequiredComponents' (Edm.Boolean).")
        if component_type not in COMPONENT_TYPES:
            raise bad_request(f"The component type {component_type} cannot be added to a solution here: use one of "
                              + ", ".join(f"{number} ({text})" for number, text in COMPONENT_TYPES.items()) + ".")
        found = self.store.find(self.catalog.table("solution"), {"uniquename": name})
        if found is None:
            raise missing_solution(name)
        if found.get("ismanaged"):
            raise bad_request(f"The solution '{name}' is managed: components are added to unmanaged solutions.")
        name = found["uniquename"]
        tables = self._component_tables(component_type, component_id)
        behavior = DO_NOT_INCLUDE_SUBCOMPONENTS if body.get("DoNotIncludeSubcomponents") else INCLUDE_SUBCOMPONENTS
        if required and component_type != ENTITY:
            for table in tables:
                self.catalog.add_component(name, ENTITY, self.catalog.table_id(table), DO_NOT_INCLUDE_SUBCOMPONENTS)
        if component_type == ENTITY and behavior == INCLUDE_SUBCOMPONENTS:
            self.catalog.add_table_component(name, tables[0])
        own_table = tables[0] if component_type in (ATTRIBUTE, ENTITY_KEY) else None
        component = self.catalog.add_component(name, component_type, component_id, behavior, table=own_table)
        return ApiResponse.json({"@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                                                   "AddSolutionComponentResponse", "id": component.id})

    def _component_tables(self, component_type: int, object_id: str) -> list[str]:
        """The tables the component is or belongs to (none for a role); 404 when there is no such component."""
        catalog = self.catalog
        if component_type == ROLE:
            if self.store.find(catalog.table("role"), {"roleid": object_id}) is None:
                raise not_found("role", object_id)
            return []
        for table in catalog.tables():
            logical = table.logical_name
            if component_type == ENTITY and catalog.table_id(logical) == object_id:
                return [logical]
            if component_type == ATTRIBUTE and any(catalog.column_id(logical, c.name) == object_id
                                                   for c in table.columns):
                return [logical]
            if component_type == ENTITY_KEY and any(catalog.key_id(logical, k.schema_name) == object_id
                                                    for k in catalog.keys(logical)):
                return [logical]
        if component_type == RELATIONSHIP:
            for relationship in catalog.relationships():
                if relationship.metadata_id == object_id:
                    return [relationship.referenced, relationship.referencing]
            for many in catalog.many_to_many():
                if catalog.relationship_id(many.schema_name) == object_id:
                    return [many.entity1, many.entity2]
        raise DataverseError(404, NOT_FOUND, f"The {COMPONENT_TYPES[component_type]} with MetadataId = {object_id} "
                                             "was not found in the MetadataCache.")


def _guid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise bad_request("AddSolutionComponent needs 'ComponentId' (Edm.Guid).") from None

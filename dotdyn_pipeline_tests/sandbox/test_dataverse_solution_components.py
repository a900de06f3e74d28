"""A solution's components as Dataverse lists them (`solutioncomponents`) and AddSolutionComponent, over HTTPS:
the installed solution holds every table, column, key, relationship and role of its definition, with the ids
the metadata and role reads answer; the action adds a component once and answers the documented errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline.solution import schema as solution
from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import PRIVATE, all_pages, error_of, web_api

dv, pdv, private_sandbox = helpers.dv, helpers.pdv, helpers.private_sandbox
ENTITY, ATTRIBUTE, RELATIONSHIP, ENTITY_KEY, ROLE = 1, 2, 10, 14, 20
SOLUTION = solution.SOLUTION.unique_name
COMPONENT = "solutioncomponentid,componenttype,objectid,rootcomponentbehavior,_rootsolutioncomponentid_value"


def solution_id(client: httpx.Client, unique_name: str = SOLUTION) -> str:
    [found] = client.get("solutions", params={"$select": "solutionid",
                                              "$filter": f"uniquename eq '{unique_name}'"}).json()["value"]
    return found["solutionid"]


def components_of(client: httpx.Client, unique_name: str = SOLUTION) -> list[dict[str, Any]]:
    """Every component of the solution, read page by page."""
    rows, _ = all_pages(client, "solutioncomponents", 500, **{
        "$select": COMPONENT, "$filter": f"_solutionid_value eq {solution_id(client, unique_name)}"})
    return rows


def defined_components(client: httpx.Client) -> dict[tuple[int, str], str]:
    """(componenttype, objectid) -> what it is, for every table, column, key, relationship and role the solution
    defines, with the ids the Web API's metadata and role reads answer."""
    expected: dict[tuple[int, str], str] = {}
    columns = {t.logical_name: [c.name for c in t.columns] for t in solution.TABLES}
    for logical, added in solution.EXTENSIONS.items():
        columns[logical] = [c.name for c in added]
    for logical, names in columns.items():
        found = client.get(f"EntityDefinitions(LogicalName='{logical}')", params={
            "$select": "MetadataId", "$expand": "Attributes($select=MetadataId,LogicalName),"
            "Keys($select=MetadataId,SchemaName),ManyToOneRelationships($select=MetadataId,ReferencingAttribute)"}
        ).json()
        attributes = {a["LogicalName"]: a["MetadataId"] for a in found["Attributes"]}
        expected.update({(ATTRIBUTE, attributes[name]): f"column {logical}.{name}" for name in names})
        expected.update({(RELATIONSHIP, r["MetadataId"]): f"relationship of {logical}.{r['ReferencingAttribute']}"
                         for r in found["ManyToOneRelationships"]
                         if r["ReferencingAttribute"] in names and r["ReferencingAttribute"] not in solution.READ_ONLY})
        if logical in solution.BY_LOGICAL:
            expected[(ENTITY, found["MetadataId"])] = f"table {logical}"
            assert len(found["Keys"]) == len(solution.BY_LOGICAL[logical].keys)
            expected.update({(ENTITY_KEY, k["MetadataId"]): f"key {k['SchemaName']}" for k in found["Keys"]})
    for many in solution.MANY_TO_MANY:
        [found] = client.get("RelationshipDefinitions", params={
            "$select": "MetadataId", "$filter": f"SchemaName eq '{many.schema_name}'"}).json()["value"]
        expected[(RELATIONSHIP, found["MetadataId"])] = f"relationship {many.schema_name}"
    for role in solution.ROLES:
        [found] = client.get("roles", params={"$select": "roleid", "$filter": f"name eq '{role.name}'"}).json()["value"]
        expected[(ROLE, found["roleid"])] = f"role {role.name}"
    return expected


def test_the_installed_solution_holds_every_table_column_key_relationship_and_role(dv):
    rows = components_of(dv)
    held = {(row["componenttype"], row["objectid"]) for row in rows}
    expected = defined_components(dv)
    assert [what for component, what in expected.items() if component not in held] == []
    lookups = sum(c.is_lookup and c.name not in solution.READ_ONLY for t in solution.TABLES for c in t.columns) + sum(
        c.is_lookup for added in solution.EXTENSIONS.values() for c in added)
    assert sum(kind == RELATIONSHIP for kind, _ in expected) == lookups + len(solution.MANY_TO_MANY)
    by_id = {row["solutioncomponentid"]: row for row in rows}
    for row in rows:  # a table is a root with its subcomponents; its columns and keys point at it
        if row["componenttype"] in (ENTITY, ROLE, RELATIONSHIP):
            assert row["rootcomponentbehavior"] == 0 and row["_rootsolutioncomponentid_value"] is None
        elif row["_rootsolutioncomponentid_value"] is not None:
            assert by_id[row["_rootsolutioncomponentid_value"]]["componenttype"] == ENTITY
            assert row["rootcomponentbehavior"] is None


def test_solutioncomponents_filters_like_any_entity_set_and_is_read_only(dv):
    roles = dv.get("solutioncomponents", params={"$select": "objectid,componenttype",
                                                 "$filter": "componenttype eq 20"}).json()["value"]
    assert {row["componenttype"] for row in roles} == {ROLE} and len(roles) == len(solution.ROLES)
    assert set(roles[0]) >= {"objectid", "componenttype", "solutioncomponentid"}
    assert dv.post("solutioncomponents", json={"componenttype": 20}).status_code == 405


def add(client: httpx.Client, component_id: str, component_type: int, unique_name: str = SOLUTION,
        **more: Any) -> httpx.Response:
    return client.post("AddSolutionComponent", json={
        "ComponentId": component_id, "ComponentType": component_type, "SolutionUniqueName": unique_name,
        "AddRequiredComponents": False, "DoNotIncludeSubcomponents": False, **more})


def test_add_solution_component_adds_a_role_once(pdv):
    [role] = pdv.get("roles", params={"$select": "roleid", "$filter": "name eq 'System Customizer'"}).json()["value"]
    before = len(components_of(pdv))
    first, again = add(pdv, role["roleid"], ROLE), add(pdv, role["roleid"], ROLE)
    assert first.status_code == 200, first.text
    assert first.json()["@odata.context"].endswith("#Microsoft.Dynamics.CRM.AddSolutionComponentResponse")
    assert again.json()["id"] == first.json()["id"]
    assert len(components_of(pdv)) == before + 1
    row = pdv.get(f"solutioncomponents({first.json()['id']})", params={"$select": COMPONENT + ",_solutionid_value"})
    assert row.json().items() >= {"componenttype": ROLE, "objectid": role["roleid"], "rootcomponentbehavior": 0,
                                  "_solutionid_value": solution_id(pdv)}.items()


def test_a_column_with_its_required_components_brings_its_table_without_the_rest(pdv):
    contact = pdv.get("EntityDefinitions(LogicalName='contact')", params={
        "$select": "MetadataId", "$expand": "Attributes($select=MetadataId,LogicalName)"}).json()
    [email] = [a["MetadataId"] for a in contact["Attributes"] if a["LogicalName"] == "emailaddress1"]
    response = add(pdv, email, ATTRIBUTE, AddRequiredComponents=True)
    assert response.status_code == 200, response.text
    rows = {(row["componenttype"], row["objectid"]): row for row in components_of(pdv)}
    table = rows[(ENTITY, contact["MetadataId"])]
    assert table["rootcomponentbehavior"] == 1  # the table as a shell: its other columns stay out
    assert rows[(ATTRIBUTE, email)]["_rootsolutioncomponentid_value"] == table["solutioncomponentid"]
    others = {a["MetadataId"] for a in contact["Attributes"]} - {email}
    assert not {(ATTRIBUTE, other) for other in others} & set(rows)


def test_add_solution_component_answers_the_documented_errors(pdv):
    [role] = pdv.get("roles", params={"$select": "roleid", "$filter": "name eq 'Basic User'"}).json()["value"]
    before = len(components_of(pdv))
    cases = {
        "unknown solution": (add(pdv, role["roleid"], ROLE, "NoSuchSolution"), 404, "0x80040217", "NoSuchSolution"),
        "unknown role": (add(pdv, "00000000-0000-0000-0000-000000000001", ROLE), 404, "0x80040217", "role With Id"),
        "unknown table": (add(pdv, "00000000-0000-0000-0000-000000000002", ENTITY), 404, "0x80040217",
                          "was not found in the MetadataCache"),
        "a type not kept": (add(pdv, role["roleid"], 26), 400, "0x80060888", "component type 26"),
        "not a guid": (add(pdv, "role-1", ROLE), 400, "0x80060888", "ComponentId"),
        "no AddRequiredComponents": (pdv.post("AddSolutionComponent", json={
            "ComponentId": role["roleid"], "ComponentType": ROLE, "SolutionUniqueName": SOLUTION}), 400,
            "0x80060888", "AddRequiredComponents"),
    }
    for case, (response, status, code, text) in cases.items():
        error = error_of(response)
        assert (response.status_code, error["code"]) == (status, code), case
        assert text in error["message"], (case, error)
    assert len(components_of(pdv)) == before


def test_add_solution_component_needs_the_privilege_microsoft_lists(tmp_path):
    settings = dataclasses.replace(PRIVATE, options={"dataverse.app_user_roles": "Email Marketing Viewer"})
    with running_sandbox(tmp_path / "viewer", settings) as contract, web_api(contract) as client:
        [role] = client.get("roles", params={"$select": "roleid", "$filter": "name eq 'Basic User'"}).json()["value"]
        refused = add(client, role["roleid"], ROLE)
        assert refused.status_code == 403
        error = error_of(refused)
        assert error["code"] == "0x80040220" and "missing prvReadSystemForm privilege" in error["message"]
        assert (ROLE, role["roleid"]) not in {(r["componenttype"], r["objectid"]) for r in components_of(client)}

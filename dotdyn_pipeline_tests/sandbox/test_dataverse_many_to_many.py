"""The solution's many-to-many relationship `esc_emailsend_list` (a campaign send and the marketing lists it goes
to), over HTTPS: its definition as the metadata reads answer it, and linking rows as Microsoft documents it
(associate, read through either side's navigation property, `$expand`, disassociate)."""

from __future__ import annotations

from typing import Any

import httpx

from dotdyn_pipeline.solution import schema as solution
from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import error_of

dv, pdv, private_sandbox, private_control = helpers.dv, helpers.pdv, helpers.private_sandbox, helpers.private_control
CRM = "Microsoft.Dynamics.CRM."
NAME = "esc_emailsend_list"


def test_the_relationship_is_defined_on_both_tables_and_by_itself(dv):
    for table in ("esc_emailsend", "list"):
        found = dv.get(f"EntityDefinitions(LogicalName='{table}')", params={
            "$select": "LogicalName", "$expand": "ManyToManyRelationships($select=SchemaName,Entity1LogicalName,"
                                                 "Entity2LogicalName,IntersectEntityName,Entity1IntersectAttribute,"
                                                 "Entity2IntersectAttribute,Entity1NavigationPropertyName,"
                                                 "Entity2NavigationPropertyName)"}).json()
        [relationship] = [r for r in found["ManyToManyRelationships"] if r["SchemaName"] == NAME]
        assert {k: v for k, v in relationship.items() if not k.startswith(("@", "MetadataId"))} == {
            "SchemaName": NAME, "Entity1LogicalName": "esc_emailsend", "Entity2LogicalName": "list",
            "IntersectEntityName": NAME, "Entity1IntersectAttribute": "esc_emailsendid",
            "Entity2IntersectAttribute": "listid", "Entity1NavigationPropertyName": NAME,
            "Entity2NavigationPropertyName": NAME}, table
    cast = dv.get(f"RelationshipDefinitions/{CRM}ManyToManyRelationshipMetadata",
                  params={"$filter": f"SchemaName eq '{NAME}'"}).json()["value"]
    assert [(r["@odata.type"], r["RelationshipType"]) for r in cast] == [
        (f"#{CRM}ManyToManyRelationshipMetadata", "ManyToManyRelationship")]
    one = dv.get(f"RelationshipDefinitions({cast[0]['MetadataId']})").json()
    assert (one["SchemaName"], one["IsCustomRelationship"]) == (NAME, True)
    by_name = dv.get(f"RelationshipDefinitions(SchemaName='{NAME}')/{CRM}ManyToManyRelationshipMetadata",
                     params={"$select": "IntersectEntityName"}).json()
    assert by_name["IntersectEntityName"] == NAME
    one_to_many = dv.get(f"RelationshipDefinitions/{CRM}OneToManyRelationshipMetadata",
                         params={"$filter": f"SchemaName eq '{NAME}'"}).json()["value"]
    assert one_to_many == []
    not_on_the_base_type = dv.get("RelationshipDefinitions", params={"$select": "IntersectEntityName"})
    assert not_on_the_base_type.status_code == 400, "a kind's own property needs the cast to that kind"
    intersect = dv.get(f"EntityDefinitions(LogicalName='{NAME}')", params={"$select": "IsIntersect"}).json()
    assert intersect["IsIntersect"] is True
    contact = dv.get("EntityDefinitions(LogicalName='contact')/ManyToManyRelationships").json()["value"]
    assert contact == []


def _created(client: httpx.Client, entity_set: str, body: dict[str, Any]) -> str:
    response = client.post(entity_set, json=body)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def _list_ids(client: httpx.Client, count: int) -> list[str]:
    rows = client.get("lists", params={"$select": "listid", "$filter": "type eq false", "$top": str(count)})
    return [row["listid"] for row in rows.json()["value"]]


def test_a_send_is_linked_to_lists_read_from_both_sides_and_unlinked(pdv, private_sandbox):
    api = f"{private_sandbox['dataverse_url']}/api/data/{private_sandbox['dataverse_api_version']}"
    send = _created(pdv, "esc_emailsends", {"esc_name": "Spring launch to two lists", "esc_status": "Draft"})
    first, second, third = _list_ids(pdv, 3)
    for list_id in (first, second, second):  # linking rows already linked changes nothing
        linked = pdv.post(f"esc_emailsends({send})/{NAME}/$ref", json={"@odata.id": f"{api}/lists({list_id})"})
        assert linked.status_code == 204, linked.text
    from_list = pdv.post(f"lists({third})/{NAME}/$ref", json={"@odata.id": f"{api}/esc_emailsends({send})"})
    assert from_list.status_code == 204, from_list.text

    related = pdv.get(f"esc_emailsends({send})/{NAME}", params={"$select": "listid"}).json()
    assert related["@odata.context"].endswith("$metadata#lists(listid)")
    assert sorted(row["listid"] for row in related["value"]) == sorted([first, second, third])
    back = pdv.get(f"lists({second})/{NAME}", params={"$select": "esc_name,esc_allowrepeatsends"}).json()["value"]
    assert [(row["esc_emailsendid"], row["esc_name"], row["esc_allowrepeatsends"]) for row in back] == [
        (send, "Spring launch to two lists", False)], "a Yes/No column left out is No, its default"
    paged = pdv.get(f"esc_emailsends({send})/{NAME}", params={"$select": "listid"},
                    headers={"Prefer": "odata.maxpagesize=2"}).json()
    assert len(paged["value"]) == 2 and f"/esc_emailsends({send})/{NAME}?" in paged["@odata.nextLink"]
    rest = pdv.get(paged["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"}).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest
    assert {row["listid"] for row in paged["value"] + rest["value"]} == {first, second, third}

    expanded = pdv.get(f"esc_emailsends({send})", params={"$select": "esc_name",
                                                          "$expand": f"{NAME}($select=listid)"}).json()
    assert sorted(row["listid"] for row in expanded[NAME]) == sorted([first, second, third])
    assert all(set(row) == {"listid"} for row in expanded[NAME])
    many = pdv.get("esc_emailsends", params={"$select": "esc_name", "$expand": f"{NAME}($select=listname)",
                                             "$filter": f"esc_emailsendid eq {send}"}).json()["value"]
    assert len(many) == 1 and len(many[0][NAME]) == 3 and all("listname" in row for row in many[0][NAME])
    links = pdv.get(f"{NAME}set", params={"$filter": f"esc_emailsendid eq {send}"}).json()["value"]
    assert sorted(row["listid"] for row in links) == sorted([first, second, third])

    by_key = pdv.delete(f"esc_emailsends({send})/{NAME}({first})/$ref")
    by_id = pdv.delete(f"esc_emailsends({send})/{NAME}/$ref", params={"$id": f"{api}/lists({second})"})
    again = pdv.delete(f"esc_emailsends({send})/{NAME}({first})/$ref")
    assert (by_key.status_code, by_id.status_code, again.status_code) == (204, 204, 204)
    left = pdv.get(f"esc_emailsends({send})/{NAME}", params={"$select": "listid"}).json()["value"]
    assert [row["listid"] for row in left] == [third]


def test_what_cannot_be_linked_is_refused(pdv, private_sandbox):
    api = f"{private_sandbox['dataverse_url']}/api/data/{private_sandbox['dataverse_api_version']}"
    send = _created(pdv, "esc_emailsends", {"esc_name": "Refusals"})
    [list_id] = _list_ids(pdv, 1)
    contact = pdv.get("contacts", params={"$select": "contactid", "$top": "1"}).json()["value"][0]["contactid"]
    missing = "00000000-0000-4000-8000-000000000001"
    no_list = pdv.post(f"esc_emailsends({send})/{NAME}/$ref", json={"@odata.id": f"{api}/lists({missing})"})
    assert no_list.status_code == 404 and error_of(no_list)["code"] == "0x80040217"
    no_send = pdv.post(f"esc_emailsends({missing})/{NAME}/$ref", json={"@odata.id": f"{api}/lists({list_id})"})
    assert no_send.status_code == 404
    wrong_table = pdv.post(f"esc_emailsends({send})/{NAME}/$ref", json={"@odata.id": f"{api}/contacts({contact})"})
    assert wrong_table.status_code == 400 and "does not name a list" in error_of(wrong_table)["message"]
    no_reference = pdv.post(f"esc_emailsends({send})/{NAME}/$ref", json={})
    assert no_reference.status_code == 400
    written = pdv.post(f"{NAME}set", json={"esc_emailsendid": send, "listid": list_id})
    assert written.status_code == 405, "the links are written by associating rows, not as rows"
    unknown = pdv.get(f"esc_emailsends({send})/esc_emailsend_contacts")
    assert unknown.status_code == 404


def test_deleting_a_send_removes_its_links(pdv, private_sandbox):
    api = f"{private_sandbox['dataverse_url']}/api/data/{private_sandbox['dataverse_api_version']}"
    send = _created(pdv, "esc_emailsends", {"esc_name": "Deleted"})
    [list_id] = _list_ids(pdv, 1)
    assert pdv.post(f"esc_emailsends({send})/{NAME}/$ref",
                    json={"@odata.id": f"{api}/lists({list_id})"}).status_code == 204
    assert pdv.delete(f"esc_emailsends({send})").status_code == 204
    links = pdv.get(f"{NAME}set", params={"$filter": f"esc_emailsendid eq {send}"}).json()["value"]
    assert links == []
    sends = pdv.get(f"lists({list_id})/{NAME}", params={"$select": "esc_name"}).json()["value"]
    assert send not in {row["esc_emailsendid"] for row in sends}


def test_the_solution_defines_the_relationship_once():
    assert [(r.schema_name, r.entity1, r.entity2, r.intersect, r.entity1_attribute, r.entity2_attribute)
            for r in solution.MANY_TO_MANY] == [(NAME, "esc_emailsend", "list", NAME, "esc_emailsendid", "listid")]


def test_the_control_endpoint_links_rows_by_writing_the_intersect_row(pdv, private_control):
    send = _created(pdv, "esc_emailsends", {"esc_name": "Seeded by a test"})
    [list_id] = _list_ids(pdv, 1)
    written = private_control.post(f"/dataverse/rows/{NAME}set", json={"esc_emailsendid": send, "listid": list_id})
    assert written.status_code == 200, written.text
    related = pdv.get(f"esc_emailsends({send})/{NAME}", params={"$select": "listid"}).json()["value"]
    assert [row["listid"] for row in related] == [list_id]

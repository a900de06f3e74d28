"""Users, roles and privileges as Dataverse keeps them, and the privileges an installation needs."""

from __future__ import annotations

import dataclasses

import pytest

from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline.solution import schema as solution
from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import PRIVATE, error_of, web_api

dv = helpers.dv
ROLE_PRIVILEGES = "roleprivileges_association"


def user_roles(client, user_id: str) -> dict[str, str]:
    response = client.get(f"systemusers({user_id})/systemuserroles_association", params={"$select": "name"})
    response.raise_for_status()
    return {role["name"]: role["roleid"] for role in response.json()["value"]}


def test_retrieve_version_names_the_served_version(dv):
    response = dv.get("RetrieveVersion()")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("#Microsoft.Dynamics.CRM.RetrieveVersionResponse")
    assert body["Version"].startswith("9.2.")


def test_who_am_i_is_the_application_user_and_it_holds_the_connector_role(dv, sandbox):
    me = dv.get("WhoAmI").json()
    user = dv.get(f"systemusers({me['UserId']})", params={"$select": "applicationid,fullname,accessmode"}).json()
    assert user["applicationid"] == sandbox["client_id"] and user["accessmode"] == 4
    assert me["UserId"] != sandbox["client_id"], "a user's id is not its application's id"
    assert {solution.CONNECTOR_ROLE, "System Administrator"} <= set(user_roles(dv, me["UserId"]))


def test_the_solution_roles_hold_exactly_the_privileges_the_definition_grants(dv):
    for role in solution.ROLES:
        (found,) = dv.get("roles", params={"$filter": f"name eq '{role.name}'", "$select": "roleid"}).json()["value"]
        held = dv.get(f"roles({found['roleid']})/{ROLE_PRIVILEGES}", params={"$select": "name"}).json()["value"]
        assert {p["name"] for p in held} == set(role.privileges()), role.name


def test_every_table_has_its_eight_privileges_named_after_its_schema_name(dv):
    names = {p["name"] for p in dv.get("privileges", params={"$select": "name,accessright"}).json()["value"]}
    for table, schema_name in (("contact", "Contact"), ("esc_emailaccount", "esc_emailaccount")):
        assert {f"prv{right}{schema_name}" for right in solution.RIGHTS} <= names, table
    assert {"prvCreateEntity", "prvWriteAttribute", "prvCreateRole"} <= names


def test_privileges_and_the_links_are_read_only_entity_sets(dv):
    for entity_set in ("privileges", "roleprivilegescollection", "systemuserrolescollection"):
        response = dv.post(entity_set, json={"name": "x"})
        assert response.status_code == 405, entity_set


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("security"), PRIVATE) as contract:
        yield contract


def test_a_role_is_created_given_privileges_and_assigned_as_documented(private):
    with web_api(private) as client:
        me = client.get("WhoAmI").json()
        (unit,) = client.get("businessunits", params={"$filter": "_parentbusinessunitid_value eq null"}).json()["value"]
        created = client.post("roles", json={"name": "Campaign auditor", "businessunitid@odata.bind":
                                             f"/businessunits({unit['businessunitid']})"})
        assert created.status_code == 204
        role_id = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        (privilege,) = client.get("privileges", params={"$filter": "name eq 'prvReadesc_emailcampaign'"}).json()[
            "value"]
        granted = client.post(f"roles({role_id})/Microsoft.Dynamics.CRM.AddPrivilegesRole", json={"Privileges": [
            {"Depth": "Global", "PrivilegeId": privilege["privilegeid"], "BusinessUnitId": unit["businessunitid"],
             "PrivilegeName": privilege["name"]}]})
        assert granted.status_code == 204
        held = client.get(f"roles({role_id})/{ROLE_PRIVILEGES}").json()["value"]
        assert [p["name"] for p in held] == ["prvReadesc_emailcampaign"]
        linked = client.post(f"systemusers({me['UserId']})/systemuserroles_association/$ref",
                             json={"@odata.id": f"{private['dataverse_url']}/api/data/v9.2/roles({role_id})"})
        assert linked.status_code == 204
        assert user_roles(client, me["UserId"])["Campaign auditor"] == role_id
        bad_depth = client.post(f"roles({role_id})/Microsoft.Dynamics.CRM.AddPrivilegesRole", json={"Privileges": [
            {"Depth": "Everywhere", "PrivilegeId": privilege["privilegeid"]}]})
        assert bad_depth.status_code == 400


def test_a_user_without_customisation_privileges_is_refused_naming_the_privilege(tmp_path):
    settings = dataclasses.replace(PRIVATE, options={"dataverse.app_user_roles": "Basic User"})
    with running_sandbox(tmp_path / "basic", settings) as contract, web_api(contract) as client:
        refused = client.post("publishers", json={"uniquename": "other", "friendlyname": "Other",
                                                  "customizationprefix": "oth"})
        assert refused.status_code == 403
        error = error_of(refused)
        assert error["code"] == "0x80040220" and "missing prvCreatePublisher privilege" in error["message"]
        assert client.get("publishers", params={"$filter": "uniquename eq 'other'"}).json()["value"] == []
        metadata_writes = {  # each message refused for the privilege Microsoft lists for it
            "EntityDefinitions": "prvCreateEntity", "RelationshipDefinitions": "prvCreateRelationship",
            "EntityDefinitions(LogicalName='contact')/Attributes": "prvCreateAttribute",
            "EntityDefinitions(LogicalName='contact')/Keys": "prvCreateEntityKey"}
        for path, privilege in metadata_writes.items():
            response = client.post(path, json={"SchemaName": "new_thing"})
            assert response.status_code == 403 and f"missing {privilege} privilege" in error_of(response)["message"]
        me = client.get("WhoAmI").json()
        assert set(user_roles(client, me["UserId"])) == {"Basic User", solution.CONNECTOR_ROLE}

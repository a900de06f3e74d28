"""Users, roles and privileges as Dataverse keeps them, the privileges an installation needs, and impersonation
(`MSCRMCallerID`) deciding who a row is created by."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline.solution import schema as solution
from dotdyn_pipeline_tests.conftest import trust
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


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    """An organisation whose application user holds Basic User (and the connector's role) only."""
    settings = dataclasses.replace(PRIVATE, options={"dataverse.app_user_roles": "Basic User"})
    with running_sandbox(tmp_path_factory.mktemp("basic"), settings) as contract:
        yield contract


def test_a_user_without_customisation_privileges_is_refused_naming_the_privilege(basic):
    with web_api(basic) as client:
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


def person(client, fullname: str) -> str:
    [found] = client.get("systemusers", params={"$select": "systemuserid,accessmode",
                                                "$filter": f"fullname eq '{fullname}'"}).json()["value"]
    assert found["accessmode"] == 0, "a person, not an application user"
    return found["systemuserid"]


def test_the_seeded_people_hold_the_solution_roles_they_are_named_for(dv):
    assert set(user_roles(dv, person(dv, "Morgan Manager"))) == {"Email Marketing Manager"}
    assert set(user_roles(dv, person(dv, "Pat Professional"))) == {"Email Marketing Professional"}


def test_a_row_is_created_by_the_caller_or_by_the_user_it_impersonates(private):
    with web_api(private) as client:
        me = client.get("WhoAmI").json()["UserId"]
        morgan = person(client, "Morgan Manager")
        own = client.post("esc_emailsends", json={"esc_name": "mine"}, headers={"Prefer": "return=representation"})
        assert own.status_code == 201
        assert (own.json()["_createdby_value"], own.json()["_createdonbehalfby_value"]) == (me, None)
        theirs = client.post("esc_emailsends", json={"esc_name": "Morgan's"},
                             headers={"MSCRMCallerID": morgan, "Prefer": "return=representation"})
        assert theirs.status_code == 201, theirs.text
        row = client.get(f"esc_emailsends({theirs.json()['esc_emailsendid']})", params={
            "$select": "_createdby_value,_createdonbehalfby_value",
            "$expand": "createdby($select=fullname),createdonbehalfby($select=fullname)"}).json()
        assert (row["_createdby_value"], row["_createdonbehalfby_value"]) == (morgan, me)
        assert row["createdby"]["fullname"] == "Morgan Manager"
        updated = client.patch(f"esc_emailsends({own.json()['esc_emailsendid']})", json={"esc_status": "Draft"},
                               headers={"MSCRMCallerID": morgan})
        assert updated.status_code == 204
        kept = client.get(f"esc_emailsends({own.json()['esc_emailsendid']})", params={"$select": "_createdby_value"})
        assert kept.json()["_createdby_value"] == me, "an update does not change who created the row"
        found = client.get("esc_emailsends", params={"$select": "esc_name",
                                                     "$filter": f"_createdby_value eq {morgan}"}).json()["value"]
        assert [r["esc_name"] for r in found] == ["Morgan's"]
        nobody = client.post("esc_emailsends", json={"esc_name": "x"},
                             headers={"MSCRMCallerID": "00000000-0000-4000-8000-000000000002"})
        assert nobody.status_code == 404 and error_of(nobody)["code"] == "0x80040217"
        not_an_id = client.post("esc_emailsends", json={"esc_name": "x"}, headers={"MSCRMCallerID": "morgan"})
        assert not_an_id.status_code == 400


def test_impersonation_needs_the_privilege_to_act_on_behalf_of_another_user(basic):
    with web_api(basic) as client:
        morgan = person(client, "Morgan Manager")
        refused = client.post("esc_emailsends", json={"esc_name": "as Morgan"}, headers={"MSCRMCallerID": morgan})
        assert refused.status_code == 403
        error = error_of(refused)
        assert error["code"] == "0x80040220"
        assert "missing prvActOnBehalfOfAnotherUser privilege" in error["message"]
        made = client.get("esc_emailsends", params={"$filter": "esc_name eq 'as Morgan'"}).json()["value"]
        assert made == []
        own = client.post("esc_emailsends", json={"esc_name": "as myself"})
        assert own.status_code == 204, "without the header the application user acts for itself"


def test_the_control_endpoint_may_say_who_created_a_row(private):
    with web_api(private) as client, httpx.Client(base_url=private["control_url"], verify=trust(private),
                                                  timeout=30) as control:
        pat = person(client, "Pat Professional")
        written = control.post("/dataverse/rows/esc_emailsinglesends", json={
            "esc_name": "by Pat", "_createdby_value": pat, "esc_status": "Scheduled"})
        assert written.status_code == 200, written.text
        assert written.json()["_createdby_value"] == pat
        default = control.post("/dataverse/rows/esc_emailsinglesends", json={"esc_name": "by nobody in particular"})
        assert default.json()["_createdby_value"] == client.get("WhoAmI").json()["UserId"]

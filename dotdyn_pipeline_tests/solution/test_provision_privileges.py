"""`dotdyn provision` signed in as an application user that may not customise: it stops naming the privilege,
and once an administrator gives the user a role that holds it, the next run finishes the installation."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import httpx
import pytest

from dotdyn_pipeline.demo import sandbox_environment
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline.solution import schema
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.solution.test_provision_sandbox import BARE, Organisation, dotdyn, last_json, web_api

READER = dataclasses.replace(BARE, options={"dataverse.app_user_roles": "Basic User"})


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Organisation]:
    with running_sandbox(tmp_path_factory.mktemp("reader"), READER) as contract, web_api(contract) as api:
        env = {**sandbox_environment(contract), "DOTDYN_HOME": str(tmp_path_factory.mktemp("home"))}
        yield Organisation(contract, env, api)


def control(org: Organisation) -> httpx.Client:
    return httpx.Client(base_url=org.contract["control_url"], verify=trust(org.contract), timeout=60)


def give_role(org: Organisation, name: str) -> None:
    """What an administrator does in the Power Platform admin center: give the application user a role."""
    [role] = org.get("roles", **{"$select": "roleid", "$filter": f"name eq '{name}'"})["value"]
    with control(org) as http:
        http.post("/dataverse/rows/systemuserrolescollection", json={
            "systemuserid": org.get("WhoAmI")["UserId"], "roleid": role["roleid"]}).raise_for_status()


def make_role_like(org: Organisation, name: str, model: str, leaving_out: str) -> None:
    """An administrator's role with every privilege of `model` but one."""
    [found] = org.get("roles", **{"$select": "roleid,_businessunitid_value", "$filter": f"name eq '{model}'"})["value"]
    held = org.get(f"roles({found['roleid']})/roleprivileges_association", **{"$select": "privilegeid,name"})["value"]
    role_id = str(uuid.uuid4())
    with control(org) as http:
        http.post("/dataverse/rows/roles", json={"roleid": role_id, "name": name, "businessunitid": found[
            "_businessunitid_value"]}).raise_for_status()
        for privilege in held:
            if privilege["name"] != leaving_out:
                http.post("/dataverse/rows/roleprivilegescollection", json={
                    "roleid": role_id, "privilegeid": privilege["privilegeid"], "privilegedepthmask": 8,
                }).raise_for_status()


def test_a_missing_privilege_stops_with_its_name_and_what_was_made_and_a_later_run_completes(org):
    code, output = dotdyn(org.env, "provision", "--json")
    summary = last_json(output)
    assert code == 1
    assert summary["missing_privilege"] == "prvCreatePublisher" and summary["changes"] == 0
    assert "lacks the privilege prvCreatePublisher, needed to create publisher emailcampaignconnector" in output
    assert "System Customizer" in output and "run dotdyn provision again" in output
    assert org.get("publishers", **{"$filter": "uniquename eq 'emailcampaignconnector'"})["value"] == []

    make_role_like(org, "Customizer without roles", "System Customizer", leaving_out="prvCreateRole")
    give_role(org, "Customizer without roles")
    code, output = dotdyn(org.env, "provision", "--json")
    stopped = last_json(output)
    assert code == 1 and stopped["missing_privilege"] == "prvCreateRole"
    made = {line.split(" (")[0] for line in stopped["created"]}
    assert {"publisher emailcampaignconnector", "table esc_emailaccount", "column esc_emailaccount.esc_apiuser",
            "lookup list.esc_emailaccountid", "key esc_emailaccount.esc_emailaccount_key0"} <= made
    assert not any(line.startswith("role") for line in made)
    assert f"stopped after {stopped['changes']} changes (above): the application user lacks the privilege " \
           f"prvCreateRole, needed to create role {schema.CONNECTOR_ROLE}" in output

    give_role(org, "System Customizer")
    code, output = dotdyn(org.env, "provision", "--json")
    finished = last_json(output)
    assert code == 0, output
    assert {line.split(" ")[0] for line in finished["created"]} == {"role", "solution", "privileges"}
    assert sum(line.startswith("solution component ") for line in finished["created"]) == len(schema.ROLES)
    code, output = dotdyn(org.env, "provision", "--json")
    assert (code, last_json(output)["changes"]) == (0, 0)

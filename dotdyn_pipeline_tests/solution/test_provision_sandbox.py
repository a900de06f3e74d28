"""`dotdyn provision` and `dotdyn doctor` against a bare organisation (the sandbox's Dataverse without the solution).

One sandbox for the module; its fixtures run in the order an administrator would: the doctor and a dry run
before anything exists, the first provisioning, the accounts entered as rows, then the doctor again and a newer
definition. What provisioning made is checked through the Web API's documented reads and by writing rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.bench.contract import dataverse_config
from dotdyn_pipeline.bench.provision import generated_table
from dotdyn_pipeline.cli import main
from dotdyn_pipeline.connectors.dataverse import MsalTokenSource
from dotdyn_pipeline.connectors.dataverse.metadata import MetadataClient
from dotdyn_pipeline.connectors.http import tls_verify
from dotdyn_pipeline.demo import sandbox_environment
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline.solution import schema
from dotdyn_pipeline.solution.provision import SolutionSpec, provision
from dotdyn_pipeline_tests.sandbox.test_dataverse_solution_components import ROLE, components_of, defined_components

BARE = SandboxSettings(bare=True, contacts=200, leads=50, accounts=30, email_accounts=2)


@dataclasses.dataclass
class Organisation:
    contract: dict[str, Any]
    env: dict[str, str]
    api: httpx.Client  # the Web API, signed in as the application user

    def get(self, path: str, **params: str) -> Any:
        return self.api.get(path, params=params).raise_for_status().json()


def dotdyn(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run a `dotdyn` command in this process with `env` set; its exit code and standard output."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("DOTDYN_POSTGRES_URL", raising=False)
        code = main(list(args))
    return code, out.getvalue()


def last_json(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


def web_api(contract: dict[str, Any]) -> httpx.Client:
    config = dataverse_config(contract)
    tokens = MsalTokenSource(config.credentials(), config.org_url, ca_bundle=config.ca_bundle)
    return httpx.Client(base_url=config.api_root, verify=tls_verify(config.ca_bundle), timeout=60,
                        headers={"Authorization": f"Bearer {tokens.token()}", "OData-Version": "4.0",
                                 "Accept": "application/json"})


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Organisation]:
    with running_sandbox(tmp_path_factory.mktemp("bare"), BARE) as contract, web_api(contract) as api:
        env = {**sandbox_environment(contract), "DOTDYN_HOME": str(tmp_path_factory.mktemp("home"))}
        yield Organisation(contract, env, api)


def custom_tables(org: Organisation) -> set[str]:
    rows = org.get("EntityDefinitions", **{"$select": "LogicalName", "$filter": "IsCustomEntity eq true"})["value"]
    return {row["LogicalName"] for row in rows}


@pytest.fixture(scope="module")
def before(org: Organisation) -> dict[str, Any]:
    """The doctor's checks and a dry run's plan on the bare organisation, and its custom tables after both."""
    doctor_code, doctor_out = dotdyn(org.env, "doctor", "--json")
    dry_code, dry_out = dotdyn(org.env, "provision", "--dry-run", "--json")
    return {"doctor": (doctor_code, json.loads(doctor_out)), "dry": (dry_code, dry_out),
            "custom_tables": custom_tables(org)}


@pytest.fixture(scope="module")
def first(org: Organisation, before) -> tuple[int, str]:
    return dotdyn(org.env, "provision", "--json")


def test_the_doctor_fails_on_a_bare_organisation_with_the_fix(before):
    code, report = before["doctor"]
    assert code != 0 and not report["ok"]
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["sign-in"]["ok"] and checks["Web API"]["ok"]
    assert "version 9.2" in checks["Web API"]["detail"]
    for name in ("solution", "connector role"):
        assert not checks[name]["ok"] and checks[name]["fix"] == "run dotdyn provision", checks[name]
    solution = checks["solution"]["detail"]
    assert solution.startswith(f"missing {len(schema.TABLES)} tables (esc_emailaccount, ")
    assert f"; {sum(len(t.keys) for t in schema.TABLES)} keys (" in solution
    assert "; 1 relationship (esc_emailsend_list)" in solution
    assert checks["email accounts"] == {"name": "email accounts", "ok": False, "fix": "run dotdyn provision",
                                        "detail": "the table esc_emailaccount does not exist"}


def test_a_dry_run_prints_the_plan_and_changes_nothing(before):
    code, output = before["dry"]
    summary = last_json(output)
    assert code == 0 and summary["dry_run"] and summary["changes"] == len(summary["created"]) > 100
    assert all(line.startswith("would ") for line in output.splitlines()[:summary["changes"]])
    assert before["custom_tables"] == set()


def test_provisioning_creates_every_table_column_key_and_role(org, first):
    code, output = first
    summary = last_json(output)
    assert code == 0, output
    assert summary["changes"] == len(summary["created"]) and summary["conflicts"] == []
    assert summary["requests"] < summary["changes"] + 40  # the reads are a handful, not one per component
    assert custom_tables(org) >= {t.logical_name for t in schema.TABLES}
    for table in schema.TABLES:
        found = org.get(f"EntityDefinitions(LogicalName='{table.logical_name}')", **{
            "$select": "LogicalName,EntitySetName,ChangeTrackingEnabled",
            "$expand": "Attributes($select=LogicalName,AttributeType),"
                       "Keys($select=KeyAttributes,EntityKeyIndexStatus)"})
        assert found["EntitySetName"] == table.entity_set
        assert bool(found["ChangeTrackingEnabled"]) == table.change_tracking, table.logical_name
        types = {a["LogicalName"]: a["AttributeType"] for a in found["Attributes"]}
        for col in table.columns:
            assert types.get(col.name) == ("DateTime" if col.type == "DateOnly" else col.type), (table, col.name)
        assert sorted(tuple(k["KeyAttributes"]) for k in found["Keys"]) == sorted(table.keys)
        assert {k["EntityKeyIndexStatus"] for k in found["Keys"]} <= {"Active"}
    lists = org.get("EntityDefinitions(LogicalName='list')", **{
        "$select": "ChangeTrackingEnabled", "$expand": "Attributes($select=LogicalName,AttributeType)"})
    assert {c.name for c in schema.EXTENSIONS["list"]} <= {a["LogicalName"] for a in lists["Attributes"]}
    for name in schema.TRACKED_STANDARD_TABLES:
        tracked = org.get(f"EntityDefinitions(LogicalName='{name}')", **{"$select": "ChangeTrackingEnabled"})
        assert tracked["ChangeTrackingEnabled"], name
    for role in schema.ROLES:
        [found] = org.get("roles", **{"$select": "roleid", "$filter": f"name eq '{role.name}'"})["value"]
        held = org.get(f"roles({found['roleid']})/roleprivileges_association", **{"$select": "name"})["value"]
        assert set(role.privileges()) <= {p["name"] for p in held}, role.name
    user = org.get("WhoAmI")["UserId"]
    roles = org.get(f"systemusers({user})/systemuserroles_association", **{"$select": "name"})["value"]
    assert schema.CONNECTOR_ROLE in {r["name"] for r in roles}
    assert org.get("publishers", **{"$filter": f"uniquename eq '{schema.PUBLISHER.unique_name}'"})["value"]
    assert org.get("solutions", **{"$filter": f"uniquename eq '{schema.SOLUTION.unique_name}'"})["value"]


def test_the_solution_holds_every_table_column_key_relationship_and_role_it_made(org, first):
    held = {(row["componenttype"], row["objectid"]) for row in components_of(org.api)}
    expected = defined_components(org.api)
    assert [what for component, what in expected.items() if component not in held] == []
    assert sum(kind == ROLE for kind, _ in expected) == len(schema.ROLES)
    summary = last_json(first[1])
    assert sorted(what for what in summary["created"] if what.startswith("solution component ")) == sorted(
        f"solution component {role.name} (role, to {schema.SOLUTION.unique_name})" for role in schema.ROLES)


def test_provisioning_creates_the_many_to_many_relationship_and_rows_are_linked_through_it(org, first):
    assert "relationship esc_emailsend_list (esc_emailsend <-> list)" in last_json(first[1])["created"]
    [made] = org.get("RelationshipDefinitions/Microsoft.Dynamics.CRM.ManyToManyRelationshipMetadata",
                     **{"$filter": "SchemaName eq 'esc_emailsend_list'"})["value"]
    assert (made["Entity1LogicalName"], made["Entity2LogicalName"], made["IntersectEntityName"]) == (
        "esc_emailsend", "list", "esc_emailsend_list")
    created = org.api.post("esc_emailsends", json={"esc_name": "Provisioned send"},
                           headers={"Prefer": "return=representation"})
    assert created.status_code == 201, created.text
    send = created.json()
    assert send["esc_allowrepeatsends"] is False, "the column's default value, as provisioning defined it"
    [one] = org.get("lists", **{"$select": "listid", "$top": "1"})["value"]
    linked = org.api.post(f"esc_emailsends({send['esc_emailsendid']})/esc_emailsend_list/$ref",
                          json={"@odata.id": f"{org.api.base_url}lists({one['listid']})"})
    assert linked.status_code == 204, linked.text
    read = org.get(f"esc_emailsends({send['esc_emailsendid']})/esc_emailsend_list", **{"$select": "listid"})
    assert [row["listid"] for row in read["value"]] == [one["listid"]]


def test_a_second_run_changes_nothing(org, first):
    code, output = dotdyn(org.env, "provision", "--json")
    summary = last_json(output)
    assert code == 0 and summary["changes"] == 0 and summary["created"] == [] and summary["unchanged"] > 100


def test_a_role_that_exists_outside_the_solution_is_added_to_it_once(org, first):
    auditor = schema.Role("Email Campaign Auditor", "Reads campaigns.", (schema.Grant("esc_emailcampaign", ("Read",)),))
    [unit] = org.get("businessunits", **{"$select": "businessunitid",
                                         "$filter": "_parentbusinessunitid_value eq null"})["value"]
    made = org.api.post("roles", json={"name": auditor.name, "businessunitid@odata.bind":
                                       f"/businessunits({unit['businessunitid']})"})
    assert made.status_code == 204, made.text
    spec = dataclasses.replace(SolutionSpec(), roles=(*schema.ROLES, auditor))
    with MetadataClient(dataverse_config(org.contract)) as client:
        outcome = provision(client, spec)
        again = provision(client, spec)
    assert outcome.ok, outcome.error
    assert [(c.kind, c.name) for c in outcome.changes] == [("solution component", auditor.name),
                                                           ("privileges", auditor.name)]
    assert again.changes == []
    [role] = org.get("roles", **{"$select": "roleid", "$filter": f"name eq '{auditor.name}'"})["value"]
    assert (ROLE, role["roleid"]) in {(row["componenttype"], row["objectid"]) for row in components_of(org.api)}


@pytest.fixture(scope="module")
def accounts(org: Organisation, first) -> list[dict[str, Any]]:
    """The accounts entered as an administrator does, as esc_emailaccount rows through the Web API."""
    for account in org.contract["accounts"]:
        org.api.post("esc_emailaccounts", json={
            "esc_name": account["name"], "esc_apiuser": account["api_user"],
            "esc_secretname": account["secret_name"], "esc_transport": "rest"}).raise_for_status()
    return org.get("esc_emailaccounts", **{"$select": "esc_emailaccountid,esc_apiuser,esc_name"})["value"]


def test_the_doctor_passes_once_provisioned_and_the_accounts_entered(org, accounts):
    code, output = dotdyn(org.env, "doctor")
    assert code == 0, output
    for account in org.contract["accounts"]:
        line = next(line for line in output.splitlines() if line.startswith(f"email account {account['name']}:"))
        assert "API calls left this hour" in line and account["api_password"] not in output


def test_the_doctor_names_an_account_whose_secret_is_not_set(org, accounts):
    missing = org.contract["accounts"][0]
    env = {k: v for k, v in org.env.items() if k != missing["secret_name"]}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(missing["secret_name"], raising=False)
        code, output = dotdyn(env, "doctor")
    assert code != 0
    line = next(line for line in output.splitlines() if line.startswith(f"email account {missing['name']}:"))
    assert "FAILED" in line and f"fix: set {missing['secret_name']}" in line


def test_a_newer_definition_adds_only_what_is_missing_and_keeps_the_rows(org, accounts):
    account = schema.BY_LOGICAL["esc_emailaccount"]
    newer = dataclasses.replace(account, columns=(*account.columns, schema.column("esc_region", "Picklist", options=(
        (1, "r1"), (2, "r2")))), keys=(*account.keys, ("esc_name",)))
    spec = dataclasses.replace(SolutionSpec(), tables=(*(newer if t is account else t for t in schema.TABLES),
                                                       generated_table(1)))
    with MetadataClient(dataverse_config(org.contract)) as client:
        outcome = provision(client, spec)
        again = provision(client, spec)
    assert outcome.ok, outcome.error
    generated = ("esc_code", "esc_count", "esc_total", "esc_share", "esc_rate", "esc_amount", "esc_active",
                 "esc_when", "esc_day", "esc_notes", "esc_kind")
    assert sorted((c.kind, c.name) for c in outcome.changes) == sorted([
        ("table", "esc_generated001"), ("column", "esc_emailaccount.esc_region"),
        *(("column", f"esc_generated001.{name}") for name in generated),
        ("lookup", "esc_generated001.esc_emailaccountid"), ("key", "esc_emailaccount.esc_emailaccount_key1"),
        ("key", "esc_generated001.esc_generated001_key0")])
    assert again.changes == []
    rows = org.get("esc_emailaccounts", **{"$select": "esc_emailaccountid,esc_apiuser,esc_name,esc_region"})["value"]
    assert [{k: r[k] for k in ("esc_emailaccountid", "esc_apiuser", "esc_name")} for r in rows] == [
        {k: r[k] for k in ("esc_emailaccountid", "esc_apiuser", "esc_name")} for r in accounts]
    assert {r["esc_region"] for r in rows} == {None}
    keyed = org.api.patch(f"esc_emailaccounts(esc_name='{rows[0]['esc_name']}')", json={"esc_region": 2})
    assert keyed.status_code == 204, keyed.text  # the new key addresses the row


def test_a_key_whose_index_fails_is_reported_with_the_fix_run_after_run(org, accounts):
    account = schema.BY_LOGICAL["esc_emailaccount"]
    shared = dataclasses.replace(account, keys=(*account.keys, ("esc_transport",)))  # every account says "rest"
    spec = dataclasses.replace(SolutionSpec(), tables=tuple(shared if t is account else t for t in schema.TABLES))
    with MetadataClient(dataverse_config(org.contract)) as client:
        first = provision(client, spec, key_timeout=60)
        again = provision(client, spec, key_timeout=60)
    # the newer definition's key took the name esc_emailaccount_key1: the next free name is used
    assert [c.what for c in first.changes] == ["key esc_emailaccount.esc_emailaccount_key2 (esc_transport)"]
    for outcome in (first, again):
        assert not outcome.ok
        assert "could not build the index of the alternate key esc_emailaccount." in outcome.error
        assert "(esc_transport): rows of the table share the key's values" in outcome.error
    assert again.changes == []

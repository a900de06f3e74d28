"""A real organisation's path: a bare organisation, `dotdyn provision`, `dotdyn doctor`, then the flows.

The organisation starts with Microsoft's tables and people only. Provisioning installs the solution through
the Web API's metadata operations, the administrator's configuration (accounts, list activation, mappings)
is entered as rows, and from then on the audience, engagement and consent flows run as on the default
sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from dagster._core.test_utils import instance_for_test

from dotdyn_pipeline.demo import register_accounts, sandbox_environment
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline.solution import schema as solution
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.defs.consent.consent_helpers import settle, suppress
from dotdyn_pipeline_tests.e2e.conftest import E2E_SANDBOX, Pipeline, World
from dotdyn_pipeline_tests.e2e.test_audience import _assert_books_match
from dotdyn_pipeline_tests.e2e.test_engagement import actual_keys, engage, expected_keys


def dotdyn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run the `dotdyn` command as an administrator would, in the environment the pipeline reads."""
    return subprocess.run([sys.executable, "-m", "dotdyn_pipeline.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = E2E_SANDBOX.__class__(**{**E2E_SANDBOX.__dict__, "bare": True})
    with running_sandbox(tmp_path_factory.mktemp("bare-sandbox"), settings) as contract, \
            httpx.Client(base_url=contract["control_url"], verify=trust(contract), timeout=60) as http:
        yield World(contract, http)


@pytest.fixture(scope="module")
def environment(bare: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = sandbox_environment(bare.contract)
    env["DOTDYN_HOME"] = str(tmp_path_factory.mktemp("provisioned-home"))
    env.pop("DOTDYN_POSTGRES_URL", None)
    return env


@pytest.fixture(scope="module")
def provisioned(bare: World, environment: dict[str, str]) -> dict:
    """The first provisioning's summary; the doctor's verdict before it is kept for the test that reads it."""
    before = dotdyn(environment, "doctor", "--json")
    first = dotdyn(environment, "provision", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    return {"doctor_before": before, "first": last_json(first.stdout)}


def test_a_bare_organisation_has_nothing_of_the_solution_and_the_doctor_says_to_provision(bare, provisioned):
    before = provisioned["doctor_before"]
    assert before.returncode != 0
    assert "dotdyn provision" in before.stdout


def test_provisioning_creates_every_table_once_and_a_second_run_changes_nothing(bare, environment, provisioned):
    created = provisioned["first"]["created"]
    assert provisioned["first"]["changes"] == len(created) > 0
    tables = {table.logical_name for table in solution.TABLES}
    assert tables <= {name for name in created if name in tables} | set(" ".join(created).split()), created
    for table in solution.TABLES:  # every table answers through the Web API's data side, by its entity set
        assert bare.rows(table.entity_set) == [], table.entity_set
    again = dotdyn(environment, "provision", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert last_json(again.stdout)["changes"] == 0


@pytest.fixture(scope="module")
def configured(bare: World, environment: dict[str, str], provisioned) -> World:
    """The administrator's configuration after installing: accounts, list activation, labels and mappings."""
    bare.http.post("/dataverse/solution-data").raise_for_status()
    return bare


def test_the_people_hold_their_solution_roles_once_configured(configured):
    people = {u["systemuserid"]: u["fullname"] for u in configured.rows("systemusers") if u["accessmode"] == 0}
    roles = {r["roleid"]: r["name"] for r in configured.rows("roles")}
    held = {(people[link["systemuserid"]], roles[link["roleid"]])
            for link in configured.rows("systemuserrolescollection") if link["systemuserid"] in people}
    assert held == {("Morgan Manager", "Email Marketing Manager"), ("Pat Professional", "Email Marketing Professional")}


def test_the_doctor_passes_once_provisioned_and_configured(configured, environment):
    result = dotdyn(environment, "doctor", "--json")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def pipeline(configured: World, environment: dict[str, str]) -> Iterator[Pipeline]:
    patch = pytest.MonkeyPatch()
    for key, value in environment.items():
        patch.setenv(key, value)
    patch.delenv("DOTDYN_POSTGRES_URL", raising=False)
    from dotdyn_pipeline.definitions import build_definitions

    defs = build_definitions()
    with instance_for_test() as instance:
        yield Pipeline(instance, defs, register_accounts(instance, defs))
    patch.undo()


def test_the_flows_run_on_the_provisioned_organisation_as_on_the_default_sandbox(configured, pipeline):
    assert len(pipeline.accounts) == len(configured.contract["accounts"])
    for account in pipeline.accounts:
        result = pipeline.sync(account)
        assert result.success, account
        _assert_books_match(configured, account)
        first, last = date.today() - timedelta(days=E2E_SANDBOX.days), date.today()
        assert engage(pipeline, account, first, last).success, account
        expected = expected_keys(configured, account, first, last)
        assert expected["campaigns"] and expected["summaries"], "the window has engagement"
        assert actual_keys(configured, account) == expected, account
    settle(pipeline)  # the consent flow catches up with the seeded history
    account = pipeline.accounts[0]
    book, wanted = next(iter(configured.expected_books(account).items()))
    email = sorted(wanted & set(configured.actual_books(account, [book])[book]))[0]
    suppress(configured, account, email)
    settle(pipeline)
    rows = [r for r in configured.rows("esc_emailsupressions") if r["esc_email"] == email]
    assert [(r["_esc_emailaccountid_value"], r["esc_source"]) for r in rows] == [(account, "dotdigital")]

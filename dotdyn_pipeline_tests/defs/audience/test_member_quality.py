"""The blocking check `member_quality`, run through Dagster on a mirror seeded in a real state store."""

from __future__ import annotations

import uuid
from typing import Any

import dagster as dg
import pytest

from dotdyn_pipeline.defs.audience.members import (
    QUALITY_CHECK,
    MemberQualityConfig,
    audience_members,
    batch_is_safe,
)
from dotdyn_pipeline.resources import DataverseResource, StateStoreResource
from dotdyn_pipeline.state import MirrorRow, StateStore
from dotdyn_pipeline_tests.defs.accounts.registration import register

ACCOUNT = "5e0c1f38-0d5b-4a43-9f55-3d1c7a3a8c01"
KEY = "quality"  # the partition key the account is given for its name


@pytest.fixture
def dataverse(sandbox: dict[str, Any]) -> DataverseResource:
    """The suite's sandbox, whose metadata the account's data mappings are checked against."""
    return DataverseResource(org_url=sandbox["dataverse_url"], authority=sandbox["authority"],
                             client_id=sandbox["client_id"], client_secret=sandbox["client_secret"],
                             ca_bundle=sandbox["ca_cert"])


def _seed(home, members: int, invalid: int) -> None:
    """One activated list of ACCOUNT with `members` contacts, the first `invalid` of them with a bad address."""
    with StateStore.open(f"sqlite:///{home / 'state.db'}", "dotdyn") as store:
        list_id = str(uuid.uuid4())
        store.mirror.upsert("list", [MirrorRow(list_id, {
            "listid": list_id, "_esc_emailaccountid_value": ACCOUNT, "esc_activatedforemail": True, "statecode": 0})])
        people = [MirrorRow(str(uuid.uuid4()), {
            "emailaddress1": f"not an address {n}" if n < invalid else f"person{n}@example.com", "statecode": 0,
            "modifiedon": "2026-11-01T00:00:00Z"}, email_key=None if n < invalid else f"person{n}@example.com")
            for n in range(members)]
        store.mirror.upsert("contact", people)
        store.mirror.upsert("listmember", [MirrorRow(str(uuid.uuid4()), {}, parent_id=list_id, ref_id=p.crm_id)
                                           for p in people])


@pytest.mark.parametrize(("members", "invalid", "passed"), [(200, 60, False), (200, 40, True), (8, 4, True)])
def test_a_batch_fails_the_run_only_when_large_enough_and_mostly_quarantined(tmp_path, dataverse, members, invalid,
                                                                             passed):
    _seed(tmp_path, members, invalid)
    with dg.instance_for_test() as instance:
        state = StateStoreResource(home=str(tmp_path))
        assert [partition.key for partition in register(instance, state, {ACCOUNT: "Quality"})] == [KEY]
        result = dg.materialize([audience_members], partition_key=KEY, instance=instance, raise_on_error=False,
                                resources={"state": state, "dataverse": dataverse})
        [check] = result.get_asset_check_evaluations()
        [materialized] = result.asset_materializations_for_node("audience_members")
    assert materialized.metadata["email_account_id"].value == ACCOUNT, "the account id beside the partition key"
    assert check.check_name == QUALITY_CHECK
    assert check.passed is passed and result.success is passed
    assert check.metadata["quarantined"].value == invalid and check.metadata["checked"].value == members


def test_the_share_is_judged_from_a_minimum_batch_size():
    limits = MemberQualityConfig(max_quarantine_share=0.25, quarantine_min_rows=100)
    assert batch_is_safe(25, 100, limits)
    assert not batch_is_safe(26, 100, limits)
    assert batch_is_safe(99, 99, limits)


def test_a_run_may_set_its_own_share_over_the_environment_default(tmp_path, dataverse):
    _seed(tmp_path, 200, 60)  # 30% quarantined: unsafe at the default share, safe at 40%
    with dg.instance_for_test() as instance:
        state = StateStoreResource(home=str(tmp_path))
        register(instance, state, {ACCOUNT: "Quality"})
        result = dg.materialize([audience_members], partition_key=KEY, instance=instance, raise_on_error=False,
                                resources={"state": state, "dataverse": dataverse},
                                run_config={"ops": {"audience_members": {"config": {"max_quarantine_share": 0.4}}}})
        [check] = result.get_asset_check_evaluations()
    assert check.passed and result.success
    assert "unsafe above 40%" in check.description

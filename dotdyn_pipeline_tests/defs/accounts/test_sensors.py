"""The email_accounts sensor against the sandbox's accounts, on a real Dagster instance and state store."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test, instance_for_test

from dotdyn_pipeline.defs.accounts import sensors
from dotdyn_pipeline.defs.accounts.partitions import ACCOUNT_ID_TAG, ACCOUNT_NAME_TAG, account_id
from dotdyn_pipeline.defs.engagement.windows import partition_key, range_tags
from dotdyn_pipeline.demo import apply_partition_requests
from dotdyn_pipeline.resources import DataverseResource, StateStoreResource
from dotdyn_pipeline.state import AccountPartition


@pytest.fixture
def resources(sandbox: dict[str, Any], tmp_path) -> dict[str, Any]:
    return {"dataverse": DataverseResource(org_url=sandbox["dataverse_url"], authority=sandbox["authority"],
                                           client_id=sandbox["client_id"], client_secret=sandbox["client_secret"],
                                           ca_bundle=sandbox["ca_cert"]),
            "state": StateStoreResource(home=str(tmp_path))}


@pytest.fixture
def instance():
    with instance_for_test() as test_instance:
        yield test_instance


def _tick(instance: dg.DagsterInstance, resources: dict[str, Any]) -> dg.SensorResult:
    """One evaluation, its partition requests applied as the daemon applies them."""
    with dg.build_sensor_context(instance=instance, resources=resources) as context:  # closes what it opened
        result = sensors.email_accounts(context)
    apply_partition_requests(instance, result)
    return result


def _key(name: str) -> str:
    """The key this test expects of a sandbox account's name ("Account 1")."""
    return name.lower().replace(" ", "-")


def test_new_accounts_get_keys_from_their_names_and_a_first_sync_tagged_with_the_account(
        sandbox, resources, instance):
    result = _tick(instance, resources)

    accounts = {_key(a["name"]): a for a in sandbox["accounts"]}
    assert sorted(instance.get_dynamic_partitions("email_account")) == sorted(accounts)
    assert {r.partition_key: (r.run_key, r.tags) for r in result.run_requests} == {
        key: (f"first-sync:{a['emailaccount_id']}", {ACCOUNT_ID_TAG: a["emailaccount_id"], ACCOUNT_NAME_TAG: a["name"]})
        for key, a in accounts.items()}
    again = _tick(instance, resources)
    assert again.skip_reason is not None and not again.run_requests, "nothing new: nothing asked"


def test_a_partition_keyed_by_the_account_id_moves_to_the_name_key_and_its_runs_keep_being_found(
        sandbox, resources, instance):
    first, second = sandbox["accounts"]
    old, other = first["emailaccount_id"], second["emailaccount_id"]
    instance.add_dynamic_partitions("email_account", [old, other])  # as the sensor registered them before
    runs = [create_run_for_test(instance, job_name="audience_sync", tags={"dagster/partition": old}),
            create_run_for_test(instance, job_name="engagement_sync",
                                tags={"dagster/partition": str(partition_key(old, "2026-03-05")),
                                      "dagster/partition/email_account": old, "dagster/partition/day": "2026-03-05"}),
            create_run_for_test(instance, job_name="engagement_sync", tags=range_tags(old, "2026-03-01", "2026-03-04"))]
    others = create_run_for_test(instance, job_name="audience_sync", tags={"dagster/partition": other})
    instance.report_runless_asset_event(dg.AssetMaterialization("audience_members", partition=old))

    result = _tick(instance, resources)

    assert sorted(instance.get_dynamic_partitions("email_account")) == ["account-1", "account-2"]
    assert not result.run_requests, "a moved account has synced before: no first sync"
    found = instance.get_run_ids(dg.RunsFilter(tags={ACCOUNT_ID_TAG: old}))
    assert sorted(found) == sorted(run.run_id for run in runs), "every old run of the account, by its id tag"
    for run in runs:
        tags = instance.get_run_by_id(run.run_id).tags
        assert (tags[ACCOUNT_ID_TAG], tags[ACCOUNT_NAME_TAG]) == (old, first["name"])
        assert run.tags.items() <= tags.items(), "the old partition tags stay"
    assert instance.get_run_by_id(others.run_id).tags[ACCOUNT_ID_TAG] == other
    materialized = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("audience_members"), asset_partitions=[old]), limit=10)
    assert len(materialized.records) == 1, "the materialisation stays recorded under the old key"
    with resources["state"].open() as store:
        assert store.account_partition("account-1") == AccountPartition(old, "account-1", first["name"], old)
        assert account_id(store, old) == old, "a run of the old key, while it lasts, finds its account"
    assert _tick(instance, resources).skip_reason is not None, "moved once"


def test_the_old_partition_stays_until_every_run_of_it_is_tagged(sandbox, resources, instance, monkeypatch):
    old = sandbox["accounts"][0]["emailaccount_id"]
    instance.add_dynamic_partitions("email_account", [old])
    made = {create_run_for_test(instance, job_name="audience_sync", tags={"dagster/partition": old}).run_id
            for _ in range(3)}
    monkeypatch.setattr(sensors, "TAGGING_BUDGET", -1.0)  # a tick with no time left for tagging

    _tick(instance, resources)

    assert sorted(instance.get_dynamic_partitions("email_account")) == sorted(["account-1", "account-2", old])
    assert not instance.get_run_ids(dg.RunsFilter(tags={ACCOUNT_ID_TAG: old}))
    monkeypatch.undo()
    _tick(instance, resources)
    assert sorted(instance.get_dynamic_partitions("email_account")) == ["account-1", "account-2"]
    assert set(instance.get_run_ids(dg.RunsFilter(tags={ACCOUNT_ID_TAG: old}))) == made

"""The code location loads, validates with Dagster's own CLI, and its instance follows the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import dagster as dg
import psycopg2
import pytest

from dotdyn_pipeline.instance import prepare_dagster_home
from dotdyn_pipeline.settings import PROJECT_ROOT, Settings
from dotdyn_pipeline.state.migrations import load_migrations


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=PROJECT_ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300)


def test_definitions_load_with_every_asset():
    from dotdyn_pipeline.definitions import defs

    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys >= {"state_store", "crm_contacts", "crm_leads", "crm_accounts", "crm_marketing_lists",
                    "crm_list_members", "crm_data_mappings", "audience_members", "audience_contacts", "address_books",
                    "address_book_members"}
    assert defs.resolve_job_def("audience_sync").partitions_def.name == "email_account"
    assert defs.resolve_sensor_def("email_accounts") is not None
    assert defs.resolve_schedule_def("audience_schedule").cron_schedule == "*/15 * * * *"


def test_the_audience_job_runs_a_process_per_step_unless_the_schedule_asks_for_one_process(tmp_path):
    """A first sync, launched by hand, extracts its large tables side by side; a scheduled run carries the
    changes since the last, and runs its short steps one after another in its own process."""
    from dotdyn_pipeline.definitions import defs
    from dotdyn_pipeline.defs.accounts.partitions import ACCOUNT_ID_TAG, ACCOUNT_NAME_TAG
    from dotdyn_pipeline.defs.audience.jobs import IN_PROCESS, PROCESS_PER_STEP
    from dotdyn_pipeline.resources import StateStoreResource
    from dotdyn_pipeline_tests.defs.accounts.registration import register

    job, state = defs.resolve_job_def("audience_sync"), StateStoreResource(home=str(tmp_path))
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                       resources={"state": state},
                                       scheduled_execution_time=datetime(2026, 11, 29, 12, 15, tzinfo=UTC)) as context:
            assert isinstance(defs.resolve_schedule_def("audience_schedule").evaluate_tick(context).skip_message, str)
            register(instance, state, {"id-b": "B", "id-a": "A"})
            requests = defs.resolve_schedule_def("audience_schedule").evaluate_tick(context).run_requests
    assert [(r.partition_key, r.run_key) for r in requests] == [("a", "a@2026-11-29T12:15:00+00:00"),
                                                                 ("b", "b@2026-11-29T12:15:00+00:00")]
    assert [(r.tags[ACCOUNT_ID_TAG], r.tags[ACCOUNT_NAME_TAG]) for r in requests] == [("id-a", "A"), ("id-b", "B")]
    assert all(request.run_config == IN_PROCESS for request in requests)
    # what a run launched for a partition by hand or by a backfill gets
    assert job.partitioned_config.get_run_config_for_partition_key("a") == PROCESS_PER_STEP


def test_step_processes_are_forked_from_a_server_that_has_imported_the_module_they_load_the_job_from():
    """Dagster's forkserver preloads none of the code location unless told which module, and ignores a module
    that fails to import: a wrong name would go unnoticed, and every step process would import it again."""
    from dotdyn_pipeline.definitions import audience_sync_job
    from dotdyn_pipeline.defs.audience.jobs import PROCESS_PER_STEP

    forkserver = PROCESS_PER_STEP["execution"]["config"]["multiprocess"]["start_method"]["forkserver"]
    assert forkserver["preload_modules"] == [dg.reconstructable(audience_sync_job).get_module()]


def test_engagement_assets_are_partitioned_by_account_and_day_and_backfill_in_one_run():
    from dotdyn_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    engagement = {"email_campaigns", "campaign_contact_summaries", "campaign_clicks", "campaign_roi_details",
                  "email_suppressions"}
    for name in engagement:
        node = graph.get(dg.AssetKey(name))
        assert set(node.partitions_def.partition_dimension_names) == {"email_account", "day"}, name
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name
    job = defs.resolve_job_def("engagement_sync")
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == engagement
    assert defs.resolve_schedule_def("engagement_schedule").cron_schedule == "5 * * * *"


def test_dagster_definitions_validate_passes(tmp_path):
    result = _run([sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
                  {"DAGSTER_HOME": str(tmp_path), "DOTDYN_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_dg_loads_the_same_definitions(tmp_path):
    dg_cli = os.path.join(os.path.dirname(sys.executable), "dg")
    result = _run([dg_cli, "check", "defs"], {"DAGSTER_HOME": str(tmp_path), "DOTDYN_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def _materialize_state_store(home, env: dict[str, str]) -> dg.DagsterInstance:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.setenv("DOTDYN_HOME", str(home))
        prepare_dagster_home(Settings.from_env())
        from dotdyn_pipeline.defs.state.assets import state_store
        from dotdyn_pipeline.resources import state_store_resource

        instance = dg.DagsterInstance.get()
        result = dg.materialize([state_store], instance=instance, resources={"state": state_store_resource()})
        assert result.success
        return instance


def test_embedded_instance_uses_sqlite_under_dotdyn_home(tmp_path, monkeypatch):
    monkeypatch.delenv("DOTDYN_POSTGRES_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance = _materialize_state_store(tmp_path, {})
    assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    assert (tmp_path / "dagster" / "dagster.yaml").exists()
    assert (tmp_path / "state.db").exists()
    assert instance.get_latest_materialization_event(dg.AssetKey("state_store")) is not None


def test_the_instance_monitors_runs_so_that_dead_ones_end_and_free_their_slots(tmp_path, monkeypatch):
    monkeypatch.delenv("DOTDYN_POSTGRES_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("DOTDYN_HOME", str(tmp_path))
    with dg.DagsterInstance.from_config(str(prepare_dagster_home(Settings.from_env()))) as instance:
        assert instance.run_monitoring_enabled
        assert 0 < instance.run_monitoring_start_timeout_seconds and 0 < instance.run_monitoring_cancel_timeout_seconds
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0


@pytest.fixture
def postgres_database(postgres_url):
    """A fresh database for Dagster's tables (they live in its public schema), dropped afterwards."""
    name = f"dotdyn_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


def test_postgres_url_moves_dagster_and_the_state_store_to_postgres(tmp_path, monkeypatch, postgres_database):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance = _materialize_state_store(tmp_path, {"DOTDYN_POSTGRES_URL": postgres_database,
                                                   "DOTDYN_STATE_SCHEMA": "dotdyn_state"})
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert not (tmp_path / "state.db").exists()
    conn = psycopg2.connect(postgres_database)
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT version FROM dotdyn_state.schema_migrations")
        assert [v for (v,) in cursor.fetchall()] == [m.version for m in load_migrations()]
        cursor.execute("SELECT count(*) FROM public.runs")
        assert cursor.fetchone()[0] == 1
    conn.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sigint_default() -> None:
    """`dagster dev` stops on SIGTERM by handling it as SIGINT; a shell that started the tests in the background
    left SIGINT ignored, and SIGTERM would then be ignored too."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_dagster_dev_serves_the_definitions(tmp_path):
    """`dagster dev -w workspace.yaml` starts and its GraphQL API lists the assets."""
    import time

    import httpx

    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "DOTDYN_HOME": str(tmp_path)}
    env.pop("DOTDYN_POSTGRES_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
                             "-p", str(port)], cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=_sigint_default)
    query = {"query": "{ assetNodes { assetKey { path } } }"}
    keys: list = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not keys:
            assert proc.poll() is None, "dagster dev exited"
            try:
                body = httpx.post(f"http://127.0.0.1:{port}/graphql", json=query, timeout=5).json()
                keys = [node["assetKey"]["path"] for node in body["data"]["assetNodes"]]
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # leave nothing running, then fail
            raise
    assert ["state_store"] in keys

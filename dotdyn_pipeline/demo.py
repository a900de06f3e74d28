"""`dotdyn demo`: the whole pipeline on the sandbox, with the configured instance, and a summary per account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotdyn_pipeline.instance import prepare_dagster_home
from dotdyn_pipeline.settings import Settings

if TYPE_CHECKING:
    from dotdyn_pipeline.state import AccountPartition

#: The demo's sandbox: two Dotdigital accounts and about 20,000 people.
DEMO_PEOPLE = {"contacts": 15_000, "leads": 4_000, "accounts": 1_000}
#: The days of engagement the demo imports after each account's audience sync (the sandbox's history).
DEMO_ENGAGEMENT_DAYS = 30


#: Only warnings on the console: the summary says what happened, the UI has the full logs.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def sandbox_environment(contract: dict[str, Any]) -> dict[str, str]:
    """The environment that points the pipeline at a sandbox (as a deployment would at Entra ID and the APIs)."""
    env = {
        "DOTDYN_AUTHORITY": contract["authority"],
        "DOTDYN_CLIENT_ID": contract["client_id"],
        "DOTDYN_CLIENT_SECRET": contract["client_secret"],
        "DOTDYN_DATAVERSE_URL": contract["dataverse_url"],
        "DOTDYN_DATAVERSE_API_VERSION": contract["dataverse_api_version"],
        "DOTDYN_DOTDIGITAL_URL": contract["dotdigital_url"],
        "DOTDYN_CA_BUNDLE": contract["ca_cert"],
        # the stand-in finishes an import of a few thousand rows at once: a first look at two seconds, meant
        # for a real account, would only wait
        "DOTDYN_IMPORT_FIRST_POLL": "0.25",
    }
    env.update({account["secret_name"]: account["api_password"] for account in contract["accounts"]})
    return env


@contextmanager
def _sandbox(settings: Settings, sandbox_dir: str | None) -> Iterator[dict[str, Any]]:
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.process import read_contract, running_sandbox

    if sandbox_dir:  # one already serving: use it and leave it running
        yield read_contract(Path(sandbox_dir))
        return
    print(f"serving the sandbox from {settings.home / 'sandbox'} ...", flush=True)
    with running_sandbox(settings.home / "sandbox", SandboxSettings(email_accounts=2, **DEMO_PEOPLE)) as contract:
        yield contract


def run_demo(sandbox_dir: str | None = None, ui: bool = False, port: int = 3000) -> int:
    """Serve (or use) the sandbox, register the accounts, sync every account, print the summary; with `ui`,
    then serve the Dagster UI on `port` until asked to stop, and stop the sandbox it served with it."""
    import dagster as dg

    from dotdyn_pipeline.defs.accounts.partitions import account_tags
    from dotdyn_pipeline.defs.engagement.windows import range_tags
    from dotdyn_pipeline.ui import serve_ui

    settings = Settings.from_env()
    prepare_dagster_home(settings)
    with _sandbox(settings, sandbox_dir) as contract:
        os.environ.update(sandbox_environment(contract))
        from dotdyn_pipeline.definitions import build_definitions

        defs, ok = build_definitions(), True
        with dg.DagsterInstance.get() as instance:
            accounts = register_accounts(instance, defs)
            audience, engagement = defs.resolve_job_def("audience_sync"), defs.resolve_job_def("engagement_sync")
            last = datetime.now(UTC).date()
            first = last - timedelta(days=DEMO_ENGAGEMENT_DAYS - 1)
            for account in accounts:
                result = audience.execute_in_process(partition_key=account.key, instance=instance,
                                                     raise_on_error=False, run_config=QUIET, tags=account_tags(account))
                stop_if_interrupted(result)
                ok &= result.success
                print(summary(account.name, account.account_id, result, settings), flush=True)
                result = engagement.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET,
                                                       tags={**range_tags(account.key, first, last),
                                                             **account_tags(account)})
                stop_if_interrupted(result)
                ok &= result.success
                print(engagement_summary(first, last, result), flush=True)
            ok &= run_sends(contract, instance, defs, accounts)
        if ui:
            stops = "it" if sandbox_dir else "it and the sandbox"
            print(f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C stops {stops})", flush=True)
            return serve_ui("127.0.0.1", port)
    return 0 if ok else 1


def run_sends(contract: dict[str, Any], instance: Any, defs: Any, accounts: list[AccountPartition]) -> bool:
    """Schedule the demo's sends in Dynamics (demo_sends.py), process those due as the sensors would, print them;
    whether every run succeeded."""
    from dotdyn_pipeline.demo_sends import process_due_sends, schedule_sends

    for account in accounts:
        schedule_sends(contract, account.account_id)
    lines = process_due_sends(instance, defs, QUIET)
    print("sends due in Dynamics:\n" + "\n".join(lines or ["  none"]), flush=True)
    return not any("FAILED" in line for line in lines)


def stop_if_interrupted(result: Any) -> None:
    """Dagster turns a stop signal that arrives during an in-process run into that run's failure and returns;
    the demo then stops as well, instead of going on to the next run and the UI."""
    from dagster._core.events import RunFailureReason
    from dagster._core.storage.tags import RUN_FAILURE_REASON_TAG

    if result.dagster_run.tags.get(RUN_FAILURE_REASON_TAG) == RunFailureReason.UNEXPECTED_TERMINATION.value:
        raise KeyboardInterrupt


def register_accounts(instance: Any, defs: Any) -> list[AccountPartition]:
    """Run the accounts sensor once and apply the partitions it asks for; return the registered accounts."""
    import dagster as dg

    from dotdyn_pipeline.defs.accounts.partitions import registered_partitions

    sensor = defs.resolve_sensor_def("email_accounts")
    apply_partition_requests(instance, sensor(dg.build_sensor_context(instance=instance, resources=defs.resources)))
    with defs.resources["state"].open() as store:
        return registered_partitions(instance, store)


def apply_partition_requests(instance: Any, result: Any) -> None:
    """Add and delete the partitions a sensor's result asks for, as the daemon does after a tick."""
    import dagster as dg

    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def register_account(instance: Any, defs: Any, account_id: str) -> AccountPartition:
    """Register the accounts (see `register_accounts`) and return the partition of one of them."""
    return next(account for account in register_accounts(instance, defs) if account.account_id == account_id)


def failed(result: Any) -> str:
    """Why a run failed, in one line: its first failed step and that step's error, and where to read more."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            cause = error.cause or error
            return f"FAILED in {event.step_key}: {cause.message.strip().splitlines()[-1]} (run {result.run_id})"
    return f"FAILED, see run {result.run_id}"


def materialized_facts(result: Any) -> dict[str, dict[str, Any]]:
    """Each asset a run materialized, with its metadata as plain values."""
    facts: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        facts[materialization.asset_key.to_user_string()] = {k: v.value for k, v in materialization.metadata.items()}
    return facts


def summary(name: str, account: str, result: Any, settings: Settings) -> str:
    """What a person reads after an account's sync: extracted, quarantined by reason, imported, removed, calls."""
    from dotdyn_pipeline.state import StateStore

    facts = materialized_facts(result)
    with StateStore.open(settings.state_url, settings.state_schema) as store:
        quarantined = store.quarantine_counts(account, result.run_id)
    extracted = sum(v.get("rows_changed", 0) for k, v in facts.items() if k.startswith("crm_"))
    members, load = facts.get("audience_members", {}), facts.get("address_book_members", {})
    skipped = {k.removeprefix("skipped_"): v for k, v in members.items() if k.startswith("skipped_") and v}
    dataverse = sum(v.get("dataverse_requests", 0) for v in facts.values())
    dotdigital = sum(v.get("dotdigital_calls", 0) for v in facts.values())
    lines = [f"{name} ({account}): {'synced' if result.success else failed(result)}",
             f"  extracted {extracted} changed CRM rows; {members.get('rows_in', 0)} list members",
             f"  quarantined {sum(quarantined.values())}: {quarantined or 'none'}",
             f"  skipped {sum(skipped.values())}: {skipped or 'none'}",
             f"  imported {load.get('rows_imported', 0)} of {load.get('rows_sent', 0)} sent "
             f"({load.get('rows_faulted', 0)} refused by Dotdigital), {load.get('rows_unchanged', 0)} unchanged, "
             f"removed {load.get('rows_removed', 0)}, email changes {load.get('email_changes', 0)}",
             f"  API calls: Dataverse {dataverse}, Dotdigital {dotdigital}"]
    return "\n".join(lines)


#: What the engagement summary calls each asset's rows.
ENGAGEMENT_NAMES = {"email_campaigns": "campaigns", "campaign_contact_summaries": "send summaries",
                    "campaign_clicks": "clicks", "campaign_roi_details": "ROI details",
                    "email_suppressions": "suppressions"}


def engagement_summary(first: date, last: date, result: Any) -> str:
    """What the engagement import of first..last wrote to Dynamics, per table."""
    facts = materialized_facts(result)
    written = ", ".join(f"{facts.get(asset, {}).get('rows_upserted', 0)} {name}"
                        for asset, name in ENGAGEMENT_NAMES.items())
    unlinked = sum(v.get("rows_unlinked", 0) for v in facts.values())
    rejected = sum(v.get("rows_rejected", 0) for v in facts.values())
    state = "imported" if result.success else failed(result)
    return (f"  engagement {first}..{last} {state}: {written}; {unlinked} not linked to a CRM record, "
            f"{rejected} rejected by Dynamics")

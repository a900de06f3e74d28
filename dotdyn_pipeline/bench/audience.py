"""The whole audience flow for one account through Dagster, against a floor of bare reads and a bare upload.

Full run: every CRM table the flow extracts, validation, mapping and the bulk import into the account's
books, from an empty state store, as a run launched for the account's partition runs it: a process per step,
independent steps side by side. peak_rss_mb is the most memory this process and the run's processes held at
once, each page counted once (their proportional set sizes added up: the step processes are forked from one
server and share its pages); peak_rss_sum_mb adds up their resident sets, shared pages counted in each (an upper
bound); peak_process_rss_mb is the largest one process. Then a share of the contacts changes in Dynamics and
the flow runs again as the schedule runs it, in one process (incremental_seconds, incremental_calls).

Floor (same run): bare httpx paging of the same tables with the same columns, plus a bare upload of the same
CSV rows (each book's rows into a book of its own, as the flow sends them) and polling until every import
finishes. It is measured on a twin of the sandbox, seeded alike and fresh, with the data fields the flow
created: an import costs the server more the first time it touches a contact than when the same rows come
again, so a floor taken on the flow's own sandbox afterwards would ask less of the server than the flow's
first sync did. That rerun is reported too (floor_upload_rerun_seconds). A sandbox given with `--sandbox`
has no twin: its floor is the rerun.
"""

import argparse
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg

from dotdyn_pipeline.bench import extract, load
from dotdyn_pipeline.bench.contract import control_http, dataverse_config, dotdigital_http
from dotdyn_pipeline.bench.measure import run_memory, stopwatch
from dotdyn_pipeline.connectors.dataverse import DataverseClient, MsalTokenSource
from dotdyn_pipeline.connectors.dataverse.odata import query
from dotdyn_pipeline.defs.audience.contacts import CONTACT_COLUMNS
from dotdyn_pipeline.defs.audience.jobs import IN_PROCESS, PROCESS_PER_STEP
from dotdyn_pipeline.defs.audience.load import import_rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts in Dynamics")
    parser.add_argument("--change-share", type=float, default=0.01, help="share of contacts changed before "
                                                                          "the incremental run")
    parser.add_argument("--sandbox", metavar="DIR", help="use the sandbox already serving from DIR (one account)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The sandbox is a product feature the benchmark drives; imported here so the pipeline never sees it.
    from dotdyn_pipeline.sandbox.process import read_contract

    with tempfile.TemporaryDirectory(prefix="dotdyn-bench-") as directory:
        if args.sandbox:
            return measure(read_contract(Path(args.sandbox)), Path(directory), args.change_share)
        return with_sandbox_and_twin(args.contacts, Path(directory), partial(measure,
                                                                             change_share=args.change_share))


def with_sandbox_and_twin(contacts: int, directory: Path, measure: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """`measure(contract, directory, twin)` on a sandbox of one account with `contacts` (people in the usual
    proportions, no engagement history), `twin` starting a fresh copy of it for the floor."""
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.process import running_sandbox

    settings = SandboxSettings(contacts=contacts, leads=max(10, contacts // 20), accounts=max(10, contacts // 100),
                               email_accounts=1, days=1, options={"dotdigital.campaigns": "0"})
    with running_sandbox(directory / "sandbox", settings, timeout=3600) as contract:
        return measure(contract, directory, twin=lambda: running_sandbox(directory / "twin", settings, timeout=3600))


def sync_account(instance: dg.DagsterInstance, key: str, run_config: dict[str, Any]) -> tuple[float, dict[str, dict]]:
    """Run the audience job as a deployment would (`execute_job`: `execute_in_process` would also keep every
    step's output in memory until the run ends); return its seconds and each asset's metadata."""
    from dotdyn_pipeline.definitions import audience_sync_job
    from dotdyn_pipeline.demo import QUIET, materialized_facts

    with stopwatch() as watch:
        result = dg.execute_job(dg.reconstructable(audience_sync_job), instance, run_config={**QUIET, **run_config},
                                tags={"dagster/partition": key})
    if not result.success:
        raise RuntimeError(f"the audience run of partition {key} failed; see its events in the Dagster UI")
    return watch.seconds, materialized_facts(result)


def count_calls(facts: dict[str, dict], name: str) -> int:
    return sum(v.get(name, 0) for v in facts.values())


def measure(contract: dict[str, Any], home: Path, change_share: float,
            twin: Callable[[], AbstractContextManager[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Run the flow on `contract`'s sandbox, then again after changes; take the floor on a fresh `twin` of it
    (None: on the same sandbox)."""

    from dotdyn_pipeline.definitions import build_definitions
    from dotdyn_pipeline.demo import register_account, sandbox_environment

    os.environ.update(sandbox_environment(contract))
    os.environ["DOTDYN_HOME"] = str(home / "state")
    os.environ.pop("DOTDYN_POSTGRES_URL", None)
    account = contract["accounts"][0]
    defs = build_definitions()
    (home / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(str(home / "dagster")) as instance:
        key = register_account(instance, defs, account["emailaccount_id"]).key
        with run_memory() as memory:  # as a partition's run is launched: a process per step, side by side
            seconds, facts = sync_account(instance, key, PROCESS_PER_STEP)
        contacts = defs.load_asset_value("audience_contacts", partition_key=key, instance=instance)

        fields = [c for c in contacts.columns if c not in CONTACT_COLUMNS]
        rerun_floor = upload_floor_seconds(contract, contacts, fields)
        with control_http(contract) as control:
            people = control.get("/dataverse/stats").raise_for_status().json()["tables"]["contacts"]
            changed = max(1, round(people * change_share))
            control.post("/dataverse/seed-changes", json={"set": "contacts", "seed": 1, "modify": changed}
                         ).raise_for_status()
        # as the schedule runs it: a change run's steps are short, and a process each would cost more than most take
        incremental_seconds, incremental = sync_account(instance, key, IN_PROCESS)
    if twin:
        with twin() as fresh:
            copy_data_fields(contract, fresh, fields)
            read_floor, upload_floor = _read_floor(fresh), upload_floor_seconds(fresh, contacts, fields)
    else:
        read_floor, upload_floor = _read_floor(contract), rerun_floor
    return {
        "rows": facts["audience_members"]["rows_in"],
        "rows_loaded": facts["address_book_members"]["rows_imported"], "seconds": seconds,
        "peak_rss_mb": memory.total_mb, "peak_rss_sum_mb": memory.rss_sum_mb,
        "peak_process_rss_mb": memory.largest_mb,
        "dataverse_requests": count_calls(facts, "dataverse_requests"),
        "dotdigital_calls": count_calls(facts, "dotdigital_calls"),
        "floor_seconds": round(read_floor + upload_floor, 3), "floor_read_seconds": read_floor,
        "floor_upload_seconds": upload_floor, "floor_upload_rerun_seconds": rerun_floor,
        "floor_sandbox": "twin" if twin else "same", "changed_contacts": changed,
        "address_books": facts["address_books"]["address_books"], "incremental_seconds": incremental_seconds,
        "incremental_calls": count_calls(incremental, "dataverse_requests")
        + count_calls(incremental, "dotdigital_calls"),
        "incremental_rows_sent": incremental["address_book_members"]["rows_sent"],
        "asset_seconds": asset_durations(facts), "incremental_asset_seconds": asset_durations(incremental),
    }


def _read_floor(contract: dict[str, Any]) -> float:
    """Seconds of bare paging of every table the flow reads, with the columns it selected, on `contract`'s
    sandbox."""
    from dotdyn_pipeline.defs.audience.extract import ALL_TABLES, select_for
    from dotdyn_pipeline.resources import state_store_resource

    config = dataverse_config(contract)
    token = MsalTokenSource(config.credentials(), config.org_url, ca_bundle=config.ca_bundle).token()
    with state_store_resource().open() as store, DataverseClient(config) as client:  # the columns the flow selected
        urls = [f"{config.api_root}{client.entity_set_name(table.logical_name)}?"
                f"{query(select_for(table, store, client))}" for table in ALL_TABLES]
    return round(sum(extract._floor(url, token, config, 5000)[0] for url in urls), 3)


def upload_floor_seconds(contract: dict[str, Any], contacts: Any, fields: list[str]) -> float:
    """Seconds of the bare upload of the rows each book was sent, on `contract`'s sandbox."""
    books = (import_rows(rows, fields) for _, rows in contacts.groupby("list_id"))
    return load.floor(contract, contract["accounts"][0], books, ["Email", *fields], load.DEFAULT_IMPORT_CHUNK_BYTES)


def copy_data_fields(source: dict[str, Any], target: dict[str, Any], names: list[str]) -> None:
    """Create in `target`'s account the data fields among `names` that `source`'s account has and it lacks."""
    with dotdigital_http(source, timeout=60) as old, dotdigital_http(target, timeout=60) as new:
        have = {f["name"].upper() for f in new.get("/v2/data-fields").raise_for_status().json()}
        missing = {name.upper() for name in names} - have
        for field in old.get("/v2/data-fields").raise_for_status().json():
            if field["name"].upper() in missing:
                new.post("/v2/data-fields", json={key: field.get(key) for key in
                                                  ("name", "type", "visibility", "defaultValue")}).raise_for_status()


def asset_durations(facts: dict[str, dict]) -> dict[str, float]:
    """Each asset's own duration, as its metadata reports it."""
    return {name: values["duration_s"] for name, values in facts.items() if "duration_s" in values}


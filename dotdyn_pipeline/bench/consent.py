"""Consent latency: unsubscribes made on both sides while the Dagster daemon runs the consent sensors and runs.

Half of the events are people unsubscribing in Dotdigital (alternately in each account), the other half CRM
users setting donotbulkemail in Dynamics. They are spread over two sensor intervals, so that they land at
every phase of the ticks. An event's latency runs from its write to the moment the other side shows it:
the contact's `modifiedon` when Dynamics got the flag, the `dateRemoved` of the suppression in Dotdigital
(in every account: a CRM opt-out applies to all of them). `lost` counts events never reflected within the
timeout; `duplicated` counts ledger entries beyond one per event and account (an event recorded twice, or
one side's write read back as a new event).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from dotdyn_pipeline.bench.contract import control_http

#: The audience schedule stays out of the measurement (its runs would queue before the consent runs).
NEVER = "0 0 1 1 *"
CONSENT_SENSORS = ("dotdigital_consent", "dynamics_consent")
POLL_SECONDS = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=1000, help="unsubscribes to make, half on each side")
    parser.add_argument("--interval", type=int, help="consent sensor interval in seconds (default: the pipeline's "
                                                     "own, DOTDYN_CONSENT_INTERVAL or 60)")
    parser.add_argument("--timeout", type=float, help="seconds after the last event before the rest count as lost "
                                                      "(default: five intervals)")
    parser.add_argument("--sandbox", metavar="DIR", help="use the sandbox already serving from DIR (two accounts)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The sandbox is a product feature the benchmark drives; imported here so the pipeline never sees it.
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.process import read_contract, running_sandbox

    if args.interval:
        os.environ["DOTDYN_CONSENT_INTERVAL"] = str(args.interval)
    with tempfile.TemporaryDirectory(prefix="dotdyn-bench-") as directory:
        if args.sandbox:
            return measure(read_contract(Path(args.sandbox)), Path(directory), args.events, args.timeout)
        people = max(3_000, 3 * args.events)
        settings = SandboxSettings(contacts=people, leads=people // 10, accounts=people // 20, email_accounts=2,
                                   days=1, options={"dotdigital.campaigns": "0"})  # no engagement history needed
        with running_sandbox(Path(directory) / "sandbox", settings) as contract:
            return measure(contract, Path(directory), args.events, args.timeout)


def _catch_up(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Evaluate the consent sensors and run what they ask for until they ask for nothing (the seeded history)."""
    from dotdyn_pipeline.demo import QUIET

    job = defs.resolve_job_def("consent_sync")
    for _ in range(5):
        context = dg.build_sensor_context(instance=instance, resources=defs.resources)
        accounts = {request.partition_key for name in CONSENT_SENSORS
                    for request in defs.resolve_sensor_def(name)(context).run_requests}
        if not accounts:
            return
        for account in sorted(accounts):
            job.execute_in_process(partition_key=account, instance=instance, run_config=QUIET)
    raise RuntimeError("the consent flow did not catch up with the sandbox's history")


def _people(control: httpx.Client, count: int) -> list[dict[str, Any]]:
    """Active contacts with a valid address of their own that no CRM record has opted out."""
    from dotdyn_pipeline.defs.consent.ledger import usable_address

    rows = {kind: control.get(f"/dataverse/rows/{kind}", params={"limit": 10_000_000}).raise_for_status().json()[
        "value"] for kind in ("contacts", "leads", "accounts")}
    holders: dict[str, int] = {}
    opted_out = set()
    for kind_rows in rows.values():
        for row in kind_rows:
            email = usable_address(row.get("emailaddress1"))
            holders[email or ""] = holders.get(email or "", 0) + 1
            if row.get("donotbulkemail") or row.get("donotemail"):
                opted_out.add(email)
    chosen = [row for row in rows["contacts"] if row["statecode"] == 0 and (email := usable_address(
        row.get("emailaddress1"))) and holders[email] == 1 and email not in opted_out]
    if len(chosen) < count:
        raise RuntimeError(f"the sandbox has {len(chosen)} people to unsubscribe, {count} are needed")
    return chosen[:count]


def _ticked(instance: dg.DagsterInstance) -> bool:
    """Whether the daemon has evaluated both consent sensors at least once."""
    states = [state for state in instance.all_instigator_state() if state.name in CONSENT_SENSORS]
    return len(states) == len(CONSENT_SENSORS) and all(
        instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1) for state in states)


def _at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3) if ordered else 0.0


def measure(contract: dict[str, Any], home: Path, events: int, timeout: float | None) -> dict[str, Any]:
    from dotdyn_pipeline.connectors.dotdigital import DotdigitalConfig, connect
    from dotdyn_pipeline.definitions import build_definitions
    from dotdyn_pipeline.demo import QUIET, register_accounts, sandbox_environment
    from dotdyn_pipeline.instance import prepare_dagster_home
    from dotdyn_pipeline.resources import state_store_resource
    from dotdyn_pipeline.settings import PROJECT_ROOT, Settings

    os.environ.update(sandbox_environment(contract))
    os.environ.update({"DOTDYN_HOME": str(home / "home"), "DOTDYN_AUDIENCE_CRON": NEVER})
    os.environ.pop("DOTDYN_POSTGRES_URL", None)
    settings = Settings.from_env()
    prepare_dagster_home(settings)
    interval = settings.consent_interval
    timeout = timeout or 5 * interval
    defs = build_definitions()
    clients = [connect(DotdigitalConfig(api_user=a["api_user"], api_password=a["api_password"],
                                        base_url=contract["dotdigital_url"], transport=a["transport"],
                                        ca_bundle=contract["ca_cert"])) for a in contract["accounts"]]
    with dg.DagsterInstance.get() as instance, control_http(contract, timeout=120) as control:
        accounts = register_accounts(instance, defs)
        for account in accounts:  # the mirror and the address books the consent flow works with
            defs.resolve_job_def("audience_sync").execute_in_process(partition_key=account.key, instance=instance,
                                                                     run_config=QUIET)
        _catch_up(defs, instance)
        people = _people(control, events)
        from_dotdigital, from_dynamics = people[:events // 2], people[events // 2:]

        log = (home / "daemon.log").open("w")
        daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w",
                                   "workspace.yaml"], cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while not _ticked(instance):
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the daemon did not tick the consent sensors; see {log.name}")
                time.sleep(1)
            made = _make_events(control, contract, from_dotdigital, from_dynamics, window=2 * interval)
            seen = _watch(control, clients, from_dotdigital, from_dynamics, made, timeout)
        finally:
            daemon.terminate()
            daemon.wait(60)
            log.close()
            for client in clients:
                client.close()
        runs = [record for record in instance.get_run_records(dg.RunsFilter(job_name="consent_sync"))
                if record.end_time and record.create_timestamp.timestamp() >= min(made.values())]
    with state_store_resource().open() as store:
        duplicated = _duplicated(store, accounts, from_dotdigital, from_dynamics)
    latencies = [seen[email] - made[email] for email in seen]
    # a run as the daemon delivers it: queued, launched in its own process, executed
    durations = [record.end_time - record.create_timestamp.timestamp() for record in runs]
    return {
        "events": events, "interval_seconds": interval, "p50_seconds": _quantile(latencies, 0.5),
        "p95_seconds": _quantile(latencies, 0.95), "max_seconds": round(max(latencies, default=0.0), 3),
        "lost": events - len(seen), "duplicated": duplicated, "consent_runs": len(runs),
        "run_p50_seconds": _quantile(durations, 0.5), "run_max_seconds": round(max(durations, default=0.0), 3),
        "target_seconds": round(2 * interval + max(durations, default=0.0), 3),
        "dotdigital_to_dynamics_p95_seconds": _quantile(
            [seen[p["emailaddress1"].strip().lower()] - made[p["emailaddress1"].strip().lower()]
             for p in from_dotdigital if p["emailaddress1"].strip().lower() in seen], 0.95),
        "dynamics_to_dotdigital_p95_seconds": _quantile(
            [seen[p["emailaddress1"].strip().lower()] - made[p["emailaddress1"].strip().lower()]
             for p in from_dynamics if p["emailaddress1"].strip().lower() in seen], 0.95),
    }


def _make_events(control: httpx.Client, contract: dict[str, Any], from_dotdigital: list[dict[str, Any]],
                 from_dynamics: list[dict[str, Any]], window: float) -> dict[str, float]:
    """Make the unsubscribes, evenly over `window` seconds, alternating sides; address -> when it was made."""
    made: dict[str, float] = {}
    order = [("dotdigital", p) for p in from_dotdigital] + [("dynamics", p) for p in from_dynamics]
    order.sort(key=lambda item: item[1]["contactid"])  # interleaves the two sides
    start = time.monotonic()
    for number, (side, person) in enumerate(order):
        time.sleep(max(0.0, start + number * window / len(order) - time.monotonic()))
        email = person["emailaddress1"].strip().lower()
        if side == "dotdigital":
            account = 1 + number % len(contract["accounts"])
            control.post(f"/dotdigital/accounts/{account}/suppress",
                         json={"email": email, "reason": "Unsubscribed"}).raise_for_status()
        else:
            control.post("/dataverse/rows/contacts", json={"contactid": person["contactid"],
                                                           "donotbulkemail": True}).raise_for_status()
        made[email] = time.time()
    return made


def _watch(control: httpx.Client, clients: list[Any], from_dotdigital: list[dict[str, Any]],
           from_dynamics: list[dict[str, Any]], made: dict[str, float], timeout: float) -> dict[str, float]:
    """Poll both sides until every event shows on the other one (or the timeout); address -> when it showed."""
    crm_ids = {p["contactid"]: p["emailaddress1"].strip().lower() for p in from_dotdigital}
    wanted = {p["emailaddress1"].strip().lower() for p in from_dynamics}
    since = datetime.fromtimestamp(min(made.values()) - 5, UTC)
    seen: dict[str, float] = {}
    deadline = max(made.values()) + timeout
    while len(seen) < len(made) and time.time() < deadline:
        time.sleep(POLL_SECONDS)
        flagged = control.get("/dataverse/rows/contacts", params={
            "$filter": "donotbulkemail eq true", "$select": "contactid,modifiedon", "limit": 10_000_000,
        }).raise_for_status().json()["value"]
        seen.update({crm_ids[row["contactid"]]: _at(row["modifiedon"])
                     for row in flagged if row["contactid"] in crm_ids})
        removed: dict[str, list[float]] = {}
        for client in clients:
            for suppression in client.suppressed_since(since):
                email = suppression.contact.email.strip().lower()
                if email in wanted and suppression.date_removed:
                    removed.setdefault(email, []).append(suppression.date_removed.timestamp())
        seen.update({email: max(times) for email, times in removed.items() if len(times) == len(clients)})
    return seen


def _duplicated(store: Any, accounts: list[str], from_dotdigital: list[dict[str, Any]],
                from_dynamics: list[dict[str, Any]]) -> int:
    """Ledger entries beyond the one each event should make in each account it applies to."""
    expected = {p["emailaddress1"].strip().lower(): 1 for p in from_dotdigital}
    expected.update({p["emailaddress1"].strip().lower(): len(accounts) for p in from_dynamics})
    found: dict[str, int] = {}
    for entry in store.open_unsubscribes(expected):
        found[entry.event.email] = found.get(entry.event.email, 0) + 1
    return sum(max(0, found.get(email, 0) - wanted) for email, wanted in expected.items())

"""The engagement flow for one account and one range through Dagster, against a floor of bare reads and posts.

Run: a single-run backfill of every day the sandbox's engagement covers, from a state store whose CRM mirror
holds the people (as after an audience sync) and whose id map is empty. Floor (same run): bare httpx GETs of
the same Dotdigital pages (campaigns with activity, summaries, activities, clicks, ROI details, suppressions),
plus bare UpsertMultiple POSTs of the same rows in bodies of 1000, as many at once as the pipeline sends.
Targets: within 1.5 x the floor, peak RSS under 1.5 GB, Dataverse write requests at most 1.05 x rows / 1000.
"""

import argparse
import json
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from dotdyn_pipeline.bench.contract import dataverse_config, dotdigital_http
from dotdyn_pipeline.bench.measure import peak_rss_mb, stopwatch
from dotdyn_pipeline.connectors.dataverse import MsalTokenSource
from dotdyn_pipeline.connectors.http import tls_verify

WRITE_KINDS = ("upsert_multiple", "batch", "upsert")
BODY_ROWS = 1000
#: (path under /v2/campaigns/{id}/, table, key fields besides account and campaign, value fields) per stream
STREAMS = (
    ("activities/since-date/{date}", "esc_emailcampaigncontactsummary", ("contactId",),
     ("email", "numOpens", "numPageViews", "numClicks", "numForwards", "numReplies", "dateSent",
      "dateFirstOpened", "dateLastOpened", "firstOpenIp", "unsubscribed", "softBounced", "hardBounced")),
    ("clicks/since-date/{date}", "esc_emailcampaigncontactclick", ("contactId", "url", "dateClicked"),
     ("email", "ipAddress", "userAgent", "keyword")),
    ("roi-details/since-date/{date}", "esc_emailroidetail", ("contactId", "markerName", "dateEntered"),
     ("email", "dataType", "value")),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--activities", type=int, default=1_000_000, help="activity rows in Dotdigital")
    parser.add_argument("--days", type=int, default=30, help="days the engagement is spread over")
    parser.add_argument("--sandbox", metavar="DIR", help="use the sandbox already serving from DIR")


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The sandbox is a product feature the benchmark drives; imported here so the pipeline never sees it.
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.process import read_contract, running_sandbox

    with tempfile.TemporaryDirectory(prefix="dotdyn-bench-") as directory:
        if args.sandbox:
            return measure(read_contract(Path(args.sandbox)), Path(directory), args.days)
        contacts = max(2_000, args.activities // 20)  # about twenty campaigns to the whole base
        settings = SandboxSettings(contacts=contacts, leads=max(10, contacts // 20), accounts=max(10, contacts // 100),
                                   email_accounts=1, days=args.days,
                                   options={"dotdigital.activities": str(args.activities)})
        with running_sandbox(Path(directory) / "sandbox", settings, timeout=3600) as contract:
            return measure(contract, Path(directory), args.days)


def measure(contract: dict[str, Any], home: Path, days: int) -> dict[str, Any]:
    from dotdyn_pipeline.definitions import build_definitions
    from dotdyn_pipeline.defs.engagement.windows import range_tags
    from dotdyn_pipeline.demo import QUIET, materialized_facts, register_account, sandbox_environment

    os.environ.update(sandbox_environment(contract))
    os.environ["DOTDYN_HOME"] = str(home / "state")
    os.environ.pop("DOTDYN_POSTGRES_URL", None)
    account = contract["accounts"][0]
    account_id = account["emailaccount_id"]
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)
    defs = build_definitions()
    with dg.DagsterInstance.ephemeral() as instance:
        key = register_account(instance, defs, account_id).key
        people = [dg.AssetKey(name) for name in ("crm_contacts", "crm_leads", "crm_accounts")]
        assert defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=people, run_config=QUIET).success
        job = defs.resolve_job_def("engagement_sync")
        with stopwatch() as watch:
            result = job.execute_in_process(instance=instance, run_config=QUIET,
                                            tags=range_tags(key, first, today))
        assert result.success
        peak = peak_rss_mb()
    facts = materialized_facts(result)
    read_seconds, post_seconds, floor_rows = _floor(contract, account, first, home)
    rows = sum(stats["rows_read"] for stats in facts.values())
    writes = _write_requests()
    return {
        "rows": rows, "seconds": watch.seconds, "rows_per_s": round(rows / watch.seconds) if watch.seconds else None,
        "peak_rss_mb": peak,
        "dataverse_requests": sum(stats["dataverse_requests"] for stats in facts.values()),
        "dataverse_write_requests": writes, "max_write_requests": int(1.05 * rows / 1000),
        "dotdigital_calls": sum(stats["dotdigital_calls"] for stats in facts.values()),
        "rows_by_asset": {asset: stats["rows_read"] for asset, stats in facts.items()},
        "rows_unlinked": sum(stats["rows_unlinked"] for stats in facts.values()),
        "floor_seconds": round(read_seconds + post_seconds, 3), "floor_read_seconds": read_seconds,
        "floor_post_seconds": post_seconds, "floor_rows": floor_rows,
        "vs_floor": round(watch.seconds / (read_seconds + post_seconds), 3),
    }


def _write_requests() -> int:
    """Dataverse write requests the run made, from the state store's call counts."""
    from dotdyn_pipeline.resources import state_store_resource
    from dotdyn_pipeline.state import ORG_SCOPE

    with state_store_resource().open() as store:
        calls = store.api_calls(ORG_SCOPE, "dataverse")
    return sum(calls.get(kind, 0) for kind in WRITE_KINDS)


def _floor(contract: dict[str, Any], account: dict[str, Any], first: date, home: Path) -> tuple[float, float, int]:
    """(seconds reading the pages bare, seconds posting the same bodies bare, rows).

    The pages wait on disk, then become the bodies the pipeline sends (keys, columns, and the lookups to the
    campaign and to the person the run linked), untimed; then the bodies are posted.
    """
    since = f"{first}T00:00:00"
    pages, bodies = home / "floor-pages.jsonl", home / "floor-bodies.jsonl"
    rows = 0
    with dotdigital_http(contract, account) as dd, \
            pages.open("w") as out, stopwatch() as reading:
        campaigns = [c["id"] for c in _paged(dd, f"/v2/campaigns/with-activity-since/{since}", 1000)]
        for campaign in campaigns:
            dd.get(f"/v2/campaigns/{campaign}/summary").raise_for_status()
            for number, (path, *_) in enumerate(STREAMS):
                for page in _pages(dd, f"/v2/campaigns/{campaign}/{path.format(date=since)}", 1000):
                    out.write(json.dumps([campaign, number, page]) + "\n")
                    rows += len(page)
        rows += sum(len(page) for page in _pages(dd, f"/v2/contacts/suppressed-since/{since}", 1000))
    _bodies(account["emailaccount_id"], pages, bodies)
    return reading.seconds, _post(contract, bodies), rows


def _bodies(account: str, pages: Path, bodies: Path) -> None:
    """UpsertMultiple bodies of BODY_ROWS targets per table, from the stored pages."""
    from dotdyn_pipeline.resources import state_store_resource

    with state_store_resource().open() as store:
        people = {link.dotdigital_contact_id: link for link in store.contact_links(account)}
    batches: dict[int, list[dict[str, Any]]] = {}
    with pages.open() as source, bodies.open("w") as out:
        def flush(number: int) -> None:
            table = STREAMS[number][1]
            out.write(json.dumps({"set": _entity_set(table), "Targets": batches.pop(number)}) + "\n")

        for line in source:
            campaign, number, page = json.loads(line)
            _, table, keys, values = STREAMS[number]
            for row in page:
                batches.setdefault(number, []).append(_target(account, campaign, table, keys, values, row,
                                                              people.get(row.get("contactId"))))
                if len(batches[number]) == BODY_ROWS:
                    flush(number)
        for number in list(batches):
            flush(number)


def _pages(http: httpx.Client, path: str, select: int) -> Iterator[list[dict[str, Any]]]:
    skip = 0
    while True:
        page = http.get(path, params={"select": select, "skip": skip}).raise_for_status().json()
        yield page
        if len(page) < select:
            return
        skip += select


def _paged(http: httpx.Client, path: str, select: int) -> Iterator[dict[str, Any]]:
    for page in _pages(http, path, select):
        yield from page


def _entity_set(table: str) -> str:
    return table.removesuffix("y") + "ies" if table.endswith("summary") else table + "s"


def _target(account: str, campaign: int, table: str, keys: tuple[str, ...], values: tuple[str, ...],
            row: dict[str, Any], person: Any) -> dict[str, Any]:
    """One UpsertMultiple target as the pipeline writes it: key values, columns, and `@odata.id` by the key."""
    def column(name: str) -> str:
        return "esc_dotdigitalcontactid" if name == "contactId" else "esc_" + name.lower()

    def key_value(name: str) -> Any:
        value = row.get(name)
        return value[:19] + "Z" if name.startswith("date") else value  # whole seconds, as the pipeline keys them

    key = {"esc_dotdigitalcampaignid": campaign, **{column(k): key_value(k) for k in keys}}
    literals = ",".join(f"{k}={v}" if isinstance(v, int) or k.startswith("esc_date") else f"{k}='{v}'"
                        for k, v in key.items())
    target = {"@odata.type": f"Microsoft.Dynamics.CRM.{table}", **key,
              **{column(v): (str(row.get(v)) if v == "value" else row.get(v)) for v in values}}
    target["esc_emailcampaignid@odata.bind"] = (f"/esc_emailcampaigns(_esc_emailaccountid_value={account},"
                                                f"esc_dotdigitalcampaignid={campaign})")
    if person is not None:
        target[f"esc_{person.crm_table}id@odata.bind"] = f"/{person.crm_table}s({person.crm_id})"
    return {**target, "@odata.id": f"{_entity_set(table)}(_esc_emailaccountid_value={account},{literals})"}


def _post(contract: dict[str, Any], bodies: Path) -> float:
    config = dataverse_config(contract)
    token = MsalTokenSource(config.credentials(), config.org_url, ca_bundle=config.ca_bundle).token()
    headers = {"Authorization": f"Bearer {token}", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
    with httpx.Client(base_url=config.api_root, headers=headers, verify=tls_verify(config.ca_bundle),
                      timeout=600) as http, ThreadPoolExecutor(max_workers=config.max_concurrency) as pool, \
            stopwatch() as posting:
        def post(line: str) -> None:
            body = json.loads(line)
            http.post(f"{body.pop('set')}/Microsoft.Dynamics.CRM.UpsertMultiple", json=body).raise_for_status()

        with bodies.open() as source:
            list(pool.map(post, source))
    return posting.seconds

"""Read every contact through the Dataverse client and compare with a bare httpx loop over the same pages.

Prints rows, seconds, rows_per_s, requests (page GETs; token calls are counted apart), peak_rss_mb (this
process, after the client's first read and before any floor run) and floor_seconds. Targets: the client within 10%
of the floor, peak RSS under 300 MB, requests equal to ceil(rows / page size).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

import httpx

from dotdyn_pipeline.bench.contract import dataverse_config
from dotdyn_pipeline.bench.measure import peak_rss_mb, stopwatch
from dotdyn_pipeline.connectors.dataverse import DataverseClient, DataverseConfig, MsalTokenSource, odata
from dotdyn_pipeline.connectors.http import decode_json, tls_verify

#: The columns the audience flow reads from contacts.
SELECT = ("contactid", "firstname", "lastname", "emailaddress1", "donotbulkemail", "donotemail", "statecode",
          "modifiedon")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts in the sandbox it starts")
    parser.add_argument("--sandbox", metavar="DIR", help="use the sandbox already serving from DIR")
    parser.add_argument("--page-size", type=int, default=5000, help="Prefer: odata.maxpagesize")
    parser.add_argument("--rounds", type=int, default=1, help="client-then-floor rounds; the best of each counts")


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The sandbox is a product feature the benchmark drives; imported here so the client never sees it.
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.process import read_contract, running_sandbox

    if args.sandbox:
        return measure(read_contract(Path(args.sandbox)), args.page_size, args.rounds)
    settings = SandboxSettings(contacts=args.contacts, leads=10, accounts=10, email_accounts=1, days=1)
    with tempfile.TemporaryDirectory(prefix="dotdyn-bench-") as directory, \
            running_sandbox(Path(directory), settings, timeout=1800) as contract:
        return measure(contract, args.page_size, args.rounds)


def measure(contract: dict[str, Any], page_size: int, rounds: int = 1) -> dict[str, Any]:
    """Time the client's full read, then the floor's, `rounds` times; report the best of each."""
    config = dataverse_config(contract, max_page_size=page_size)
    floor_tokens = MsalTokenSource(config.credentials(), config.org_url, ca_bundle=config.ca_bundle)
    with DataverseClient(config) as client:
        first_url = f"{config.api_root}{client.entity_set_name('contact')}?{odata.query(SELECT)}"
        client_runs, floor_runs, peak = [], [], None
        for _ in range(rounds):
            before = client.counter.snapshot().get("read", 0)
            with stopwatch() as watch:
                rows = sum(len(page) for page in client.read("contact", SELECT))
            client_runs.append((watch.seconds, rows, client.counter.snapshot()["read"] - before))
            peak = peak or peak_rss_mb()  # the process's high-water mark before any floor run
            floor_runs.append(_floor(first_url, floor_tokens.token(), config, page_size))
        calls = client.counter.snapshot()
    seconds, rows, requests = min(client_runs)
    floor_seconds, floor_rows = min(floor_runs)
    return {
        "rows": rows, "seconds": seconds, "rows_per_s": round(rows / seconds) if seconds else None,
        "requests": requests, "expected_requests": math.ceil(rows / page_size), "peak_rss_mb": peak,
        "floor_seconds": floor_seconds, "floor_rows": floor_rows,
        "vs_floor": round(seconds / floor_seconds, 3) if floor_seconds else None,
        "token_requests": calls.get("token", 0), "page_size": page_size, "rounds": rounds,
    }


def _floor(first_url: str, token: str, config: DataverseConfig, page_size: int) -> tuple[float, int]:
    """The same GETs, JSON parsing and nextLink following with nothing else: (seconds, rows)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "OData-MaxVersion": "4.0",
               "OData-Version": "4.0", "Prefer": f"odata.maxpagesize={page_size}"}
    rows = 0
    with httpx.Client(verify=tls_verify(config.ca_bundle), headers=headers, timeout=config.timeout) as http, \
            stopwatch() as watch:
        url: str | None = first_url
        while url:
            response = http.get(url)
            response.raise_for_status()
            body = decode_json(response)
            rows += len(body["value"])
            url = body.get("@odata.nextLink")
    return watch.seconds, rows

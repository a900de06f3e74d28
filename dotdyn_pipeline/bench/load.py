"""Bulk-import contacts with ten data fields into one address book through the Dotdigital client, and compare
with a bare httpx upload of the same CSV bytes, polled until finished.

The client imports `--rounds` times (new people into a new book each time, so every round asks the same work
of the server), as the pipeline's client does sync after sync: it learns the account's import throughput in
the first round and plans its polls by it afterwards. The figures are the last round's; `cold_seconds` and
`cold_calls` are the first round's, that of an account the client has never imported into.

Prints rows, seconds, rows_per_s, calls (the import's: uploads, status polls, reports, faults), min_calls
(one upload, one status poll and one report per chunk, plus a faults download per chunk that has faults),
chunks, peak_rss_mb (this process, after the client's imports and before the floor's) and floor_seconds.
Targets: within 15% of the floor, peak RSS under 400 MB, calls at most 1.05 x min_calls.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from dotdyn_pipeline.bench.contract import dotdigital_http
from dotdyn_pipeline.bench.measure import peak_rss_mb, stopwatch
from dotdyn_pipeline.connectors.dotdigital import DotdigitalConfig, connect
from dotdyn_pipeline.connectors.dotdigital.config import DEFAULT_IMPORT_CHUNK_BYTES
from dotdyn_pipeline.connectors.dotdigital.imports import csv_chunks

#: The ten data fields the benchmark's contacts carry, with their Dotdigital types.
FIELDS = {"FIRSTNAME": "String", "LASTNAME": "String", "FULLNAME": "String", "COMPANY": "String",
          "JOBTITLE": "String", "CITY": "String", "COUNTRY": "String", "BIRTHDAY": "Date",
          "SCORE": "Numeric", "VIP": "Boolean"}
COLUMNS = ["Email", *FIELDS]
_B64_SLICE = 3 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts to import")
    parser.add_argument("--sandbox", metavar="DIR", help="use the sandbox already serving from DIR")
    parser.add_argument("--chunk-bytes", type=int, default=DEFAULT_IMPORT_CHUNK_BYTES,
                        help="largest import file (the API's limit is 50 MB)")
    parser.add_argument("--transport", choices=("rest", "soap"), default="rest")
    parser.add_argument("--rounds", type=int, default=3, help="imports by the same client; the last is measured")


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The sandbox is a product feature the benchmark drives; imported here so the client never sees it.
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.process import read_contract, running_sandbox

    if args.sandbox:
        return measure(read_contract(Path(args.sandbox)), args.contacts, args.chunk_bytes, args.transport,
                       args.rounds)
    settings = SandboxSettings(contacts=500, leads=50, accounts=20, email_accounts=2, days=1)
    with tempfile.TemporaryDirectory(prefix="dotdyn-bench-") as directory, \
            running_sandbox(Path(directory), settings) as contract:
        return measure(contract, args.contacts, args.chunk_bytes, args.transport, args.rounds)


def contacts(count: int, round_: int = 0) -> Iterator[dict[str, Any]]:
    """`count` deterministic contacts, cheap to make (the import is measured, not the data source); each round
    has its own people.

    One in 500 has an invalid email and one in 1000 repeats an earlier email, so the import has faults.
    """
    from dotdyn_pipeline.sandbox.people import CITIES, COMPANIES, FIRST_NAMES, LAST_NAMES

    titles = ("Buyer", "Director", "Engineer", "Marketing Manager", "Owner")
    for i in range(count):
        first, last = FIRST_NAMES[i % 26], LAST_NAMES[(i // 26) % 26]
        city, country = CITIES[i % 10]
        if i % 500 == 499:
            email = f"{first.lower()}{i}@@example.com"
        elif i % 1000 == 999 - 1:
            email = f"bench{round_}.{i - 1}@example.com"
        else:
            email = f"bench{round_}.{i}@example.com"
        yield {"Email": email, "FIRSTNAME": first, "LASTNAME": last, "FULLNAME": f"{first} {last}",
               "COMPANY": COMPANIES[i % 10], "JOBTITLE": titles[i % 5], "CITY": city, "COUNTRY": country,
               "BIRTHDAY": f"{1940 + i % 65}-{1 + i % 12:02d}-{1 + i % 28:02d}", "SCORE": i % 1000,
               "VIP": i % 20 == 0}


def _config(contract: dict[str, Any], account: dict[str, Any], chunk_bytes: int, transport: str,
            ) -> DotdigitalConfig:
    return DotdigitalConfig(api_user=account["api_user"], api_password=account["api_password"],
                            base_url=contract["dotdigital_url"], ca_bundle=contract["ca_cert"],
                            transport=transport, import_chunk_bytes=chunk_bytes,
                            soap_address=contract["dotdigital_wsdl"].split("?")[0] if transport == "soap" else None)


def measure(contract: dict[str, Any], count: int, chunk_bytes: int, transport: str = "rest", rounds: int = 3,
            ) -> dict[str, Any]:
    """Import `count` contacts `rounds` times with one client (first account), then the floor (last account)."""
    accounts = contract["accounts"]
    figures = []
    with connect(_config(contract, accounts[0], chunk_bytes, transport)) as client:
        client.ensure_data_fields(FIELDS)
        for round_ in range(max(rounds, 1)):
            book = client.create_address_book(f"bench-load-{uuid.uuid4().hex[:8]}")
            before = client.counter.total
            with stopwatch() as watch:
                result = client.import_contacts(book.id, contacts(count, round_), COLUMNS)
            figures.append((watch.seconds, client.counter.total - before, result))
        peak = peak_rss_mb()
    seconds, calls, result = figures[-1]
    chunks = len(result.outcomes)
    min_calls = 3 * chunks + sum(1 for o in result.outcomes if o.report.fault_count)
    with connect(_config(contract, accounts[-1], chunk_bytes, transport)) as setup:
        setup.ensure_data_fields(FIELDS)  # so that the floor's server types the same ten fields
    floor_seconds = floor(contract, accounts[-1], [contacts(count, rounds - 1)], COLUMNS, chunk_bytes)
    return {
        "rows": result.rows, "seconds": seconds, "rows_per_s": round(result.rows / seconds),
        "calls": calls, "min_calls": min_calls, "chunks": chunks, "peak_rss_mb": peak,
        "floor_seconds": floor_seconds, "new_contacts": result.new_contacts, "faults": len(result.faults),
        "transport": transport, "cold_seconds": figures[0][0], "cold_calls": figures[0][1],
        "round_seconds": [f[0] for f in figures], "round_calls": [f[1] for f in figures],
    }


def floor(contract: dict[str, Any], account: dict[str, Any], books: Iterable[Iterable[Mapping[str, Any]]],
          columns: list[str], chunk_bytes: int) -> float:
    """Seconds to upload the CSV bytes of each of `books` (rows for one address book each) into a new book with
    bare httpx, and poll every import until it is finished."""
    with tempfile.TemporaryDirectory(prefix="dotdyn-floor-") as directory, \
            dotdigital_http(contract, account) as http:
        uploads = []  # (import path, file): every chunk of every book, ready before the clock starts
        for number, rows in enumerate(books):
            book = http.post("/v2/address-books", json={"name": f"bench-floor-{uuid.uuid4().hex[:8]}"})
            book.raise_for_status()
            for index, chunk in enumerate(csv_chunks(rows, columns, chunk_bytes)):
                path = Path(directory) / f"book{number}-chunk{index}.csv"
                path.write_bytes(chunk.data)
                uploads.append((f"/v2/address-books/{book.json()['id']}/contacts/import", path))
        start = time.perf_counter()
        ids = []
        for path_of_import, path in uploads:
            response = http.post(path_of_import, content=_file_media(path),
                                 headers={"Content-Type": "application/json"})
            response.raise_for_status()
            ids.append(response.json()["id"])
        while ids:
            if http.get(f"/v2/contacts/import/{ids[0]}").json()["status"] == "Finished":
                ids.pop(0)
            else:
                time.sleep(0.1)
        return round(time.perf_counter() - start, 3)


def _file_media(path: Path) -> Iterator[bytes]:
    yield json.dumps({"fileName": path.name, "data": ""})[:-2].encode()
    with path.open("rb") as source:
        while piece := source.read(_B64_SLICE):
            yield base64.b64encode(piece)
    yield b'"}'

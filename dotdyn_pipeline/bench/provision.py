"""Provision the solution into a fresh bare sandbox, then provision again: the second run must change nothing.

`--tables N` adds generated tables shaped like the solution's (a column of each type, a choice, a lookup to the
email account, an alternate key) until N tables are provisioned. Prints seconds, requests, tables, changes and
the second run's changes, seconds and requests. Target: 25 tables in under a minute; a second run of 0 changes.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from dotdyn_pipeline.bench.contract import dataverse_config
from dotdyn_pipeline.connectors.dataverse.metadata import MetadataClient
from dotdyn_pipeline.solution import schema
from dotdyn_pipeline.solution.provision import SolutionSpec, provision
from dotdyn_pipeline.solution.schema import Table, column, table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tables", type=int, default=len(schema.TABLES),
                        help=f"tables to provision (the solution has {len(schema.TABLES)}; more are generated)")
    parser.add_argument("--sandbox", metavar="DIR", help="use the bare sandbox already serving from DIR")


def generated_table(number: int) -> Table:
    """A table shaped like the solution's: text, numbers, money, a Boolean, dates, a choice, a lookup, a key."""
    name = f"esc_generated{number:03d}"
    return table(name, name + "s", "esc_name", column("esc_name", max_length=255), column("esc_code", max_length=64),
                 column("esc_emailaccountid", "Lookup", "esc_emailaccount"), column("esc_count", "Integer"),
                 column("esc_total", "BigInt"), column("esc_share", "Double"), column("esc_rate", "Decimal"),
                 column("esc_amount", "Money"), column("esc_active", "Boolean"), column("esc_when", "DateTime"),
                 column("esc_day", "DateOnly"), column("esc_notes", "Memo"),
                 column("esc_kind", "Picklist", options=((1, "First"), (2, "Second"), (3, "Third"))),
                 keys=[("esc_emailaccountid", "esc_code")], description="Generated for the provisioning benchmark.")


def spec_with(tables: int) -> SolutionSpec:
    """The solution, plus generated tables up to `tables` in all."""
    extra = tuple(generated_table(n) for n in range(max(0, tables - len(schema.TABLES))))
    return dataclasses.replace(SolutionSpec(), tables=(*schema.TABLES, *extra))


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The sandbox is a product feature the benchmark drives; imported here so the pipeline never sees it.
    from dotdyn_pipeline.sandbox.context import SandboxSettings
    from dotdyn_pipeline.sandbox.process import read_contract, running_sandbox

    if args.sandbox:
        return measure(read_contract(Path(args.sandbox)), args.tables)
    settings = SandboxSettings(bare=True, contacts=200, leads=50, accounts=30, email_accounts=2, days=1)
    with tempfile.TemporaryDirectory(prefix="dotdyn-bench-") as directory, \
            running_sandbox(Path(directory), settings) as contract:
        return measure(contract, args.tables)


def measure(contract: dict[str, Any], tables: int) -> dict[str, Any]:
    spec = spec_with(tables)
    with MetadataClient(dataverse_config(contract)) as client:
        client.sign_in()  # the token is not part of the measurement
        first = provision(client, spec)
        second = provision(client, spec)
    if not (first.ok and second.ok):
        raise RuntimeError(f"provisioning failed: {first.error or first.conflicts or second.error}")
    return {"tables": len(spec.tables), "seconds": first.seconds, "requests": first.requests,
            "changes": len(first.changes), "key_wait_seconds": first.key_wait_seconds,
            "second_run_changes": len(second.changes), "second_run_seconds": second.seconds,
            "second_run_requests": second.requests}

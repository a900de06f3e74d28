"""What every engagement asset does around its own reads: clients, windows, tallies, metadata and the check.

`EngagementRun` opens the state store and the Dynamics client once per run and a Dotdigital client once per
account; `Tally` counts every row read so that the reconciliation check can prove none was lost:
read = upserted + rejected (each with its reason, in the quarantine) + outside the window + repeating a natural
key already read (both counted).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.stream import StreamTotals, UpsertStream
from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient
from dotdyn_pipeline.connectors.http import calls_made
from dotdyn_pipeline.defs.accounts.accounts import email_account
from dotdyn_pipeline.defs.accounts.partitions import partition_accounts
from dotdyn_pipeline.defs.engagement.rows import Target
from dotdyn_pipeline.defs.engagement.windows import Window, windows
from dotdyn_pipeline.defs.people import PersonResolver
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource
from dotdyn_pipeline.state import ORG_SCOPE, QuarantinedRow, StateStore

RECONCILED = "reconciled"
SAMPLE = 10


@dataclass
class Tally:
    """Rows of one asset's run, by fate."""

    read: int = 0
    upserted: int = 0
    rejected: int = 0
    outside_window: int = 0
    repeated: int = 0  # a natural key already read in the same page (same contact, url and second)
    unlinked: int = 0
    resumed: int = 0  # items a previous attempt of this run had finished, not read again
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def add_totals(self, totals: StreamTotals) -> None:
        self.upserted += totals.upserted
        self.rejected += len(totals.rejected)
        for _row, outcome in totals.rejected:
            self.rejected_by_code[outcome.code or str(outcome.status)] += 1
            if len(self.samples) < SAMPLE:
                self.samples.append({"code": outcome.code, "message": outcome.message})

    @property
    def reconciled(self) -> bool:
        return self.read == self.upserted + self.rejected + self.outside_window + self.repeated


class EngagementRun:
    """The shared state of one engagement asset's run over its windows."""

    def __init__(self, context: dg.AssetExecutionContext, dataverse: DataverseResource,
                 dotdigital: DotdigitalResource, state: StateStoreResource) -> None:
        self.context, self.dotdigital_resource = context, dotdigital
        self.started = time.monotonic()
        self.windows: list[Window] = windows(context.partition_keys, partition_accounts(context, state))
        # A retry or a re-execution from failure has the same root run: it resumes where this one stopped.
        self.run_key = context.run.tags.get("dagster/root_run_id") or context.run.run_id
        self.tally = Tally()
        self._clients: dict[str, DotdigitalClient] = {}
        self._stack = ExitStack()
        try:
            self.store: StateStore = self._stack.enter_context(state.open())
            self.crm: DataverseClient = self._stack.enter_context(dataverse.client())
        except BaseException:
            self._stack.close()
            raise

    def __enter__(self) -> EngagementRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def dotdigital(self, account: str) -> DotdigitalClient:
        if account not in self._clients:
            client = email_account(self.crm, account).dotdigital(self.dotdigital_resource)
            self._clients[account] = self._stack.enter_context(client)
        return self._clients[account]

    def people(self, account: str) -> PersonResolver:
        return PersonResolver(self.store, account)

    def stream(self, target: Target, stream: str, window: Window) -> UpsertStream:
        """An upsert stream whose finished tags are recorded as this run's progress on `stream`."""
        progress = f"{stream}:{window.account}:{window}"
        return self._stack.enter_context(UpsertStream(
            self.crm, target.entity, target.key,
            on_finished=lambda tags: self.store.finish_items(self.run_key, progress, (str(t) for t in tags))))

    def finished(self, stream: str, window: Window) -> set[str]:
        return self.store.finished_items(self.run_key, f"{stream}:{window.account}:{window}")

    def settle(self, target: Target, window: Window, sink: UpsertStream) -> None:
        """Wait for the stream's outcomes; quarantine each rejected row with the service's reason."""
        totals = sink.flush()
        sink.close()
        self.tally.add_totals(totals)
        self.store.quarantine(
            QuarantinedRow(window.account, target.entity, target.key_of(row), f"dataverse.{outcome.code or 'error'}",
                           outcome.message or f"HTTP {outcome.status}", run_id=self.context.run.run_id)
            for row, outcome in totals.rejected)

    def write_all(self, target: Target, stream: str, window: Window, rows: Iterable[Mapping[str, Any]],
                  tag: Hashable = None) -> None:
        sink = self.stream(target, stream, window)
        sink.add(rows, tag)
        sink.close_tag(tag)
        self.settle(target, window, sink)

    def result(self, target: Target, **extra: int) -> dg.MaterializeResult:
        tally = self.tally
        dataverse_calls = self.crm.counter.snapshot()
        self.store.add_api_calls(ORG_SCOPE, "dataverse", dataverse_calls)
        dotdigital_calls = 0
        for account, client in self._clients.items():
            self.store.add_api_calls(account, "dotdigital", client.counter.snapshot())
            dotdigital_calls += client.counter.total
        counts = {"rows_read": tally.read, "rows_upserted": tally.upserted, "rows_rejected": tally.rejected,
                  "rows_outside_window": tally.outside_window, "rows_repeated": tally.repeated,
                  "rows_unlinked": tally.unlinked,
                  "items_resumed": tally.resumed, **extra}
        metadata: dict[str, Any] = {name: dg.MetadataValue.int(value) for name, value in counts.items()}
        metadata.update({
            "table": dg.MetadataValue.text(target.entity),
            "windows": dg.MetadataValue.text(", ".join(f"{w.account[:8]} {w}" for w in self.windows)),
            "days": dg.MetadataValue.int(sum(w.days for w in self.windows)),
            "dataverse_requests": dg.MetadataValue.int(calls_made(dataverse_calls)),
            "dotdigital_calls": dg.MetadataValue.int(dotdigital_calls),
            "duration_s": dg.MetadataValue.float(round(time.monotonic() - self.started, 3)),
        })
        check = dg.AssetCheckResult(
            check_name=RECONCILED, passed=tally.reconciled, severity=dg.AssetCheckSeverity.ERROR,
            description="rows read from Dotdigital = rows upserted + rows rejected with a reason + rows outside "
                        "the window + rows repeating a key",
            metadata={"rows_read": tally.read, "rows_upserted": tally.upserted, "rows_rejected": tally.rejected,
                      "rows_outside_window": tally.outside_window, "rows_repeated": tally.repeated,
                      "rejected_by_code": dg.MetadataValue.json(dict(tally.rejected_by_code)),
                      "sample": dg.MetadataValue.md(_sample(tally.samples))})
        return dg.MaterializeResult(metadata=metadata, check_results=[check])


def _sample(samples: list[dict[str, Any]]) -> str:
    if not samples:
        return "no row was rejected"
    return "\n".join(f"- `{s['code']}`: {json.dumps(s['message'])}" for s in samples)


def reconciled_check(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(RECONCILED, asset=asset,
                              description="Every row read from Dotdigital is upserted, rejected with a reason, or "
                                          "outside the run's window.")]

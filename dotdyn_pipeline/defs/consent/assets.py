"""The consent run of one account: its pending unsubscribes applied on the other side, each marked once done.

Both assets take their work from the ledger (entries not yet propagated), so a run requested for one side
also finishes whatever an earlier, failed run left of the other. A failed write leaves its entry pending and
fails the run with the table of what happened; the next run (Dagster's retry, or the next tick's request)
applies it again.
"""

import time
from datetime import UTC, datetime

import dagster as dg

from dotdyn_pipeline.connectors.http import calls_made
from dotdyn_pipeline.defs.accounts.accounts import email_account, email_account_partitions
from dotdyn_pipeline.defs.accounts.partitions import partition_account
from dotdyn_pipeline.defs.consent.ledger import DYNAMICS
from dotdyn_pipeline.defs.consent.outcomes import Outcomes
from dotdyn_pipeline.defs.consent.to_dotdigital import apply_to_dotdigital
from dotdyn_pipeline.defs.consent.to_dynamics import (
    DEFAULT_ATTRIBUTE,
    apply_to_dynamics,
    reflect_resubscribes,
    unsubscribe_attributes,
)
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource

CONSENT_JOB = "consent_sync"


def _waited(outcomes: Outcomes) -> float:
    """The longest an entry of this run waited in the ledger, in seconds."""
    now = datetime.now(UTC)
    return round(max((now - datetime.fromisoformat(entry.recorded_at)).total_seconds()
                     for entry, _, _ in outcomes.entries), 3) if outcomes.entries else 0.0


def _report(context: dg.AssetExecutionContext, outcomes: Outcomes, started: float, calls: int,
            extra: dict[str, dg.MetadataValue] | None = None) -> dg.MaterializeResult:
    """The run's table and counts as metadata; a failed write fails the run with the same facts."""
    metadata = {
        "entries": dg.MetadataValue.int(len(outcomes.entries)),
        **{f"entries_{name}": dg.MetadataValue.int(n) for name, n in sorted(outcomes.counts().items())},
        "events": dg.MetadataValue.md(outcomes.table()),
        "max_wait_s": dg.MetadataValue.float(_waited(outcomes)),
        "api_calls": dg.MetadataValue.int(calls),
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
        **(extra or {}),
    }
    failures = outcomes.failures
    if failures:
        raise dg.Failure(description=f"{len(failures)} of {len(outcomes.entries)} entries of account "
                                     f"{context.partition_key} were not accepted and stay pending: "
                                     + "; ".join(failures[:5]), metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name="consent", partitions_def=email_account_partitions, kinds={"dataverse"}, pool="dataverse",
          description="Unsubscribes and suppressions seen in Dotdigital, applied in Dynamics (suppression and "
                      "list unsubscriber rows, the unsubscribe attribute, list membership); resubscribes reflected.")
def consent_to_dynamics(context: dg.AssetExecutionContext, dataverse: DataverseResource,
                        state: StateStoreResource) -> dg.MaterializeResult:
    started, account = time.monotonic(), partition_account(context, state)
    with state.open() as store:
        with dataverse.client() as crm:
            attribute = unsubscribe_attributes(crm).get(account, DEFAULT_ATTRIBUTE)
            resubscribes = reflect_resubscribes(crm, store, account, attribute)
            outcomes = apply_to_dynamics(crm, store, account, attribute)
            calls = crm.counter.snapshot()
        store.add_api_calls(account, "dataverse", calls)
    outcomes.entries += [entry for entry in resubscribes.entries if entry[1] == "failed"]  # they fail the run too
    return _report(context, outcomes, started, calls_made(calls), {
        "unsubscribe_attribute": dg.MetadataValue.text(attribute),
        "resubscribes": dg.MetadataValue.int(len(resubscribes.entries)),
        **{f"resubscribes_{name}": dg.MetadataValue.int(n) for name, n in sorted(resubscribes.counts().items())},
        "resubscribes_table": dg.MetadataValue.md(resubscribes.table()),
    })


@dg.asset(group_name="consent", partitions_def=email_account_partitions, kinds={"dotdigital"}, pool="dotdigital",
          description="Unsubscribes made in Dynamics (opt-out flags, suppression rows, list unsubscribes), "
                      "applied in Dotdigital: account-wide, or from the one address book.")
def consent_to_dotdigital(context: dg.AssetExecutionContext, dataverse: DataverseResource,
                          dotdigital: DotdigitalResource, state: StateStoreResource) -> dg.MaterializeResult:
    started, account = time.monotonic(), partition_account(context, state)
    with state.open() as store:
        if not store.ledger(account, source=DYNAMICS, pending_only=True):
            return _report(context, Outcomes(), started, 0)  # nothing to do: not even a login
        with dataverse.client() as crm:
            email = email_account(crm, account)
        with email.dotdigital(dotdigital) as client:
            outcomes = apply_to_dotdigital(client, store, account)
            calls = client.counter.snapshot()
        store.add_api_calls(account, "dotdigital", calls)
    return _report(context, outcomes, started, calls_made(calls))


consent_job = dg.define_asset_job(
    CONSENT_JOB, selection=dg.AssetSelection.groups("consent"),
    executor_def=dg.in_process_executor,  # two short steps: a process each would cost more than they do
    description="Apply one account's pending unsubscribes on the other side (both directions).")

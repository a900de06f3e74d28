"""The consent sensors: one per side, every DOTDYN_CONSENT_INTERVAL seconds (default 60).

A tick reads what changed since the cursors, records new events in the ledger, moves the cursors, and
requests a `consent_sync` run for each account with work pending. Reads stop once the tick's time budget
(DOTDYN_CONSENT_TICK_BUDGET) is spent, shared fairly between accounts, so a backlog is worked off over a few
ticks instead of overrunning Dagster's evaluation limit. One account's failure is logged and the others go on.
"""

import hashlib
import time
from collections.abc import Iterable

import dagster as dg

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.defs.accounts.accounts import EmailAccount, active_accounts
from dotdyn_pipeline.defs.accounts.partitions import account_tags, registered_partitions
from dotdyn_pipeline.defs.audience.members import account_lists
from dotdyn_pipeline.defs.consent.assets import CONSENT_JOB, consent_job
from dotdyn_pipeline.defs.consent.dotdigital_reads import read_account
from dotdyn_pipeline.defs.consent.dynamics_reads import CrmScope, read_dynamics
from dotdyn_pipeline.defs.consent.ledger import Recording
from dotdyn_pipeline.defs.consent.to_dynamics import DEFAULT_ATTRIBUTE, unsubscribe_attributes
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource
from dotdyn_pipeline.settings import Settings
from dotdyn_pipeline.state import StateStore

#: Runs that have not read the ledger yet: a new request would only repeat them.
WAITING = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING)
LOGGED_EVENTS = 20
#: Seconds between two ticks of each sensor (DOTDYN_CONSENT_INTERVAL).
INTERVAL = Settings.from_env().consent_interval


def syncing_accounts(context: dg.SensorEvaluationContext, crm: DataverseClient,
                     store: StateStore) -> list[EmailAccount]:
    """The active email accounts that have a partition."""
    registered = {partition.account_id for partition in registered_partitions(context.instance, store)}
    return [account for account in active_accounts(crm) if account.id in registered]


def account_books(store: StateStore, account: str) -> list[tuple[str, int]]:
    """(list id, address book id) of the account's lists that sync and have their book."""
    return [(row["listid"], int(row["esc_addressbookid"])) for row in account_lists(store, account)
            if row.get("esc_addressbookid")]


def run_requests(instance: dg.DagsterInstance, store: StateStore, accounts: Iterable[str]) -> list[dg.RunRequest]:
    """A run for each account with ledger work pending, unless one is waiting to start (it will do it).

    The run key names the pending work and the latest run: a tick evaluated again asks for nothing new, and
    work a failed run left behind is asked for again.
    """
    requests, partitions = [], {partition.account_id: partition for partition in store.account_partitions()}
    for account in sorted(accounts):
        work = sorted(entry.event.event_key for entry in store.ledger(account, pending_only=True))
        work += sorted(f"{entry.event.event_key}:resubscribed" for entry in store.resubscribes_to_reflect(account))
        if not work:
            continue
        partition = partitions[account]
        latest = instance.get_run_records(dg.RunsFilter(job_name=CONSENT_JOB,
                                                        tags={"dagster/partition": partition.key}), limit=1)
        if latest and latest[0].dagster_run.status in WAITING:
            continue
        digest = hashlib.sha256("\n".join([latest[0].dagster_run.run_id if latest else "", *work]).encode())
        requests.append(dg.RunRequest(partition_key=partition.key,
                                      run_key=f"consent:{account}:{digest.hexdigest()[:16]}",
                                      tags={"dotdyn/consent_work": str(len(work)), **account_tags(partition)}))
    return requests


def _log(context: dg.SensorEvaluationContext, where: str, recording: Recording) -> None:
    context.log.info(f"{where}: {recording.counts()}")
    for event in recording.recorded[:LOGGED_EVENTS]:
        book = f" from address book {event.address_book_id}" if event.address_book_id else " account-wide"
        context.log.info(f"recorded {event.source} unsubscribe of {event.email}{book} in account {event.account}: "
                         f"{event.reason} at {event.occurred_at}")
    if len(recording.recorded) > LOGGED_EVENTS:
        context.log.info(f"... and {len(recording.recorded) - LOGGED_EVENTS} more")


def _result(context: dg.SensorEvaluationContext, store: StateStore, accounts: Iterable[str],
            summary: str) -> dg.SensorResult:
    requests = run_requests(context.instance, store, accounts)
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"{summary}; nothing pending"))
    return dg.SensorResult(run_requests=requests)


@dg.sensor(job=consent_job, minimum_interval_seconds=INTERVAL, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Unsubscribes, suppressions and confirmed resubscribes in Dotdigital, per account.")
def dotdigital_consent(context: dg.SensorEvaluationContext, dataverse: DataverseResource,
                       dotdigital: DotdigitalResource, state: StateStoreResource) -> dg.SensorResult:
    deadline = time.monotonic() + Settings.from_env().consent_tick_budget
    with state.open() as store:
        with dataverse.client() as crm:
            accounts = syncing_accounts(context, crm, store)
        failed, recorded, lifted = [], 0, 0
        for position, account in enumerate(accounts):
            share = (deadline - time.monotonic()) / (len(accounts) - position)  # unused time goes to the next
            try:
                books = [book for _, book in account_books(store, account.id)]
                with account.dotdigital(dotdigital) as client:
                    read = read_account(client, store, account.id, books, time.monotonic() + share)
            except Exception as exc:  # one account's failure must not stop the others
                failed.append(account.id)
                context.log.error(f"account {account.id}: reading Dotdigital failed: {type(exc).__name__}: {exc}")
                continue
            _log(context, f"account {account.id}: {read.rows} rows read"
                          f"{'' if read.caught_up else ' (time budget spent: the next tick goes on)'}", read.recording)
            for email, n in sorted(read.lifted.items()):
                context.log.info(f"resubscribe confirmed in Dotdigital: {email} in account {account.id} "
                                 f"({n} unsubscribes lifted)")
            recorded, lifted = recorded + len(read.recording.recorded), lifted + len(read.lifted)
        summary = (f"{len(accounts)} accounts, {recorded} new events, {lifted} resubscribes"
                   + (f", failed: {', '.join(failed)}" if failed else ""))
        return _result(context, store, [account.id for account in accounts], summary)


@dg.sensor(job=consent_job, minimum_interval_seconds=INTERVAL, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Opt-out flags, suppression rows and list unsubscribes changed in Dynamics.")
def dynamics_consent(context: dg.SensorEvaluationContext, dataverse: DataverseResource,
                     state: StateStoreResource) -> dg.SensorResult:
    deadline = time.monotonic() + Settings.from_env().consent_tick_budget
    with state.open() as store:
        with dataverse.client() as crm:
            accounts = [account.id for account in syncing_accounts(context, crm, store)]
            if not accounts:  # the cursors stay: opt-outs are read once there is an account to apply them to
                return dg.SensorResult(skip_reason=dg.SkipReason("no email account is registered yet"))
            attributes = unsubscribe_attributes(crm)
            scope = CrmScope(
                accounts=frozenset(accounts),
                books={list_id: (account, book) for account in accounts
                       for list_id, book in account_books(store, account)},
                written_flags=frozenset(attributes.get(account, DEFAULT_ATTRIBUTE) for account in accounts),
                resubscribing=frozenset(entry.event.email for account in accounts
                                        for entry in store.resubscribes_to_reflect(account)))
            read = read_dynamics(crm, store, scope, deadline)
        for table, reason in read.fallbacks.items():
            context.log.warning(f"{table}: read in full instead of changes: {reason}")
        _log(context, f"Dynamics: {read.rows} rows read"
                      f"{'' if read.caught_up else ' (time budget spent: the next tick goes on)'}", read.recording)
        return _result(context, store, accounts, f"{read.rows} rows read, {len(read.recording.recorded)} new events")

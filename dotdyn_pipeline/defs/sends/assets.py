"""Campaign sends from Dynamics as Dagster runs: one run per send, of its account's partition.

The `campaign_sends` sensor (every DOTDYN_SEND_INTERVAL seconds) reads the esc_emailsend rows that are due
(Scheduled, send date empty or reached) or still Sending, and asks for a `campaign_send` run for each, tagged
with the send, its campaign and lists. Before a send whose account's books are older than
DOTDYN_SEND_MAX_SYNC_AGE it asks for the account's audience sync instead, and the send follows once that is done.
A send with a run waiting or under way is not asked for again; the run key names the send's place in the send
ledger and the last run for it, so a tick evaluated twice asks for nothing new while a failed run's send is
asked for again. Exactly once is the send ledger's job (campaign.py), not the sensor's.
"""

import hashlib
import time
import uuid
from datetime import UTC, datetime

import dagster as dg

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.connectors.dataverse.odata import literal
from dotdyn_pipeline.connectors.http import calls_made
from dotdyn_pipeline.defs.accounts.accounts import email_account, email_account_partitions
from dotdyn_pipeline.defs.accounts.partitions import account_tags, partition_account, registered_partitions
from dotdyn_pipeline.defs.audience.jobs import IN_PROCESS, audience_job
from dotdyn_pipeline.defs.consent.sensors import WAITING
from dotdyn_pipeline.defs.sends.campaign import SendSettings, books_fresh, books_synced_at, execute_send
from dotdyn_pipeline.defs.sends.requests import SCHEDULED, CampaignSendRequest, due_sends
from dotdyn_pipeline.defs.sends.triggered import (
    SINGLE_COLUMNS,
    SINGLE_TABLE,
    TriggeredSender,
    TriggeredSendRequest,
    due_triggered_sends,
)
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource
from dotdyn_pipeline.settings import Settings
from dotdyn_pipeline.state import AccountPartition, StateStore

SEND_JOB = "campaign_send"
TRIGGERED_JOB, TRIGGERED_ASSET = "triggered_send", "triggered_sends"
AUDIENCE_JOB = audience_job.name
SEND_ASSET = "campaign_sends"
SEND_TAG, CAMPAIGN_TAG, LISTS_TAG = "dotdyn/email_send_id", "dotdyn/campaign", "dotdyn/lists"
_SETTINGS = Settings.from_env()


class CampaignSendConfig(dg.Config):
    """Which esc_emailsend row the run executes."""

    send_id: str


def send_settings(settings: Settings) -> SendSettings:
    return SendSettings(max_sync_age=settings.send_max_sync_age, follow_seconds=settings.send_follow_seconds)


@dg.asset(name=SEND_ASSET, group_name="sends", partitions_def=email_account_partitions, kinds={"dotdigital"},
          deps=["address_book_members"], pool="dotdigital",
          description="Campaign sends requested in Dynamics (esc_emailsend), each executed exactly once through an "
                      "address book of its own and written back to its row.")
def campaign_sends(context: dg.AssetExecutionContext, config: CampaignSendConfig, dataverse: DataverseResource,
                   dotdigital: DotdigitalResource, state: StateStoreResource) -> dg.MaterializeResult:
    started, account = time.monotonic(), partition_account(context, state)
    done = execute_send(config.send_id, context.run.run_id, dataverse, dotdigital, state,
                        send_settings(Settings.from_env()), account=account,
                        on_step=lambda step: context.log.info(f"send {config.send_id}: {step}"))
    request, attempt = done.request, done.attempt
    status = attempt.outcome or "Sending"
    log = context.log.warning if status == "Failed" else context.log.info
    log(f"{request.name} ({request.id}), attempt {attempt.attempt}: {status}. {attempt.message or ''}")
    return dg.MaterializeResult(metadata={
        "send": dg.MetadataValue.text(request.name), "email_send_id": dg.MetadataValue.text(request.id),
        "campaign_id": dg.MetadataValue.int(request.campaign_id or 0),
        "lists": dg.MetadataValue.text(", ".join(request.list_ids)),
        "attempt": dg.MetadataValue.int(attempt.attempt), "status": dg.MetadataValue.text(status),
        "result_message": dg.MetadataValue.text(attempt.message or ""),
        "recipients": dg.MetadataValue.int(attempt.recipients or 0),
        **{f"excluded_{reason}": dg.MetadataValue.int(n) for reason, n in sorted(attempt.excluded.items())},
        "send_id": dg.MetadataValue.text(attempt.send_id or ""),
        "dataverse_requests": dg.MetadataValue.int(done.dataverse_requests),
        "dotdigital_calls": dg.MetadataValue.int(done.dotdigital_calls),
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
    })


@dg.asset(name=TRIGGERED_ASSET, group_name="sends", partitions_def=email_account_partitions, kinds={"dotdigital"},
          pool="dotdigital",
          description="Triggered sends requested in Dynamics (esc_emailsinglesend) for one account: each due row "
                      "sent once, with its personalisation, and its outcome written back.")
def triggered_sends(context: dg.AssetExecutionContext, dataverse: DataverseResource, dotdigital: DotdigitalResource,
                    state: StateStoreResource) -> dg.MaterializeResult:
    started, account = time.monotonic(), partition_account(context, state)
    outcomes: dict[str, int] = {}
    with dataverse.client() as crm:
        due = due_triggered_sends(crm, datetime.now(UTC), account)
        with state.open() as store:
            unfinished = {attempt.send_key for attempt in store.sends.open_attempts(account)}
            due_keys = {request.send_key for request in due}
            requests = due + [request for request in _unfinished_rows(crm, unfinished - due_keys)]
            with email_account(crm, account).dotdigital(dotdigital) as client:
                sender = TriggeredSender(crm, client, store, context.run.run_id)
                for request in requests:
                    attempt = sender.execute(request)
                    if attempt is not None:
                        outcomes[attempt.outcome or "Sending"] = outcomes.get(attempt.outcome or "Sending", 0) + 1
                        if attempt.outcome == "Failed":
                            context.log.warning(f"{request.name} ({request.id}): {attempt.message}")
                calls = calls_made(client.counter.snapshot())
    return dg.MaterializeResult(metadata={
        "due": dg.MetadataValue.int(len(requests)),
        **{f"sends_{outcome.lower()}": dg.MetadataValue.int(n) for outcome, n in sorted(outcomes.items())},
        "dotdigital_calls": dg.MetadataValue.int(calls),
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
    })


def _unfinished_rows(crm: DataverseClient, send_keys: set[str]) -> list[TriggeredSendRequest]:
    """The rows of triggered sends a stopped run left unfinished, whatever their status says now."""
    ids = sorted(key.split(":", 1)[1] for key in send_keys if key.startswith(f"{SINGLE_TABLE}:"))
    if not ids:
        return []
    condition = " or ".join(f"esc_emailsinglesendid eq {literal(uuid.UUID(row_id))}" for row_id in ids)
    return [TriggeredSendRequest.from_row(row) for page in crm.read(SINGLE_TABLE, SINGLE_COLUMNS, filter=condition)
            for row in page]


triggered_send_job = dg.define_asset_job(
    TRIGGERED_JOB, selection=dg.AssetSelection.assets(TRIGGERED_ASSET), executor_def=dg.in_process_executor,
    description="Send one account's due triggered sends requested in Dynamics.")


campaign_send_job = dg.define_asset_job(
    SEND_JOB, selection=dg.AssetSelection.assets(SEND_ASSET), executor_def=dg.in_process_executor,
    description="Execute one campaign send requested in Dynamics (run config: its esc_emailsend id).")


def _latest_run(instance: dg.DagsterInstance, job: str, tags: dict[str, str]) -> dg.DagsterRun | None:
    records = instance.get_run_records(dg.RunsFilter(job_name=job, tags=tags), limit=1)
    return records[0].dagster_run if records else None


def _busy(run: dg.DagsterRun | None) -> bool:
    return run is not None and (run.status in WAITING or run.status == dg.DagsterRunStatus.STARTED)


def _refresh(instance: dg.DagsterInstance, partition: AccountPartition, request: CampaignSendRequest
             ) -> dg.RunRequest | None:
    """The account's audience sync, unless one is waiting or under way (the send waits for it either way)."""
    audience = _latest_run(instance, AUDIENCE_JOB, {"dagster/partition": partition.key})
    if _busy(audience):
        return None
    return dg.RunRequest(job_name=AUDIENCE_JOB, partition_key=partition.key, run_config=IN_PROCESS,
                         run_key=f"send-refresh:{request.id}:{audience.run_id if audience else ''}",
                         tags=account_tags(partition))


def send_requests(instance: dg.DagsterInstance, store: StateStore, requests: list[CampaignSendRequest],
                  max_sync_age: float) -> list[dg.RunRequest]:
    """A run for each send that needs one now, or its account's audience sync first when its books were synced
    longer than `max_sync_age` seconds ago."""
    partitions = {partition.account_id: partition for partition in registered_partitions(instance, store)}
    runs, refreshing = [], set()
    for request in requests:
        partition = partitions.get(request.account_id)
        latest = store.sends.latest(request.send_key)
        if partition is None or (request.status != SCHEDULED and (latest is None or latest.done)):
            continue  # not an account that syncs, or Sending in a way no attempt of the ledger explains
        previous = _latest_run(instance, SEND_JOB, {SEND_TAG: request.id})
        if _busy(previous):
            continue
        if latest is None and not books_fresh(books_synced_at(store, request.account_id), max_sync_age):
            if request.account_id not in refreshing:
                refreshing.add(request.account_id)
                runs += [run for run in [_refresh(instance, partition, request)] if run]
            continue
        place = f"{latest.attempt}:{latest.step}:{latest.updated_at}" if latest else "new"
        runs.append(dg.RunRequest(
            job_name=SEND_JOB, partition_key=partition.key,
            run_key=f"send:{request.id}:{place}:{request.modified_on}:{previous.run_id if previous else ''}",
            run_config={"ops": {SEND_ASSET: {"config": {"send_id": request.id}}}},
            tags={SEND_TAG: request.id, CAMPAIGN_TAG: str(request.campaign_id or ""),
                  LISTS_TAG: ",".join(request.list_ids), **account_tags(partition)}))
    return runs


@dg.sensor(name="campaign_sends", jobs=[campaign_send_job, audience_job],
           minimum_interval_seconds=_SETTINGS.send_interval, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Asks for a run per campaign send that is due in Dynamics, and for its account's audience "
                       "sync first when the books are older than DOTDYN_SEND_MAX_SYNC_AGE.")
def campaign_sends_sensor(context: dg.SensorEvaluationContext, dataverse: DataverseResource,
                          state: StateStoreResource):
    with dataverse.client() as crm:
        requests = due_sends(crm, datetime.now(UTC))
    with state.open() as store:
        runs = send_requests(context.instance, store, requests, Settings.from_env().send_max_sync_age)
    return runs or dg.SkipReason(f"{len(requests)} send(s) due or under way; none needs a run now")


def triggered_requests(instance: dg.DagsterInstance, store: StateStore,
                       requests: list[TriggeredSendRequest]) -> list[dg.RunRequest]:
    """A run per account with due triggered sends (or sends a stopped run left), unless one is waiting or running."""
    partitions = {partition.account_id: partition for partition in registered_partitions(instance, store)}
    work: dict[str, list[str]] = {}
    for request in requests:
        work.setdefault(request.account_id, []).append(request.send_key)
    for account in partitions:
        work.setdefault(account, []).extend(attempt.send_key for attempt in store.sends.open_attempts(account)
                                            if attempt.send_key.startswith(f"{SINGLE_TABLE}:"))
    runs = []
    for account, keys in sorted(work.items()):
        partition = partitions.get(account)
        if partition is None or not keys:
            continue
        previous = _latest_run(instance, TRIGGERED_JOB, {"dagster/partition": partition.key})
        if _busy(previous):
            continue
        digest = hashlib.sha256("\n".join([previous.run_id if previous else "", *sorted(keys)]).encode())
        runs.append(dg.RunRequest(job_name=TRIGGERED_JOB, partition_key=partition.key,
                                  run_key=f"triggered:{account}:{digest.hexdigest()[:16]}",
                                  tags={"dotdyn/triggered_sends": str(len(keys)), **account_tags(partition)}))
    return runs


@dg.sensor(name="triggered_sends", jobs=[triggered_send_job], minimum_interval_seconds=_SETTINGS.send_interval,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Asks for a run per account with triggered sends due in Dynamics.")
def triggered_sends_sensor(context: dg.SensorEvaluationContext, dataverse: DataverseResource,
                           state: StateStoreResource):
    with dataverse.client() as crm:
        requests = due_triggered_sends(crm, datetime.now(UTC))
    with state.open() as store:
        runs = triggered_requests(context.instance, store, requests)
    return runs or dg.SkipReason(f"{len(requests)} triggered send(s) due; none needs a run now")

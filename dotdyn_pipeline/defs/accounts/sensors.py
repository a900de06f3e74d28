"""Keeps one `email_account` partition per active esc_emailaccount row, and syncs a new account at once."""

import time

import dagster as dg

from dotdyn_pipeline.defs.accounts.accounts import active_accounts, email_account_partitions
from dotdyn_pipeline.defs.accounts.migration import tag_former_runs
from dotdyn_pipeline.defs.accounts.partitions import account_tags, assign_keys
from dotdyn_pipeline.defs.audience.jobs import audience_job
from dotdyn_pipeline.resources import DataverseResource, StateStoreResource

#: Seconds a tick may spend tagging the runs of partitions moved off their account's id; the next tick goes on,
#: and an old partition is removed once all its runs are tagged.
TAGGING_BUDGET = 20.0


@dg.sensor(job=audience_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def email_accounts(context: dg.SensorEvaluationContext, dataverse: DataverseResource,
                   state: StateStoreResource) -> dg.SensorResult:
    """Adds a partition, keyed by the account's name, for each new active account (and runs its first sync);
    moves a partition still keyed by an account's id to the account's key; removes deactivated accounts'."""
    with dataverse.client() as client:
        accounts = active_accounts(client)
    known = set(context.instance.get_dynamic_partitions(email_account_partitions.name))
    with state.open() as store:
        wanted = {partition.key: partition for partition in assign_keys(store, accounts, known)}
    deadline = time.monotonic() + TAGGING_BUDGET
    moving = [partition for partition in wanted.values() if partition.former_key in known]
    unfinished = {partition.former_key for partition in moving
                  if tag_former_runs(context.instance, partition, deadline)}
    added, removed = sorted(wanted.keys() - known), sorted(known - wanted.keys() - unfinished)
    if not added and not removed:
        return dg.SensorResult(skip_reason=dg.SkipReason(
            f"{len(known)} accounts, none added or removed"
            + (f"; still tagging the runs of {', '.join(sorted(unfinished))}" if unfinished else "")))
    requests = []
    if added:
        requests.append(email_account_partitions.build_add_request(added))
    if removed:
        requests.append(email_account_partitions.build_delete_request(removed))
    context.log.info("email accounts added: %s; removed: %s", added, removed)
    for partition in moving:
        context.log.info("email account %s: partition %s moves to %s", partition.account_id, partition.former_key,
                         partition.key)
    first_syncs = [wanted[key] for key in added if wanted[key].former_key not in known]  # a moved one has synced
    return dg.SensorResult(dynamic_partitions_requests=requests, run_requests=[
        dg.RunRequest(partition_key=p.key, run_key=f"first-sync:{p.account_id}", tags=account_tags(p))
        for p in first_syncs])

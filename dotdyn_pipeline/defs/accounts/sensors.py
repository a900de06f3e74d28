"""Keeps one `email_account` partition per active esc_emailaccount row, and syncs a new account at once."""

import time

import dagster as dg

from dotdyn_pipeline.defs.accounts.accounts import active_accounts, email_account_partitions
from dotdyn_pipeline.defs.audience.jobs import audience_job
from dotdyn_pipeline.resources import DataverseResource


@dg.sensor(job=audience_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def email_accounts(context: dg.SensorEvaluationContext, dataverse: DataverseResource) -> dg.SensorResult:
    """Adds a partition for each new active account (and runs its first sync); removes deactivated ones."""
    with dataverse.client() as client:
        wanted = {account.id for account in active_accounts(client)}
    known = set(context.instance.get_dynamic_partitions(email_account_partitions.name))
    added, removed = sorted(wanted - known), sorted(known - wanted)
    if not added and not removed:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"{len(known)} accounts, none added or removed"))
    requests = []
    if added:
        requests.append(email_account_partitions.build_add_request(added))
    if removed:
        requests.append(email_account_partitions.build_delete_request(removed))
    context.log.info("email accounts added: %s; removed: %s", added, removed)
    return dg.SensorResult(dynamic_partitions_requests=requests,
                           run_requests=[dg.RunRequest(partition_key=key, run_key=f"first-sync:{key}")
                                         for key in added])

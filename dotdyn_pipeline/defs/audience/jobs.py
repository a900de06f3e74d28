"""The audience sync as a job per email account partition, and the schedule that runs it for every account."""

import os

import dagster as dg

from dotdyn_pipeline.defs.accounts.accounts import registered_accounts

#: How often every account's audience is synced (cron; default every 15 minutes).
AUDIENCE_CRON = os.environ.get("DOTDYN_AUDIENCE_CRON", "*/15 * * * *")

audience_job = dg.define_asset_job(
    "audience_sync", selection=dg.AssetSelection.groups("audience"),
    description="Extract the CRM changes, then validate, map and load one account's address books.")


@dg.schedule(cron_schedule=AUDIENCE_CRON, job=audience_job, default_status=dg.DefaultScheduleStatus.RUNNING)
def audience_schedule(context: dg.ScheduleEvaluationContext):
    """One audience run per registered email account."""
    accounts = registered_accounts(context.instance)
    if isinstance(accounts, dg.SkipReason):
        return accounts
    tick = context.scheduled_execution_time.isoformat()
    return [dg.RunRequest(partition_key=key, run_key=f"{key}@{tick}") for key in accounts]

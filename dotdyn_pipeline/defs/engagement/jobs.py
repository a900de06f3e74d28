"""The engagement import as a job over email account x day partitions, and the schedule that keeps today current."""

from datetime import timedelta

import dagster as dg

from dotdyn_pipeline.defs.accounts.partitions import account_tags, registered_accounts
from dotdyn_pipeline.defs.engagement.windows import partition_key
from dotdyn_pipeline.resources import StateStoreResource
from dotdyn_pipeline.settings import Settings

engagement_job = dg.define_asset_job(
    "engagement_sync", selection=dg.AssetSelection.groups("engagement"),
    description="Import campaigns, send summaries, clicks, ROI details and suppressions of the chosen days.")


@dg.schedule(cron_schedule=Settings.from_env().engagement_cron, job=engagement_job,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def engagement_schedule(context: dg.ScheduleEvaluationContext, state: StateStoreResource):
    """Today's partition of every account; in the first tick after midnight, yesterday's too (its last hour)."""
    with state.open() as store:
        accounts = registered_accounts(context.instance, store)
    if isinstance(accounts, dg.SkipReason):
        return accounts
    now = context.scheduled_execution_time
    days = [now.date()]
    if now.hour == 0:
        days.insert(0, (now - timedelta(days=1)).date())
    tick = now.isoformat()
    return [dg.RunRequest(partition_key=partition_key(account.key, day), run_key=f"{account.key}|{day}@{tick}",
                          tags=account_tags(account)) for account in accounts for day in days]

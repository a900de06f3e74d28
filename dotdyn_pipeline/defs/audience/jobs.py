"""The audience sync as a job per email account partition, and the schedule that runs it for every account."""

import dagster as dg

from dotdyn_pipeline.defs.accounts.partitions import account_tags, registered_accounts
from dotdyn_pipeline.resources import StateStoreResource
from dotdyn_pipeline.settings import Settings

#: Run config for a run whose steps are short: every step in the run's own process, one after another.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}

#: The module a step process loads the job from (`definitions.audience_sync_job`, which jobs.py cannot import).
CODE_LOCATION_MODULE = "dotdyn_pipeline.definitions"

#: Run config for a run of large steps, what a partition's run gets unless told otherwise: each step has a process,
#: forked from a server that has imported the code location once, and independent steps run side by side (a
#: first sync extracts its largest CRM tables at the same time). The module is named: given no list, Dagster's
#: forkserver preloads none of it, and every step process spent almost a second importing it again.
PROCESS_PER_STEP = {"execution": {"config": {"multiprocess": {
    "start_method": {"forkserver": {"preload_modules": [CODE_LOCATION_MODULE]}}}}}}

audience_job = dg.define_asset_job(
    "audience_sync", selection=dg.AssetSelection.groups("audience"), config=PROCESS_PER_STEP,
    description="Extract the CRM changes, then validate, map and load one account's address books.")


@dg.schedule(cron_schedule=Settings.from_env().audience_cron, job=audience_job,
             default_status=dg.DefaultScheduleStatus.RUNNING)
def audience_schedule(context: dg.ScheduleEvaluationContext, state: StateStoreResource):
    """One audience run per registered email account, in process: a scheduled run carries the changes since
    the last, and a process per step would cost more than most of its steps take."""
    with state.open() as store:
        accounts = registered_accounts(context.instance, store)
    if isinstance(accounts, dg.SkipReason):
        return accounts
    tick = context.scheduled_execution_time.isoformat()
    return [dg.RunRequest(partition_key=account.key, run_key=f"{account.key}@{tick}", run_config=IN_PROCESS,
                          tags=account_tags(account)) for account in accounts]

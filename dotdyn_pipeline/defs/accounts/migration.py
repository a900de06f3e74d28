"""Moving a partition keyed by its account's id (as partitions were before keys were made from names) to the
key made from the account's name.

Dagster cannot rename a partition: the new one is added and the old one removed. The old runs keep their
partition tags; they are given the account tags that new runs carry, so that one tag finds an account's runs
from before and after the move. Their materialisations stay recorded under the old key.
"""

from __future__ import annotations

import time

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    MULTIDIMENSIONAL_PARTITION_PREFIX,
    PARTITION_NAME_TAG,
)

from dotdyn_pipeline.defs.accounts.accounts import email_account_partitions
from dotdyn_pipeline.defs.accounts.partitions import ACCOUNT_ID_TAG, account_tags
from dotdyn_pipeline.state import AccountPartition

#: The tag of the `email_account` dimension on the runs of account x day partitions.
ACCOUNT_DIMENSION_TAG = f"{MULTIDIMENSIONAL_PARTITION_PREFIX}{email_account_partitions.name}"
#: Keys of the account x day partitions are written dimension by dimension, joined by this.
DIMENSION_SEPARATOR = "|"


def runs_of_partition(instance: dg.DagsterInstance, key: str) -> set[str]:
    """The ids of the runs of an `email_account` partition: of the partition itself, of the account x day
    partitions of that account, and of single-run backfills whose range starts or ends in that account."""
    found = set(instance.get_run_ids(dg.RunsFilter(tags={PARTITION_NAME_TAG: key})))
    found |= set(instance.get_run_ids(dg.RunsFilter(tags={ACCOUNT_DIMENSION_TAG: key})))
    for tag, values in instance.get_run_tags([ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG]):
        ends = sorted(value for value in values if key in value.split(DIMENSION_SEPARATOR))
        if ends:
            found |= set(instance.get_run_ids(dg.RunsFilter(tags={tag: ends})))
    return found


def tag_former_runs(instance: dg.DagsterInstance, partition: AccountPartition, deadline: float) -> int:
    """Give the runs of the partition's former key the account's tags, until `deadline` (time.monotonic());
    return how many are left for a later call."""
    if partition.former_key is None:
        return 0
    tagged = set(instance.get_run_ids(dg.RunsFilter(tags={ACCOUNT_ID_TAG: partition.account_id})))
    untagged = sorted(runs_of_partition(instance, partition.former_key) - tagged)
    tags = account_tags(partition)
    for done, run_id in enumerate(untagged):
        if time.monotonic() > deadline:
            return len(untagged) - done
        instance.add_run_tags(run_id, tags)
    return 0

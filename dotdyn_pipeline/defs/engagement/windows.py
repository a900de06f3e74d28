"""Engagement partitions (email account x day) and the time windows a run covers.

A run may cover many partitions (a single-run backfill): its keys are grouped per account into windows of
consecutive days, and each window is read from Dotdigital once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from dotdyn_pipeline.defs.accounts.accounts import email_account_partitions
from dotdyn_pipeline.settings import Settings

#: From the first day a backfill can reach (DOTDYN_ENGAGEMENT_START) to today, which is a partition too.
days = dg.DailyPartitionsDefinition(start_date=Settings.from_env().engagement_start.isoformat(), end_offset=1)
engagement_partitions = dg.MultiPartitionsDefinition({"email_account": email_account_partitions, "day": days})


@dataclass(frozen=True)
class Window:
    """One account's days [start, end) in UTC; `account` is the account's id."""

    account: str
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def holds(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def __str__(self) -> str:
        return f"{self.start.date()}..{(self.end - timedelta(days=1)).date()}"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def windows(partition_keys: Iterable[str], account_ids: Mapping[str, str]) -> list[Window]:
    """The windows of consecutive days, per account, that these engagement partition keys cover; `account_ids`
    names the account behind each email account key."""
    by_account: dict[str, set[date]] = {}
    for key in partition_keys:
        dims = engagement_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        by_account.setdefault(account_ids[dims["email_account"]], set()).add(date.fromisoformat(dims["day"]))
    found = []
    for account, chosen in sorted(by_account.items()):
        ordered = sorted(chosen)
        first = previous = ordered[0]
        for day in ordered[1:] + [None]:
            if day is not None and day == previous + timedelta(days=1):
                previous = day
                continue
            found.append(Window(account, _midnight(first), _midnight(previous) + timedelta(days=1)))
            if day is not None:
                first = previous = day
    return found


def partition_key(account: str, day: date | str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"email_account": account, "day": str(day)})


def range_tags(account: str, first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover the days first..last of one account (a single-run backfill)."""
    return {"dagster/asset_partition_range_start": str(partition_key(account, first)),
            "dagster/asset_partition_range_end": str(partition_key(account, last))}

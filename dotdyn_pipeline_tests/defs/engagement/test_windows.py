"""Engagement partitions: keys grouped into windows per account, and the schedule that keeps today current."""

from datetime import UTC, date, datetime

import dagster as dg

from dotdyn_pipeline.definitions import defs
from dotdyn_pipeline.defs.accounts.partitions import ACCOUNT_ID_TAG, ACCOUNT_NAME_TAG
from dotdyn_pipeline.defs.engagement.windows import Window, partition_key, windows
from dotdyn_pipeline.resources import StateStoreResource
from dotdyn_pipeline_tests.defs.accounts.registration import register


def _keys(account: str, *days: str) -> list[str]:
    return [str(partition_key(account, day)) for day in days]


def test_consecutive_days_of_one_account_make_one_window_named_by_its_id():
    [window] = windows(_keys("contoso", "2026-03-02", "2026-03-01", "2026-03-03"), {"contoso": "a"})
    assert window == Window("a", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    assert window.days == 3 and str(window) == "2026-03-01..2026-03-03"


def test_gaps_and_accounts_split_windows():
    found = windows(_keys("b", "2026-03-01") + _keys("a", "2026-03-01", "2026-03-02", "2026-03-05"),
                    {"a": "a", "b": "b"})
    assert [(w.account, str(w)) for w in found] == [
        ("a", "2026-03-01..2026-03-02"), ("a", "2026-03-05..2026-03-05"), ("b", "2026-03-01..2026-03-01")]


def test_a_window_holds_its_start_but_not_its_end():
    window = Window("a", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    assert window.holds(datetime(2026, 3, 1, tzinfo=UTC))
    assert window.holds(datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC))
    assert not window.holds(datetime(2026, 3, 2, tzinfo=UTC))
    assert not window.holds(None)


def _requests(instance: dg.DagsterInstance, state: StateStoreResource, when: datetime) -> list[dg.RunRequest]:
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when, resources={"state": state},
                                   repository_def=defs.get_repository_def()) as context:  # closes what it opened
        return list(defs.resolve_schedule_def("engagement_schedule").evaluate_tick(context).run_requests or [])


def test_the_schedule_asks_for_today_of_every_account_and_for_yesterday_after_midnight(tmp_path):
    state = StateStoreResource(home=str(tmp_path))
    with dg.instance_for_test() as instance:
        assert not _requests(instance, state, datetime(2026, 3, 5, 14, 5, tzinfo=UTC))
        register(instance, state, {"id-2": "Acc 2", "id-1": "Acc 1"})
        midday = _requests(instance, state, datetime(2026, 3, 5, 14, 5, tzinfo=UTC))
        assert [r.partition_key for r in midday] == ["2026-03-05|acc-1", "2026-03-05|acc-2"]
        assert [(r.tags[ACCOUNT_ID_TAG], r.tags[ACCOUNT_NAME_TAG]) for r in midday] == [("id-1", "Acc 1"),
                                                                                       ("id-2", "Acc 2")]
        after_midnight = _requests(instance, state, datetime(2026, 3, 6, 0, 5, tzinfo=UTC))
        assert sorted(r.partition_key for r in after_midnight) == [
            "2026-03-05|acc-1", "2026-03-05|acc-2", "2026-03-06|acc-1", "2026-03-06|acc-2"]
        assert len({r.run_key for r in midday + after_midnight}) == 6, "each request of each tick is its own run"


def test_partition_keys_name_both_dimensions():
    key = partition_key("acc", date(2026, 3, 5))
    assert key.keys_by_dimension == {"email_account": "acc", "day": "2026-03-05"}

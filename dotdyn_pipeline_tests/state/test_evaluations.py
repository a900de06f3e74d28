"""Dynamic lists' evaluations: kept as the mirror's link rows, compared with the next, the same on both backends."""

from __future__ import annotations

from dotdyn_pipeline.state import MirrorRow
from dotdyn_pipeline.state.evaluations import QUERY_MEMBERS


def test_an_evaluation_is_kept_as_links_and_the_next_says_who_entered_and_who_left(store):
    evaluations = store.evaluations
    store.mirror.upsert("contact", [MirrorRow(f"c{i}", {"fullname": f"P{i}"}, f"p{i}@example.com") for i in range(5)])
    first = evaluations.save("acct", "L1", "contact", ["c1", "c2", "c3"])
    assert (first.entered, first.left, first.before) == (["c1", "c2", "c3"], [], None)
    assert evaluations.member_ids("L1") == {"c1", "c2", "c3"}
    # read as a static list's members are, through the mirror's links
    assert [i for _, _, i, _ in store.mirror.members(QUERY_MEMBERS, ["L1"], ["contact"])] == ["c1", "c2", "c3"]
    assert store.mirror.link_count(QUERY_MEMBERS, ["L1"]) == 3

    second = evaluations.save("acct", "L1", "contact", ["c3", "c4", "c2"])
    assert (second.entered, second.left) == (["c4"], ["c1"])
    assert second.before.members == 3 and second.before.error is None
    assert evaluations.member_ids("L1") == {"c2", "c3", "c4"}
    saved = evaluations.get("L1")
    assert (saved.account, saved.member_table, saved.members, saved.error) == ("acct", "contact", 3, None)
    assert store.mirror.count("listmember") == 0  # a static list's links are untouched


def test_a_failed_evaluation_keeps_the_last_members_until_the_next_success(store):
    evaluations = store.evaluations
    evaluations.save("acct", "L1", "contact", ["c1", "c2"])
    evaluations.fail("acct", "L1", "the query names an attribute the table does not have")
    evaluations.fail("acct", "L2", "not well-formed")
    failed = evaluations.get("L1")
    assert failed.error == "the query names an attribute the table does not have" and failed.failed_at
    assert (failed.members, failed.evaluated_at is not None) == (2, True)
    assert evaluations.member_ids("L1") == {"c1", "c2"}
    assert evaluations.get("L2").evaluated_at is None
    assert evaluations.unusable(["L1", "L2", "L3"]) == {"L1", "L2", "L3"}  # L3 was never evaluated

    after = evaluations.save("acct", "L1", "contact", ["c2"])
    assert after.before.error and (after.entered, after.left) == ([], ["c1"])
    assert evaluations.get("L1").error is None and evaluations.unusable(["L1", "L2"]) == {"L2"}


def test_lists_no_longer_dynamic_are_forgotten_with_their_members(store):
    evaluations = store.evaluations
    evaluations.save("acct", "L1", "contact", ["c1"])
    evaluations.save("acct", "L2", "lead", ["l1", "l2"])
    evaluations.save("other", "L3", "contact", ["c1"])
    assert evaluations.forget_others("acct", ["L1"]) == ["L2"]
    assert evaluations.get("L2") is None and evaluations.member_ids("L2") == set()
    assert evaluations.member_ids("L1") == {"c1"} and evaluations.member_ids("L3") == {"c1"}
    assert evaluations.forget_others("acct", ["L1"]) == []

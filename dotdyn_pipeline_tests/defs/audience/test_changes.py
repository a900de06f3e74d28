"""Which addresses a sync looks at: the marks a page of changes leaves, and the scope an account takes."""

from datetime import UTC, datetime, timedelta

from dotdyn_pipeline.defs.audience.changes import (
    CURSOR,
    MARGIN,
    Scope,
    mark_page,
    record_synced,
    require_full_sync,
    scope_for,
)
from dotdyn_pipeline.state import ORG_SCOPE, MirrorRow, UnsubscribeEvent

PEOPLE, LINKS = ("contact", "lead", "account"), "listmember"


def _seed(store):
    store.mirror.upsert("contact", [MirrorRow(f"c{i}", {"n": i}, f"p{i}@example.com") for i in range(100)])
    store.mirror.upsert(LINKS, [MirrorRow("m1", {}, parent_id="L1", ref_id="c1"),
                                MirrorRow("m2", {}, parent_id="L1", ref_id="c2")])
    store.mirror.upsert("list", [MirrorRow("L1", _list("One", "a1"))])


def _list(name, account, activated=1):
    return {"listname": name, "esc_addressbookid": 5, "_esc_emailaccountid_value": account,
            "esc_activatedforemail": activated}


def _mark(store, table, rows, deleted=()):
    marked = mark_page(store, table, rows, list(deleted), PEOPLE, LINKS)
    store.mirror.upsert(table, rows)
    store.mirror.delete(table, deleted)
    return marked


def _synced(store, account="a1", ago=timedelta(hours=1) + MARGIN):
    """The account synced `ago` (by default long enough before any mark: marks are read from MARGIN before)."""
    store.save_cursor(account, CURSOR, watermark=(datetime.now(UTC) - ago).isoformat())


def test_a_person_s_old_and_new_address_a_deleted_person_and_a_link_s_person_are_marked(store):
    _seed(store)
    _synced(store)
    _mark(store, "contact", [MirrorRow("c3", {"n": 3}, "new3@example.com")], deleted=["c4"])
    _mark(store, LINKS, [MirrorRow("m3", {}, parent_id="L1", ref_id="c5")], deleted=["m1"])
    scope = scope_for(store, "a1")
    assert scope.keys == {"p3@example.com", "new3@example.com", "p4@example.com", "p5@example.com",
                          "p1@example.com"}
    assert scope.reason == "changes" and not scope.full
    assert scope.records == frozenset()


def test_records_without_an_address_are_marked_by_id_when_they_change_or_join_a_list(store):
    _seed(store)
    store.mirror.upsert("lead", [MirrorRow("x1", {"n": 1})])
    _synced(store)
    _mark(store, "contact", [MirrorRow("c6", {"n": 6})])  # lost its address: the old one is marked too
    _mark(store, LINKS, [MirrorRow("m4", {}, parent_id="L1", ref_id="x1")])
    scope = scope_for(store, "a1")
    assert scope.keys == {"p6@example.com"}
    assert scope.records == {"c6", "x1"}
    assert Scope.from_attr(scope.to_attr()) == scope


def test_the_ledger_s_new_and_lifted_entries_are_in_scope_for_their_account_only(store):
    _seed(store)
    _synced(store)
    _synced(store, "a2")
    store.record_unsubscribe(UnsubscribeEvent("a1", "p7@example.com", "account", "dotdigital",
                                              datetime.now(UTC).isoformat()))
    assert scope_for(store, "a1").keys == {"p7@example.com"}
    assert scope_for(store, "a2").keys == frozenset()


def test_a_first_sync_a_full_read_or_too_many_changes_mean_every_address(store):
    _seed(store)
    assert scope_for(store, "a1").reason == "first sync"
    _synced(store)
    require_full_sync(store)
    assert scope_for(store, "a1").reason == "a full read"
    _synced(store, ago=timedelta(0))
    _mark(store, "contact", [MirrorRow(f"c{i}", {"n": -i}, f"p{i}@example.com") for i in range(30)])
    assert scope_for(store, "a1").reason == "30 addresses changed", "a third of them: a full pass is cheaper"


def test_a_list_change_makes_a_full_pass_for_the_accounts_it_belonged_to_only(store):
    _seed(store)
    for account in ("a1", "a2", "a3"):
        _synced(store, account)
    _mark(store, "list", [MirrorRow("L1", _list("One", "a1"))])
    _mark(store, "list", [MirrorRow("L1", _list("Renamed", "a1"))])
    assert not scope_for(store, "a1").full, "the same data again, or a new name, changes no audience"
    _mark(store, "list", [MirrorRow("L1", _list("Renamed", "a1", activated=0))])
    assert scope_for(store, "a1").reason == "its lists or data mappings changed"
    assert not scope_for(store, "a2").full
    _synced(store, "a1", ago=timedelta(0))
    _mark(store, "list", [MirrorRow("L1", _list("Renamed", "a2", activated=0))])
    assert scope_for(store, "a1").full and scope_for(store, "a2").full, "moved: both accounts' audiences change"
    _synced(store, "a1", ago=timedelta(0))
    _synced(store, "a2", ago=timedelta(0))
    _mark(store, "list", [], deleted=["L1", "L9"])
    assert [scope_for(store, a).full for a in ("a1", "a2", "a3")] == [False, True, False], "deleted from a2's"


def test_finishing_moves_the_cursor_to_what_the_scope_took_in(store):
    _seed(store)
    _synced(store)
    _mark(store, "contact", [MirrorRow("c1", {"n": 100}, "p1@example.com")])
    scope = scope_for(store, "a1")
    record_synced(store, "a1", scope)
    assert store.get_cursor("a1", CURSOR).watermark == scope.upto
    assert store.get_cursor(ORG_SCOPE, "audience.reset") is None
    # a mark within MARGIN of the cursor is read again (it may have been committed late), never missed
    assert scope_for(store, "a1").keys == {"p1@example.com"}
    assert Scope.from_attr(scope.to_attr()) == scope

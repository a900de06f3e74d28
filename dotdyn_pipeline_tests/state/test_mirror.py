"""The CRM mirror and address book state behave the same on both backends."""

from __future__ import annotations

import sqlite3

import pytest

from dotdyn_pipeline.state import BookMember, MirrorRow, StateStore


def test_mirror_joins_list_members_to_their_records(store):
    mirror = store.mirror
    mirror.upsert("contact", [MirrorRow("c1", {"fullname": "Ann"}, "ann@example.com"),
                              MirrorRow("c2", {"fullname": "Bob"}, "bob@example.com", opted_out=True)])
    mirror.upsert("lead", [MirrorRow("l1", {"fullname": "Cy"}, "cy@example.com"),
                           MirrorRow("a0", {"fullname": "Di"}, "di@example.com")])
    mirror.upsert("listmember", [MirrorRow("m1", {}, parent_id="L1", ref_id="c1"),
                                 MirrorRow("m0", {}, parent_id="L1", ref_id="a0"),
                                 MirrorRow("m2", {}, parent_id="L1", ref_id="l1"),
                                 MirrorRow("m3", {}, parent_id="L2", ref_id="c2"),
                                 MirrorRow("m4", {}, parent_id="L1", ref_id="unknown")])
    members = list(mirror.members("listmember", ["L1"], ["contact", "lead", "account"]))
    # by list, then record id, whatever the record's table
    assert [(p, t, i, d["fullname"]) for p, t, i, d in members] == [
        ("L1", "lead", "a0", "Di"), ("L1", "contact", "c1", "Ann"), ("L1", "lead", "l1", "Cy")]
    assert mirror.link_count("listmember", ["L1"]) == 4  # the member whose record is unknown still counts
    some = mirror.members_with_keys("listmember", ["L1", "L2"], ["contact", "lead"],
                                    ["cy@example.com", "bob@example.com"])
    assert sorted((p, t, i) for p, t, i, _ in some) == [("L1", "lead", "l1"), ("L2", "contact", "c2")]
    mirror.upsert("contact", [MirrorRow("c9", {"fullname": "No address"})])
    mirror.upsert("listmember", [MirrorRow("m9", {}, parent_id="L2", ref_id="c9")])
    assert sorted(mirror.addresses(["contact", "lead"], ["c9", "c1", "l1", "unknown"])) == [
        ("contact", "c1", "ann@example.com"), ("contact", "c9", None), ("lead", "l1", "cy@example.com")]
    some = mirror.members_with_keys("listmember", ["L1", "L2"], ["contact", "lead"], ["cy@example.com"],
                                    ["c9", "l1"])  # l1 holds an address: found by it, and once only
    assert sorted((p, t, i) for p, t, i, _ in some) == [("L1", "lead", "l1"), ("L2", "contact", "c9")]
    mirror.delete("listmember", ["m9"])
    mirror.delete("contact", ["c9"])
    assert mirror.opted_out_keys(["ann@example.com", "bob@example.com"]) == {"bob@example.com"}
    assert mirror.opted_out_keys() == {"bob@example.com"}
    mirror.upsert("contact", [MirrorRow("c2", {"fullname": "Bob"}, "bob@example.com", opted_out=False)])
    mirror.delete("listmember", ["m1"])
    assert mirror.opted_out_keys() == set()
    assert [i for _, _, i, _ in mirror.members("listmember", ["L2", "L1"], ["contact", "lead"])] == ["a0", "l1", "c2"]
    assert mirror.count("contact") == 2
    # a full read re-stamps what it sees; what it did not see was deleted meanwhile
    mirror.upsert("contact", [MirrorRow("c1", {"fullname": "Ann"}, "ann@example.com")], stamp="9999-01-01")
    assert mirror.delete_unseen("contact", "9999-01-01") == 1
    assert [r["fullname"] for r in mirror.rows("contact")] == ["Ann"] and mirror.count("lead") == 2


@pytest.mark.parametrize("into_empty", [False, True])
def test_a_writer_for_a_first_read_keeps_what_upsert_keeps(store, into_empty):
    """A first full read may be staged and moved at the end (SQLite): the mirror ends as upserts would leave it,
    a row read twice keeps its later copy, and a read that fails leaves nothing behind."""
    mirror = store.mirror
    with pytest.raises(ConnectionError), mirror.writer("contact", "s1", into_empty=into_empty) as write:
        write([MirrorRow("c0", {"n": 0}, "zed@example.com")])
        raise ConnectionError("the read stopped")
    assert mirror.count("contact") == (0 if into_empty and store.backend.name == "sqlite" else 1)
    mirror.delete("contact", ["c0"])
    with mirror.writer("contact", "s2", into_empty=into_empty) as write:
        assert write([MirrorRow("c2", {"n": 1}, "bob@example.com", opted_out=True),
                      MirrorRow("c1", {"n": 2}, "ann@example.com")]) == 2
        assert write([MirrorRow("c2", {"n": 3}, "bob@example.com"), MirrorRow("c3", {"n": 4})]) == 2
    with mirror.writer("listmember", "s2", into_empty=into_empty) as write:
        write([MirrorRow("m1", {}, parent_id="L1", ref_id="c1"), MirrorRow("m2", {}, parent_id="L1", ref_id="c3")])
    assert mirror.count("contact") == 3 and mirror.data_of("contact", ["c2"]) == {"c2": {"n": 3}}
    assert mirror.opted_out_keys() == set() and mirror.delete_unseen("contact", "s2") == 0
    assert sorted(mirror.addresses(["contact"], ["c1", "c2", "c3"])) == [
        ("contact", "c1", "ann@example.com"), ("contact", "c2", "bob@example.com"), ("contact", "c3", None)]
    assert [(p, i) for p, _, i, _ in mirror.members("listmember", ["L1"], ["contact"])] == [("L1", "c1"), ("L1", "c3")]


def test_a_staged_first_read_leaves_no_scratch_database_behind(tmp_path):
    """On SQLite: the staged rows live in a scratch database attached for the read, which is gone after it,
    whether the read ends or fails, so the connection stages the next first read afresh."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", "dotdyn")

    def databases() -> list[str]:
        return [name for _, name, _ in store.backend.query("PRAGMA database_list")]

    try:
        before = databases()
        with store.mirror.writer("contact", "s1", into_empty=True) as write:
            write([MirrorRow("c1", {}, "ann@example.com")])
            assert databases() == [*before, "scratch"]
        assert databases() == before
        with pytest.raises(ConnectionError), store.mirror.writer("lead", "s1", into_empty=True) as write:
            write([MirrorRow("l1", {}, "bob@example.com")])
            raise ConnectionError("the read stopped")
        assert databases() == before and store.mirror.count("lead") == 0 and store.mirror.count("contact") == 1
    finally:
        store.close()


def test_mirror_keeps_unicode_data_as_read(store):
    store.mirror.upsert("contact", [MirrorRow("c1", {"fullname": "Zoë Çelik", "n": 3, "ok": True})])
    assert store.mirror.rows("contact") == [{"fullname": "Zoë Çelik", "n": 3, "ok": True}]


def test_book_state_remembers_what_was_sent(store):
    books = store.books
    books.save("a1", 7, [BookMember("ann@example.com", "contact", "c1", "f1", 100),
                         BookMember("bob@example.com", "lead", "l1", "f2")])
    books.save("a1", 7, [BookMember("bob@example.com", "lead", "l1", "f3", 200)])
    books.save("a1", 7, [BookMember("ann@example.com", "contact", "c1", "f4")])  # the contact id is kept
    members = books.members("a1", 7)
    assert [BookMember(*row) for row in members.itertuples(index=False)] == [
        BookMember("ann@example.com", "contact", "c1", "f4", 100),
        BookMember("bob@example.com", "lead", "l1", "f3", 200)]
    assert list(books.members("a1", 7, ["bob@example.com", "cy@example.com"])["email_key"]) == ["bob@example.com"]
    assert books.remove("a1", 7, ["bob@example.com"]) == 1
    assert list(books.members("a1", 7)["email_key"]) == ["ann@example.com"]
    assert books.members("a1", 8).empty


def test_the_members_a_load_added_stay_unconfirmed_through_unfinished_loads_until_one_ends(store):
    books, ann, bob = store.books, "ann@example.com", "bob@example.com"
    books.save("a1", 7, [BookMember(ann, "contact", "c1", "f1")])
    assert books.begin_load("a1", 7, "r1") is False
    books.save("a1", 7, [BookMember(ann, "contact", "c1", "f2"), BookMember(bob, "lead", "l1", "f2")], added_by="r1")
    assert books.unconfirmed("a1", 7, "r1") == {bob}, "ann was a member before"
    assert books.begin_load("a1", 7, "r2") is True  # r1 never ended, and r2 is stopped before it settles bob
    assert books.begin_load("a1", 7, "r3") is True
    assert books.unconfirmed("a1", 7, "r3") == {bob} and books.unconfirmed("a1", 7, "r1") == set()
    assert set(books.members("a1", 7)["fingerprint"]) == {""}, "unfinished loads make the next send the book again"
    books.end_load("a1", 7)
    assert books.begin_load("a1", 7, "r4") is False and books.unconfirmed("a1", 7, "r4") == set()


def test_a_large_query_streams_its_rows_in_pages_and_leaves_the_store_usable(store):
    store.mirror.upsert("contact", [MirrorRow(f"c{i:03d}", {}, f"p{i}@example.com") for i in range(250)])
    rows = store.backend.stream("SELECT crm_id FROM crm_record WHERE crm_table = ? ORDER BY crm_id", ("contact",),
                                size=100)
    assert next(rows) == ("c000",)
    assert [crm_id for (crm_id,) in rows] == [f"c{i:03d}" for i in range(1, 250)]
    store.mirror.delete("contact", ["c000"])  # no read transaction is left open
    assert store.mirror.count("contact") == 249


def _plans(store: StateStore, call) -> list[str]:
    """The SQLite query plan of each SELECT that `call` makes, one line of text each."""
    statements: list[str] = []
    store.backend._conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        store.backend._conn.set_trace_callback(None)
    return [" / ".join(row[-1] for row in store.backend.query(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements if sql.startswith("SELECT")]


def test_the_mirror_reads_of_a_sync_search_indexes_instead_of_scanning(tmp_path):
    """On SQLite: the opted-out addresses come from their partial index (sql/0009), and an incremental sync
    finds its records without an address by id and the links of its records in the parent index (sql/0010
    dropped the index by record alone). The rows are written as a first read writes them, which rebuilds the
    indexes: they come back as they were, and serve."""
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", "dotdyn") as store:
        mirror = store.mirror
        schema = store.backend.query("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        # written as a first read is: staged, then moved with the indexes rebuilt
        with mirror.writer("contact", "s1", into_empty=True) as write:
            write([MirrorRow("c1", {}, "ann@example.com", opted_out=True), MirrorRow("c2", {}, "bob@example.com"),
                   MirrorRow("c3", {})])
        with mirror.writer("listmember", "s1", into_empty=True) as write:
            write([MirrorRow("m1", {}, parent_id="L1", ref_id="c1"), MirrorRow("m2", {}, parent_id="L2", ref_id="c2"),
                   MirrorRow("m3", {}, parent_id="L1", ref_id="c3")])
        assert store.backend.query("SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema
        [opted_out] = _plans(store, lambda: mirror.opted_out_keys())
        assert "USING INDEX crm_record_opted_out" in opted_out and "SCAN" not in opted_out, opted_out
        found = []
        by_address, links = _plans(store, lambda: found.extend(mirror.members_with_keys(
            "listmember", ["L1", "L2"], ["contact"], ["bob@example.com"])))
        assert [(p, i) for p, _, i, _ in found] == [("L2", "c2")]
        assert "crm_record_by_email" in by_address and "SCAN" not in by_address, by_address
        assert "USING COVERING INDEX crm_record_by_parent" in links and "SCAN" not in links, links
        found.clear()
        _, _, by_id, links = _plans(store, lambda: found.extend(mirror.members_with_keys(
            "listmember", ["L1", "L2"], ["contact"], ["bob@example.com"], ["c3"])))
        assert [(p, i) for p, _, i, _ in found] == [("L2", "c2"), ("L1", "c3")]
        assert "sqlite_autoindex_crm_record_1" in by_id and "SCAN" not in by_id, by_id
        assert "USING COVERING INDEX crm_record_by_parent" in links and "SCAN" not in links, links


def test_a_first_read_rebuilds_only_the_indexes_its_rows_would_more_than_double(tmp_path):
    """On SQLite: building an index from sorted keys beats inserting its keys one by one only when most of them
    are new, so a small first read beside a large index keeps that index up instead."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", "dotdyn")

    def first_read(table: str, rows: list[MirrorRow]) -> list[str]:
        statements: list[str] = []
        store.backend._conn.set_trace_callback(statements.append)
        try:
            with store.mirror.writer(table, "s1", into_empty=True) as write:
                write(rows)
        finally:
            store.backend._conn.set_trace_callback(None)
        return sorted(s.removeprefix("DROP INDEX ") for s in statements if s.startswith("DROP INDEX"))

    try:
        contacts = [MirrorRow(f"c{i}", {}, f"p{i}@example.com", opted_out=i < 2) for i in range(6)]
        assert first_read("contact", contacts) == ["crm_record_by_email", "crm_record_opted_out"]
        leads = [MirrorRow(f"l{i}", {}, f"lead{i}@example.com", opted_out=True) for i in range(3)]
        leads.append(MirrorRow("l9", {}, "p1@example.com"))
        # 4 addresses beside 6: kept up; 3 opted-out addresses beside 2: rebuilt
        assert first_read("lead", leads) == ["crm_record_opted_out"]
        assert first_read("listmember", [MirrorRow("m1", {}, parent_id="L1", ref_id="c1")]) == ["crm_record_by_parent"]
        assert store.mirror.opted_out_keys() == {"p0@example.com", "p1@example.com", "lead0@example.com",
                                                 "lead1@example.com", "lead2@example.com"}
        assert sorted(store.mirror.holders(["p1@example.com"], ["contact", "lead"])["p1@example.com"]) == [
            ("contact", "c1", {}), ("lead", "l9", {})]
    finally:
        store.close()


def test_a_staged_first_read_leaves_the_store_writable_by_others_until_it_moves_its_rows(tmp_path):
    """On SQLite: steps that run side by side extract into one store. While one stages a first read (written in
    transactions, as the extract commits its pages) another writes at once; only the move at the end locks."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    reader, other = StateStore.open(url, "dotdyn"), StateStore.open(url, "dotdyn")
    other.backend._conn.execute("PRAGMA busy_timeout=200")  # "locked" fails fast, not in 60 s
    try:
        with reader.mirror.writer("listmember", "s1", into_empty=True) as write:
            for page in range(3):
                with reader.backend.transaction():
                    write([MirrorRow(f"m{page}", {}, parent_id="L1", ref_id=f"c{page}")])
                    other.mirror.upsert("contact", [MirrorRow(f"c{page}", {"n": page}, f"p{page}@example.com")])
            assert other.mirror.count("listmember") == 0, "staged rows are the reader's own until the move"
        assert other.mirror.count("listmember") == 3 and reader.mirror.count("contact") == 3
        assert [i for _, _, i, _ in other.mirror.members("listmember", ["L1"], ["contact"])] == ["c0", "c1", "c2"]
        with reader.backend.transaction():  # an ordinary transaction takes the write lock at once, as before
            reader.mirror.upsert("contact", [MirrorRow("c9", {}, "late@example.com")])
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.mirror.upsert("contact", [MirrorRow("c8", {}, "other@example.com")])
    finally:
        reader.close()
        other.close()

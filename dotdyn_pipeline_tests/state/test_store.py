"""The state store's API behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

from dotdyn_pipeline.state import (
    ContactLink,
    ImportJob,
    QuarantinedRow,
    UnsubscribeEvent,
)


def test_cursor_round_trip(store):
    assert store.get_cursor("acct", "contact") is None
    store.save_cursor("acct", "contact", delta_link="https://org/api/data/v9.2/contacts?$deltatoken=1")
    store.save_cursor("acct", "contact", delta_link="https://org/api/data/v9.2/contacts?$deltatoken=2")
    store.save_cursor("*", "campaign", watermark="2026-11-01T00:00:00+00:00")
    cursor = store.get_cursor("acct", "contact")
    assert cursor.delta_link.endswith("deltatoken=2") and cursor.watermark is None
    assert store.get_cursor("*", "campaign").watermark == "2026-11-01T00:00:00+00:00"


def test_contact_links_follow_an_email_change(store):
    store.link_contacts([ContactLink("a1", "contact", "c-1", "ann@example.com", 101),
                         ContactLink("a1", "lead", "l-1", "ann@example.com", 101),
                         ContactLink("a2", "contact", "c-1", "ann@example.com", 9)])
    store.link_contacts([ContactLink("a1", "contact", "c-1", "ann.new@example.com", 101)])
    links = store.links_for_contacts("a1", [101])[101]
    assert [(link.crm_table, link.email) for link in links] == [("contact", "ann.new@example.com"),
                                                                ("lead", "ann@example.com")]
    assert len(list(store.contact_links("a2"))) == 1


def test_bulk_links_are_written_in_one_go(store):
    links = (ContactLink("bulk", "contact", f"c-{i:06d}", f"p{i}@example.com", i) for i in range(20_000))
    assert store.link_contacts(links) == 20_000
    every = list(store.contact_links("bulk"))
    assert len(every) == 20_000 and every[123] == ContactLink("bulk", "contact", "c-000123", "p123@example.com", 123)


def test_import_jobs_record_their_outcome(store):
    store.record_import(ImportJob("imp-1", "a1", 77, "NotFinished", rows_sent=3, run_id="run-1"))
    assert [job.import_id for job in store.imports("a1", unfinished_only=True)] == ["imp-1"]
    report = {"faults": [{"email": "x@", "reason": "Invalid email"}]}
    store.record_import(ImportJob("imp-1", "a1", 77, "Finished", rows_sent=3, run_id="run-1", rows_imported=2,
                                  rows_faulted=1, report=report, finished_at="2026-11-27T18:00:00+00:00"))
    assert store.imports("a1", unfinished_only=True) == []
    (job,) = store.imports("a1")
    assert (job.status, job.rows_imported, job.rows_faulted, job.report) == ("Finished", 2, 1, report)


def test_quarantine_counts_and_samples_by_run(store):
    rows = [QuarantinedRow("a1", "contact", f"c-{i}", "email_syntax", "not an email address", "emailaddress1",
                           f"bad{i}@", run_id="r1") for i in range(5)]
    rows.append(QuarantinedRow("a1", "lead", "l-1", "too_long", "longer than 255", "firstname", "x" * 300, "r1"))
    rows.append(QuarantinedRow("a1", "lead", "l-2", "too_long", "longer than 255", "firstname", "y" * 300, "r2"))
    assert store.quarantine(rows) == 7
    assert store.quarantine_counts("a1", "r1") == {"email_syntax": 5, "too_long": 1}
    assert store.quarantine_counts("a1") == {"email_syntax": 5, "too_long": 2}
    sample = store.quarantined("a1", "r1", limit=2)
    assert [(r.rule, r.value) for r in sample] == [("email_syntax", "bad0@"), ("email_syntax", "bad1@")]


def test_ledger_records_each_event_once_and_tracks_propagation(store):
    event = UnsubscribeEvent("a1", " Ann@Example.com", "account", "dotdigital", "2026-11-27T10:00:00+00:00",
                             reason="Unsubscribed")
    book_event = UnsubscribeEvent("a1", "bob@example.com", "address_book", "dynamics",
                                  "2026-11-27T11:00:00+00:00", address_book_id=5)
    assert store.record_unsubscribe(event) is True
    assert store.record_unsubscribe(event) is False  # the same event seen again
    assert store.record_unsubscribe(book_event) is True
    assert [e.event.email for e in store.ledger("a1", pending_only=True)] == ["ann@example.com", "bob@example.com"]
    store.mark_propagated(event.event_key)
    pending = store.ledger("a1", pending_only=True)
    assert [e.event.event_key for e in pending] == [book_event.event_key]
    assert store.unsubscribed_emails("a1") == {"ann@example.com"}
    assert store.unsubscribed_emails("a1", address_book_id=5) == {"ann@example.com", "bob@example.com"}
    assert store.unsubscribed_emails("a1", address_book_id=6) == {"ann@example.com"}
    assert store.mark_resubscribed("a1", "ANN@example.com", "2026-11-27T12:00:00+00:00") == 1
    assert store.unsubscribed_emails("a1") == set()
    # many at once, in one transaction: the one the ledger holds already keeps its state
    others = [UnsubscribeEvent("a1", f"P{n}@example.com", "account", "dotdigital", "2026-11-27T13:00:00+00:00")
              for n in range(3)]
    assert store.record_unsubscribes([book_event, *others]) == 4
    assert store.unsubscribed_emails("a1") == {"p0@example.com", "p1@example.com", "p2@example.com"}
    assert sorted(e.event.event_key for e in store.ledger("a1", pending_only=True)) == sorted(
        [book_event.event_key, *(e.event_key for e in others)])


def test_api_calls_accumulate_per_day(store):
    store.add_api_calls("a1", "dotdigital", {"import": 2, "poll": 5}, day="2026-11-27")
    store.add_api_calls("a1", "dotdigital", {"import": 1, "report": 0}, day="2026-11-27")
    assert store.api_calls("a1", "dotdigital", day="2026-11-27") == {"import": 3, "poll": 5}
    assert store.api_calls("a1", "dotdigital", day="2026-11-28") == {}


def test_an_accounts_import_throughput_is_kept_and_replaced(store):
    assert store.import_throughput("a1") is None
    store.save_import_throughput("a1", 1_250_000.5)
    store.save_import_throughput("a2", 10.0)
    store.save_import_throughput("a1", 2_000_000.0)
    assert (store.import_throughput("a1"), store.import_throughput("a2")) == (2_000_000.0, 10.0)

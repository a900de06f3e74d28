"""What a load remembers of a book: saved while Dotdigital imports, refusals put back, unfinished loads redone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest

from dotdyn_pipeline.connectors.dotdigital import ImportFailed, connect
from dotdyn_pipeline.defs.audience.load import load_book
from dotdyn_pipeline.state import BookMember
from dotdyn_pipeline_tests.connectors.dotdigital.conftest import client_config


def _wanted(emails: list[str], fingerprint: str) -> pd.DataFrame:
    return pd.DataFrame({"list_id": "L", "crm_table": "contact", "crm_id": [f"c-{e}" for e in emails],
                         "email": emails, "email_key": emails, "fingerprint": fingerprint})


def _members(store, book: int) -> dict[str, str]:
    return dict(store.books.members("acc", book)[["email_key", "fingerprint"]].itertuples(index=False, name=None))


def _under_way(store, book: int) -> bool:
    return bool(store.backend.query("SELECT 1 FROM book_load WHERE account = ? AND address_book_id = ?",
                                    ("acc", book)))


@pytest.fixture
def emails() -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{name}-{run}@example.com" for name in ("ann", "bob", "cy")]


def test_a_refused_row_is_remembered_as_it_was_before_the_load(store, sandbox, control, emails):
    """bob was sent before (fingerprint f1) and is refused now; cy is new and refused: neither is remembered as
    sent this time, and ann, accepted, is."""
    ann, bob, cy = emails
    with connect(client_config(sandbox, "rest")) as client:
        book = client.create_address_book(f"refusals {ann}").id
        store.books.save("acc", book, [BookMember(bob, "contact", f"c-{bob}", "f1", 42)])
        for address in (bob, cy):
            control.post("/dotdigital/accounts/1/suppress", json={"email": address, "reason": "HardBounced"}
                         ).raise_for_status()
        counts = load_book(client, store, "acc", book, _wanted(emails, "f2"), [], run_id="r1")
    assert (counts.sent, counts.imported, counts.faulted) == (3, 1, 2)
    assert _members(store, book) == {ann: "f2", bob: "f1"}
    assert store.books.members("acc", book, [bob])["dotdigital_contact_id"].tolist() == [42]
    assert not _under_way(store, book)


def test_a_load_that_never_ended_makes_the_next_send_the_whole_book(store, sandbox, emails):
    with connect(client_config(sandbox, "rest")) as client:
        book = client.create_address_book(f"unfinished {emails[0]}").id
        assert load_book(client, store, "acc", book, _wanted(emails, "f1"), [], run_id="r1").sent == 3
        assert load_book(client, store, "acc", book, _wanted(emails, "f1"), [], run_id="r2").sent == 0
        assert store.books.begin_load("acc", book, "r3") is False  # a load that is killed after this
        counts = load_book(client, store, "acc", book, _wanted(emails, "f1"), [], run_id="r4")
        in_book = sorted(contact.email for contact in client.address_book_contacts(book))
    assert (counts.sent, counts.unchanged) == (3, 0)
    assert in_book == sorted(emails) and _members(store, book) == dict.fromkeys(emails, "f1")
    assert not _under_way(store, book)


def test_a_failed_import_leaves_the_load_unfinished_so_the_next_sends_again(store, sandbox, control, emails):
    with connect(client_config(sandbox, "rest")) as client:
        book = client.create_address_book(f"failed {emails[0]}").id
        control.post("/faults/dotdigital", json={"kind": "import_fail", "count": 1, "path": "import"}
                     ).raise_for_status()
        with pytest.raises(ImportFailed):
            load_book(client, store, "acc", book, _wanted(emails, "f1"), [], run_id="r1")
        control.delete("/faults/dotdigital").raise_for_status()
        assert _under_way(store, book)
        counts = load_book(client, store, "acc", book, _wanted(emails, "f1"), [], run_id="r2")
        in_book = sorted(contact.email for contact in client.address_book_contacts(book))
    assert counts.sent == 3 and in_book == sorted(emails)
    assert not _under_way(store, book)


#: A load of its own process, killed by the test while it waits for its import's outcome.
LOAD_TO_KILL = """
import json, sys
from dotdyn_pipeline.connectors.dotdigital import connect
from dotdyn_pipeline.defs.audience.load import load_book
from dotdyn_pipeline.state import StateStore
from dotdyn_pipeline_tests.connectors.dotdigital.conftest import client_config
from dotdyn_pipeline_tests.defs.audience.test_load_saves import _wanted

job = json.loads(sys.argv[1])
with StateStore.open(*job["state_url"]) as store, connect(client_config(job["sandbox"], "rest")) as client:
    load_book(client, store, "acc", job["book"], _wanted(job["emails"], "f1"), [], run_id="killed")
"""


def _load_killed_after_saving(store, state_url, sandbox, control, book: int, emails: list[str]) -> None:
    """Load `emails` into `book` in a process of its own, and kill it (SIGKILL) once it has saved every row it
    sends and Dotdigital has its import: while it waits for the import's outcome, before any refusal is put back.
    The status polls are slowed so that the kill lands there."""
    imports = lambda: control.get("/dotdigital/accounts/1").raise_for_status().json()["counts"]["imports"]  # noqa: E731
    started = imports()
    control.post("/faults/dotdigital", json={"kind": "latency", "latency_ms": 3000, "path": "/contacts/import/",
                                             "method": "GET"}).raise_for_status()
    job = json.dumps({"state_url": list(state_url), "sandbox": sandbox, "book": book, "emails": emails})
    load = subprocess.Popen([sys.executable, "-c", LOAD_TO_KILL, job])
    try:
        deadline = time.monotonic() + 120
        while len(_members(store, book)) < len(emails) or imports() == started:
            assert load.poll() is None, "the load ended before it was killed"
            assert time.monotonic() < deadline, "the load neither saved its rows nor started its import"
            time.sleep(0.05)
        load.kill()
        load.wait()
    finally:
        control.delete("/faults/dotdigital").raise_for_status()
    assert load.returncode != 0 and _under_way(store, book)
    assert _members(store, book) == dict.fromkeys(emails, "f1"), "every row sent was saved before the kill"


def _book(client, book: int) -> list[str]:
    return sorted(contact.email for contact in client.address_book_contacts(book))


def _calls(client, run) -> dict[str, int]:
    """The Dotdigital calls `run()` makes, by operation."""
    before = client.counter.snapshot()
    run()
    after = client.counter.snapshot()
    return {operation: n - before.get(operation, 0) for operation, n in after.items() if n != before.get(operation, 0)}


def test_people_refused_by_a_killed_load_are_not_left_in_the_book_state(store, state_url, sandbox, control):
    """The load is killed after it saved bob and cy, whom Dotdigital refuses, and before it put them back. The
    next load sends the book again and leaves them out of the book state; the run after it, which no longer
    wants them (the refusals are consent facts), removes no one and makes no call."""
    run = uuid.uuid4().hex[:8]
    ann, bob, cy = (f"{name}-{run}@example.com" for name in ("ann", "bob", "cy"))
    with connect(client_config(sandbox, "rest")) as client:
        book = client.create_address_book(f"killed {ann}").id
        for address in (bob, cy):
            control.post("/dotdigital/accounts/1/suppress", json={"email": address, "reason": "HardBounced"}
                         ).raise_for_status()
        _load_killed_after_saving(store, state_url, sandbox, control, book, [ann, bob, cy])

        recovery = load_book(client, store, "acc", book, _wanted([ann, bob, cy], "f1"), [], run_id="r2")
        assert (recovery.sent, recovery.imported, recovery.faulted, recovery.removed) == (3, 1, 2, 0)
        assert _members(store, book) == {ann: "f1"} and not _under_way(store, book)

        calls = _calls(client, lambda: load_book(client, store, "acc", book, _wanted([ann], "f1"), [], run_id="r3"))
        assert calls == {}, "no removal of people the book does not hold"
        assert _members(store, book) == {ann: "f1"} and _book(client, book) == [ann]


def test_people_of_a_killed_load_who_left_since_are_removed_only_if_the_book_holds_them(store, state_url, sandbox,
                                                                                       control):
    """As above, but before the next load bob and cy (refused) and dan (imported) leave the audience: Dotdigital
    is asked once which of them the book holds, and only dan is removed."""
    run = uuid.uuid4().hex[:8]
    ann, bob, cy, dan = (f"{name}-{run}@example.com" for name in ("ann", "bob", "cy", "dan"))
    with connect(client_config(sandbox, "rest")) as client:
        book = client.create_address_book(f"killed {ann}").id
        for address in (bob, cy):
            control.post("/dotdigital/accounts/1/suppress", json={"email": address, "reason": "HardBounced"}
                         ).raise_for_status()
        _load_killed_after_saving(store, state_url, sandbox, control, book, [ann, bob, cy, dan])
        deadline = time.monotonic() + 60
        while _book(client, book) != sorted([ann, dan]):  # the killed load's import ends in Dotdigital all the same
            assert time.monotonic() < deadline, "the killed load's import never ended"
            time.sleep(0.05)

        counts = []
        calls = _calls(client, lambda: counts.append(
            load_book(client, store, "acc", book, _wanted([ann], "f1"), [], run_id="r2")))
        assert _members(store, book) == {ann: "f1"} and _book(client, book) == [ann]
    assert counts[0].removed == 1
    assert calls["address_book_contacts"] == 1, "the book is asked once"
    assert (calls["contacts_by_emails"], calls["remove_contacts_from_address_book"]) == (1, 1), "dan, and only dan"


def test_an_import_whose_answer_was_lost_is_sent_again_and_nothing_is_doubled(store, sandbox, control):
    """Dotdigital starts the import, and the connection drops before its answer arrives. No call finds an import
    whose id was never heard, and only an import whose id the client holds gives the report and faults the load
    needs, so the file is sent again: the same rows into the same book, matched by address, change nothing more.
    The book holds each person once, the load records the one import it followed, and cy's refusal is put back."""
    run = uuid.uuid4().hex[:8]
    ann, bob, cy = (f"{name}-{run}@example.com" for name in ("ann", "bob", "cy"))
    with connect(client_config(sandbox, "rest")) as client:
        book = client.create_address_book(f"answer lost {ann}").id
        control.post("/dotdigital/accounts/1/suppress", json={"email": cy, "reason": "HardBounced"}).raise_for_status()
        control.post("/faults/dotdigital", json={"kind": "drop_after", "count": 1, "method": "POST",
                                                 "path": "/contacts/import$"}).raise_for_status()
        counts = load_book(client, store, "acc", book, _wanted([ann, bob, cy], "f1"), [], run_id="r1")
        calls = client.counter.snapshot()
        imports = lambda: control.get(f"/dotdigital/accounts/1/address-books/{book}/imports").json()  # noqa: E731
        deadline = time.monotonic() + 60
        while any(job["status"] == "NotFinished" for job in imports()):
            assert time.monotonic() < deadline, "the import whose answer was lost never ended"
            time.sleep(0.05)
        in_book = [contact.email for contact in client.address_book_contacts(book)]
    assert calls["start_import"] == 2 and calls["retry:RemoteProtocolError"] == 1
    assert [job["status"] for job in imports()] == ["Finished", "Finished"], "the lost one ran all the same"
    recorded = store.backend.query("SELECT import_id FROM import_job WHERE address_book_id = ?", (book,))
    assert [import_id for (import_id,) in recorded] == [imports()[1]["id"]], "the import followed, once"
    assert sorted(in_book) == sorted([ann, bob]), "each person once"
    assert (counts.sent, counts.imported, counts.faulted) == (3, 2, 1)
    assert _members(store, book) == {ann: "f1", bob: "f1"}


@pytest.mark.parametrize(("transport", "finding"), [
    ("rest", {"contacts_by_emails": 1, "remove_contacts_from_address_book": 1, "deletion_progress": 1}),
    ("soap", {"address_book_contacts": 1, "remove_contact_from_address_book": 2})])
def test_the_ids_of_people_leaving_are_found_in_the_fewest_calls(store, sandbox, emails, transport, finding):
    """An import tells no contact ids. Two of a three-member book leave: REST looks both up in one call and removes
    them in one bulk removal; SOAP, which has neither, reads the book's one page instead of a lookup each,
    remembers every member's id, and when ann leaves next, finds hers without a call."""
    ann, bob, cy = emails
    with connect(client_config(sandbox, transport)) as client:
        book = client.create_address_book(f"leavers {ann}").id
        load_book(client, store, "acc", book, _wanted(emails, "f1"), [], run_id="r1")
        assert store.books.members("acc", book)["dotdigital_contact_id"].isna().all()

        calls = _calls(client, lambda: load_book(client, store, "acc", book, _wanted([ann], "f1"), [], run_id="r2"))
        assert calls == finding
        assert _book(client, book) == [ann] and _members(store, book) == {ann: "f1"}
        if transport == "soap":
            assert store.books.members("acc", book)["dotdigital_contact_id"].tolist() == [client.contact(ann).id]
            dan = ann.replace("ann", "dan")
            calls = _calls(client, lambda: load_book(client, store, "acc", book, _wanted([dan], "f1"), [],
                                                     run_id="r3"))
            assert "contact_by_email" not in calls and "address_book_contacts" not in calls
            assert _book(client, book) == [dan]

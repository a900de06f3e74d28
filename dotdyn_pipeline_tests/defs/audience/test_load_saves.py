"""What a load remembers of a book: saved while Dotdigital imports, refusals put back, unfinished loads redone."""

from __future__ import annotations

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

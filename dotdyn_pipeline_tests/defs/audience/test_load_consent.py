"""Consent at the load: late unsubscribes win, and import refusals enter the ledger with their scope."""

from __future__ import annotations

import uuid

import pandas as pd

from dotdyn_pipeline.connectors.dotdigital import connect
from dotdyn_pipeline.connectors.dotdigital.models import Contact
from dotdyn_pipeline.defs.audience.load import load_book
from dotdyn_pipeline.state import StateStore, UnsubscribeEvent
from dotdyn_pipeline_tests.connectors.dotdigital.conftest import client_config


def test_a_person_unsubscribed_after_the_members_were_chosen_is_not_sent(sandbox, tmp_path):
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    run = uuid.uuid4().hex[:8]
    emails = [f"late-{run}-{n}@example.com" for n in range(3)]
    wanted = pd.DataFrame({"list_id": "L", "crm_table": "contact", "crm_id": [f"c{n}" for n in range(3)],
                           "email": emails, "email_key": emails, "fingerprint": "f"})
    with connect(client_config(sandbox, "rest")) as client:
        book = client.create_address_book(f"late unsubscribe {run}").id
        store.record_unsubscribe(UnsubscribeEvent("acc", emails[1], "address_book", "dynamics",
                                                  "2026-03-01T00:00:00+00:00", address_book_id=book))
        counts = load_book(client, store, "acc", book, wanted, [], run_id=run)
        in_book = sorted(contact.email for contact in client.address_book_contacts(book))
    assert (counts.withdrawn, counts.sent, counts.imported) == (1, 2, 2)
    assert in_book == [emails[0], emails[2]]
    assert sorted(store.books.members("acc", book)["email_key"]) == [emails[0], emails[2]]
    store.close()


def test_import_refusals_enter_the_ledger_with_their_scope(sandbox, control, tmp_path):
    """A hard bounce holds for the whole account; an Unsubscribed refusal may be this book's only."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    run = uuid.uuid4().hex[:8]
    bounced, left, fine = (f"{kind}-{run}@example.com" for kind in ("bounced", "left", "fine"))
    wanted = pd.DataFrame({"list_id": "L", "crm_table": "contact", "crm_id": ["c0", "c1", "c2"],
                           "email": [bounced, left, fine], "email_key": [bounced, left, fine], "fingerprint": "f"})
    with connect(client_config(sandbox, "rest")) as client:
        book = client.create_address_book(f"refusals {run}").id
        client.add_contact_to_address_book(book, Contact(id=0, email=left))
        client.unsubscribe(left, address_book_id=book)
        control.post("/dotdigital/accounts/1/suppress", json={"email": bounced, "reason": "HardBounced"}
                     ).raise_for_status()
        counts = load_book(client, store, "acc", book, wanted, [], run_id=run)
    assert counts.faulted == 2
    scopes = {entry.event.email: (entry.event.scope, entry.event.address_book_id) for entry in store.ledger("acc")}
    assert scopes == {bounced: ("account", None), left: ("address_book", book)}
    assert store.unsubscribed_emails("acc") == {bounced}
    assert store.unsubscribed_emails("acc", book) == {bounced, left}
    store.close()

"""An unsubscribe recorded while an audience run is under way wins over the import that run planned."""

from __future__ import annotations

import uuid

import pandas as pd

from dotdyn_pipeline.connectors.dotdigital import connect
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

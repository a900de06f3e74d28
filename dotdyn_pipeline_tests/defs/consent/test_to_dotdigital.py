"""Ledger -> Dotdigital: a pending unsubscribe from Dynamics is applied in Dotdigital once and marked once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from dotdyn_pipeline.connectors.dotdigital import connect
from dotdyn_pipeline.defs.consent.dotdigital_reads import read_account
from dotdyn_pipeline.defs.consent.ledger import ACCOUNT_SCOPE, DYNAMICS, record_events
from dotdyn_pipeline.defs.consent.to_dotdigital import apply_to_dotdigital
from dotdyn_pipeline.state import UnsubscribeEvent
from dotdyn_pipeline_tests.connectors.dotdigital.conftest import client_config


def test_an_unsubscribe_whose_answer_was_lost_is_applied_once_and_marked_once(store, sandbox, control):
    """Dotdigital applies the unsubscribe and the connection drops before its answer: the client sends it again,
    which leaves the one suppression there was, and the entry is marked when the answer comes. Read back from
    Dotdigital, the suppression is the flow's own write, not a new event."""
    account, email = "account-lost-answer", f"lost-{uuid.uuid4().hex[:10]}@example.org"
    event = UnsubscribeEvent(account, email, ACCOUNT_SCOPE, DYNAMICS, datetime.now(UTC).isoformat(), "donotbulkemail")
    assert record_events(store, [event]).recorded == [event]
    control.post("/faults/dotdigital", json={"kind": "drop_after", "count": 1, "method": "POST",
                                             "path": "^/v2/contacts/unsubscribe$"}).raise_for_status()
    with connect(client_config(sandbox, "rest")) as client:
        outcomes = apply_to_dotdigital(client, store, account)
        calls = client.counter.snapshot()
        read_back = read_account(client, store, account, [], deadline=time.monotonic() + 60)
    assert outcomes.counts() == {"applied": 1}
    assert calls["unsubscribe"] == 2 and calls["retry:RemoteProtocolError"] == 1
    contact = control.get(f"/dotdigital/accounts/1/contacts/{email}").raise_for_status().json()
    assert (contact["status"], contact["suppression"]["reason"]) == ("Unsubscribed", "Unsubscribed")
    assert [e.email for e in read_back.recording.echo].count(email) == 1, "one suppression in Dotdigital"
    assert email not in {e.email for e in read_back.recording.recorded}
    (entry,) = [entry for entry in store.ledger(account) if entry.event.email == email]
    assert entry.event.event_key == event.event_key and entry.propagated_at is not None

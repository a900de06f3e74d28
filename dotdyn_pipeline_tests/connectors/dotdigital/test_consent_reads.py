"""The reads the consent sensors page through, on both transports: since-date lists resumed from a row, and
contacts modified since (where a confirmed resubscribe shows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dotdyn_pipeline.connectors.dotdigital import DotdigitalClient
from dotdyn_pipeline_tests.connectors.dotdigital.conftest import unique


def test_suppressions_since_resume_from_a_row(client: DotdigitalClient) -> None:
    since = datetime.now(UTC) - timedelta(seconds=2)
    emails = [f"{unique('resume')}@example.com" for _ in range(3)]
    for email in emails:
        client.unsubscribe(email)
    listed = [s.contact.email for s in client.suppressed_since(since)]
    assert [email for email in listed if email in emails] == emails, "oldest first"
    assert [s.contact.email for s in client.suppressed_since(since, start=2)] == listed[2:]
    unsubscribed = [s.contact.email for s in client.unsubscribed_since(since)]
    assert [s.contact.email for s in client.unsubscribed_since(since, start=1)] == unsubscribed[1:]


def test_a_confirmed_resubscribe_shows_among_the_contacts_modified_since(client: DotdigitalClient,
                                                                          control) -> None:
    email = f"{unique('resub')}@example.com"
    client.unsubscribe(email)
    since = datetime.now(UTC) - timedelta(seconds=1)
    # the client is the first account's, on either transport; the person confirms in Dotdigital
    control.post("/dotdigital/accounts/1/resubscribe", json={"email": email}).raise_for_status()
    (contact,) = [c for c in client.contacts_modified_since(since) if c.email == email]
    assert contact.status == "Subscribed" and contact.id
    assert all(c.data_fields is None for c in client.contacts_modified_since(since))

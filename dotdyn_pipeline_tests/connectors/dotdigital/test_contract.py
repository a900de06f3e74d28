"""The client contract, on both transports, against the sandbox over HTTPS: every operation the pipeline uses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dotdyn_pipeline.connectors.dotdigital import (
    AlreadyExists,
    AuthError,
    DotdigitalClient,
    NotFound,
    connect,
)
from dotdyn_pipeline.connectors.dotdigital.models import Contact
from dotdyn_pipeline_tests.connectors.dotdigital.conftest import client_config, unique

LONG_AGO = datetime.now(UTC) - timedelta(days=400)


def _emails(prefix: str, n: int) -> list[str]:
    return [f"{prefix}.{i}@example.com" for i in range(n)]


def _import(client: DotdigitalClient, emails: list[str], **fields: list[Any]):
    book = client.create_address_book(unique("book"))
    rows = [{"Email": e, **{k: v[i] for k, v in fields.items()}} for i, e in enumerate(emails)]
    return book, client.import_contacts(book.id, rows, ["Email", *fields])


def test_connect_reads_account_info_once_and_counts_it(client: DotdigitalClient) -> None:
    assert client.account is not None and client.account.api_endpoint
    assert client.counter.total == 1
    assert client.account_info().id == client.account.id
    assert client.counter.total == 2


def test_wrong_password_is_an_auth_error_without_the_password(sandbox, transport) -> None:
    config = replace(client_config(sandbox, transport), api_password="Wrong-Secret-42")
    with pytest.raises(AuthError) as caught:
        connect(config)
    assert caught.value.status == 401
    assert "Wrong-Secret-42" not in str(caught.value) and "Wrong-Secret-42" not in repr(caught.value.args)


def test_data_fields_are_created_once_with_their_type(client: DotdigitalClient) -> None:
    name = unique("F")[:20].replace("-", "_")
    created = client.create_data_field(name, "Numeric")
    assert (created.name, created.type) == (name.upper(), "Numeric")
    listed = {f.name.upper(): f for f in client.data_fields()}
    assert listed[name.upper()].type == "Numeric"
    with pytest.raises(AlreadyExists) as caught:
        client.create_data_field(name, "Numeric")
    assert caught.value.code == "ERROR_NON_UNIQUE_DATAFIELD"
    calls = client.counter.total
    with pytest.raises(ValueError):
        client.create_data_field("not a valid name", "String")
    assert client.counter.total == calls  # refused before any call


def test_address_books_are_created_found_and_paged(sandbox, transport, sleeps) -> None:
    with connect(client_config(sandbox, transport, page_size=2), sleep=sleeps) as client:
        names = [unique("paged") for _ in range(3)]
        created = [client.create_address_book(name) for name in names]
        before = client.counter.snapshot().get("address_books", 0)
        listed = list(client.address_books())
        pages = client.counter.snapshot()["address_books"] - before
        assert {b.id for b in created} <= {b.id for b in listed}
        assert len(listed) == len({b.id for b in listed})  # no book seen twice across pages
        assert pages == len(listed) // 2 + 1
        found = client.find_address_book(names[1].upper())
        assert found is not None and found.id == created[1].id
        assert client.find_address_book(unique("missing")) is None
        with pytest.raises(AlreadyExists) as caught:
            client.create_address_book(names[0])
        assert caught.value.code == "ERROR_ADDRESSBOOK_DUPLICATE"


def test_import_lifecycle_reports_every_row_and_why_some_were_not_imported(sandbox, transport, sleeps) -> None:
    with connect(client_config(sandbox, transport, import_chunk_bytes=600), sleep=sleeps) as client:
        client.ensure_data_fields({"FIRSTNAME": "String", "SCORE": "Numeric"})
        emails = _emails(unique("imp"), 30)
        emails[7] = "not-an-email"
        emails[4] = emails[3]  # a duplicate within the batch
        book, result = _import(client, emails, FIRSTNAME=[f"Nä{i}" for i in range(30)],
                               SCORE=list(range(30)))
        assert len(result.outcomes) > 1  # chunked under the (test-sized) limit
        assert result.rows == 30
        reasons = {f.email: f.reason for f in result.faults}
        assert "not-an-email" in reasons and reasons["not-an-email"]
        # the second occurrence is a Duplicate fault within one import file, an update across two
        assert reasons.get(emails[3]) == "Duplicate" or result.updated_contacts == 1
        in_book = [c.email for c in client.address_book_contacts(book.id)]
        expected = {e for e in emails if "@" in e}
        assert sorted(in_book) == sorted(expected)  # every valid row once
        assert result.new_contacts == len(expected)
        full = {c.email: c for c in client.address_book_contacts(book.id, with_full_data=True)}
        assert full[emails[0]].data_fields["FIRSTNAME"] == "Nä0"


def test_an_email_change_updates_the_same_contact(client: DotdigitalClient) -> None:
    book = client.create_address_book(unique("email-change"))
    old, new = f"{unique('old')}@example.com", f"{unique('new')}@example.com"
    added = client.add_contact_to_address_book(book.id, Contact(0, old, data_fields={"FIRSTNAME": "Ann"}))
    updated = client.update_contact(replace(added, email=new, data_fields=None))
    assert (updated.id, updated.email) == (added.id, new)
    assert client.contact(added.id).email == new
    assert client.contact(new).id == added.id
    with pytest.raises(NotFound):
        client.contact(old)
    assert [c.id for c in client.address_book_contacts(book.id)] == [added.id]


def test_removal_from_an_address_book_keeps_the_contact(client: DotdigitalClient) -> None:
    book, _ = _import(client, _emails(unique("rm"), 3))
    members = list(client.address_book_contacts(book.id))
    client.remove_contact_from_address_book(book.id, members[0].id)
    assert {c.id for c in client.address_book_contacts(book.id)} == {m.id for m in members[1:]}
    assert client.contact(members[0].email).id == members[0].id


def _calls_during(client: DotdigitalClient, action) -> dict[str, int]:
    before = client.counter.snapshot()
    action()
    return {k: v - before.get(k, 0) for k, v in client.counter.snapshot().items() if v != before.get(k, 0)}


def test_bulk_removal_takes_contacts_out_of_a_book_and_keeps_them(sandbox, transport: str, sleeps) -> None:
    """REST removes them in background deletions of `deletion_chunk` ids, each followed to its end; SOAP, which
    has no bulk removal, one call each. A contact that is not in the book is no error, and stays where it is."""
    with connect(client_config(sandbox, transport, deletion_chunk=2), sleep=sleeps) as client:
        book, _ = _import(client, _emails(unique("bulk-rm"), 5))
        members = sorted(client.address_book_contacts(book.id), key=lambda c: c.id)
        other, _ = _import(client, _emails(unique("bulk-rm-other"), 1))
        outsider = next(iter(client.address_book_contacts(other.id)))
        leaving = [m.id for m in members[:3]] + [outsider.id]
        calls = _calls_during(client, lambda: client.remove_contacts_from_address_book(book.id, leaving))
        assert {c.id for c in client.address_book_contacts(book.id)} == {m.id for m in members[3:]}
        assert [c.id for c in client.address_book_contacts(other.id)] == [outsider.id]
        assert client.contact(members[0].email).id == members[0].id
    if transport == "rest":
        assert calls == {"remove_contacts_from_address_book": 2, "deletion_progress": 2}
    else:
        assert calls == {"remove_contact_from_address_book": 4}


def test_contacts_are_looked_up_by_address_many_at_once(client: DotdigitalClient, transport: str) -> None:
    book, _ = _import(client, _emails(unique("lookup"), 3))
    members = {c.email: c.id for c in client.address_book_contacts(book.id)}
    wanted = [email.upper() for email in members] + [f"{unique('nobody')}@example.com"]
    found: dict[str, int] = {}
    calls = _calls_during(client, lambda: found.update(client.contact_ids(wanted)))
    assert found == members  # the unknown address is left out; addresses come back lower-cased
    assert calls == ({"contacts_by_emails": 1} if transport == "rest" else {"contact_by_email": 4})
    assert client.lookup_calls(4) == (1 if transport == "rest" else 4)


def test_unsubscribe_and_resubscribe(client: DotdigitalClient) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    emails = _emails(unique("consent"), 3)
    book, _ = _import(client, emails)
    client.unsubscribe(emails[0])
    client.unsubscribe(emails[1], address_book_id=book.id)
    unsubscribed = {s.contact.email: s for s in client.unsubscribed_since(since)}
    assert emails[0] in unsubscribed and unsubscribed[emails[0]].date_removed >= since
    assert unsubscribed[emails[0]].reason == "Unsubscribed"
    assert emails[1] not in unsubscribed  # only unsubscribed from the book
    assert emails[1] in {s.contact.email for s in client.unsubscribed_since(since, address_book_id=book.id)}
    assert emails[0] in {s.contact.email for s in client.suppressed_since(since)}
    assert emails[2] not in {s.contact.email for s in client.suppressed_since(since)}
    resubscribed = client.resubscribe(emails[0])
    assert resubscribed.status in ("ContactAdded", "ContactChallenged")


def test_bulk_suppress_by_email_reports_the_unknown(client: DotdigitalClient) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    emails = _emails(unique("suppress"), 2)
    _import(client, emails)
    nobody = f"{unique('nobody')}@example.com"
    result = client.suppress(emails=[emails[0], nobody])
    assert emails[0] in [c.email for c in result.suppressed]
    if client.transport.name == "rest":  # SOAP has no bulk suppress: each address is unsubscribed, known or not
        assert [c.email for c in result.suppressed] == [emails[0]]
        assert [c.email for c in result.not_found] == [nobody]
    assert {s.contact.email: s.reason for s in client.suppressed_since(since)}.get(emails[0])
    assert emails[1] not in {s.contact.email for s in client.suppressed_since(since)}


def test_campaigns_and_engagement_since_a_date(client: DotdigitalClient) -> None:
    campaigns = list(client.campaigns())
    assert campaigns and len({c.id for c in campaigns}) == len(campaigns)
    since = datetime.now(UTC) - timedelta(days=30)
    active = list(client.campaigns_with_activity_since(since))
    assert active and {c.id for c in active} <= {c.id for c in campaigns}
    campaign = active[0]
    summary = client.campaign_summary(campaign.id)
    assert summary.campaign_id == campaign.id and summary.num_sent >= summary.num_delivered >= 0
    activities = list(client.activities_since(campaign.id, LONG_AGO))
    assert activities and all(a.campaign_id == campaign.id and "@" in a.email for a in activities)
    recent = datetime.now(UTC) - timedelta(days=3)
    clicks = list(client.clicks_since(campaign.id, recent))
    assert all(c.date_clicked is None or c.date_clicked >= recent for c in clicks)
    assert len(list(client.clicks_since(campaign.id, LONG_AGO))) >= len(clicks)
    for roi in client.roi_details_since(campaign.id, LONG_AGO):
        assert roi.marker_name and roi.date_entered is not None


def test_campaign_send_and_its_status(client: DotdigitalClient) -> None:
    campaign = next(c for c in client.campaigns() if c.status in ("Unsent", "Sent"))
    book, _ = _import(client, _emails(unique("send"), 2))
    send = client.send_campaign(campaign.id, address_book_ids=[book.id])
    assert send.id and send.campaign_id == campaign.id
    status = client.send_status(send.id)
    assert status.id == send.id and status.status in ("NotSent", "Scheduled", "Sending", "Sent")


def test_missing_objects_are_not_found_with_their_code(client: DotdigitalClient) -> None:
    with pytest.raises(NotFound) as caught:
        client.contact(f"{unique('ghost')}@example.com")
    assert caught.value.code == "ERROR_CONTACT_NOT_FOUND"
    with pytest.raises(NotFound) as caught:
        client.campaign_summary(987_654_321)
    assert caught.value.code == "ERROR_CAMPAIGN_NOT_FOUND"

"""Campaign sends (REST `POST /v2/campaigns/send`, SOAP `SendCampaign`) and their progress.

A send is accepted at once (202 with its id) and then goes out on its own: `Scheduled` until its `sendDate`,
`Sending` while it is delivered, `Sent` when everyone got it, or `Cancelled` (control route). When it goes
out it reaches exactly the contacts who are members of its address books (and not unsubscribed from them) or
named in `contactIds`, and are Subscribed account-wide; no books and no contacts is All Contacts. That set is
fixed at that moment and each recipient gets the campaign's activity (opens, clicks, bounces, unsubscribes by
seed, with delays shrunk by `time_scale`). A split test sends `testPercentage` of the recipients first (spread
evenly over them, at least one), waits `testPeriodHours` (times `time_scale`) and sends the rest.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from dotdyn_pipeline.sandbox.dotdigital.audience import as_int, as_list, field, get_book
from dotdyn_pipeline.sandbox.dotdigital.engagement import CHUNK, Rates, SendWriter
from dotdyn_pipeline.sandbox.dotdigital.errors import ApiError
from dotdyn_pipeline.sandbox.dotdigital.reporting import campaign_type
from dotdyn_pipeline.sandbox.dotdigital.store import AccountStore, iso, parse_date
from dotdyn_pipeline.sandbox.dotdigital.timeline import Timeline

REST_METRICS = ("Opens", "Clicks", "ROI")
SOAP_METRICS = ("Opens", "Clicks")  # the WSDL's ApiSplitTestMetrics has no ROI
#: Engagement delays and split-test periods of API sends, shrunk so a send's effects show within seconds.
DEFAULT_TIME_SCALE = 1 / 720
SEND_COLUMNS = ("id, campaign_id, book_ids, contact_ids, send_date, split_test, status, recipients, accepted, "
                "finished")


def split_test_options(value: Any, metrics: tuple[str, ...]) -> dict[str, Any] | None:
    """`splitTestOptions` checked as ApiSplitTestSendOptions documents it, or None when absent."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError("ERROR_CAMPAIGN_SEND_INVALID", "splitTestOptions must be an object.")
    metric = str(field(value, "testMetric") or "")
    chosen = next((known for known in metrics if known.lower() == metric.lower()), None)
    if chosen is None:
        raise ApiError("ERROR_CAMPAIGN_SEND_INVALID",
                       f"splitTestOptions.testMetric must be one of {', '.join(metrics)}.")
    percent, hours = _whole(field(value, "testPercentage")), _whole(field(value, "testPeriodHours"))
    if percent is None or not 1 <= percent <= 100:
        raise ApiError("ERROR_CAMPAIGN_SEND_INVALID", "splitTestOptions.testPercentage must be between 1 and 100.")
    if hours is None or hours < 1:
        raise ApiError("ERROR_CAMPAIGN_SEND_INVALID", "splitTestOptions.testPeriodHours must be at least 1.")
    return {"testMetric": chosen, "testPercentage": percent, "testPeriodHours": hours}


def _whole(value: Any) -> int | None:
    """A whole number as JSON or SOAP carries it (a number, or its digits as text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip() if isinstance(value, str) else ""
    return int(text) if text.lstrip("-").isdigit() else None


def in_test_group(position: int, percent: int) -> bool:
    """Whether the recipient at `position` (0-based, by contact id) is in the test group: every recipient whose
    position moves ceil(position * percent / 100) on, so the group is ceil(n * percent / 100) of n, evenly."""
    return -(-(position + 1) * percent // 100) > -(-position * percent // 100)


class Sends:
    """Every account's campaign sends, moved along by one timeline."""

    def __init__(self, seed: int, time_scale: float = DEFAULT_TIME_SCALE,
                 clock: Callable[[], float] = time.time) -> None:
        self.seed, self.time_scale, self.clock = seed, time_scale, clock
        self.timeline = Timeline("dotdigital-sends", clock)

    def shutdown(self) -> None:
        self.timeline.stop()

    def send(self, store: AccountStore, body: Any, metrics: tuple[str, ...] = REST_METRICS) -> dict[str, Any]:
        """Accept an ApiCampaignSend; it goes out at its sendDate (now when absent or past)."""
        if not isinstance(body, dict):
            raise ApiError("ERROR_CAMPAIGN_SEND_INVALID", "The body must be a campaign send object.")
        campaign_id = as_int(field(body, "campaignId"), "campaignId")
        if campaign_type(store, campaign_id) == "Triggered":
            raise ApiError("ERROR_CAMPAIGN_SENDNOTPERMITTED", "A triggered campaign is sent with the "
                                                              "triggered-campaign call, not to address books.")
        book_ids = [as_int(value, "addressBookIds") for value in as_list(field(body, "addressBookIds"))]
        contact_ids = [as_int(value, "contactIds") for value in as_list(field(body, "contactIds"))]
        for book_id in book_ids:
            get_book(store, book_id)
        _known_contacts(store, contact_ids)
        split = split_test_options(field(body, "splitTestOptions"), metrics)
        now = self.clock()
        requested = field(body, "sendDate")
        send_date = parse_date(str(requested)) if requested else iso(datetime.fromtimestamp(now, UTC))
        due = datetime.fromisoformat(send_date.replace("Z", "+00:00")).timestamp()
        send_id = str(uuid.uuid4())
        with store.write() as conn:
            conn.execute(f"INSERT INTO sends ({SEND_COLUMNS}, seq) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL, "
                         "(SELECT COALESCE(MAX(seq), 0) + 1 FROM sends))",
                         (send_id, campaign_id, json.dumps(book_ids), json.dumps(contact_ids), send_date,
                          None if split is None else json.dumps(split), "Scheduled" if due > now else "Sending",
                          iso(datetime.fromtimestamp(now, UTC))))
            conn.executemany("INSERT OR IGNORE INTO send_books VALUES (?, ?)", [(send_id, b) for b in book_ids])
            conn.executemany("INSERT OR IGNORE INTO send_contacts VALUES (?, ?)",
                             [(send_id, c) for c in contact_ids])
        accepted = self._json(store, send_id)  # as accepted: it may be on its way before the answer leaves
        self.timeline.at(due, lambda: self._start(store, send_id))
        return accepted

    def status(self, store: AccountStore, send_id: str) -> dict[str, Any]:
        if store.one("SELECT 1 FROM sends WHERE id = ?", send_id.lower()) is None:
            raise ApiError("ERROR_CAMPAIGN_SEND_INVALID", "No campaign send has that id.", status=404)
        return self._json(store, send_id.lower())

    def cancel(self, store: AccountStore, send_id: str) -> dict[str, Any]:
        """Cancel a send that is Scheduled, or a split test waiting for its winner (whose test group has the
        campaign already); a send on its way out or done cannot be called back."""
        self.status(store, send_id)
        send_id = send_id.lower()
        with store.write() as conn:
            wave = conn.execute("SELECT wave FROM sends WHERE id = ?", (send_id,)).fetchone()[0]
            cancelled = conn.execute("UPDATE sends SET status = 'Cancelled', finished = ? WHERE id = ? AND "
                                     "(status = 'Scheduled' OR (status = 'Sending' AND wave = 1))",
                                     (self._now(), send_id)).rowcount
            if not cancelled:
                raise ApiError("ERROR_CAMPAIGN_SEND_INVALID", "Only a scheduled send, or a split test waiting for "
                                                              "its winner, can be cancelled.")
            if wave:  # the test group was sent: the campaign went out, to fewer people
                conn.execute("UPDATE campaigns SET status = 'Sent', date_sent = COALESCE(date_sent, ?) WHERE id = "
                             "(SELECT campaign_id FROM sends WHERE id = ?)", (self._now(), send_id))
        return self._json(store, send_id)

    def executed(self, store: AccountStore, campaign_id: int | None = None) -> list[dict[str, Any]]:
        """Every send accepted, oldest first, with its recipients (null until it went out) and times."""
        where, args = ("WHERE campaign_id = ?", (campaign_id,)) if campaign_id is not None else ("", ())
        return [{"type": "campaign", **self._shape(row)} for row in store.all(
            f"SELECT {SEND_COLUMNS} FROM sends {where} ORDER BY seq", *args)]

    def _now(self) -> str:
        return iso(datetime.fromtimestamp(self.clock(), UTC))

    def _json(self, store: AccountStore, send_id: str) -> dict[str, Any]:
        """ApiCampaignSend."""
        shaped = self._shape(store.one(f"SELECT {SEND_COLUMNS} FROM sends WHERE id = ?", send_id))
        return {key: shaped[key] for key in ("id", "campaignId", "addressBookIds", "contactIds", "sendDate",
                                             "splitTestOptions", "status")}

    @staticmethod
    def _shape(row: tuple) -> dict[str, Any]:
        send_id, campaign_id, book_ids, contact_ids, send_date, split, status, recipients, accepted, finished = row
        return {"id": send_id, "campaignId": campaign_id, "addressBookIds": json.loads(book_ids),
                "contactIds": json.loads(contact_ids), "sendDate": send_date,
                "splitTestOptions": json.loads(split) if split else None, "status": status,
                "recipients": recipients, "accepted": accepted, "finished": finished}

    # --- going out (on the timeline's thread) -----------------------------------------------------------------

    def _start(self, store: AccountStore, send_id: str) -> None:
        with store.write() as conn:
            started = conn.execute("UPDATE sends SET status = 'Sending' WHERE id = ? AND wave = 0 AND "
                                   "status IN ('Scheduled', 'Sending')", (send_id,)).rowcount
            if not started:  # cancelled while scheduled
                return
            conn.execute("UPDATE campaigns SET status = 'Sending' WHERE id = "
                         "(SELECT campaign_id FROM sends WHERE id = ?)", (send_id,))
        split = json.loads(store.scalar("SELECT split_test FROM sends WHERE id = ?", send_id) or "null")
        recipients = self._fix_recipients(store, send_id, split["testPercentage"] if split else 100)
        with store.write() as conn:
            conn.execute("UPDATE sends SET recipients = ? WHERE id = ?", (recipients, send_id))
        writer = self._deliver(store, send_id, test_group=1)
        if split is None:
            self._finish(store, send_id, writer)
            return
        with store.write() as conn:
            conn.execute("UPDATE sends SET wave = 1 WHERE id = ? AND status = 'Sending'", (send_id,))
            conn.execute("UPDATE campaigns SET last_activity = MAX(COALESCE(last_activity, ''), ?) WHERE id = "
                         "(SELECT campaign_id FROM sends WHERE id = ?)", (writer.last_activity, send_id))
        period = split["testPeriodHours"] * 3600 * self.time_scale
        self.timeline.at(self.clock() + period, lambda: self._send_winner(store, send_id))

    def _send_winner(self, store: AccountStore, send_id: str) -> None:
        with store.write() as conn:
            if not conn.execute("UPDATE sends SET wave = 2 WHERE id = ? AND status = 'Sending' AND wave = 1",
                                (send_id,)).rowcount:  # cancelled during the test period
                return
        self._finish(store, send_id, self._deliver(store, send_id, test_group=0))

    def _finish(self, store: AccountStore, send_id: str, writer: SendWriter) -> None:
        writer.finish()
        with store.write() as conn:
            conn.execute("UPDATE sends SET status = 'Sent', wave = 2, finished = ? WHERE id = ?",
                         (self._now(), send_id))

    def _fix_recipients(self, store: AccountStore, send_id: str, percent: int) -> int:
        """Write who gets the send, now, and which of them are the test group; return how many there are."""
        position = 0
        for chunk in _eligible(store, send_id):
            rows = [(send_id, contact_id, email, int(in_test_group(position + offset, percent)))
                    for offset, (contact_id, email) in enumerate(chunk)]
            position += len(chunk)
            with store.write() as conn:
                conn.executemany("INSERT INTO send_recipients VALUES (?, ?, ?, ?)", rows)
        return position

    def _deliver(self, store: AccountStore, send_id: str, test_group: int) -> SendWriter:
        """The campaign's engagement for the recipients in (1) or out of (0) the test group."""
        campaign_id = store.scalar("SELECT campaign_id FROM sends WHERE id = ?", send_id)
        writer = SendWriter(store, campaign_id, self.clock(), random.Random(f"{self.seed}:{send_id}:{test_group}"),
                            Rates(), time_scale=self.time_scale)
        last = -1
        while chunk := store.all("SELECT contact_id, email FROM send_recipients WHERE send_id = ? AND "
                                 "test_group = ? AND contact_id > ? ORDER BY contact_id LIMIT ?",
                                 send_id, test_group, last, CHUNK):
            writer.write(chunk)
            last = chunk[-1][0]
        return writer


def _known_contacts(store: AccountStore, contact_ids: list[int]) -> None:
    for start in range(0, len(contact_ids), CHUNK):
        part = set(contact_ids[start:start + CHUNK])
        found = store.scalar(f"SELECT COUNT(*) FROM contacts WHERE id IN ({','.join('?' * len(part))})", *part)
        if found != len(part):
            raise ApiError("ERROR_CONTACT_NOT_FOUND", "A contact in contactIds does not exist.")


def _eligible(store: AccountStore, send_id: str) -> Iterator[list[tuple[int, str]]]:
    """Chunks of (id, email), by id, of the Subscribed contacts a send reaches: members of its books who did not
    unsubscribe from that book, and the contacts it names; All Contacts when it names neither."""
    targeted = store.one("SELECT EXISTS (SELECT 1 FROM send_books WHERE send_id = ?) OR "
                         "EXISTS (SELECT 1 FROM send_contacts WHERE send_id = ?)", send_id, send_id)[0]
    audience = ("AND (id IN (SELECT m.contact_id FROM members m JOIN send_books b ON b.book_id = m.book_id "
                "WHERE b.send_id = ? AND NOT EXISTS (SELECT 1 FROM book_unsubscribes u WHERE u.book_id = m.book_id "
                "AND u.contact_id = m.contact_id)) OR id IN (SELECT contact_id FROM send_contacts WHERE send_id = ?))"
                if targeted else "")
    args = (send_id, send_id) if targeted else ()
    last = -1
    while chunk := store.all(f"SELECT id, email FROM contacts WHERE status = 'Subscribed' {audience} AND id > ? "
                             "ORDER BY id LIMIT ?", *args, last, CHUNK):
        yield chunk
        last = chunk[-1][0]

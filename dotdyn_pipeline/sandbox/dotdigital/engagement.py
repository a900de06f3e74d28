"""Each account's history and the engagement of every send, deterministic by seed, written in chunks.

An account's contacts are the sandbox's people (sandbox/people.py) whose index maps to it (index modulo the
number of accounts), with valid emails, so the Dataverse stand-in and this one agree on who is who. Their
ids are deterministic: 100,000,000 + index for CRM contacts, 400,000,000 + index for leads, 700,000,000 +
index for CRM accounts. People who opted out of bulk email are already Unsubscribed here.

Campaigns were sent over the past `days` days to the account's address books. Each recipient gets one
activity row (ApiCampaignContactSummary) with opens, clicks (url, ip, user agent, keyword), ROI markers,
forwards, replies, soft and hard bounces and unsubscribes at realistic rates; a hard bounce or unsubscribe
also suppresses the contact (reason and date), so later campaigns skip them. Sends through the API get the
same treatment for their recipients (sends.py), with the event delays compressed from hours to seconds. Each
account also has two unsent drafts and the triggered campaigns of TRIGGERED_CAMPAIGNS (status and type
`Triggered`), which only one-to-one triggered sends use (triggered.py).
Rows stream from the recipient query to SQLite in chunks; nothing holds a campaign's rows in memory.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.dotdigital.audience import DEFAULT_FIELDS
from dotdyn_pipeline.sandbox.dotdigital.store import NEVER, AccountStore, iso, normalise_email, valid_email
from dotdyn_pipeline.sandbox.people import CAMPAIGN_CODES, people

KIND_ID_BASE = {"contact": 100_000_000, "lead": 400_000_000, "account": 700_000_000}
#: Contacts who signed up in Dotdigital (a web form) and are unknown to Dynamics: per 1000 CRM people.
SIGNUPS_PER_THOUSAND = 10
SIGNUP_ID_BASE = 900_000_000
CHUNK = 5_000
TOPICS = ("Spring sale", "Product news", "Webinar invitation", "Monthly newsletter", "Customer survey",
          "Event reminder", "Loyalty rewards", "New arrivals", "Partner offers", "Year in review")
LINKS = (("https://www.example.com/offers", "offers"), ("https://www.example.com/blog/latest", "blog"),
         ("https://www.example.com/products/new", "new-products"), ("https://www.example.com/events", "events"),
         ("https://shop.example.com/basket", "basket"), ("https://www.example.com/contact-us", "contact"))
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17425; Pro)",
)
#: Every account's triggered campaigns, for one-to-one sends (POST /v2/email/triggered-campaign): fixed ids,
#: beyond those of the historical campaigns and drafts, so the Dynamics side can name them at any data size.
TRIGGERED_CAMPAIGNS = {
    990_001: ("Order confirmation (triggered)", "Thank you for your order"),
    990_002: ("Appointment reminder (triggered)", "Your appointment is coming up"),
    990_003: ("Password reset (triggered)", "Reset your password"),
}
CATEGORIES = ("Shoes", "Outdoor", "Books", "Garden", "Electronics")
HOUR = 3600.0


@dataclass(frozen=True)
class Rates:
    """Chances per send (click given open, ROI given click)."""

    hard_bounce: float = 0.008
    soft_bounce: float = 0.015
    unsubscribe: float = 0.004
    open: float = 0.32
    click: float = 0.25
    roi: float = 0.3
    forward: float = 0.01
    reply: float = 0.003

    def spread_over(self, campaigns: int) -> Rates:
        """Fewer bounces and unsubscribes per send when one base receives hundreds of campaigns."""
        factor = min(1.0, 8 / max(campaigns, 1))
        return Rates(hard_bounce=self.hard_bounce * factor, unsubscribe=self.unsubscribe * factor,
                     soft_bounce=self.soft_bounce, open=self.open, click=self.click, roi=self.roi,
                     forward=self.forward, reply=self.reply)


def _stamp(ts: float) -> str:
    return iso(datetime.fromtimestamp(ts, UTC))


def _ip(rng: random.Random) -> str:
    return f"{rng.randrange(2, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


class SendWriter:
    """Generates and stores the engagement of one campaign send, chunk by chunk."""

    def __init__(self, store: AccountStore, campaign_id: int, sent_at: float, rng: random.Random,
                 rates: Rates, time_scale: float = 1.0, horizon: float | None = None) -> None:
        self.store, self.campaign_id, self.sent_at, self.rng = store, campaign_id, sent_at, rng
        self.rates, self.scale, self.horizon = rates, time_scale, horizon
        self.rows = 0
        self.last_activity = _stamp(sent_at)

    def _at(self, delay_seconds: float) -> float:
        """The moment `delay_seconds` (scaled) after the send, never past the horizon."""
        ts = self.sent_at + delay_seconds * self.scale
        return ts if self.horizon is None else min(ts, self.horizon)

    def write(self, recipients: list[tuple[int, str]]) -> None:
        """Engagement for a chunk of (contact id, email) recipients."""
        rng, rates, random_ = self.rng, self.rates, self.rng.random
        sent = _stamp(self.sent_at)
        activities, clicks, rois, suppressions = [], [], [], []
        for contact_id, email in recipients:
            html = random_() < 0.88
            hard = random_() < rates.hard_bounce
            soft = not hard and random_() < rates.soft_bounce
            opens = clicks_made = page_views = forwards = replies = 0
            first_open = last_open = NEVER
            first_ip = ""
            unsubscribed = False
            last = self.sent_at
            if not (hard or soft) and random_() < rates.open:
                delay = rng.expovariate(1 / (8 * HOUR))
                opens = 1 + int(rng.expovariate(1.2))
                opened = self._at(delay)
                last = self._at(delay + (rng.uniform(0, 24 * HOUR) if opens > 1 else 0))
                first_open, last_open, first_ip = _stamp(opened), _stamp(last), _ip(rng)
                if random_() < rates.click:
                    agent = rng.choice(USER_AGENTS)
                    for _ in range(1 + int(rng.expovariate(1.5))):
                        clicked = self._at(delay + rng.uniform(5, 600))
                        url, keyword = rng.choice(LINKS)
                        clicks.append((self.campaign_id, contact_id, email, url, first_ip, agent,
                                       _stamp(clicked), keyword))
                        clicks_made += 1
                        last = max(last, clicked)
                    page_views = clicks_made + int(rng.expovariate(0.8))
                    if random_() < rates.roi:
                        entered = self._at(delay + rng.uniform(600, 7200))
                        rois.append((self.campaign_id, contact_id, email, "Revenue", "Numeric",
                                     json.dumps(round(rng.uniform(5, 400), 2)), _stamp(entered)))
                        rois.append((self.campaign_id, contact_id, email, "ProductCategory", "String",
                                     json.dumps(rng.choice(CATEGORIES)), _stamp(entered)))
                        last = max(last, entered)
                forwards = int(random_() < rates.forward)
                replies = int(random_() < rates.reply)
                if random_() < rates.unsubscribe:
                    unsubscribed = True
                    last = max(last, self._at(delay + rng.uniform(30, 900)))
                    suppressions.append((contact_id, "Unsubscribed", _stamp(last)))
            elif hard:
                last = self._at(60)
                suppressions.append((contact_id, "HardBounced", _stamp(last)))
            stamp = _stamp(last)
            self.last_activity = max(self.last_activity, stamp)
            activities.append((self.campaign_id, contact_id, email, int(html), sent, opens, page_views, clicks_made,
                               forwards, replies, first_open, last_open, first_ip, int(unsubscribed), int(soft),
                               int(hard), stamp))
        with self.store.write() as conn:
            conn.executemany("INSERT OR IGNORE INTO activities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                             "?, ?)", activities)
            conn.executemany("INSERT INTO clicks (campaign_id, contact_id, email, url, ip_address, user_agent, "
                             "date_clicked, keyword) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", clicks)
            conn.executemany("INSERT INTO roi (campaign_id, contact_id, email, marker_name, data_type, value, "
                             "date_entered) VALUES (?, ?, ?, ?, ?, ?, ?)", rois)
            conn.executemany("UPDATE contacts SET status = ?, modified = ? WHERE id = ?",
                             [(reason, when, contact_id) for contact_id, reason, when in suppressions])
            conn.executemany("INSERT OR REPLACE INTO suppressions VALUES (?, ?, ?)", suppressions)
        self.rows += len(activities)

    def finish(self) -> None:
        with self.store.write() as conn:
            conn.execute("UPDATE campaigns SET status = 'Sent', date_sent = COALESCE(date_sent, ?), "
                         "last_activity = MAX(COALESCE(last_activity, ''), ?) WHERE id = ?",
                         (_stamp(self.sent_at), self.last_activity, self.campaign_id))


def recipients(store: AccountStore, book_ids: list[int] | None,
               limit: int | None = None) -> Iterator[list[tuple[int, str]]]:
    """Chunks of subscribed (id, email) in the books (None: all contacts), by id, at most `limit`."""
    where = "status = 'Subscribed'"
    if book_ids:
        where += f" AND id IN (SELECT contact_id FROM members WHERE book_id IN ({','.join('?' * len(book_ids))}))"
    last, left = -1, limit
    while left is None or left > 0:
        size = CHUNK if left is None else min(CHUNK, left)
        chunk = store.all(f"SELECT id, email FROM contacts WHERE {where} AND id > ? ORDER BY id LIMIT ?",
                          *(book_ids or []), last, size)
        if not chunk:
            return
        yield chunk
        last = chunk[-1][0]
        left = None if left is None else left - len(chunk)


def new_campaign(conn, rng: random.Random, number: int, account_name: str, status: str = "Unsent") -> int:
    topic = TOPICS[number % len(TOPICS)]
    code = f" [{CAMPAIGN_CODES[number]}]" if number < len(CAMPAIGN_CODES) else ""  # sent for a Dynamics campaign
    subject = f"{topic}: {rng.choice(('this week', 'just for you', 'inside'))}"
    return conn.execute("INSERT INTO campaigns (name, subject, from_name, from_email, status) VALUES (?, ?, ?, ?, ?)",
                        (f"{topic} #{number + 1}{code}", subject,
                         account_name, "news@example.com", status)).lastrowid


def seed_account(store: AccountStore, settings: SandboxSettings, index: int, name: str,
                 activities: int | None, anchor: datetime) -> None:
    """Fill a fresh store with the account's contacts, books, data fields, campaigns and their engagement."""
    seed, accounts = settings.seed, settings.email_accounts
    rng = random.Random(f"{seed}:dotdigital:{index}")
    start = anchor - timedelta(days=settings.days)
    with store.write() as conn:
        conn.executemany("INSERT INTO data_fields VALUES (?, 'String', 'Private', NULL)",
                         [(name_,) for name_ in DEFAULT_FIELDS])
        conn.execute("INSERT INTO address_books (id, name, visibility, writable) VALUES (1, 'Test', 'Private', 0)")
        books = {label: conn.execute("INSERT INTO address_books (name, visibility) VALUES (?, ?)",
                                     (label, visibility)).lastrowid
                 for label, visibility in (("Newsletter", "Public"), ("Customers", "Private"),
                                           ("Prospects", "Private"))}
    _seed_people(store, settings, index, accounts, books, rng, start, anchor)

    count = int(settings.option("dotdigital.campaigns", "6"))
    per_book = [books["Newsletter"], books["Customers"], books["Prospects"]]
    if activities is not None:  # enough campaigns to the whole base, allowing for its slow erosion
        base = store.scalar("SELECT COUNT(*) FROM members m JOIN contacts c ON c.id = m.contact_id "
                            "WHERE m.book_id = ? AND c.status = 'Subscribed'", books["Newsletter"]) or 1
        count = max(1, -(-activities * 100 // (base * 97)))
        per_book = [books["Newsletter"]]
    rates = Rates().spread_over(count)
    written, span = 0, (anchor - start).total_seconds()
    for number in itertools.count():
        if written >= activities if activities is not None else number >= count:
            break
        sent_at = start.timestamp() + span * (min(number, count - 1) + 0.25) / count
        book = per_book[number % len(per_book)]
        with store.write() as conn:
            campaign_id = new_campaign(conn, rng, number, name)
            conn.execute("INSERT INTO campaign_books VALUES (?, ?)", (campaign_id, book))
        writer = SendWriter(store, campaign_id, sent_at, random.Random(f"{seed}:{index}:{number}"), rates,
                            horizon=anchor.timestamp())
        for chunk in recipients(store, [book], limit=None if activities is None else activities - written):
            writer.write(chunk)
        writer.finish()
        if not writer.rows:  # nobody left to send to
            break
        written += writer.rows
    with store.write() as conn:  # drafts for sends through the API, and the triggered (transactional) campaigns
        for draft in range(number, number + 2):
            new_campaign(conn, rng, draft, name)
        conn.executemany("INSERT INTO campaigns (id, name, subject, from_name, from_email, status, type) "
                         "VALUES (?, ?, ?, ?, 'news@example.com', 'Triggered', 'Triggered')",
                         [(campaign_id, title, subject, name) for campaign_id, (title, subject)
                          in TRIGGERED_CAMPAIGNS.items()])


def _seed_people(store: AccountStore, settings: SandboxSettings, index: int, accounts: int, books: dict[str, int],
                 rng: random.Random, start: datetime, anchor: datetime) -> None:
    span = (anchor - start).total_seconds()
    rows, members, suppressions, book_unsubscribes = [], [], [], []

    def flush() -> None:
        with store.write() as conn:
            conn.executemany("INSERT OR IGNORE INTO contacts (id, email, opt_in_type, email_type, data, status, "
                             "created, modified) VALUES (?, ?, ?, 'Html', ?, ?, ?, ?)", rows)
            conn.executemany("INSERT OR IGNORE INTO members SELECT ?, id FROM contacts WHERE id = ?", members)
            conn.executemany("INSERT OR IGNORE INTO suppressions SELECT id, 'Unsubscribed', ? FROM contacts "
                             "WHERE id = ?", suppressions)
            conn.executemany("INSERT OR IGNORE INTO book_unsubscribes SELECT ?, id, ? FROM contacts WHERE id = ?",
                             book_unsubscribes)
        for batch in (rows, members, suppressions, book_unsubscribes):
            batch.clear()

    kind_book = {"contact": books["Customers"], "lead": books["Prospects"], "account": None}
    for kind, total in (("contact", settings.contacts), ("lead", settings.leads), ("account", settings.accounts)):
        for person in people(settings.seed, kind, total, settings.contacts):
            if person.index % accounts != index:
                continue
            email = normalise_email(person.email)
            if not valid_email(email):
                continue
            contact_id = KIND_ID_BASE[kind] + person.index
            created = iso(anchor - timedelta(days=person.created_days_ago))
            data = {"FIRSTNAME": person.first_name, "LASTNAME": person.last_name,
                    "FULLNAME": " ".join(part for part in (person.first_name, person.last_name) if part) or None}
            status = "Unsubscribed" if person.do_not_bulk_email else "Subscribed"
            rows.append((contact_id, email, rng.choice(("Single", "Double", "VerifiedDouble", "Unknown")),
                         json.dumps(data), status, created, created))
            members.append((books["Newsletter"], contact_id))
            if person.do_not_bulk_email:
                suppressions.append((iso(start + timedelta(seconds=rng.uniform(0, span))), contact_id))
            if kind_book[kind] is not None:
                if kind == "lead" and rng.random() < 0.02:
                    when = iso(start + timedelta(seconds=rng.uniform(0, span)))
                    book_unsubscribes.append((kind_book[kind], when, contact_id))
                else:
                    members.append((kind_book[kind], contact_id))
            if len(rows) >= CHUNK:
                flush()
    signups = max(10 * accounts, (settings.contacts + settings.leads) * SIGNUPS_PER_THOUSAND // 1000)
    for number in range(index, signups, accounts):
        created = iso(anchor - timedelta(days=rng.uniform(0, 400)))
        rows.append((SIGNUP_ID_BASE + number, f"signup.{number}@example.net", "Single", json.dumps({}), "Subscribed",
                     created, created))
        members.append((books["Newsletter"], SIGNUP_ID_BASE + number))
        if len(rows) >= CHUNK:
            flush()
    flush()

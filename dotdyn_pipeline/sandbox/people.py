"""The sandbox's people: deterministic by (seed, kind, index), computed on demand, never held in bulk.

Contacts, leads and accounts are derived from their index alone, so a million of them cost no memory and
both stand-ins see the same people: the Dataverse stand-in serves them as CRM rows, the Dotdigital stand-in
generates engagement for the same email addresses. The mess is realistic and counted by rate:
about 2% invalid emails, 1% of leads sharing a contact's email, missing names, unicode, 5% opted out of
bulk email, and some inactive rows.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

KINDS = ("contact", "lead", "account")

INVALID_EMAIL_RATE = 0.02
SHARED_EMAIL_RATE = 0.01  # leads whose email is a contact's
NO_BULK_EMAIL_RATE = 0.05
NO_EMAIL_RATE = 0.01
INACTIVE_RATE = 0.03
MISSING_NAME_RATE = 0.02

FIRST_NAMES = ("Anna", "Ben", "Chloé", "Dmitri", "Eilidh", "François", "Grace", "Hiroshi", "Inès", "Jürgen",
               "Kofi", "Lena", "Mateo", "Niamh", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tomasz",
               "Uma", "Vítor", "Wen", "Ximena", "Yusuf", "Zoë")
LAST_NAMES = ("Ahmed", "Brown", "Çelik", "Dubois", "Evans", "Fernández", "García", "Hansen", "Ivanova",
              "Jones", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Patel", "Quinn", "Rossi",
              "Smith", "Taylor", "Ünal", "Virtanen", "Williams", "Xu", "Yılmaz", "Zhang")
COMPANIES = ("Northwind", "Contoso", "Fabrikam", "Tailspin", "Woodgrove", "Litware", "Adventure Works",
             "Proseware", "Wide World Importers", "Blue Yonder")
CITIES = (("London", "GB"), ("Manchester", "GB"), ("Dublin", "IE"), ("Paris", "FR"), ("Berlin", "DE"),
          ("Madrid", "ES"), ("Kraków", "PL"), ("New York", "US"), ("Sydney", "AU"), ("Tokyo", "JP"))
#: Codes of the Dynamics campaigns the seed makes; the first Dotdigital campaigns carry them in their names.
CAMPAIGN_CODES = ("CMP-1000", "CMP-1001", "CMP-1002", "CMP-1003")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.co.uk")
BAD_EMAILS = ("{local}@", "{local}.example.com", "{local}@@example.com", "{local} @example.com",
              "@example.com", "{local}@example", "{local}@exa mple.com")


@dataclass(frozen=True)
class Person:
    """One CRM record's person-level facts, vendor-neutral."""

    kind: str
    index: int
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    company: str
    job_title: str | None
    city: str
    country: str
    birth_date: str | None  # ISO date
    do_not_bulk_email: bool
    do_not_email: bool
    active: bool
    created_days_ago: int


def record_id(seed: int, kind: str, index: int) -> str:
    """The stable GUID of a generated record."""
    digest = hashlib.blake2b(f"{seed}:{kind}:{index}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{index}")


def _good_email(rng: random.Random, first: str, last: str, tag: str) -> str:
    local = f"{first}.{last}.{tag}".lower().replace("'", "")
    local = local.encode("ascii", "ignore").decode() or f"person.{tag}"
    domain = rng.choice(DOMAINS)
    styled = rng.random()
    if styled < 0.05:  # mixed case and surrounding spaces, as people type them
        return f"  {local.title()}@{domain.upper()} "
    return f"{local}@{domain}"


def person(seed: int, kind: str, index: int, contacts: int | None = None) -> Person:
    """The person generated for `kind` number `index`; leads may share an email with one of `contacts`."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    rng = _rng(seed, kind, index)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    company = rng.choice(COMPANIES)
    city, country = rng.choice(CITIES)
    email: str | None = _good_email(rng, first, last, f"{kind[0]}{index}")
    roll = rng.random()
    if roll < INVALID_EMAIL_RATE:
        email = rng.choice(BAD_EMAILS).format(local=f"{first}{index}".lower())
    elif roll < INVALID_EMAIL_RATE + 0.005:
        email = None
    elif kind == "lead" and contacts and roll < INVALID_EMAIL_RATE + 0.005 + SHARED_EMAIL_RATE:
        email = person(seed, "contact", rng.randrange(contacts)).email
    if kind == "account":
        first = last = None
        email = email.replace(".a", ".info.a", 1) if email and "@" in email else email
    elif rng.random() < MISSING_NAME_RATE:
        first = None if rng.random() < 0.5 else first
        last = None if first is not None else last
    birth = None if kind != "contact" or rng.random() < 0.3 else (
        f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
    return Person(
        kind=kind, index=index, id=record_id(seed, kind, index),
        first_name=first, last_name=last, email=email, company=company,
        job_title=rng.choice((None, "Buyer", "Director", "Engineer", "Marketing Manager", "Owner")),
        city=city, country=country, birth_date=birth,
        do_not_bulk_email=rng.random() < NO_BULK_EMAIL_RATE,
        do_not_email=rng.random() < NO_EMAIL_RATE,
        active=rng.random() >= INACTIVE_RATE,
        created_days_ago=rng.randint(1, 1500),
    )


def people(seed: int, kind: str, count: int, contacts: int | None = None, start: int = 0) -> Iterator[Person]:
    """Stream `count` people of one kind from index `start`, one at a time."""
    for index in range(start, start + count):
        yield person(seed, kind, index, contacts)


@dataclass(frozen=True)
class EmailAccount:
    """One Dotdigital account as both stand-ins know it: an esc_emailaccount row and an API user."""

    name: str
    emailaccount_id: str
    api_user: str
    api_password: str
    secret_name: str
    transport: str


def email_accounts(seed: int, count: int) -> list[EmailAccount]:
    """The sandbox's Dotdigital accounts; the first uses REST, every second one SOAP."""
    accounts = []
    for index in range(count):
        rng = _rng(seed, "emailaccount", index)
        accounts.append(EmailAccount(
            name=f"Account {index + 1}",
            emailaccount_id=record_id(seed, "emailaccount", index),
            api_user=f"apiuser-{index + 1:03d}@apiconnector.com",
            api_password="".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%")
                                 for _ in range(20)),
            secret_name=f"DOTDYN_DOTDIGITAL_PASSWORD_{index + 1}",
            transport="soap" if index % 2 else "rest",
        ))
    return accounts

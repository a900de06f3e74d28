"""Which CRM record a Dotdigital contact is, and the lookups that link a written row to it.

Shared by the engagement and consent flows. A contact is found through the id map the audience flow keeps
(Dotdigital contact id -> CRM record), then by its address in the CRM mirror; where several records hold the
address, the audience flow's precedence picks one (contact over lead over account, newest, lowest id). A
person found by address is added to the id map, so the next lookup is direct.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dotdyn_pipeline.defs.audience.extract import PERSON_TABLES
from dotdyn_pipeline.defs.audience.selection import PRECEDENCE
from dotdyn_pipeline.schemas.email import address_key
from dotdyn_pipeline.state import ContactLink, StateStore

#: The lookup column and entity set of each kind of person, as the esc_ tables link to them.
PERSON_LOOKUPS = {"contact": ("esc_contactid", "contacts"), "lead": ("esc_leadid", "leads"),
                  "account": ("esc_accountid", "accounts")}
SUPPRESSION_KEY = ("_esc_emailaccountid_value", "esc_email")


@dataclass(frozen=True)
class Person:
    """A contact, lead or account in Dynamics."""

    crm_table: str
    crm_id: str


def _newest_first(holders: list[tuple[str, str, dict[str, Any]]]) -> tuple[str, str, dict[str, Any]]:
    by_id = sorted(holders, key=lambda h: h[1])
    by_date = sorted(by_id, key=lambda h: h[2].get("modifiedon") or "", reverse=True)
    return min(by_date, key=lambda h: PRECEDENCE[h[0]])  # min is stable: the newest of the best kind


class PersonResolver:
    """Finds the CRM person behind Dotdigital contacts of one email account."""

    def __init__(self, store: StateStore, account: str) -> None:
        self.store, self.account = store, account

    def resolve(self, contacts: Iterable[tuple[int | None, str]]) -> dict[tuple[int | None, str], Person | None]:
        """(Dotdigital contact id or None, email) -> the person, or None when Dynamics does not know them."""
        wanted = list(dict.fromkeys(contacts))
        linked = self.store.links_for_contacts(self.account, [cid for cid, _ in wanted if cid])
        found: dict[tuple[int | None, str], Person | None] = {}
        by_email: list[tuple[int | None, str]] = []
        for contact_id, email in wanted:
            links = linked.get(contact_id) if contact_id else None
            if links:
                best = min(links, key=lambda link: (PRECEDENCE.get(link.crm_table, len(PRECEDENCE)), link.crm_id))
                found[contact_id, email] = Person(best.crm_table, best.crm_id)
            else:
                by_email.append((contact_id, email))
        holders = self.store.mirror.holders((address_key(email) or "" for _, email in by_email), PERSON_TABLES)
        learned = []
        for contact_id, email in by_email:
            key = address_key(email)
            candidates = holders.get(key or "")
            if not candidates:
                found[contact_id, email] = None
                continue
            table, crm_id, _ = _newest_first(candidates)
            found[contact_id, email] = Person(table, crm_id)
            if contact_id:
                learned.append(ContactLink(self.account, table, crm_id, key, contact_id))
        self.store.link_contacts(learned)
        return found

    def everyone_with(self, emails: Iterable[str]) -> dict[str, list[Person]]:
        """Every contact, lead and account holding each address (lower-cased), in precedence order."""
        holders = self.store.mirror.holders((address_key(e) or "" for e in emails), PERSON_TABLES)
        return {key: [Person(table, crm_id) for table, crm_id, _ in
                      sorted(rows, key=lambda h: (PRECEDENCE[h[0]], h[1]))] for key, rows in holders.items()}


def person_binds(person: Person | None) -> dict[str, str]:
    """The lookup that links a row to `person` (none for an unknown person)."""
    if person is None:
        return {}
    column, entity_set = PERSON_LOOKUPS[person.crm_table]
    return {f"{column}@odata.bind": f"/{entity_set}({person.crm_id})"}


def suppression_row(account_id: str, email: str, reason: str | None, date_removed: datetime | str | None,
                    source: str, person: Person | None) -> dict[str, Any]:
    """An esc_emailsupression row (upsert it by SUPPRESSION_KEY: one row per account and address)."""
    address = address_key(email) or ""
    when = date_removed.isoformat() if isinstance(date_removed, datetime) else date_removed
    return {"_esc_emailaccountid_value": account_id, "esc_email": address, "esc_name": address[:255],
            "esc_reason": (reason or "Suppressed")[:40], "esc_dateremoved": when, "esc_source": source,
            **person_binds(person)}

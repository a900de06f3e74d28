"""The organisation's starting data, generated from `people.py` by seed and sizes, streamed into the store.

Contacts, leads and accounts come from the shared people generator (so Dotdigital's stand-in knows the same
addresses), with its mess: invalid and duplicate emails, missing names, unicode, opted-out and inactive
rows. Per email account there are static marketing lists of each member type (one of them not activated
for email), dynamic lists (DYNAMIC_QUERIES: their FetchXML, and no listmember rows, as Dynamics keeps them),
data labels, data mappings and settings. Every row is created by the application user.
Contacts are generated in chunks by worker processes and inserted as they arrive, so memory stays flat.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dotdyn_pipeline.sandbox.dataverse import metadata
from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError
from dotdyn_pipeline.sandbox.dataverse.lists import member_id
from dotdyn_pipeline.sandbox.dataverse.schema import Table
from dotdyn_pipeline.sandbox.dataverse.security import application_user_id
from dotdyn_pipeline.sandbox.dataverse.store import Store
from dotdyn_pipeline.sandbox.people import CAMPAIGN_CODES, EmailAccount, Person, people, record_id

ANCHOR = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)  # generated history ends here; live writes are stamped now
CHUNK = 20_000
#: (key, name, member type code, activated for email, dynamic) of the lists each email account owns; a list's
#: place in this tuple is part of its id, so new lists go at the end.
LISTS = (("newsletter", "Newsletter", 2, True, False), ("invitees", "Event invitees", 2, False, False),
         ("uk", "UK contacts (dynamic)", 2, True, True), ("leads", "Leads nurture", 4, True, False),
         ("accounts", "Key accounts", 1, True, False),
         ("new", "New since December 2024 (dynamic)", 2, True, True),
         ("updated", "Updated in the last 30 days (dynamic)", 2, True, True),
         ("families", "Parents and managers in GB and IE (dynamic)", 2, True, True),
         ("london", "Contacts of London accounts (dynamic)", 2, True, True),
         ("reachable", "Active contacts with an email (dynamic)", 2, True, True),
         ("uk_leads", "UK and Irish leads (dynamic)", 4, True, True),
         ("eu_accounts", "Accounts in Germany and France (dynamic)", 1, True, True))


def _fetch(entity: str, body: str) -> str:
    return (f'<fetch version="1.0" output-format="xml-platform" mapping="logical"><entity name="{entity}">{body}'
            "</entity></fetch>")


#: The FetchXML (list.query) of each dynamic list: an attribute filter, a fixed date (the seeded history ends at
#: ANCHOR), a window relative to today (empty in the seeded data; live edits enter it), nested and/or filters with
#: an `in` list, a link-entity to the parent account, most contacts, and queries over leads and accounts.
DYNAMIC_QUERIES = {
    "uk": _fetch("contact", '<attribute name="contactid"/><filter type="and"><condition attribute="address1_country" '
                            'operator="eq" value="GB"/></filter>'),
    "new": _fetch("contact", '<attribute name="contactid"/><filter type="and"><condition attribute="createdon" '
                             'operator="on-or-after" value="2024-12-01"/></filter>'),
    "updated": _fetch("contact", '<attribute name="contactid"/><filter type="and"><condition attribute="modifiedon" '
                                 'operator="last-x-days" value="30"/></filter>'),
    "families": _fetch("contact", '<attribute name="contactid"/><filter type="and"><condition '
                                  'attribute="address1_country" operator="in"><value>GB</value><value>IE</value>'
                                  '</condition><filter type="or"><condition attribute="numberofchildren" operator="ge" '
                                  'value="2"/><condition attribute="jobtitle" operator="like" value="%Manager%"/>'
                                  '</filter></filter>'),
    "london": _fetch("contact", '<attribute name="contactid"/><link-entity name="account" from="accountid" '
                                'to="parentcustomerid" link-type="inner" alias="parent"><filter type="and"><condition '
                                'attribute="address1_city" operator="eq" value="London"/></filter></link-entity>'),
    "reachable": _fetch("contact", '<attribute name="contactid"/><filter type="and"><condition attribute="statecode" '
                                   'operator="eq" value="0"/><condition attribute="emailaddress1" '
                                   'operator="not-null"/></filter>'),
    "uk_leads": _fetch("lead", '<attribute name="leadid"/><filter type="and"><condition attribute="address1_country" '
                               'operator="in"><value>GB</value><value>IE</value></condition></filter>'),
    "eu_accounts": _fetch("account", '<attribute name="accountid"/><filter type="and"><condition '
                                     'attribute="address1_country" operator="in"><value>DE</value><value>FR</value>'
                                     '</condition></filter>'),
}
#: (entity, attribute, data label, label type) mapped for every email account; the second account skips
#: the last two contact mappings so that accounts differ.
MAPPINGS = (("contact", "firstname", "FIRSTNAME", "String"), ("contact", "lastname", "LASTNAME", "String"),
            ("contact", "fullname", "FULLNAME", "String"), ("contact", "jobtitle", "JOBTITLE", "String"),
            ("contact", "address1_city", "CITY", "String"), ("contact", "address1_country", "COUNTRY", "String"),
            ("contact", "donotemail", "EMAILOPTOUT", "Boolean"), ("contact", "birthdate", "BIRTHDATE", "Date"),
            ("contact", "numberofchildren", "CHILDREN", "Numeric"),
            ("lead", "firstname", "FIRSTNAME", "String"), ("lead", "lastname", "LASTNAME", "String"),
            ("lead", "fullname", "FULLNAME", "String"), ("lead", "companyname", "COMPANY", "String"),
            ("lead", "address1_city", "CITY", "String"), ("lead", "donotemail", "EMAILOPTOUT", "Boolean"),
            ("account", "name", "COMPANY", "String"), ("account", "address1_city", "CITY", "String"),
            ("account", "address1_country", "COUNTRY", "String"))
PREFERENCES = ("Newsletter", "Offers", "Events")


@dataclass(frozen=True)
class Plan:
    """What to generate; small and picklable, so worker processes can build chunks of it."""

    seed: int
    contacts: int
    leads: int
    accounts: int
    email_accounts: int

    def list_id(self, account_index: int, key: str) -> str:
        return record_id(self.seed, "list", account_index * 100 + [k for k, *_ in LISTS].index(key))


@lru_cache(maxsize=4096)
def _day(days_ago: int) -> str:
    return (ANCHOR - dt.timedelta(days=days_ago)).strftime("%Y-%m-%d")


def _stamp(days_ago: int, index: int) -> str:
    seconds = (index * 7919) % 86_400
    return f"{_day(days_ago)}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"


def _person_columns(p: Person) -> dict[str, Any]:
    modified_days_ago = p.created_days_ago - (p.index * 31) % (p.created_days_ago + 1)
    return {"firstname": p.first_name, "lastname": p.last_name,
            "fullname": " ".join(n for n in (p.first_name, p.last_name) if n) or None,
            "emailaddress1": p.email, "donotbulkemail": int(p.do_not_bulk_email), "donotemail": int(p.do_not_email),
            "jobtitle": p.job_title, "address1_city": p.city, "address1_country": p.country,
            "createdon": _stamp(p.created_days_ago, p.index), "modifiedon": _stamp(modified_days_ago, p.index + 1)}


def _tuple(table: Table, row: dict[str, Any]) -> tuple:
    return tuple(row.get(name) for name in Store.stored_columns(table))


def contact_chunk(plan: Plan, contact: Table, listmember: Table, start: int,
                  count: int) -> tuple[list[tuple], list[tuple]]:
    """Contacts `start..start+count` and their list memberships, as insert-ready tuples."""
    contacts, members = [], []
    creator = application_user_id(plan.seed)  # as the store's rows are (worker processes have no store)
    for p in people(plan.seed, "contact", count, start=start):
        i = p.index
        row = {"contactid": p.id, **_person_columns(p), "createdby": creator, "birthdate": p.birth_date,
               "numberofchildren": i % 4 if i % 3 else None, "statecode": 0 if p.active else 1,
               "statuscode": 1 if p.active else 2}
        if plan.accounts and i % 5:
            row["parentcustomerid"] = record_id(plan.seed, "account", (i * 7919) % plan.accounts)
            row["parentcustomerid@type"] = "account"
        contacts.append(_tuple(contact, row))
        owner = i % plan.email_accounts
        keys = ["newsletter"] if i % 10 != 9 else []
        if i % 100 < plan.email_accounts:
            keys.append("invitees")
        for key in keys:
            list_id = plan.list_id(owner if key != "invitees" else i % 100, key)
            members.append(_tuple(listmember, {"listmemberid": member_id(list_id, p.id), "listid": list_id,
                                               "entityid": p.id, "entityid@type": "contact",
                                               "entitytype": "contact", "createdon": row["createdon"],
                                               "createdby": row["createdby"], "modifiedon": row["createdon"],
                                               "statecode": 0, "statuscode": 1}))
    return contacts, members


def _chunks(plan: Plan, catalog: Catalog, workers: int) -> Iterator[tuple[list[tuple], list[tuple]]]:
    starts = range(0, plan.contacts, CHUNK)
    tables = (catalog.table("contact"), catalog.table("listmember"))
    if workers <= 1 or plan.contacts <= 2 * CHUNK:
        for start in starts:
            yield contact_chunk(plan, *tables, start, min(CHUNK, plan.contacts - start))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: list[Future] = []
        for start in starts:  # a bounded window of chunks in flight keeps memory flat
            pending.append(pool.submit(contact_chunk, plan, *tables, start, min(CHUNK, plan.contacts - start)))
            if len(pending) > 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def _other_people(plan: Plan, kind: str, count: int) -> Iterator[tuple[dict, list[dict]]]:
    for p in people(plan.seed, kind, count, contacts=plan.contacts):
        owner = p.index % plan.email_accounts
        if kind == "lead":
            row = {"leadid": p.id, **_person_columns(p), "companyname": p.company,
                   "statecode": 0 if p.active else 2, "statuscode": 1 if p.active else 6}
            key = "leads"
        else:
            row = {"accountid": p.id, **_person_columns(p), "name": f"{p.company} {p.city} {p.index + 1}",
                   "statecode": 0 if p.active else 1, "statuscode": 1 if p.active else 2}
            for name in ("firstname", "lastname", "fullname", "jobtitle"):
                row.pop(name)
            if plan.contacts:
                row["primarycontactid"] = record_id(plan.seed, "contact", (p.index * 31) % plan.contacts)
            key = "accounts" if p.index % 2 == 0 else None
        members = []
        if key:
            list_id = plan.list_id(owner, key)
            members.append({"listmemberid": member_id(list_id, p.id), "listid": list_id, "entityid": p.id,
                            "entityid@type": kind, "entitytype": kind, "createdon": row["createdon"],
                            "modifiedon": row["createdon"]})
        yield row, members


def _load_dicts(store: Store, table: Table, rows: list[dict]) -> None:
    base = {"statecode": 0, "statuscode": 1, "createdon": _stamp(30, 0), "createdby": store.created_by,
            "modifiedon": _stamp(30, 0)}
    store.load(table, (_tuple(table, {**base, **row}) for row in rows))


def _setup_rows(plan: Plan, catalog: Catalog, accounts: list[EmailAccount], days: int) -> dict[str, list[dict]]:
    """Email accounts, lists, data labels, mappings, settings, CRM fields, campaigns and preferences."""
    rows: dict[str, list[dict]] = {name: [] for name in (
        "esc_emailaccount", "list", "esc_emailcampaigncustomfields", "esc_emaildatamapping",
        "esc_emailcampaignconfiguration", "esc_marketingpreference", "campaign", "esc_crmfield")}
    for index, account in enumerate(accounts):
        aid = account.emailaccount_id
        rows["esc_emailaccount"].append({"esc_emailaccountid": aid, "esc_name": account.name,
                                         "esc_apiuser": account.api_user, "esc_secretname": account.secret_name,
                                         "esc_transport": account.transport, "esc_isdefault": int(index == 0)})
        for key, name, code, activated, dynamic in LISTS:
            rows["list"].append({
                "listid": plan.list_id(index, key), "listname": f"{name} - {account.name}", "createdfromcode": code,
                "type": int(dynamic), "lockstatus": 0, "esc_activatedforemail": int(activated),
                "esc_emailaccountid": aid, "query": DYNAMIC_QUERIES[key] if dynamic else None})
        labels = {}
        for number, (entity, attribute, label, kind) in enumerate(MAPPINGS):
            if index % 2 and entity == "contact" and label in ("BIRTHDATE", "CHILDREN"):
                continue
            if label not in labels:
                labels[label] = record_id(plan.seed, f"datalabel:{index}", len(labels))
                rows["esc_emailcampaigncustomfields"].append({
                    "esc_emailcampaigncustomfieldsid": labels[label], "esc_name": label, "esc_emailaccountid": aid,
                    "esc_type": kind, "esc_isprivate": 0, "esc_defaultvalue": None})
            rows["esc_emaildatamapping"].append({
                "esc_emaildatamappingid": record_id(plan.seed, f"mapping:{index}", number),
                "esc_name": f"{entity}.{attribute} -> {label}", "esc_emailaccountid": aid, "esc_entityname": entity,
                "esc_attributename": attribute, "esc_datalabelid": labels[label], "esc_datafieldname": label,
                "esc_datafieldtype": kind})
        rows["esc_emailcampaignconfiguration"].append({
            "esc_emailcampaignconfigurationid": record_id(plan.seed, "configuration", index),
            "esc_name": f"Settings - {account.name}", "esc_emailaccountid": aid,
            "esc_unsubscribeattribute": "donotbulkemail", "esc_syncsuppressions": 1, "esc_syncengagement": 1,
            "esc_engagementdays": days, "esc_syncmarketingpreferences": int(index == 0)})
        for number, name in enumerate(PREFERENCES):
            rows["esc_marketingpreference"].append({
                "esc_marketingpreferenceid": record_id(plan.seed, f"preference:{index}", number), "esc_name": name,
                "esc_publicname": f"{name} emails", "esc_emailaccountid": aid,
                "esc_dotdigitalpreferenceid": number + 1, "esc_ispublic": 1, "esc_order": number})
    for number, (name, code) in enumerate(zip(("Spring launch", "Summer sale", "Autumn webinar", "Winter newsletter"),
                                              CAMPAIGN_CODES, strict=True)):
        rows["campaign"].append({"campaignid": record_id(plan.seed, "campaign", number), "name": name,
                                 "codename": code, "typecode": 1 + number % 3})
    for entity in ("contact", "lead", "account"):
        for column in catalog.table(entity).columns[1:]:
            if column.type in ("String", "Boolean", "DateOnly", "DateTime", "Integer", "Picklist"):
                rows["esc_crmfield"].append({
                    "esc_crmfieldid": record_id(plan.seed, f"crmfield:{entity}", len(rows["esc_crmfield"])),
                    "esc_name": f"{entity}.{column.name}", "esc_entityname": entity,
                    "esc_attributename": column.name, "esc_attributetype": column.type,
                    "esc_displayname": column.name.replace("_", " ").title()})
    return rows


def install_solution_data(store: Store, catalog: Catalog, plan: Plan, accounts: list[EmailAccount],
                          days: int) -> dict[str, int]:
    """Write the solution's setup rows (what an administrator configures after installing it: email accounts,
    lists activated for email and their owners, data labels, mappings, settings, preferences, CRM fields)
    into an organisation whose solution was provisioned; rows with the same id are updated. Refused with a
    409 naming what is missing while a table or column the rows need does not exist."""
    rows = _setup_rows(plan, catalog, accounts, days)
    rows.pop("campaign")  # Microsoft's table, seeded with the people
    missing = []
    for logical, found in rows.items():
        table = catalog.get(logical)
        if table is None:
            missing.append(f"table {logical}")
            continue
        names = {name for column in table.columns for name in Store.stored_columns_of(column)}
        missing += [f"column {logical}.{name}" for name in sorted({n for row in found for n in row} - names)]
    if missing:
        raise DataverseError(409, "0x80040217", "The solution is not installed: missing " + ", ".join(missing) + ".")
    counts = {}
    with store.transaction():
        for logical, found in rows.items():
            table = catalog.table(logical)
            for row in found:
                existing = store.find(table, {table.primary_key: row[table.primary_key]})
                if existing is None:
                    store.insert(table, row)
                else:
                    store.update(table, existing, {k: v for k, v in row.items() if k != table.primary_key})
            counts[logical] = len(found)
    return counts


def seed(store: Store, catalog: Catalog, plan: Plan, accounts: list[EmailAccount], days: int,
         workers: int, bulk_messages: bool = True) -> dict[str, int]:
    """Fill an empty store; returns the number of rows per table (`bulk_messages`: the Web API version has
    CreateMultiple, UpdateMultiple and UpsertMultiple, which sdkmessagefilters then lists)."""
    counts: dict[str, int] = {}
    contact, listmember = catalog.table("contact"), catalog.table("listmember")
    for contacts, members in _chunks(plan, catalog, workers):
        counts["contact"] = counts.get("contact", 0) + store.load(contact, contacts)
        counts["listmember"] = counts.get("listmember", 0) + store.load(listmember, members)
    for kind, count in (("lead", plan.leads), ("account", plan.accounts)):
        rows, members = [], []
        for row, extra in _other_people(plan, kind, count):
            rows.append(row)
            members += extra
        _load_dicts(store, catalog.table(kind), rows)
        _load_dicts(store, listmember, members)
        counts[kind] = len(rows)
        counts["listmember"] = counts.get("listmember", 0) + len(members)
    for logical, rows in _setup_rows(plan, catalog, accounts, days).items():
        if catalog.get(logical) is not None:  # a bare organisation has no esc_ table (nor esc_ column on list)
            _load_dicts(store, catalog.table(logical), rows)
            counts[logical] = len(rows)
    filters = catalog.table("sdkmessagefilter")
    store.load(filters, (_tuple(filters, r) for r in (metadata.message_filters(catalog) if bulk_messages else [])))
    store.create_indexes({"contact": ["emailaddress1", "modifiedon"], "lead": ["emailaddress1", "modifiedon"],
                          "account": ["modifiedon"], "listmember": ["listid", "entityid"]})
    store.db.execute('UPDATE "list" SET membercount = (SELECT COUNT(*) FROM listmember m WHERE m.listid = '
                     '"list".listid)')
    return counts

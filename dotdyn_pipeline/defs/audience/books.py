"""Each activated marketing list has one address book: created on its first sync, its id kept on the list."""

import time
from typing import Any

import dagster as dg

from dotdyn_pipeline.connectors.dotdigital.models import ADDRESS_BOOK_NAME_MAX
from dotdyn_pipeline.defs.accounts.accounts import email_account, email_account_partitions
from dotdyn_pipeline.defs.accounts.partitions import partition_account
from dotdyn_pipeline.defs.audience.extract import MARKETING_LISTS, crm_marketing_lists
from dotdyn_pipeline.defs.audience.members import account_lists
from dotdyn_pipeline.resources import DataverseResource, DotdigitalResource, StateStoreResource


def book_names(lists: list[dict[str, Any]]) -> dict[str, str]:
    """list id -> address book name: the list's name, made unique within the account, within the limit."""
    counts: dict[str, int] = {}
    for row in lists:
        counts[row["listname"].casefold()] = counts.get(row["listname"].casefold(), 0) + 1
    names = {}
    for row in lists:
        name = row["listname"].strip()
        suffix = f" ({row['listid'][:8]})" if counts[row["listname"].casefold()] > 1 else ""
        names[row["listid"]] = name[:ADDRESS_BOOK_NAME_MAX - len(suffix)] + suffix
    return names


@dg.asset(group_name="audience", partitions_def=email_account_partitions, deps=[crm_marketing_lists],
          kinds={"dotdigital", "dataverse"}, pool="dotdigital",
          description="list id -> Dotdigital address book id, for the account's activated lists.")
def address_books(context: dg.AssetExecutionContext, dataverse: DataverseResource, dotdigital: DotdigitalResource,
                  state: StateStoreResource) -> dg.Output[dict[str, int]]:
    started, account_id = time.monotonic(), partition_account(context, state)
    with state.open() as store:
        lists = account_lists(store, account_id)
        names, books, created = book_names(lists), {}, 0
        with dataverse.client() as crm, email_account(crm, account_id).dotdigital(dotdigital) as client:
            existing: dict[str, int] | None = None
            for row in lists:
                book_id = row.get("esc_addressbookid")
                if not book_id:
                    # a book of that name may exist already: a run that created it died before recording it
                    if existing is None:
                        existing = {book.name.casefold(): book.id for book in client.address_books()}
                    name = names[row["listid"]]
                    book_id = existing.get(name.casefold())
                    if book_id is None:
                        book_id, created = client.create_address_book(name).id, created + 1
                    crm.upsert("list", row["listid"], {"esc_addressbookid": book_id})
                    store.mirror.upsert(MARKETING_LISTS.logical_name, [MARKETING_LISTS.to_mirror(
                        {**row, "esc_addressbookid": book_id})])
                books[row["listid"]] = int(book_id)
            calls = client.counter.total
    return dg.Output(books, metadata={
        "address_books": dg.MetadataValue.int(len(books)),
        "address_books_created": dg.MetadataValue.int(created),
        "dotdigital_calls": dg.MetadataValue.int(calls),
        "duration_s": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
    })

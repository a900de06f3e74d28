"""The extract writes the mirror in large transactions: an interrupted read keeps what it committed and rolls
back the rest (the next read starts again from the saved cursor). It keeps the columns of a row read, never its
OData annotations."""

import pytest

from dotdyn_pipeline.connectors.dataverse.client import ChangePage
from dotdyn_pipeline.defs.audience.extract import PEOPLE, in_transactions, without_annotations
from dotdyn_pipeline.state import MirrorRow


def _pages(count: int, size: int):
    for page in range(count):
        yield ChangePage(rows=[{"contactid": f"c{page}-{i}"} for i in range(size)])


def _write(store, pages) -> int:
    seen = 0
    for page in in_transactions(store, pages, rows_per_commit=20):
        store.mirror.upsert("contact", [MirrorRow(row["contactid"], row) for row in page.rows])
        seen += 1
    return seen


def test_every_page_is_written_and_committed(store):
    assert _write(store, _pages(7, 10)) == 7
    assert store.mirror.count("contact") == 70


def test_a_read_that_fails_keeps_the_batches_it_committed_and_rolls_back_the_open_one(store):
    def broken():
        yield from _pages(5, 10)
        raise ConnectionError("the read stopped")

    with pytest.raises(ConnectionError):
        _write(store, broken())
    assert store.mirror.count("contact") == 40, "pages 1-2 and 3-4 were committed; page 5's batch was not"


def test_annotations_are_taken_out_of_every_row_whichever_rows_carry_them():
    page = [{"@odata.etag": 'W/"1"', "contactid": "a", "emailaddress1": "A@Example.com", "donotbulkemail": False},
            {"@odata.etag": 'W/"2"', "contactid": "b", "emailaddress1": None, "donotemail": True,
             "statecode@OData.Community.Display.V1.FormattedValue": "Active", "statecode": 0},
            {"contactid": "c", "jobtitle": "Buyer"}]
    kept = without_annotations(page)
    assert kept == [{"contactid": "a", "emailaddress1": "A@Example.com", "donotbulkemail": False},
                    {"contactid": "b", "emailaddress1": None, "donotemail": True, "statecode": 0},
                    {"contactid": "c", "jobtitle": "Buyer"}]
    assert all(row is original for row, original in zip(kept, page, strict=True)), "rows are not copied"
    assert without_annotations([]) == []


def test_a_person_row_is_mirrored_with_its_address_key_and_consent():
    contacts = next(table for table in PEOPLE if table.logical_name == "contact")
    [row] = without_annotations([{"@odata.etag": 'W/"7"', "contactid": "a", "emailaddress1": " Ann@Example.COM ",
                                  "donotbulkemail": False, "donotemail": True}])
    mirrored = contacts.to_mirror(row)
    assert mirrored.crm_id == "a" and mirrored.opted_out and "@odata.etag" not in mirrored.data
    assert mirrored.email_key == "ann@example.com"

"""The extract writes the mirror in large transactions: an interrupted read keeps what it committed and rolls
back the rest (the next read starts again from the saved cursor)."""

import pytest

from dotdyn_pipeline.connectors.dataverse.client import ChangePage
from dotdyn_pipeline.defs.audience.extract import in_transactions
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

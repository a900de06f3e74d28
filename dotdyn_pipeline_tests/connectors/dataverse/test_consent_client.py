"""What the consent flow needs of the Dataverse client: updates that never create, and change reads that stop
after a page and resume from it. Against a sandbox of this module's own (it writes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseClient
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.connectors.dataverse.conftest import sandbox_config
from dotdyn_pipeline_tests.connectors.dataverse.test_write_sandbox import contacts_by_id


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = SandboxSettings(seed=37, contacts=120, leads=10, accounts=10, email_accounts=1, days=1)
    with running_sandbox(tmp_path_factory.mktemp("dataverse-consent"), settings) as contract:
        yield contract


def test_update_many_updates_and_never_brings_back_a_deleted_record(sandbox: dict[str, Any]) -> None:
    with DataverseClient(sandbox_config(sandbox)) as client:
        kept, gone = str(uuid.uuid4()), str(uuid.uuid4())
        client.upsert_many("contact", [{"contactid": kept, "lastname": "Kept"}], ["contactid"])
        outcomes = client.update_many("contact", [{"contactid": kept, "donotbulkemail": True},
                                                  {"contactid": gone, "donotbulkemail": True}])
        assert [(o.index, o.ok, o.status) for o in outcomes] == [(0, True, 204), (1, False, 404)]
        found = contacts_by_id(client, [kept, gone], ("donotbulkemail",))
        assert found[kept]["donotbulkemail"] is True and gone not in found


def test_a_change_read_stopped_after_a_page_resumes_from_the_next(sandbox: dict[str, Any]) -> None:
    with DataverseClient(sandbox_config(sandbox, max_page_size=50)) as client:
        read = client.read_changes("contact", ("contactid", "donotbulkemail"))
        first = next(iter(read))
        assert len(first.rows) == 50 and read.resume and read.cursor is None
        rest = client.read_changes("contact", ("contactid", "donotbulkemail"), read.resume)
        later = [row["contactid"] for page in rest for row in page.rows]
        assert rest.resume is None and rest.cursor, "the last page ends with a delta link"
        ids = [row["contactid"] for row in first.rows] + later
        everyone = sum(len(page) for page in client.read("contact", ("contactid",)))
        assert len(ids) == len(set(ids)) == everyone, "every contact once"

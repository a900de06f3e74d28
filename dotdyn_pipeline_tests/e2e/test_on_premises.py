"""An audience sync end to end against an on-premises organisation: sign-in at AD FS, the Web API v8.2."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dotdyn_pipeline.demo import materialized_facts as facts
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.e2e.conftest import World

ON_PREMISES = SandboxSettings(seed=43, contacts=200, leads=50, accounts=30, email_accounts=1, days=2,
                              options={"identity.kind": "adfs", "dataverse.api_version": "v8.2"})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """This module's organisation, in place of the e2e tests' shared one: the `pipeline` fixture points at it."""
    with running_sandbox(tmp_path_factory.mktemp("e2e-on-premises"), ON_PREMISES) as contract, \
            httpx.Client(base_url=contract["control_url"], verify=trust(contract), timeout=60) as http:
        yield World(contract, http)


def test_an_audience_sync_fills_the_books_from_an_on_premises_organisation(world, pipeline):
    [account] = pipeline.accounts
    result = pipeline.sync(account)
    assert result.success
    expected = world.expected_books(account)
    assert expected and all(expected.values()), "every activated list has its address book and members"
    actual = world.actual_books(account, list(expected))
    for book, wanted in expected.items():
        assert set(actual[book]) == wanted - world.suppressed(account, wanted - set(actual[book])), f"book {book}"
    assert facts(result)["address_book_members"]["rows_sent"] > 0
    again = pipeline.sync(account)
    assert again.success and facts(again)["audience_members"]["scope"] == "addresses changed since the last sync"

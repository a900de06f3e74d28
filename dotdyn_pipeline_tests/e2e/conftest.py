"""A dedicated sandbox and a pipeline pointed at it, for the end-to-end tests that change data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import httpx
import pytest
from dagster._core.test_utils import instance_for_test

from dotdyn_pipeline.defs.audience.jobs import PROCESS_PER_STEP
from dotdyn_pipeline.demo import register_accounts, sandbox_environment
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline.state import AccountPartition
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.e2e.fetch_selection import ENTITY_SETS, select

E2E_SANDBOX = SandboxSettings(seed=23, contacts=700, leads=160, accounts=60, email_accounts=2, days=5)

# The test's own idea of a sendable address, written apart from the pipeline's rules.
_SENDABLE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")


@dataclass
class World:
    """The sandbox, seen through its control endpoint only (never through the pipeline's code)."""

    contract: dict[str, Any]
    http: httpx.Client

    def rows(self, entity_set: str, **params: Any) -> list[dict[str, Any]]:
        response = self.http.get(f"/dataverse/rows/{entity_set}", params={"limit": 1_000_000, **params})
        response.raise_for_status()
        return response.json()["value"]

    def put_row(self, entity_set: str, row: dict[str, Any]) -> None:
        self.http.post(f"/dataverse/rows/{entity_set}", json=row).raise_for_status()

    def delete_row(self, entity_set: str, row_id: str) -> None:
        self.http.delete(f"/dataverse/rows/{entity_set}/{row_id}").raise_for_status()

    def account_number(self, account_id: str) -> int:
        ids = [a["emailaccount_id"] for a in self.contract["accounts"]]
        return ids.index(account_id) + 1

    def book_members(self, account_id: str, book: int) -> list[dict[str, Any]]:
        number = self.account_number(account_id)
        response = self.http.get(f"/dotdigital/accounts/{number}/address-books/{book}/contacts")
        response.raise_for_status()
        return response.json()

    def contact(self, account_id: str, email: str) -> dict[str, Any] | None:
        response = self.http.get(f"/dotdigital/accounts/{self.account_number(account_id)}/contacts/{email}")
        return None if response.status_code == 404 else response.raise_for_status().json()

    def overview(self, account_id: str) -> dict[str, Any]:
        return self.http.get(f"/dotdigital/accounts/{self.account_number(account_id)}").raise_for_status().json()

    def expected_books(self, account_id: str) -> dict[int, set[str]]:
        """book id -> lower-case addresses that must be in it, computed from the raw data: a static list's
        listmember rows, or what a dynamic list's query selects (fetch_selection.py)."""
        tables = {kind: self.rows(entity_set) for kind, entity_set in ENTITY_SETS.items()}
        people = {row[f"{kind}id"]: (kind, row) for kind, rows in tables.items() for row in rows}
        opted_out = {(row.get("emailaddress1") or "").strip().lower() for _, row in people.values()
                     if row.get("donotbulkemail") or row.get("donotemail")}
        members: dict[str, list[str]] = {}
        for member in self.rows("listmembers"):
            members.setdefault(member["_listid_value"], []).append(member["_entityid_value"])
        books = {}
        for lst in self.rows("lists"):
            if lst["_esc_emailaccountid_value"] != account_id or not lst["esc_activatedforemail"] \
                    or lst["statecode"] != 0:
                continue
            wanted = set()
            chosen = select(lst["query"], tables) if lst.get("type") else members.get(lst["listid"], [])
            for person_id in chosen:
                if person_id not in people:
                    continue
                _, row = people[person_id]
                email = (row.get("emailaddress1") or "").strip()
                if row["statecode"] != 0 or not _SENDABLE.match(email) or email.lower() in opted_out:
                    continue
                wanted.add(email.lower())
            books[lst["esc_addressbookid"]] = wanted
        return books

    def actual_books(self, account_id: str, books: list[int]) -> dict[int, list[str]]:
        return {book: sorted(m["email"].lower() for m in self.book_members(account_id, book)
                             if m["status"] == "Subscribed") for book in books}

    def suppressed(self, account_id: str, emails: set[str]) -> set[str]:
        """Addresses Dotdigital holds as suppressed or unsubscribed (never to be re-added)."""
        found = set()
        for email in emails:
            contact = self.contact(account_id, email)
            if contact and (contact["suppression"] or contact["status"] != "Subscribed"):
                found.add(email)
        return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_sandbox(tmp_path_factory.mktemp("e2e-sandbox"), E2E_SANDBOX) as contract, \
            httpx.Client(base_url=contract["control_url"], verify=trust(contract), timeout=60) as http:
        yield World(contract, http)


@dataclass
class Pipeline:
    instance: dg.DagsterInstance
    defs: dg.Definitions
    partitions: list[AccountPartition]

    @property
    def accounts(self) -> list[str]:
        """The registered accounts' ids, in order."""
        return sorted(partition.account_id for partition in self.partitions)

    def key(self, account: str) -> str:
        """The partition key of an account."""
        return next(partition.key for partition in self.partitions if partition.account_id == account)

    def sync(self, account: str, job: str = "audience_sync") -> dg.ExecuteInProcessResult:
        return self.defs.resolve_job_def(job).execute_in_process(partition_key=self.key(account),
                                                                instance=self.instance, raise_on_error=False)

    def deployed_sync(self, account: str) -> dg.ExecuteJobResult:
        """The audience job as a partition's run is launched in a deployment: a process per step."""
        from dotdyn_pipeline.definitions import audience_sync_job

        return dg.execute_job(dg.reconstructable(audience_sync_job), self.instance, run_config=PROCESS_PER_STEP,
                              tags={"dagster/partition": self.key(account)}, raise_on_error=False)


@pytest.fixture(scope="module")
def pipeline(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    patch = pytest.MonkeyPatch()
    for key, value in sandbox_environment(world.contract).items():
        patch.setenv(key, value)
    patch.setenv("DOTDYN_HOME", str(tmp_path_factory.mktemp("e2e-home")))
    patch.delenv("DOTDYN_POSTGRES_URL", raising=False)
    from dotdyn_pipeline.definitions import build_definitions

    defs = build_definitions()
    with instance_for_test() as instance:
        yield Pipeline(instance, defs, register_accounts(instance, defs))
    patch.undo()


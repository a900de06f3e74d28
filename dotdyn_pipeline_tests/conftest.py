"""Fixtures shared by the whole suite: one sandbox served over real HTTPS for the session."""

from __future__ import annotations

import os
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox

#: The suite's sandbox: small, so that it starts in seconds, but with every kind of mess in it.
SUITE_SANDBOX = SandboxSettings(seed=11, contacts=1_500, leads=400, accounts=150, email_accounts=2, days=10)


def trust(contract: dict[str, Any]) -> ssl.SSLContext:
    """TLS settings that trust the sandbox's CA (and only it)."""
    return ssl.create_default_context(cafile=contract["ca_cert"])


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The contract (sandbox.json) of a sandbox serving for the whole test session."""
    with running_sandbox(tmp_path_factory.mktemp("sandbox"), SUITE_SANDBOX) as contract:
        yield contract


@pytest.fixture
def control(sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    """A client of the sandbox's control endpoint; every fault switched on in a test is cleared after it."""
    with httpx.Client(base_url=sandbox["control_url"], verify=trust(sandbox), timeout=30) as client:
        yield client
        client.delete("/faults").raise_for_status()


def _postgres_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at `url`, else why not."""
    import psycopg2

    try:
        psycopg2.connect(url, connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        return str(exc).strip()
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server the suite uses (DOTDYN_TEST_POSTGRES_URL, default the local one).

    In CI (CI=true) a missing server fails the tests that need it; elsewhere they skip, saying why.
    """
    url = os.environ.get("DOTDYN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    problem = _postgres_reachable(url)
    if problem is None:
        return url
    message = f"PostgreSQL is not reachable at {url}: {problem}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh, empty schema for one test, dropped afterwards."""
    import psycopg2

    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    conn = psycopg2.connect(postgres_url)
    with conn, conn.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path) -> tuple[str, str]:
    """(url, schema) of an empty state store database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}", "dotdyn"
    return request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_schema")


@pytest.fixture
def store(state_url):
    """An open, migrated state store on each backend."""
    from dotdyn_pipeline.state import StateStore

    store = StateStore.open(*state_url)
    yield store
    store.close()

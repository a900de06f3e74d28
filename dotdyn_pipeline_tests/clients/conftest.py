"""Fixtures of the third-party client tests: each client in its own environment, one sandbox they may write to.

The clients create, change and delete rows, so they get a small sandbox of their own rather than the suite's
shared one, whose seeded rows other tests count on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.clients.venvs import client_python, run_driver
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import web_api

CLIENTS_SANDBOX = SandboxSettings(seed=23, contacts=400, leads=40, accounts=40, email_accounts=1, days=2)
Driver = Callable[..., Any]


@pytest.fixture(scope="session")
def clients_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_sandbox(tmp_path_factory.mktemp("clients"), CLIENTS_SANDBOX) as contract:
        yield contract


@pytest.fixture
def stand_in(clients_sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    """The Web API of the clients' sandbox, read directly, to check what the clients did."""
    with web_api(clients_sandbox) as client:
        yield client


def _driver(name: str, contract: dict[str, Any]) -> Driver:
    python = client_python(name)
    return lambda scenario, **arguments: run_driver(python, name, contract, scenario, **arguments)


@pytest.fixture(scope="session")
def powerplatform(clients_sandbox: dict[str, Any]) -> Driver:
    return _driver("powerplatform", clients_sandbox)


@pytest.fixture(scope="session")
def airbyte(clients_sandbox: dict[str, Any]) -> Driver:
    return _driver("airbyte", clients_sandbox)


@pytest.fixture(scope="session")
def dataverse_api(clients_sandbox: dict[str, Any]) -> Driver:
    return _driver("dataverse_api", clients_sandbox)

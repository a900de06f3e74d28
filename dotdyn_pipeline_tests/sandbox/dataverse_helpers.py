"""Shared pieces of the Dataverse stand-in's contract tests: a Web API client built from Microsoft's documented
requests (client-credentials token as a form post, bearer header, OData headers), and a private sandbox for
tests that change data or revoke tokens, so the suite's shared sandbox stays as seeded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.conftest import trust

API = "/api/data/v9.2/"
ODATA_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
PRIVATE = SandboxSettings(seed=5, contacts=300, leads=60, accounts=30, email_accounts=2, days=5)


def token_response(contract: dict[str, Any], **overrides: str) -> httpx.Response:
    """POST {authority}/oauth2/v2.0/token with the documented client-credentials form."""
    form = {"client_id": contract["client_id"], "client_secret": contract["client_secret"],
            "grant_type": "client_credentials", "scope": contract["dataverse_url"] + "/.default", **overrides}
    with httpx.Client(verify=trust(contract), timeout=30) as http:
        return http.post(contract["authority"] + "/oauth2/v2.0/token", data=form)


def web_api(contract: dict[str, Any]) -> httpx.Client:
    """An httpx client of `{dataverse_url}/api/data/<version>/`, the version the sandbox serves, carrying a fresh
    bearer token."""
    token = token_response(contract).json()["access_token"]
    api = f"/api/data/{contract['dataverse_api_version']}/"
    return httpx.Client(base_url=contract["dataverse_url"] + api, verify=trust(contract), timeout=30,
                        headers={**ODATA_HEADERS, "Authorization": f"Bearer {token}"})


def all_pages(client: httpx.Client, url: str, page_size: int, **params: str) -> tuple[list[dict], dict]:
    """Follow @odata.nextLink unchanged, resending the maxpagesize preference; (rows, last page)."""
    rows, response = [], client.get(url, params=params or None, headers={"Prefer": f"odata.maxpagesize={page_size}"})
    while True:
        response.raise_for_status()
        page = response.json()
        rows += page["value"]
        if "@odata.nextLink" not in page:
            return rows, page
        response = client.get(page["@odata.nextLink"], headers={"Prefer": f"odata.maxpagesize={page_size}"})


def error_of(response: httpx.Response) -> dict[str, str]:
    """The documented error object of a failed response."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


@pytest.fixture
def dv(sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    """Web API client of the suite's shared sandbox (read-only use)."""
    with web_api(sandbox) as client:
        yield client


@pytest.fixture(scope="session")
def private_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A small sandbox of these tests' own, for writes, deletions and revoked tokens."""
    with running_sandbox(tmp_path_factory.mktemp("dataverse-private"), PRIVATE) as contract:
        yield contract


@pytest.fixture
def pdv(private_sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with web_api(private_sandbox) as client:
        yield client


@pytest.fixture
def private_control(private_sandbox: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=private_sandbox["control_url"], verify=trust(private_sandbox),
                      timeout=30) as client:
        yield client
        client.delete("/faults").raise_for_status()

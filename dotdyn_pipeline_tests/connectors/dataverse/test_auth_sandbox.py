"""Tokens from the real msal against the sandbox's authority over HTTPS; renewal; credentials never leak."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import msal
import pytest

from dotdyn_pipeline.connectors.dataverse import (
    ClientCredentials,
    DataverseAuthError,
    DataverseClient,
    MsalTokenSource,
)
from dotdyn_pipeline.connectors.dataverse.auth import MSAL_THROTTLE_SECONDS
from dotdyn_pipeline.connectors.http import CallCounter, RetryPolicy, tls_verify
from dotdyn_pipeline_tests.connectors.dataverse.conftest import sandbox_config


def credentials(sandbox: dict[str, Any], secret: str | None = None) -> ClientCredentials:
    return ClientCredentials(sandbox["authority"], sandbox["client_id"], secret or sandbox["client_secret"])


def test_the_real_msal_gets_a_token_from_the_sandbox(sandbox: dict[str, Any]) -> None:
    # httpx as msal's transport: requests, msal's default, lets REQUESTS_CA_BUNDLE override `verify=`.
    with httpx.Client(verify=tls_verify(sandbox["ca_cert"])) as http:
        app = msal.ConfidentialClientApplication(
            sandbox["client_id"], client_credential=sandbox["client_secret"], authority=sandbox["authority"],
            instance_discovery=False, http_client=http)
        result = app.acquire_token_for_client(scopes=[f"{sandbox['dataverse_url']}/.default"])
    assert result.get("token_type", "").lower() == "bearer", result.get("error_description")
    assert result["access_token"] and result["expires_in"] > 0


def test_tokens_are_cached_and_work_on_the_web_api(sandbox: dict[str, Any]) -> None:
    counter = CallCounter()
    source = MsalTokenSource(credentials(sandbox), sandbox["dataverse_url"], ca_bundle=sandbox["ca_cert"],
                             counter=counter)
    token = source.token()
    assert source.token() == token
    assert counter.snapshot()["token"] == 1
    response = httpx.get(f"{sandbox['dataverse_url']}/api/data/v9.2/EntityDefinitions",
                         params={"$select": "LogicalName", "$filter": "LogicalName eq 'contact'"},
                         headers={"Authorization": f"Bearer {token}"}, verify=tls_verify(sandbox["ca_cert"]))
    assert response.status_code == 200 and response.json()["value"][0]["LogicalName"] == "contact"


def test_an_invalidated_token_is_fetched_again_from_the_authority(sandbox: dict[str, Any]) -> None:
    counter = CallCounter()
    source = MsalTokenSource(credentials(sandbox), sandbox["dataverse_url"], ca_bundle=sandbox["ca_cert"],
                             counter=counter)
    source.token()
    source.invalidate()  # the service refused it: the next call must ask the authority, not msal's cache
    source.token()
    assert counter.snapshot()["token"] == 2


def test_a_wrong_secret_raises_an_auth_error_without_the_secret(sandbox: dict[str, Any]) -> None:
    wrong = "sbx~definitely-not-the-secret"
    source = MsalTokenSource(credentials(sandbox, wrong), sandbox["dataverse_url"], ca_bundle=sandbox["ca_cert"])
    with pytest.raises(DataverseAuthError) as caught:
        source.token()
    assert caught.value.code  # the authority's error code (e.g. invalid_client)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)


def test_a_refused_token_is_renewed_once(sandbox: dict[str, Any], control: httpx.Client) -> None:
    with DataverseClient(sandbox_config(sandbox)) as client:
        client.entity("contact")
        control.post("/faults/dataverse", json={"kind": "token_expiry", "count": 1}).raise_for_status()
        rows = [row for page in client.read("contact", ["contactid"]) for row in page]
        calls = client.counter.snapshot()
    assert rows
    assert calls["retry:unauthorized"] == 1
    assert calls["token"] == 2


@pytest.mark.parametrize(("fault", "path", "told"), [
    ("server_error", "openid-configuration", None),  # OpenID discovery answers 503
    ("throttle", "oauth2/v2.0/token", 1.0),  # the token endpoint answers 429 with Retry-After
    ("server_error", "oauth2/v2.0/token", None),  # the token endpoint answers 503
])
def test_a_sign_in_blip_is_asked_again(sandbox: dict[str, Any], control: httpx.Client, fault: str, path: str,
                                       told: float | None) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)  # msal itself remembers a throttled answer until its Retry-After has passed

    control.post("/faults/identity", json={"kind": fault, "count": 1, "path": path,
                                            "retry_after": told}).raise_for_status()
    counter = CallCounter()
    source = MsalTokenSource(credentials(sandbox), sandbox["dataverse_url"], ca_bundle=sandbox["ca_cert"],
                             counter=counter, sleep=sleep, retry=RetryPolicy(base_delay=0.05))
    assert source.token()
    assert counter.snapshot()["retry:sign_in_unavailable"] == 1 and len(waits) == 1
    if told is not None:
        assert waits == [told], "the authority's Retry-After is honoured"
    elif "token" in path:
        assert waits == [MSAL_THROTTLE_SECONDS], "msal would answer from its memory until then"


def test_an_authority_that_stays_down_fails_with_a_clear_message(sandbox: dict[str, Any],
                                                                 control: httpx.Client) -> None:
    control.post("/faults/identity", json={"kind": "server_error", "path": "oauth2/v2.0/token"}).raise_for_status()
    source = MsalTokenSource(credentials(sandbox), sandbox["dataverse_url"], ca_bundle=sandbox["ca_cert"],
                             sleep=lambda _: None, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(DataverseAuthError, match="failed after 3 attempts: sign_in_unavailable: HTTP 503") as caught:
        source.token()
    assert sandbox["client_secret"] not in str(caught.value)


def test_an_unknown_tenant_raises_an_auth_error(sandbox: dict[str, Any]) -> None:
    authority = sandbox["authority"].rstrip("/").rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    wrong = ClientCredentials(authority, sandbox["client_id"], sandbox["client_secret"])
    source = MsalTokenSource(wrong, sandbox["dataverse_url"], ca_bundle=sandbox["ca_cert"])
    with pytest.raises(DataverseAuthError) as caught:
        source.token()
    assert "00000000-0000-0000-0000-000000000000" in str(caught.value)
    assert sandbox["client_secret"] not in str(caught.value)


def test_a_certificate_gets_a_token_and_reads(sandbox: dict[str, Any]) -> None:
    private_key = Path(sandbox["client_cert_key"]).read_text()
    config = sandbox_config(sandbox, client_secret=None, private_key=private_key,
                            thumbprint=sandbox["client_cert_thumbprint"])
    with DataverseClient(config) as client:
        assert client.entity_set_name("contact") == "contacts"
        assert client.counter.snapshot()["token"] == 1
    assert "PRIVATE KEY" not in repr(config)

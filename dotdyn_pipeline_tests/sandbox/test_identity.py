"""Contract tests of the identity stand-in: the real msal gets tokens over HTTPS; errors have the documented shape."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import msal
import pytest
import requests

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.conftest import trust
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import API, ODATA_HEADERS, token_response


def _msal_app(contract, credential) -> msal.ConfidentialClientApplication:
    # msal's own `verify=` is overridden by REQUESTS_CA_BUNDLE in requests; an http_client trusting the CA is not.
    return msal.ConfidentialClientApplication(contract["client_id"], client_credential=credential,
                                              authority=contract["authority"], instance_discovery=False,
                                              http_client=httpx.Client(verify=trust(contract), timeout=30))


def test_discovery_document_names_https_endpoints_under_the_tenant(sandbox):
    with httpx.Client(verify=trust(sandbox)) as http:
        doc = http.get(sandbox["authority"] + "/v2.0/.well-known/openid-configuration").json()
    assert doc["token_endpoint"] == sandbox["authority"] + "/oauth2/v2.0/token"
    assert doc["authorization_endpoint"].startswith(sandbox["authority"] + "/")
    assert doc["issuer"] == sandbox["authority"] + "/v2.0"


def test_real_msal_gets_a_token_with_the_client_secret_and_it_opens_the_web_api(sandbox):
    app = _msal_app(sandbox, sandbox["client_secret"])
    result = app.acquire_token_for_client(scopes=[sandbox["dataverse_url"] + "/.default"])
    assert result.get("token_type") == "Bearer" and result["expires_in"] > 0, result.get("error_description")
    assert app.acquire_token_for_client(scopes=[sandbox["dataverse_url"] + "/.default"])["token_source"] == "cache"
    with httpx.Client(verify=trust(sandbox)) as http:
        response = http.get(sandbox["dataverse_url"] + API + "WhoAmI",
                            headers={**ODATA_HEADERS, "Authorization": f"Bearer {result['access_token']}"})
    assert response.status_code == 200 and "UserId" in response.json()


def test_real_msal_gets_a_token_with_the_registered_certificate(sandbox):
    credential = {"private_key": Path(sandbox["client_cert_key"]).read_text(),
                  "thumbprint": sandbox["client_cert_thumbprint"]}
    session = requests.Session()  # msal posts the assertion as bytes, which only requests form-encodes as text
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = sandbox["ca_cert"]
    app = msal.ConfidentialClientApplication(sandbox["client_id"], client_credential=credential,
                                             authority=sandbox["authority"], instance_discovery=False,
                                             http_client=session)
    result = app.acquire_token_for_client(scopes=[sandbox["dataverse_url"] + "/.default"])
    assert "access_token" in result, result.get("error_description")


def test_wrong_secret_gets_the_documented_invalid_client_body(sandbox):
    response = token_response(sandbox, client_secret="not-the-secret")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert body["error_codes"] == [7000215]
    assert "not-the-secret" not in response.text


def test_real_msal_returns_the_error_for_a_wrong_secret(sandbox):
    result = _msal_app(sandbox, "wrong").acquire_token_for_client(scopes=[sandbox["dataverse_url"] + "/.default"])
    assert result["error"] == "invalid_client" and "AADSTS7000215" in result["error_description"]


@pytest.mark.parametrize(("overrides", "status", "error", "code"), [
    ({"client_id": "00000000-0000-0000-0000-000000000000"}, 400, "unauthorized_client", 700016),
    ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ({"scope": "https://example.com/user.read"}, 400, "invalid_scope", 1002012),
    ({"scope": "https://unknown.crm.dynamics.com/.default"}, 400, "invalid_resource", 500011),
])
def test_token_request_errors(sandbox, overrides, status, error, code):
    response = token_response(sandbox, **overrides)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["error_codes"] == [code]


def test_unknown_tenant_is_rejected(sandbox):
    authority = sandbox["authority"].rsplit("/", 1)[0] + "/11111111-2222-3333-4444-555555555555"
    with httpx.Client(verify=trust(sandbox)) as http:
        response = http.get(authority + "/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400 and "AADSTS90002" in response.json()["error_description"]


def test_tokens_expire_after_the_configured_lifetime(tmp_path):
    settings = SandboxSettings(seed=3, contacts=20, leads=5, accounts=5, email_accounts=1, token_lifetime=2)
    with running_sandbox(tmp_path / "short-tokens", settings) as contract:
        body = token_response(contract).json()
        assert body["expires_in"] == 2
        headers = {**ODATA_HEADERS, "Authorization": f"Bearer {body['access_token']}"}
        with httpx.Client(base_url=contract["dataverse_url"] + API, verify=trust(contract)) as http:
            assert http.get("WhoAmI", headers=headers).status_code == 200
            deadline = time.monotonic() + 15
            while (response := http.get("WhoAmI", headers=headers)).status_code == 200:
                assert time.monotonic() < deadline, "the token never expired"
                time.sleep(0.2)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer authorization_uri=")
    assert "expired" in response.headers["www-authenticate"]

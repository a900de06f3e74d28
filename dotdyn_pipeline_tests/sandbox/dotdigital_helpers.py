"""Shared pieces of the Dotdigital stand-in's contract tests: plain httpx and zeep clients written from the
vendor documents, and a validator that checks a REST response against the official swagger (the operation
found by path and method, its documented status codes, and the response body's schema: required fields,
types, enums, no undocumented or non-camelCase keys)."""

from __future__ import annotations

import json
import re
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any

import httpx
import jsonschema
import requests
import zeep
from zeep.transports import Transport

from dotdyn_pipeline.vendor import DOTDIGITAL_SWAGGER

BINDING = "{http://apiconnector.com/v2}Secure_ApiService"
CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def unique(prefix: str) -> str:
    """A name no other test uses, so tests can share the session's sandbox."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def trust(contract: dict[str, Any]) -> ssl.SSLContext:
    """TLS that trusts the sandbox's CA (and nothing is ever unverified)."""
    return ssl.create_default_context(cafile=contract["ca_cert"])


def rest(contract: dict[str, Any], account: int = 0, password: str | None = None) -> httpx.Client:
    """An httpx client of the REST API with an account's API user (Basic auth), trusting the sandbox CA."""
    login = contract["accounts"][account]
    return httpx.Client(base_url=contract["dotdigital_url"], verify=trust(contract), timeout=60,
                        auth=(login["api_user"], password or login["api_password"]),
                        headers={"Accept": "application/json"})


@contextmanager
def soap(contract: dict[str, Any], account: int = 1, password: str | None = None) -> Iterator[Any]:
    """A zeep service proxy built from the WSDL the sandbox serves, bound to its own endpoint."""
    login = contract["accounts"][account]
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment silently replaces `verify`
    session.verify = contract["ca_cert"]
    session.auth = (login["api_user"], password or login["api_password"])
    client = zeep.Client(contract["dotdigital_wsdl"], transport=Transport(session=session, timeout=60))
    with session:
        yield client.create_service(BINDING, contract["dotdigital_wsdl"].split("?")[0])


def message_of(response: httpx.Response) -> str:
    """The v2 error message, which ends with the ERROR_* code."""
    body = response.json()
    assert set(body) == {"message"}, body
    return body["message"]


def poll(condition: Callable[[], Any], timeout: float = 60.0, every: float = 0.1) -> Any:
    """The first truthy value of `condition()`, polled until `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def finished_import(client: httpx.Client, import_id: str) -> dict[str, str]:
    """Poll an import's status until it leaves NotFinished."""
    return poll(lambda: (status := client.get(f"/v2/contacts/import/{import_id}").json())["status"] != "NotFinished"
                and status)


# --- the swagger validator ----------------------------------------------------------------------------------

@cache
def _swagger() -> dict[str, Any]:
    return json.loads(DOTDIGITAL_SWAGGER.read_text(encoding="utf-8"))


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: `nullable` becomes a null alternative; everything else carries over."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "oneOf" in converted:
            converted["oneOf"] = [*converted["oneOf"], {"type": "null"}]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


@cache
def _components() -> dict[str, Any]:
    return _json_schema(_swagger()["components"])


def _formats() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()
    checker.checks("date-time", raises=ValueError)(lambda text: not isinstance(text, str) or bool(
        datetime.fromisoformat(text.replace("Z", "+00:00"))))
    checker.checks("guid", raises=ValueError)(lambda text: not isinstance(text, str) or bool(uuid.UUID(text)))
    return checker


def swagger_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """(path template, operation) of the swagger for a concrete path; literal segments win over parameters."""
    candidates = []
    for template, operations in _swagger()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if method.lower() in operations and re.match(pattern, path):
            candidates.append((template.count("{"), template, operations[method.lower()]))
    assert candidates, f"{method} {path} is not an operation of the swagger"
    _, template, operation = min(candidates, key=lambda candidate: candidate[0])
    return template, operation


def _camel_case_keys(value: Any, where: str = "$") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert CAMEL_CASE.match(key), f"{where}.{key} is not camelCase"
            _camel_case_keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _camel_case_keys(item, f"{where}[{index}]")


def check_swagger(response: httpx.Response) -> Any:
    """Assert that a response is one the swagger documents for its operation; return the parsed body."""
    request = response.request
    template, operation = swagger_operation(request.method, request.url.path)
    documented = operation["responses"]
    assert str(response.status_code) in documented, (
        f"{request.method} {template} answered {response.status_code}; the swagger documents {sorted(documented)}: "
        f"{response.text[:300]}")
    content = documented[str(response.status_code)].get("content", {})
    if "application/json" not in content:
        return response.content
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    schema = {**_json_schema(content["application/json"]["schema"]), "components": _components()}
    jsonschema.Draft7Validator(schema, format_checker=_formats()).validate(body)
    _camel_case_keys(body)
    return body

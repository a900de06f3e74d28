"""The sandbox's contract as the benchmarks' clients see it: a Dataverse configuration and bare HTTP clients of
Dotdigital and of the control endpoint, each built one way for every benchmark."""

from __future__ import annotations

from typing import Any

import httpx

from dotdyn_pipeline.connectors.dataverse import DataverseConfig
from dotdyn_pipeline.connectors.http import tls_verify


def dataverse_config(contract: dict[str, Any], **options: Any) -> DataverseConfig:
    """The Dataverse client's configuration for the sandbox (`options`: any other DataverseConfig field)."""
    return DataverseConfig(org_url=contract["dataverse_url"], authority=contract["authority"],
                           client_id=contract["client_id"], client_secret=contract["client_secret"],
                           ca_bundle=contract["ca_cert"], **options)


def dotdigital_http(contract: dict[str, Any], account: dict[str, Any] | None = None,
                    timeout: float = 600) -> httpx.Client:
    """Bare httpx on the Dotdigital REST root, as `account`'s API user (default: the first account)."""
    account = account or contract["accounts"][0]
    return httpx.Client(base_url=contract["dotdigital_url"], auth=(account["api_user"], account["api_password"]),
                        verify=tls_verify(contract["ca_cert"]), timeout=timeout)


def control_http(contract: dict[str, Any], timeout: float = 600) -> httpx.Client:
    """Bare httpx on the sandbox's control endpoint (seeding changes, faults, statistics)."""
    return httpx.Client(base_url=contract["control_url"], verify=tls_verify(contract["ca_cert"]), timeout=timeout)

"""Driving the consent flow in tests as the daemon would: sensor ticks, the runs they ask for, and the sandbox
actions of the people who unsubscribe."""

from __future__ import annotations

from typing import Any

import dagster as dg

from dotdyn_pipeline.connectors.dataverse import DataverseClient, DataverseConfig
from dotdyn_pipeline.defs.accounts.partitions import ACCOUNT_ID_TAG

SENSORS = ("dotdigital_consent", "dynamics_consent")


def tick(pipeline: Any, name: str) -> dg.SensorResult:
    """Evaluate one sensor once."""
    context = dg.build_sensor_context(instance=pipeline.instance, resources=pipeline.defs.resources)
    return pipeline.defs.resolve_sensor_def(name)(context)


def settle(pipeline: Any, rounds: int = 4) -> list[dg.ExecuteInProcessResult]:
    """Tick both sensors and run what they ask for until neither asks for anything; the runs made."""
    runs = []
    for _ in range(rounds):
        requested = sorted({request.tags[ACCOUNT_ID_TAG] for name in SENSORS
                            for request in tick(pipeline, name).run_requests})
        if not requested:
            return runs
        for account in requested:
            run = pipeline.sync(account, job="consent_sync")
            assert run.success, account
            runs.append(run)
    raise AssertionError(f"the consent flow did not settle in {rounds} rounds")


def suppress(world: Any, account: str, email: str, reason: str = "Unsubscribed") -> None:
    """The person unsubscribes (or is suppressed) in Dotdigital."""
    world.http.post(f"/dotdigital/accounts/{world.account_number(account)}/suppress",
                    json={"email": email, "reason": reason}).raise_for_status()


def resubscribe(world: Any, account: str, email: str) -> None:
    """The person confirms a resubscribe in Dotdigital."""
    world.http.post(f"/dotdigital/accounts/{world.account_number(account)}/resubscribe",
                    json={"email": email}).raise_for_status()


def login(world: Any, account: str) -> dict[str, str]:
    """What DotdigitalResource.client needs for an account of the sandbox."""
    entry = world.contract["accounts"][world.account_number(account) - 1]
    return {"api_user": entry["api_user"], "secret_name": entry["secret_name"], "transport": entry["transport"]}


def crm_client(world: Any, max_page_size: int = 5000) -> DataverseClient:
    """A Dataverse client of the sandbox, as the resource builds it in a run."""
    contract = world.contract
    return DataverseClient(DataverseConfig(
        org_url=contract["dataverse_url"], authority=contract["authority"], client_id=contract["client_id"],
        client_secret=contract["client_secret"], ca_bundle=contract["ca_cert"], max_page_size=max_page_size))


def status(world: Any, account: str, email: str) -> str | None:
    """The contact's status in Dotdigital (None: the account does not have it)."""
    contact = world.contact(account, email)
    return None if contact is None else contact["status"]

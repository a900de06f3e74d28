"""Accounts registered as the email_accounts sensor registers them, for tests of what runs per account."""

from __future__ import annotations

import dagster as dg

from dotdyn_pipeline.defs.accounts.accounts import EmailAccount
from dotdyn_pipeline.defs.accounts.partitions import assign_keys
from dotdyn_pipeline.resources import StateStoreResource
from dotdyn_pipeline.state import AccountPartition


def register(instance: dg.DagsterInstance, state: StateStoreResource,
             names: dict[str, str]) -> list[AccountPartition]:
    """Give the accounts (id -> name) their keys in the state store and add their partitions."""
    accounts = [EmailAccount(id=account, name=name, api_user=f"{account}@example.org", secret_name="SECRET",
                             transport="rest") for account, name in names.items()]
    with state.open() as store:
        partitions = assign_keys(store, accounts, registered=set())
    instance.add_dynamic_partitions("email_account", [partition.key for partition in partitions])
    return partitions

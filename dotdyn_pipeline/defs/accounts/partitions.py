"""The one place that says which email account a partition key names, and which key an account has.

An account's key is made from its name when the account is first seen and kept in the state store
(`account_partition`): a rename in Dynamics changes the name on new runs, never the key. Everything else in
the state store stays keyed by the account id, which assets find here from their partition key.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import replace

import dagster as dg

from dotdyn_pipeline.defs.accounts.accounts import EmailAccount, email_account_partitions
from dotdyn_pipeline.defs.accounts.keys import key_candidates
from dotdyn_pipeline.resources import StateStoreResource
from dotdyn_pipeline.state import AccountPartition, StateStore

#: Run tags of every run the sensors and schedules request for an account (and of its runs from before keys
#: were made from names): the account's id, and its name when the run was requested.
ACCOUNT_ID_TAG = "dotdyn/email_account_id"
ACCOUNT_NAME_TAG = "dotdyn/email_account"
#: The metadata entry that puts the account id beside the partition key of each materialisation.
ACCOUNT_ID_METADATA = "email_account_id"


def account_tags(partition: AccountPartition) -> dict[str, str]:
    return {ACCOUNT_ID_TAG: partition.account_id, ACCOUNT_NAME_TAG: partition.name or partition.key}


def assign_keys(store: StateStore, accounts: Iterable[EmailAccount],
                registered: Collection[str]) -> list[AccountPartition]:
    """Each account's partition: the key it was given when first seen, with its current name recorded, or a key
    made from its name now. A new key of an account whose partition is `registered` under its id keeps the id
    as the former key, so the runs made under it can be found."""
    given = {partition.account_id: partition for partition in store.account_partitions()}
    found = []
    for account in sorted(accounts, key=lambda a: (a.name.casefold(), a.id)):  # the same winner of a name, always
        partition = given.get(account.id)
        if partition is None:
            partition = _assign(store, account, account.id if account.id in registered else None)
        elif partition.name != account.name:
            store.rename_account(account.id, account.name)
            partition = replace(partition, name=account.name)
        found.append(partition)
    return found


def _assign(store: StateStore, account: EmailAccount, former_key: str | None) -> AccountPartition:
    for key in key_candidates(account.id, account.name):
        partition = AccountPartition(account.id, key, account.name, former_key)
        if store.claim_partition_key(partition):
            return partition
    # the last candidate holds the whole id: only this account can have taken it, in an evaluation beside this one
    assigned = {partition.account_id: partition for partition in store.account_partitions()}
    if account.id not in assigned:
        raise LookupError(f"no partition key could be given to email account {account.id}")
    return assigned[account.id]


def registered_partitions(instance: dg.DagsterInstance, store: StateStore) -> list[AccountPartition]:
    """The accounts whose partition is registered in Dagster, in key order."""
    registered = set(instance.get_dynamic_partitions(email_account_partitions.name))
    return [partition for partition in store.account_partitions() if partition.key in registered]


def registered_accounts(instance: dg.DagsterInstance, store: StateStore) -> list[AccountPartition] | dg.SkipReason:
    """The registered accounts, for a schedule; a skip reason while there are none."""
    return (registered_partitions(instance, store)
            or dg.SkipReason("no email account is registered yet (the email_accounts sensor adds them)"))


def account_key(partition_key: str) -> str:
    """The email account key of a run's partition: the key itself, or its `email_account` dimension."""
    if isinstance(partition_key, dg.MultiPartitionKey):
        return partition_key.keys_by_dimension[email_account_partitions.name]
    return partition_key


def account_id(store: StateStore, key: str) -> str:
    """The id of the account a partition key names (its key, or its former one)."""
    partition = store.account_partition(key)
    if partition is None:
        raise LookupError(f"no email account has the partition key {key!r}; the email_accounts sensor gives each "
                          "active account its key")
    return partition.account_id


def partition_accounts(context: dg.AssetExecutionContext, state: StateStoreResource) -> dict[str, str]:
    """Account key -> account id, for the accounts of the run's partitions. Each id is also written beside its
    key, in the metadata of the materialisations."""
    keys = {partition: account_key(partition) for partition in context.partition_keys}
    with state.open() as store:
        ids = {key: account_id(store, key) for key in set(keys.values())}
    for partition, key in keys.items():
        context.add_asset_metadata({ACCOUNT_ID_METADATA: dg.MetadataValue.text(ids[key])}, partition_key=partition)
    return ids


def partition_account(context: dg.AssetExecutionContext, state: StateStoreResource) -> str:
    """The id of the account of a run of one `email_account` partition (see `partition_accounts`)."""
    (account,) = partition_accounts(context, state).values()
    return account

"""Partition keys given to accounts and resolved both ways, in the real state store (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from dotdyn_pipeline.defs.accounts.accounts import EmailAccount
from dotdyn_pipeline.defs.accounts.partitions import account_id, assign_keys

CONTOSO = "0c0a4b2e-1111-4a43-9a68-0d5b0f0e0a11"
TWIN = "7d2e9f10-2222-4a43-9a68-0d5b0f0e0a11"
LATE = "9a9b9c9d-3333-4a43-9a68-0d5b0f0e0a11"


def _account(account: str, name: str) -> EmailAccount:
    return EmailAccount(id=account, name=name, api_user="apiuser@example.org", secret_name="SECRET",
                        transport="rest")


def _keys(partitions) -> dict[str, str]:
    return {partition.account_id: partition.key for partition in partitions}


def test_a_key_is_given_once_and_kept_when_the_account_is_renamed(store):
    [first] = assign_keys(store, [_account(CONTOSO, "Contoso UK")], registered=set())
    assert (first.key, first.name, first.former_key) == ("contoso-uk", "Contoso UK", None)

    [renamed] = assign_keys(store, [_account(CONTOSO, "Contoso United Kingdom")], registered=set())

    assert (renamed.key, renamed.name) == ("contoso-uk", "Contoso United Kingdom")
    stored = store.account_partition("contoso-uk")
    assert (stored.account_id, stored.name) == (CONTOSO, "Contoso United Kingdom"), "the current name is kept"
    assert store.account_partition("contoso-united-kingdom") is None, "no second key"
    assert account_id(store, "contoso-uk") == CONTOSO


def test_a_clashing_name_gets_the_start_of_the_account_id(store):
    found = _keys(assign_keys(store, [_account(TWIN, "contoso uk!"), _account(CONTOSO, "Contoso UK")], set()))
    assert found == {CONTOSO: "contoso-uk", TWIN: "contoso-uk-7d2e9f10"}, "the first in name order has the name"

    later = _keys(assign_keys(store, [_account(LATE, "Contoso-UK")], set()))
    assert later == {LATE: "contoso-uk-9a9b9c9d"}, "an account no longer active keeps its key"
    assert _keys(store.account_partitions()) == {**found, **later}


def test_a_nameless_account_is_keyed_by_the_start_of_its_id(store):
    assert _keys(assign_keys(store, [_account(CONTOSO, "")], set())) == {CONTOSO: "account-0c0a4b2e"}


def test_a_partition_registered_under_the_account_id_is_its_former_key(store):
    [moved] = assign_keys(store, [_account(CONTOSO, "Contoso UK")], registered={CONTOSO, "other"})
    assert (moved.key, moved.former_key) == ("contoso-uk", CONTOSO)
    assert account_id(store, CONTOSO) == CONTOSO, "a run of the old partition, while it lasts, finds its account"
    [again] = assign_keys(store, [_account(CONTOSO, "Contoso UK")], registered={"contoso-uk"})
    assert again == moved, "the former key is kept once the old partition is gone"


def test_a_key_that_names_no_account_is_a_clear_error(store):
    with pytest.raises(LookupError, match="no email account has the partition key 'nobody'"):
        account_id(store, "nobody")

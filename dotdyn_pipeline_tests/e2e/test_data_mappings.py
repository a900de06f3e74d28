"""One account's bad data mapping stays that account's: the reads every account shares go on without it, each account
syncs, and the bad account is told which mapping was left out and why."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest

from dotdyn_pipeline.defs.audience.mappings import MAPPING_TABLE, MAPPINGS_CHECK
from dotdyn_pipeline.demo import materialized_facts as facts


def _mapping(account: str, entity: str, attribute: str, field: str, kind: str = "String") -> dict:
    return {"esc_emaildatamappingid": str(uuid.uuid4()), "esc_name": f"{entity}.{attribute} -> {field}",
            "_esc_emailaccountid_value": account, "esc_entityname": entity, "esc_attributename": attribute,
            "esc_datafieldname": field, "esc_datafieldtype": kind}


def _check(result):
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == MAPPINGS_CHECK]
    return check


def _quarantined_mappings(account: str, run_id: str) -> dict[str, tuple[str, str | None, str]]:
    """mapping id -> (rule, value, reason) of the mappings a run quarantined."""
    from dotdyn_pipeline.resources import state_store_resource

    with state_store_resource().open() as store:
        rows = store.quarantined(account, run_id, limit=1000)
    return {row.record_id: (row.rule, row.value, row.reason) for row in rows if row.source_table == MAPPING_TABLE}


def _sent_contacts(world, account: str) -> list[tuple[dict, dict]]:
    """(CRM contact, Dotdigital contact) of contacts in the account's books whose address no other person holds,
    so that the values sent are theirs."""
    addresses = [(row.get("emailaddress1") or "").strip().lower()
                 for kind in ("contact", "lead", "account") for row in world.rows(f"{kind}s")]
    once = {address for address in addresses if addresses.count(address) == 1}
    crm = {(row.get("emailaddress1") or "").strip().lower(): row for row in world.rows("contacts")}
    expected = world.expected_books(account)
    loaded = {email for emails in world.actual_books(account, list(expected)).values() for email in emails}
    return [(crm[email], world.contact(account, email)) for email in sorted(loaded & once & set(crm))[:20]]


@pytest.fixture(scope="module")
def seen(world, pipeline):
    """As it was seen: one account maps an attribute that contact does not have; then both accounts sync."""
    good, bad = pipeline.accounts
    unknown = _mapping(bad, "contact", "esc_nosuchattribute", "NOSUCH")
    world.put_row("esc_emaildatamappings", unknown)
    return good, bad, unknown, {account: pipeline.sync(account) for account in (good, bad)}


def test_a_mapping_of_an_unknown_attribute_fails_no_sync_and_each_account_sends_its_own_fields(world, pipeline, seen):
    good, bad, unknown, results = seen
    assert results[good].success and results[bad].success
    extract = facts(results[good])["crm_contacts"]
    assert extract["read_mode"] == "full" and extract["rows_changed"] > 0
    for account in (good, bad):
        sent = _sent_contacts(world, account)
        assert all("NOSUCH" not in contact["data"] for _, contact in sent), "the bad field is neither sent nor made"
        plain = [(contact["data"][field], crm[attribute]) for crm, contact in sent
                 for attribute, field in (("firstname", "FIRSTNAME"), ("lastname", "LASTNAME"))
                 if (crm.get(attribute) or "").isalpha()]  # plain text: what is sent is the value itself
        assert len(plain) >= 10 and all(value == held for value, held in plain), account


def test_the_bad_mapping_is_quarantined_and_its_account_warned_the_others_not(pipeline, seen):
    good, bad, unknown, results = seen
    assert _quarantined_mappings(bad, results[bad].run_id) == {unknown["esc_emaildatamappingid"]: (
        "mapping.unknown_attribute", "esc_nosuchattribute", "contact has no attribute 'esc_nosuchattribute'")}
    assert _quarantined_mappings(good, results[good].run_id) == {}
    warned, passed = _check(results[bad]), _check(results[good])
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert unknown["esc_emaildatamappingid"] in warned.description and "esc_nosuchattribute" in warned.description
    assert passed.passed
    contacts = facts(results[bad])["audience_contacts"]
    assert contacts["mappings_quarantined"] == 1
    assert f"| {unknown['esc_emaildatamappingid']} | contact | esc_nosuchattribute | NOSUCH |" in \
        contacts["quarantined_mappings"]
    assert facts(results[good])["audience_contacts"]["mappings_quarantined"] == 0


def test_bad_mappings_added_later_leave_the_shared_read_as_it_was(world, pipeline, seen):
    """Mappings whose column the Web API does not serve, or whose data field Dotdigital would refuse: the people
    are read on from their delta links (the selected columns did not change), and both accounts sync."""
    good, bad, unknown, _ = seen
    later = [_mapping(bad, "contact", "parentcustomeridname", "PARENTNAME"),
             _mapping(bad, "lead", "companyname", "COMPANY NAME"), _mapping(bad, "account", "name", "NAME", "Text")]
    for mapping in later:
        world.put_row("esc_emaildatamappings", mapping)
    results = {account: pipeline.sync(account) for account in (good, bad)}
    assert results[good].success and results[bad].success
    assert {facts(results[good])[f"crm_{table}"]["read_mode"] for table in ("contacts", "leads", "accounts")} == {
        "delta"}
    quarantined = _quarantined_mappings(bad, results[bad].run_id)
    assert {mapping_id: rule for mapping_id, (rule, _, _) in quarantined.items()} == {
        unknown["esc_emaildatamappingid"]: "mapping.unknown_attribute",
        later[0]["esc_emaildatamappingid"]: "mapping.attribute_not_readable",
        later[1]["esc_emaildatamappingid"]: "mapping.invalid_data_field_name",
        later[2]["esc_emaildatamappingid"]: "mapping.unknown_type"}
    assert facts(results[bad])["audience_members"]["scope_reason"] == "its lists or data mappings changed"
    assert not _check(results[bad]).passed and _check(results[good]).passed

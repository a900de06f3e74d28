"""The check of data mappings: what one account's mapping may name before it joins the read all accounts share."""

from __future__ import annotations

import dagster as dg
import pytest

from dotdyn_pipeline.connectors.dataverse.client import AttributeInfo
from dotdyn_pipeline.defs.audience.extract import PEOPLE, PERSON_TABLES, select_for
from dotdyn_pipeline.defs.audience.mappings import (
    MAPPING_TABLE,
    BadMapping,
    DataMapping,
    check_mapping,
    mappings_check,
)
from dotdyn_pipeline.defs.audience.members import account_mappings
from dotdyn_pipeline.state import MirrorRow

GOOD, BAD = "7a1c0000-0000-4000-8000-000000000001", "7a1c0000-0000-4000-8000-000000000002"
#: What the metadata of contact says of a few of its columns (as the sandbox and a real organisation list them).
CONTACT = {column.logical_name: column for column in (
    AttributeInfo("firstname", "String"), AttributeInfo("birthdate", "DateTime"),
    AttributeInfo("parentcustomerid", "Customer"),
    AttributeInfo("parentcustomeridname", "String", attribute_of="parentcustomerid"),
    AttributeInfo("esc_secret", "String", valid_for_read=False))}
LEAD = {"companyname": AttributeInfo("companyname", "String")}


class Metadata:
    """The tables' columns, counting the tables asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, table: str) -> dict[str, AttributeInfo]:
        self.asked.append(table)
        return {"contact": CONTACT, "lead": LEAD, "account": {}}[table]


def _row(attribute: str, field: str = "FIELD", entity: str = "contact", kind: str | None = "String",
         account: str = GOOD, number: int = 1) -> dict:
    return {"esc_emaildatamappingid": f"{account[:8]}-map-{number}", "_esc_emailaccountid_value": account,
            "esc_entityname": entity, "esc_attributename": attribute, "esc_datafieldname": field,
            "esc_datafieldtype": kind, "statecode": 0}


def _check(row: dict) -> DataMapping | BadMapping:
    return check_mapping(row, PERSON_TABLES, Metadata())


@pytest.mark.parametrize(("row", "rule", "column", "words"), [
    (_row("esc_nosuch"), "mapping.unknown_attribute", "esc_attributename", "contact has no attribute 'esc_nosuch'"),
    (_row("parentcustomeridname"), "mapping.attribute_not_readable", "esc_attributename",
     "derived from parentcustomerid"),
    (_row("esc_secret"), "mapping.attribute_not_readable", "esc_attributename", "not valid for read"),
    (_row("name", entity="opportunity"), "mapping.unknown_table", "esc_entityname",
     "opportunity is not a table whose people sync"),
    (_row("firstname", field="FIRST NAME"), "mapping.invalid_data_field_name", "esc_datafieldname",
     "invalid data field name 'FIRST NAME'"),
    (_row("firstname", field="A_NAME_LONGER_THAN_20"), "mapping.invalid_data_field_name", "esc_datafieldname",
     "1-20 letters"),
    (_row("firstname", kind="Text"), "mapping.unknown_type", "esc_datafieldtype", "'Text' is not one of"),
    (_row("", field="FIRSTNAME"), "mapping.incomplete", "esc_attributename", "names no CRM attribute"),
    (_row("firstname", field=""), "mapping.incomplete", "esc_datafieldname", "names no Dotdigital data field"),
])
def test_a_bad_mapping_is_left_out_with_the_rule_it_broke_and_why(row, rule, column, words):
    bad = _check(row)
    assert isinstance(bad, BadMapping)
    assert (bad.rule, bad.column, bad.account, bad.mapping_id) == (rule, column, GOOD, row["esc_emaildatamappingid"])
    assert words in bad.reason
    quarantined = bad.quarantined("run-1")
    assert (quarantined.source_table, quarantined.record_id, quarantined.rule, quarantined.column_name,
            quarantined.value, quarantined.run_id) == (MAPPING_TABLE, bad.mapping_id, rule, column, row[column],
                                                       "run-1")


def test_a_sound_mapping_reads_the_column_the_web_api_serves_under_the_names_dotdigital_takes():
    assert _check(_row(" FirstName ", field="first_name", kind=None)) == DataMapping(
        "contact", "firstname", "FIRST_NAME", "String"), "logical names are lower case; the type defaults to String"
    assert _check(_row("parentcustomerid", field="COMPANYID", kind="string")) == DataMapping(
        "contact", "_parentcustomerid_value", "COMPANYID", "String"), "a lookup is read as its record id"
    assert _check(_row("birthdate", field="BIRTHDATE", entity="Contact", kind="date")) == DataMapping(
        "contact", "birthdate", "BIRTHDATE", "Date")


def test_metadata_is_asked_only_for_a_table_a_mapping_could_be_read_from():
    metadata = Metadata()
    for row in (_row("firstname", field="BAD NAME"), _row("x", entity="opportunity"), _row("firstname", kind="X")):
        assert isinstance(check_mapping(row, PERSON_TABLES, metadata), BadMapping)
    assert metadata.asked == []


def _seed(store, *rows: dict) -> None:
    store.mirror.upsert(MAPPING_TABLE, [MirrorRow(row["esc_emaildatamappingid"], row) for row in rows])


class Client:
    """What select_for asks of a Dataverse client."""

    def __init__(self) -> None:
        self.attributes = Metadata()


def test_the_shared_read_selects_every_accounts_sound_mappings_and_no_bad_one(store):
    _seed(store, _row("firstname", "FIRSTNAME"), _row("birthdate", "BIRTHDATE", kind="Date", number=2),
          _row("esc_nosuch", "NOSUCH", account=BAD, number=3), _row("firstname", "FIRSTNAME", account=BAD, number=4),
          _row("companyname", "COMPANY", entity="lead", account=BAD, number=5),
          {**_row("jobtitle", "JOB", number=6), "statecode": 1},
          {**_row("esc_nobody", "NOBODY", number=7), "_esc_emailaccountid_value": None})
    contact, lead, _ = PEOPLE
    client = Client()
    assert select_for(contact, store, client) == [*contact.columns, "birthdate", "firstname"], \
        "both accounts' sound mappings; not the bad one, nor an inactive or accountless one"
    assert select_for(lead, store, client) == [*lead.columns, "companyname"]
    assert set(client.attributes.asked) == {"contact", "lead"}, "each table's extract reads its own metadata"


def test_an_account_syncs_its_sound_mappings_and_another_account_is_not_concerned(store):
    _seed(store, _row("firstname", "FIRSTNAME"), _row("esc_nosuch", "NOSUCH", account=BAD, number=2),
          _row("firstname", "FIRSTNAME", account=BAD, number=3))
    expected = [DataMapping("contact", "firstname", "FIRSTNAME", "String")]
    assert account_mappings(store, GOOD, Metadata()) == expected
    assert account_mappings(store, BAD, Metadata()) == expected, "the bad account syncs without the bad field"


def test_the_check_warns_naming_each_mapping_left_out():
    bad = _check(_row("esc_nosuch", "NOSUCH"))
    warned, passed = mappings_check([bad]), mappings_check([])
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    assert "contact.esc_nosuch -> NOSUCH" in warned.description and bad.mapping_id in warned.description
    assert warned.metadata["mappings_quarantined"].value == 1
    assert "| mapping.unknown_attribute |" in warned.metadata["quarantined_mappings"].value
    assert passed.passed and passed.metadata["mappings_quarantined"].value == 0

"""A table's columns from EntityDefinitions(...)/Attributes, against the sandbox's Dataverse over HTTPS: the name
each is read by, or none, as the Web API's `$select` takes them."""

from __future__ import annotations

import pytest

from dotdyn_pipeline.connectors.dataverse import DataverseClient, DataverseError, DataverseNotFound


def test_attributes_are_read_once_per_client_and_name_what_a_select_may_ask_for(dataverse: DataverseClient) -> None:
    columns = dataverse.attributes("contact")
    assert dataverse.attributes("contact") is columns and dataverse.counter.snapshot()["metadata"] == 1
    assert columns["firstname"].web_name == "firstname"
    assert columns["parentcustomerid"].web_name == "_parentcustomerid_value", "a lookup reads as its record id"
    derived = [name for name, column in columns.items() if column.attribute_of]
    assert "parentcustomeridname" in derived and all(columns[name].web_name is None for name in derived)
    readable = sorted(column.web_name for column in columns.values() if column.web_name)
    rows = next(dataverse.read("contact", readable))
    assert rows and set(readable) <= set(rows[0]), "every name the metadata gives is one the Web API serves"
    with pytest.raises(DataverseError, match="Could not find a property named 'parentcustomeridname'"):
        next(dataverse.read("contact", [*readable, "parentcustomeridname"]))


def test_the_attributes_of_a_table_that_does_not_exist_are_not_found(dataverse: DataverseClient) -> None:
    with pytest.raises(DataverseNotFound):
        dataverse.attributes("esc_nosuchtable")

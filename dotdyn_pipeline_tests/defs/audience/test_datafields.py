"""Values become data field values of the field's type, or failures with a reason; names follow the rules."""

from __future__ import annotations

import pandas as pd
import pytest

from dotdyn_pipeline.defs.audience.datafields import convert, convert_frame, data_field_name


@pytest.mark.parametrize(("field_type", "values", "expected", "failed"), [
    ("Numeric", ["1", 2.5, "3.0", "x", None], ["1", "2.5", "3", None, None], [False, False, False, True, False]),
    ("Date", ["1980-02-03", "2026-11-27T10:11:12Z", "2026-11-27T10:11:12.9+02:00", "13/13/2020", None],
     ["1980-02-03T00:00:00", "2026-11-27T10:11:12", "2026-11-27T08:11:12", None, None],
     [False, False, False, True, False]),
    ("Boolean", [True, "no", "1", "maybe", None], ["true", "false", "true", None, None],
     [False, False, False, True, False]),
    ("String", ["ok", "x" * 256, None], ["ok", "x" * 256, None], [False, True, False]),
])
def test_values_convert_to_the_field_type(field_type, values, expected, failed):
    text, failures, _ = convert(pd.Series(values, dtype="object"), field_type)
    assert [None if pd.isna(v) else v for v in text] == expected
    assert list(failures) == failed


def test_failed_conversions_quarantine_the_row_with_field_and_value():
    frame = pd.DataFrame({"AGE": ["41", "old"], "BIRTHDATE": ["2001-01-01", "2001-01-01"]})
    converted, failures = convert_frame(frame, {"AGE": "Numeric", "BIRTHDATE": "Date"})
    assert list(converted.index) == [0]
    assert failures.to_dict("records") == [{"index": 1, "column": "AGE", "rule": "AGE.not_numeric", "value": "old"}]


def test_unknown_type_is_an_error():
    with pytest.raises(ValueError, match="unknown data field type"):
        convert(pd.Series(["x"]), "Currency")


def test_data_field_names_follow_dotdigital_rules():
    assert data_field_name("Job title (primary)") == "JOB_TITLE_PRIMARY"
    assert data_field_name("address1_postalcode_extended_value") == "ADDRESS1_POSTALCODE"
    assert data_field_name("first-name 2") == "FIRST-NAME_2"
    with pytest.raises(ValueError):
        data_field_name("((()))")

"""Email normalisation and the audience model's quarantine rules."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from dotdyn_pipeline.schemas.audience import AudienceMember
from dotdyn_pipeline.schemas.email import normalise_emails, valid_email
from dotdyn_pipeline.schemas.frame_type import ModelFrameType
from dotdyn_pipeline.schemas.quarantine import SchemaDrift, split_valid

GUID = "1d00fd12-c041-4d4f-86bb-7f8aabed2996"


@pytest.mark.parametrize(("raw", "normalised", "valid"), [
    ("  Ann.Smith@EXAMPLE.Com ", "Ann.Smith@example.com", True),
    ("o'brien+news@mail.example.co.uk", "o'brien+news@mail.example.co.uk", True),
    ("ann@", "ann@", False),
    ("ann.example.com", "ann.example.com", False),
    ("ann@@example.com", "ann@@example.com", False),
    ("ann smith@example.com", "ann smith@example.com", False),
    ("ann@example", "ann@example", False),
    ("ann@exa mple.com", "ann@exa mple.com", False),
    ("ann..smith@example.com", "ann..smith@example.com", False),
    ("a" * 64 + "@Example.com", "a" * 64 + "@example.com", True),
    ("a" * 65 + "@example.com", "a" * 65 + "@example.com", False),
    ("chloé@example.com", "chloé@example.com", False),
])
def test_emails_are_trimmed_domain_lowercased_and_checked(raw, normalised, valid):
    result = normalise_emails(pd.Series([raw]))
    assert result.iloc[0] == normalised
    assert bool(valid_email(result).iloc[0]) is valid


def test_an_address_in_form_is_kept_as_the_same_string():
    raw = pd.Series(["ann@example.com", "Bob@EXAMPLE.com"], dtype="string")
    result = normalise_emails(raw)
    assert result.iloc[0] is raw.iloc[0] and result.iloc[1] == "Bob@example.com"


def test_missing_email_stays_missing():
    assert normalise_emails(pd.Series([None], dtype="object")).isna().all()


def _members(**overrides) -> pd.DataFrame:
    raw = pd.Series(overrides.pop("email", ["ann@example.com", "bad@", None, "bob@example.com"]), dtype="string")
    n = len(raw)
    frame = pd.DataFrame({
        "list_id": [GUID] * n, "crm_table": overrides.pop("crm_table", ["contact"] * n),
        "crm_id": overrides.pop("crm_id", [GUID] * n), "email": normalise_emails(raw), "email_raw": raw,
        "donotbulkemail": [False] * n, "donotemail": [False] * n, "active": [True] * n,
        "modifiedon": pd.to_datetime(["2026-11-01"] * n, utc=True), "FIRSTNAME": ["x"] * n,
    })
    return frame.assign(**overrides)


def test_bad_rows_are_quarantined_with_rule_and_value():
    split = split_valid(_members(crm_table=["contact", "lead", "account", "opportunity"]), AudienceMember)
    assert list(split.valid.index) == [0]
    failures = {(row.index, row.rule, row.value) for row in split.failures.itertuples()}
    assert failures == {(1, "email.syntax", "bad@"), (2, "email.required", None),
                        (3, "crm_table.not_allowed", "opportunity")}
    assert split.quarantined_rows == 3


def test_a_changed_type_fails_the_whole_batch():
    with pytest.raises(SchemaDrift, match="donotbulkemail"):
        split_valid(_members(donotbulkemail=["no"] * 4), AudienceMember)


def test_a_missing_column_fails_the_whole_batch():
    with pytest.raises(SchemaDrift, match="active"):
        split_valid(_members().drop(columns=["active"]), AudienceMember)


@pytest.mark.parametrize("email", [["ann@example.com"], ["bad@"]])
def test_checking_a_batch_leaves_nothing_behind(email):
    """No copy and no reference cycle outlive the check: a million-row batch must not wait for a full gc pass."""
    import gc

    def frames() -> int:
        return sum(isinstance(o, pd.DataFrame) for o in gc.get_objects())

    gc.collect()
    gc.disable()
    try:
        before = frames()
        frame = _members(email=email)
        split = split_valid(frame, AudienceMember)
        assert len(split.valid) == (email == ["ann@example.com"])
        del frame, split
        assert frames() == before
    finally:
        gc.enable()


def test_the_members_type_validates_an_output_unless_its_step_vouched_for_the_rows():
    frame_type = ModelFrameType(AudienceMember)
    assert frame_type.dagster_type.metadata["schema"].schema.columns[0].name == "list_id"  # the UI's columns
    valid = split_valid(_members(), AudienceMember).valid
    assert dg.check_dagster_type(frame_type.dagster_type, valid).success  # checked, and passes
    unchecked = _members()
    result = dg.check_dagster_type(frame_type.dagster_type, unchecked)
    assert not result.success and "not_nullable" in result.description and "bad@" in result.description
    # what the step made from the rows that passed: not validated again (so a frame vouched for, even
    # wrongly, passes; the step quarantined the rest)
    vouched = frame_type.mark_validated(unchecked)
    assert dg.check_dagster_type(frame_type.dagster_type, vouched).success
    assert not dg.check_dagster_type(frame_type.dagster_type, unchecked.copy()).success  # another frame is checked

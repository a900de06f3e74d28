"""CRM data written to do harm: what a person who can edit rows in Dynamics can make the pipeline do, and what not."""

from __future__ import annotations

import hashlib

import dagster as dg
from dagster._serdes import serialize_value


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

"""The demo's sends: a marketer's campaign send and a workflow's triggered sends, made in the sandbox's Dynamics as
Morgan Manager would make them, then processed as the send sensors would (one run per due send, one per account's
triggered sends), with a line each on what happened."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from dotdyn_pipeline.bench.contract import control_http, dotdigital_http

SENDER = "Morgan Manager"
#: The sandbox's first triggered campaign (every account has it).
TRIGGERED_CAMPAIGN = 990001
#: The send sensors, and what the demo calls the runs they ask for.
SEND_SENSORS = ("campaign_sends", "triggered_sends")


def _rows(control: Any, entity_set: str, **params: str) -> list[dict[str, Any]]:
    return control.get(f"/dataverse/rows/{entity_set}", params={"limit": "1000000", **params}
                       ).raise_for_status().json()["value"]


def schedule_sends(contract: dict[str, Any], account_id: str) -> None:
    """A campaign send of the account's first unsent campaign to its largest static list, due a minute ago, and
    three triggered sends: two to people on that list (one with an extra personalisation value) and one to an
    address Dotdigital refuses."""
    number = [account["emailaccount_id"] for account in contract["accounts"]].index(account_id)
    with control_http(contract) as control, dotdigital_http(contract, contract["accounts"][number]) as api:
        sender = next(user["systemuserid"] for user in _rows(control, "systemusers") if user["fullname"] == SENDER)
        lists = [row for row in _rows(control, "lists") if row["_esc_emailaccountid_value"] == account_id
                 and row["esc_activatedforemail"] and not row.get("type") and row.get("esc_addressbookid")]
        members: dict[str, list[str]] = {}
        for member in _rows(control, "listmembers"):
            members.setdefault(member["_listid_value"], []).append(member["_entityid_value"])
        chosen = max(lists, key=lambda row: len(members.get(row["listid"], [])))
        campaign = next(c for c in api.get("/v2/campaigns", params={"select": 1000}).raise_for_status().json()
                        if c["status"] == "Unsent")
        campaign_row = str(uuid.uuid4())
        due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def put(entity_set: str, row: dict[str, Any]) -> None:
            control.post(f"/dataverse/rows/{entity_set}", json={"_createdby_value": sender, **row}
                         ).raise_for_status()

        put("esc_emailcampaigns", {"esc_emailcampaignid": campaign_row, "esc_name": campaign["name"],
                                   "_esc_emailaccountid_value": account_id, "esc_dotdigitalcampaignid": campaign["id"]})
        put("esc_emailsends", {"esc_emailsendid": str(uuid.uuid4()), "esc_name": f"{campaign['name']} to "
                               f"{chosen['listname']}", "_esc_emailaccountid_value": account_id,
                               "_esc_emailcampaignid_value": campaign_row, "_esc_listid_value": chosen["listid"],
                               "esc_status": "Scheduled", "esc_senddate": due})
        people = [person for person in members.get(chosen["listid"], [])][:2]
        for index, person in enumerate(people):
            put("esc_emailsinglesends", {"esc_emailsinglesendid": str(uuid.uuid4()), "esc_name": f"welcome {index}",
                                         "_esc_emailaccountid_value": account_id, "_esc_contactid_value": person,
                                         "esc_dotdigitalcampaignid": TRIGGERED_CAMPAIGN, "esc_status": "Scheduled",
                                         "esc_personalisation": '{"OFFER": "10%"}' if index else ""})
        put("esc_emailsinglesends", {"esc_emailsinglesendid": str(uuid.uuid4()), "esc_name": "welcome (bad address)",
                                     "_esc_emailaccountid_value": account_id, "esc_email": "not-an-address",
                                     "esc_dotdigitalcampaignid": TRIGGERED_CAMPAIGN, "esc_status": "Scheduled"})


def process_due_sends(instance: Any, defs: Any, run_config: dict[str, Any]) -> list[str]:
    """Evaluate the send sensors once and execute the runs they ask for; one line per run."""
    import dagster as dg

    from dotdyn_pipeline.demo import failed, materialized_facts, stop_if_interrupted

    lines = []
    for name in SEND_SENSORS:
        asked = defs.resolve_sensor_def(name)(dg.build_sensor_context(instance=instance, resources=defs.resources))
        for request in [] if isinstance(asked, dg.SkipReason) else asked:
            result = defs.resolve_job_def(request.job_name).execute_in_process(
                run_config={**(request.run_config or {}), **run_config}, partition_key=request.partition_key,
                tags=request.tags, instance=instance, raise_on_error=False)
            stop_if_interrupted(result)
            facts = materialized_facts(result)
            lines.append(_line(facts) if result.success else f"  {request.job_name}: {failed(result)}")
    return lines


def _line(facts: dict[str, dict[str, Any]]) -> str:
    if "campaign_sends" in facts:
        send = facts["campaign_sends"]
        excluded = {k.removeprefix("excluded_"): v for k, v in send.items() if k.startswith("excluded_")}
        return (f"  campaign send '{send['send']}': {send['status']}, {send['recipients']} recipients"
                f"{f' (left out: {excluded})' if excluded else ''}; {send['result_message']}")
    sends = facts.get("triggered_sends", {})
    outcomes = {k.removeprefix("sends_"): v for k, v in sends.items() if k.startswith("sends_")}
    return f"  triggered sends: {sends.get('due', 0)} due: {outcomes or 'none'}"

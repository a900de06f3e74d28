"""One account whose only email-activated list is a dynamic list selecting about half of the contacts, synced
through Dagster, against a floor of bare paging of the query's ids and a bare upload of the same rows.

Before the run the account's other lists are deactivated and one dynamic contact list is given QUERY (through
the control endpoint, as an administrator would edit the list in Dynamics). Full run: the whole audience flow
from an empty state store, launched as a partition's run (a process per step, side by side); peak_rss_mb,
peak_rss_sum_mb and peak_process_rss_mb as in the audience benchmark. Then a share of the contacts changes (their
job title), so that some enter the query and some leave it, and the flow runs again as the schedule runs it, in
one process: the query is read whole again (a query cannot be change-tracked) and only who entered or left is
loaded (incremental_seconds, incremental_calls, entered, left).

Floor: bare httpx paging of the query's ids (the same key-only FetchXML the flow sends, 5000 a page, with the
paging cookie) plus a bare upload of the rows the book was sent, on a fresh twin of the sandbox with the flow's
data fields, as the audience benchmark takes its floor. expected_entered and expected_left come from bare reads
of the query before (on the twin) and after the change (on the flow's sandbox), apart from the flow.
"""

import argparse
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import httpx

from dotdyn_pipeline.bench.audience import (
    asset_durations,
    copy_data_fields,
    count_calls,
    sync_account,
    upload_floor_seconds,
    with_sandbox_and_twin,
)
from dotdyn_pipeline.bench.contract import control_http, dataverse_config
from dotdyn_pipeline.bench.measure import run_memory, stopwatch
from dotdyn_pipeline.connectors.dataverse import MsalTokenSource
from dotdyn_pipeline.connectors.dataverse.client import MORE_RECORDS, PAGING_COOKIE
from dotdyn_pipeline.connectors.dataverse.fetchxml import key_query, next_cookie
from dotdyn_pipeline.connectors.http import decode_json, tls_verify
from dotdyn_pipeline.defs.audience.contacts import CONTACT_COLUMNS
from dotdyn_pipeline.defs.audience.jobs import IN_PROCESS, PROCESS_PER_STEP

#: Three of the six seeded job titles select half of the contacts. A changed contact's job title becomes
#: "Changed ...": it leaves unless it lives in one of five of the ten seeded cities' countries, then it stays or
#: enters. So about a quarter of the changed contacts enter and a quarter leave.
QUERY = ('<fetch version="1.0" mapping="logical"><entity name="contact"><attribute name="contactid"/>'
         '<attribute name="fullname"/><order attribute="fullname"/><filter type="or">'
         '<condition attribute="jobtitle" operator="in"><value>Buyer</value><value>Director</value>'
         '<value>Engineer</value></condition><filter type="and">'
         '<condition attribute="jobtitle" operator="begins-with" value="Changed"/>'
         '<condition attribute="address1_country" operator="in"><value>GB</value><value>IE</value>'
         '<value>FR</value><value>DE</value></condition></filter></filter></entity></fetch>')
CONTACT_LIST_TYPE = 2  # list.createdfromcode of a contact list


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts in Dynamics")
    parser.add_argument("--change-share", type=float, default=0.01, help="share of contacts changed before "
                                                                          "the incremental run")


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dotdyn-bench-") as directory:
        return with_sandbox_and_twin(args.contacts, Path(directory), partial(measure,
                                                                             change_share=args.change_share))


def only_the_dynamic_list(contract: dict[str, Any]) -> str:
    """Deactivate every list of the sandbox's account but one dynamic contact list, and give that one QUERY;
    return its id."""
    with control_http(contract) as control:
        lists = control.get("/dataverse/rows/lists", params={"$select": "listid,type,createdfromcode"}
                            ).raise_for_status().json()["value"]
        chosen = next(row["listid"] for row in lists if row["type"] and row["createdfromcode"] == CONTACT_LIST_TYPE)
        for row in lists:
            change = {"esc_activatedforemail": True, "query": QUERY} if row["listid"] == chosen else \
                {"esc_activatedforemail": False}
            control.post("/dataverse/rows/lists", json={"listid": row["listid"], **change}).raise_for_status()
    return chosen


def measure(contract: dict[str, Any], home: Path, change_share: float,
            twin: Callable[[], AbstractContextManager[dict[str, Any]]]) -> dict[str, Any]:
    """Run the flow on `contract`'s sandbox, then again after changes; take the floor on a fresh `twin` of it."""
    from dotdyn_pipeline.definitions import build_definitions
    from dotdyn_pipeline.demo import register_account, sandbox_environment

    only_the_dynamic_list(contract)
    os.environ.update(sandbox_environment(contract))
    os.environ["DOTDYN_HOME"] = str(home / "state")
    os.environ.pop("DOTDYN_POSTGRES_URL", None)
    defs = build_definitions()
    (home / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(str(home / "dagster")) as instance:
        key = register_account(instance, defs, contract["accounts"][0]["emailaccount_id"]).key
        with run_memory() as memory:
            seconds, facts = sync_account(instance, key, PROCESS_PER_STEP)
        contacts = defs.load_asset_value("audience_contacts", partition_key=key, instance=instance)
        fields = [c for c in contacts.columns if c not in CONTACT_COLUMNS]
        with control_http(contract) as control:
            people = control.get("/dataverse/stats").raise_for_status().json()["tables"]["contacts"]
            changed = max(1, round(people * change_share))
            control.post("/dataverse/seed-changes", json={"set": "contacts", "seed": 1, "modify": changed}
                         ).raise_for_status()
        incremental_seconds, incremental = sync_account(instance, key, IN_PROCESS)
    _, after = query_floor(contract)
    with twin() as fresh:
        copy_data_fields(contract, fresh, fields)
        read_floor, before = query_floor(fresh)
        upload_floor = upload_floor_seconds(fresh, contacts, fields)
    evaluated, again = facts["dynamic_list_members"], incremental["dynamic_list_members"]
    return {
        "rows": evaluated["members_evaluated"], "query_rows": len(before),
        "rows_loaded": facts["address_book_members"]["rows_imported"], "seconds": seconds,
        "peak_rss_mb": memory.total_mb, "peak_rss_sum_mb": memory.rss_sum_mb,
        "peak_process_rss_mb": memory.largest_mb,
        "dataverse_requests": count_calls(facts, "dataverse_requests"),
        "dotdigital_calls": count_calls(facts, "dotdigital_calls"), "query_pages": evaluated["query_pages"],
        "floor_seconds": round(read_floor + upload_floor, 3), "floor_read_seconds": read_floor,
        "floor_upload_seconds": upload_floor, "changed_contacts": changed,
        "incremental_seconds": incremental_seconds,
        "incremental_calls": count_calls(incremental, "dataverse_requests")
        + count_calls(incremental, "dotdigital_calls"),
        "incremental_rows_sent": incremental["address_book_members"]["rows_sent"],
        "entered": again["members_added"], "left": again["members_removed"],
        "expected_entered": len(after - before), "expected_left": len(before - after),
        "asset_seconds": asset_durations(facts), "incremental_asset_seconds": asset_durations(incremental),
    }


def query_floor(contract: dict[str, Any]) -> tuple[float, set[str]]:
    """(seconds, ids) of bare paging of QUERY's ids on `contract`'s sandbox: the key-only FetchXML the flow sends,
    one GET a page, each page after the first with the paging cookie the last one gave."""
    config = dataverse_config(contract)
    token = MsalTokenSource(config.credentials(), config.org_url, ca_bundle=config.ca_bundle).token()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "OData-MaxVersion": "4.0",
               "OData-Version": "4.0",
               "Prefer": f'odata.include-annotations="{PAGING_COOKIE[1:]},{MORE_RECORDS[1:]}"'}
    query, ids, number, cookie = key_query(QUERY, "contactid"), set(), 1, None
    with httpx.Client(verify=tls_verify(config.ca_bundle), headers=headers, timeout=config.timeout) as http, \
            stopwatch() as watch:
        while True:
            response = http.get(f"{config.api_root}contacts?fetchXml={quote(query.page(number, cookie), safe='')}")
            body = decode_json(response.raise_for_status())
            ids.update(row["contactid"] for row in body["value"])
            if not body.get(MORE_RECORDS):
                break
            number, cookie = number + 1, next_cookie(body.get(PAGING_COOKIE))
    return watch.seconds, ids

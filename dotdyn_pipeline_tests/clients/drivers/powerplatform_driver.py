"""Drives Microsoft's Dataverse SDK for Python (PowerPlatform-Dataverse-Client) against the sandbox.

Runs inside the client's own environment: `python powerplatform_driver.py <scenario>`, with the sandbox contract
and the scenario's arguments as JSON on stdin; prints what the client returned as JSON. The client is used
as its README shows, signed in with azure-identity's ClientSecretCredential at the sandbox's authority.
"""

import json
import sys
from urllib.parse import urlsplit

from azure.identity import ClientSecretCredential
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.errors import HttpError
from PowerPlatform.Dataverse.models import UpsertItem, col


def connect(contract):
    authority = urlsplit(contract["authority"])
    credential = ClientSecretCredential(contract["tenant_id"], contract["client_id"], contract["client_secret"],
                                        authority=f"{authority.scheme}://{authority.netloc}",
                                        disable_instance_discovery=True)
    return DataverseClient(contract["dataverse_url"], credential)


def crud(client, arguments):
    """Create, retrieve, update, retrieve, delete and retrieve again one account."""
    account_id = client.records.create("account", {"name": arguments["name"], "address1_city": "Oslo"})
    created = client.records.retrieve("account", account_id, select=["name", "address1_city"])
    client.records.update("account", account_id, {"address1_city": "Bergen"})
    updated = client.records.retrieve("account", account_id, select=["address1_city"])
    client.records.delete("account", account_id)
    return {"id": account_id, "created": created and dict(created), "updated": updated and dict(updated),
            "after_delete": client.records.retrieve("account", account_id)}


def query(client, arguments):
    """The README's query builder: select, where, order_by, top and a page size smaller than top."""
    builder = (client.query.builder("contact").select("fullname", "emailaddress1")
               .where(col("statecode") == 0).order_by("fullname").top(arguments["top"])
               .page_size(arguments["page_size"]))
    return [dict(record) for record in builder.execute()]


def pages(client, arguments):
    """execute_pages() over a whole table: the sizes of the pages it fetched and the ids it read."""
    builder = client.query.builder("contact").select("contactid").page_size(arguments["page_size"])
    sizes, ids = [], []
    for page in builder.execute_pages():
        records = list(page)
        sizes.append(len(records))
        ids += [record["contactid"] for record in records]
    return {"sizes": sizes, "ids": ids}


def bulk(client, arguments):
    """CreateMultiple, UpdateMultiple and BulkDelete (records.delete of a list) on accounts."""
    names = arguments["names"]
    ids = client.records.create("account", [{"name": name} for name in names])
    client.records.update("account", ids, {"address1_city": "Trondheim"})
    updated = [dict(client.records.retrieve("account", i, select=["name", "address1_city"])) for i in ids]
    job_id = client.records.delete("account", ids)
    return {"ids": ids, "updated": updated, "job_id": job_id,
            "after_delete": [client.records.retrieve("account", i) for i in ids]}


def upsert(client, arguments):
    """records.upsert by the alternate key esc_apiuser of esc_emailaccount: creates, then updates."""
    key = {"esc_apiuser": arguments["api_user"]}
    client.records.upsert("esc_emailaccount", [UpsertItem(alternate_key=key, record={"esc_name": "First"})])
    client.records.upsert("esc_emailaccount", [UpsertItem(alternate_key=key, record={"esc_name": "Second"})])
    found = (client.query.builder("esc_emailaccount").select("esc_emailaccountid", "esc_name", "esc_apiuser")
             .where(col("esc_apiuser") == arguments["api_user"]).execute())
    return [dict(record) for record in found]


def batch(client, arguments):
    """The README's batch: a create and an update in one $batch request."""
    account_id = client.records.create("account", {"name": arguments["name"]})
    request = client.batch.new()
    request.records.create("account", {"name": arguments["name"] + " (batch)"})
    request.records.update("account", account_id, {"address1_city": "Tromsø"})
    result = request.execute()
    return {"id": account_id, "statuses": [item.status_code for item in result.responses],
            "failed": len(result.failed)}


def refused(client, arguments):
    """What the client raises for a query language the stand-in does not run (its SQL endpoint)."""
    try:
        rows = client.query.sql(arguments["sql"])
    except HttpError as error:
        return {"status": error.status_code, "message": error.message}
    return {"rows": len(rows)}


SCENARIOS = {"crud": crud, "query": query, "pages": pages, "bulk": bulk, "upsert": upsert, "batch": batch,
             "refused": refused}

if __name__ == "__main__":
    given = json.load(sys.stdin)
    with connect(given["contract"]) as dataverse:
        print(json.dumps(SCENARIOS[sys.argv[1]](dataverse, given["arguments"]), default=str))

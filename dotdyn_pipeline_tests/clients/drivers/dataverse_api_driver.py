"""Drives MarcusRisanger's dataverse-api (PyPI `dataverse-api`) against the sandbox.

Runs inside the client's own environment: `python dataverse_api_driver.py <scenario>` with the sandbox contract
and the scenario's arguments as JSON on stdin; prints what the client returned as JSON. Signed in as its
README shows: msal's ConfidentialClientApplication at the sandbox's authority (without Microsoft's instance
discovery, which knows only Microsoft's hosts) behind msal-requests-auth.
"""

import json
import sys

from dataverse_api import DataverseClient
from msal import ConfidentialClientApplication
from msal_requests_auth.auth import ClientCredentialAuth
from requests import Session


def connect(contract):
    application = ConfidentialClientApplication(client_id=contract["client_id"],
                                                client_credential=contract["client_secret"],
                                                authority=contract["authority"], instance_discovery=False)
    session = Session()
    session.auth = ClientCredentialAuth(client=application, scopes=[contract["dataverse_url"] + "/.default"])
    return DataverseClient(session=session, environment_url=contract["dataverse_url"])


def read(client, arguments):
    """The README's read: select, filter, top and order_by, paged by page_size."""
    entity = client.entity(logical_name="contact")
    rows = entity.read(select=["fullname", "emailaddress1"], filter="statecode eq 0", top=arguments["top"],
                       order_by="fullname desc", page_size=arguments["page_size"])
    return {"entity_set": entity.entity_set_name, "primary_id": entity.primary_id_attr, "rows": rows}


def create(client, arguments):
    """Create rows of accounts in each of the README's modes; the ids of the created rows, by mode."""
    entity = client.entity(logical_name="account")
    created = {}
    for mode in ("individual", "multiple", "batch"):
        rows = [{"name": f"{arguments['prefix']} {mode} {number}"} for number in range(arguments["count"])]
        responses = entity.create(data=rows, mode=mode, return_created=True)
        created[mode] = [response.status_code for response in responses]
    return {"supports_create_multiple": entity.supports_create_multiple, "statuses": created}


def upsert(client, arguments):
    """upsert(altkey_name=...) on esc_emailaccount's key over esc_apiuser, individually and in a batch."""
    entity = client.entity(logical_name="esc_emailaccount")
    key = next(iter(entity.alternate_keys))
    statuses = {}
    for mode in ("individual", "batch"):
        rows = [{"esc_apiuser": user, "esc_name": f"{mode} {user}"} for user in arguments["api_users"]]
        statuses[mode] = [r.status_code for r in entity.upsert(data=rows, mode=mode, altkey_name=key)]
    return {"alternate_keys": entity.alternate_keys, "statuses": statuses}


def delete(client, arguments):
    """delete(filter=...) of the accounts whose names begin with the prefix, individually and in a batch."""
    entity = client.entity(logical_name="account")
    statuses = {}
    for mode, suffix in (("individual", "individual"), ("batch", "batch")):
        condition = f"startswith(name, '{arguments['prefix']} {suffix}')"
        statuses[mode] = [r.status_code for r in entity.delete(mode=mode, filter=condition)]
    return statuses


def definition(client, arguments):
    """get_entity_definition: the table's metadata as the client's EntityMetadata model."""
    metadata = client.get_entity_definition(arguments["logical_name"])
    return {"schema_name": metadata.schema_name, "display_name": metadata.display_name.localized_labels[0].label,
            "ownership_type": str(metadata.ownership_type.value)}


SCENARIOS = {"read": read, "create": create, "upsert": upsert, "delete": delete, "definition": definition}

if __name__ == "__main__":
    given = json.load(sys.stdin)
    print(json.dumps(SCENARIOS[sys.argv[1]](connect(given["contract"]), given["arguments"]), default=str))

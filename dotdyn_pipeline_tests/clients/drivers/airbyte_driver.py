"""Drives Airbyte's Dataverse source (airbyte-source-microsoft-dataverse) against the sandbox.

Runs inside the source's own environment: `python airbyte_driver.py <command>` with the sandbox contract and the
arguments as JSON on stdin. The command goes through Airbyte's own entrypoint (`spec`, `check`, `discover`,
`read` with a configured catalog and a state file), exactly as the platform runs the connector; the driver
prints the Airbyte messages it emitted as a JSON list (the connector's own log lines go to stderr). Two
things point it at the sandbox: the source signs in at login.microsoftonline.com, so its authenticator's
token endpoint is set to the sandbox's authority; and the CDK sends prepared requests with `Session.send`,
which never reads REQUESTS_CA_BUNDLE, so its sessions are given that bundle (verification stays on).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

import requests
import source_microsoft_dataverse.dataverse as dataverse
import source_microsoft_dataverse.source as source_module
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from source_microsoft_dataverse import SourceMicrosoftDataverse


def point_sign_in_at(authority):
    """The source's authenticator, with its token endpoint at `authority` instead of Microsoft's."""
    original = dataverse.get_auth

    def get_auth(config):
        authenticator = original(config)
        authenticator._token_refresh_endpoint = authority + "/oauth2/v2.0/token"
        return authenticator

    dataverse.get_auth = source_module.get_auth = get_auth


def trust_sandbox_ca():
    """Every requests session verifies against REQUESTS_CA_BUNDLE, as `requests.get` already does."""
    initialise = requests.Session.__init__

    def __init__(self, *args, **kwargs):
        initialise(self, *args, **kwargs)
        self.verify = os.environ["REQUESTS_CA_BUNDLE"]

    requests.Session.__init__ = __init__


def run(command, contract, arguments):
    config = {"url": contract["dataverse_url"], "tenant_id": contract["tenant_id"],
              "client_id": contract["client_id"], "client_secret_value": contract["client_secret"],
              "odata_maxpagesize": arguments.get("page_size", 5000)}
    with tempfile.TemporaryDirectory() as folder:
        files = {"config": config, "catalog": arguments.get("catalog"), "state": arguments.get("state")}
        argv = [command]
        for name, value in files.items():
            if value is not None and (command != "spec") and (name == "config" or command == "read"):
                path = Path(folder) / f"{name}.json"
                path.write_text(json.dumps(value))
                argv += [f"--{name}", str(path)]
        entrypoint = AirbyteEntrypoint(SourceMicrosoftDataverse())
        return [json.loads(message) for message in entrypoint.run(entrypoint.parse_args(argv))]


if __name__ == "__main__":
    given = json.load(sys.stdin)
    point_sign_in_at(given["contract"]["authority"])
    trust_sandbox_ca()
    result = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the CDK prints its log messages on stdout
    messages = run(sys.argv[1], given["contract"], given["arguments"])
    sys.stdout.flush()
    result.write(json.dumps(messages))
    result.close()

"""An on-premises organisation: sign-in at AD FS and the Web API v8.2, which has no bulk messages.

The sandbox of this module serves an AD FS shaped authority (`identity.kind=adfs`) and only `/api/data/v8.2/`
(`dataverse.api_version=v8.2`); the pipeline's own client reads, tracks changes and writes there over HTTPS.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.connectors.dataverse import ClientCredentials, DataverseAuthError, DataverseClient, MsalTokenSource
from dotdyn_pipeline.connectors.dataverse.odata import link_option, literal
from dotdyn_pipeline.connectors.http import tls_verify
from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.connectors.dataverse.conftest import sandbox_config

ON_PREMISES = SandboxSettings(seed=41, contacts=200, leads=50, accounts=30, email_accounts=1, days=2,
                              options={"identity.kind": "adfs", "dataverse.api_version": "v8.2"})
SELECT = ("fullname", "emailaddress1")
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_sandbox(tmp_path_factory.mktemp("on-premises"), ON_PREMISES) as contract:
        yield contract


class RecordingTransport(httpx.HTTPTransport):
    """httpx's own transport (trusting the sandbox CA) that notes the path and body of every request it sends."""

    def __init__(self, ca_cert: str) -> None:
        super().__init__(verify=tls_verify(ca_cert))
        self.paths: list[str] = []
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        self.bodies.append(request.read())
        return super().handle_request(request)


def client(sandbox: dict[str, Any], **overrides: Any) -> tuple[DataverseClient, RecordingTransport]:
    transport = RecordingTransport(sandbox["ca_cert"])
    config = sandbox_config(sandbox, api_version=sandbox["dataverse_api_version"], max_page_size=60, **overrides)
    return DataverseClient(config, transport=transport), transport


def sign_in(sandbox: dict[str, Any], secret: str | None = None, authority: str | None = None) -> MsalTokenSource:
    """The pipeline's token source for the sandbox's app (another secret or authority when given)."""
    credentials = ClientCredentials(authority or sandbox["authority"], sandbox["client_id"],
                                    secret or sandbox["client_secret"])
    return MsalTokenSource(credentials, sandbox["dataverse_url"], ca_bundle=sandbox["ca_cert"])


def test_the_contract_names_an_ad_fs_authority_and_the_older_version(sandbox: dict[str, Any]) -> None:
    assert httpx.URL(sandbox["authority"]).path == "/adfs"
    assert sandbox["dataverse_api_version"] == "v8.2"


def test_the_pipelines_sign_in_gets_a_token_from_ad_fs_that_the_web_api_takes(sandbox: dict[str, Any]) -> None:
    token = sign_in(sandbox).token()
    answer = httpx.get(f"{sandbox['dataverse_url']}/api/data/v8.2/WhoAmI", headers={"Authorization": f"Bearer {token}"},
                       verify=tls_verify(sandbox["ca_cert"]))
    assert answer.status_code == 200 and answer.json()["UserId"]


def test_a_configured_scope_naming_the_relying_party_is_asked_for(sandbox: dict[str, Any]) -> None:
    credentials = ClientCredentials(sandbox["authority"], sandbox["client_id"], sandbox["client_secret"])
    source = MsalTokenSource(credentials, "https://crm.unrelated.example", scope=sandbox["dataverse_url"] + "/",
                             ca_bundle=sandbox["ca_cert"])
    with DataverseClient(sandbox_config(sandbox, api_version="v8.2"), tokens=source) as dataverse:
        assert dataverse.entity_set_name("contact") == "contacts"


def test_ad_fs_refusing_the_secret_is_an_auth_error_that_keeps_it_secret(sandbox: dict[str, Any]) -> None:
    wrong = "sbx~not-the-secret"
    with pytest.raises(DataverseAuthError) as refused:
        sign_in(sandbox, secret=wrong).token()
    assert refused.value.code == "invalid_client"
    assert wrong not in str(refused.value) and "AADSTS" not in str(refused.value)


def test_an_authority_without_a_discovery_document_says_where_it_was_asked(sandbox: dict[str, Any]) -> None:
    misnamed = sandbox["authority"].removesuffix("/adfs") + "/adfs-farm"  # not /adfs: msal asks under /v2.0
    with pytest.raises(DataverseAuthError) as refused:
        sign_in(sandbox, authority=misnamed).token()
    message = str(refused.value)
    assert f"{misnamed}/v2.0/.well-known/openid-configuration (HTTP 404)" in message
    assert "https://<AD FS host>/adfs" in message and sandbox["client_secret"] not in message


def test_the_web_api_answers_other_versions_as_an_unknown_segment(sandbox: dict[str, Any]) -> None:
    token = sign_in(sandbox).token()
    with httpx.Client(verify=tls_verify(sandbox["ca_cert"])) as http:
        answer = http.get(f"{sandbox['dataverse_url']}/api/data/v9.2/contacts",
                          headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 404
        assert answer.json()["error"]["message"] == "Resource not found for the segment 'v9.2'."
        bulk = http.post(f"{sandbox['dataverse_url']}/api/data/v8.2/contacts/Microsoft.Dynamics.CRM.UpsertMultiple",
                         json={"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "X"}]},
                         headers={"Authorization": f"Bearer {token}"})
        assert bulk.status_code == 404 and "UpsertMultiple" in bulk.json()["error"]["message"]
        filters = http.get(f"{sandbox['dataverse_url']}/api/data/v8.2/sdkmessagefilters",
                           params={"$select": "sdkmessagefilterid",
                                   "$filter": "sdkmessageid/name eq 'UpsertMultiple' and primaryobjecttypecode eq "
                                              "'contact'"},
                           headers={"Authorization": f"Bearer {token}"})
        assert filters.status_code == 200 and filters.json()["value"] == []


def test_the_client_reads_pages_and_changes_from_the_older_version(sandbox: dict[str, Any]) -> None:
    dataverse, transport = client(sandbox)
    with dataverse:
        pages = list(dataverse.read("contact", SELECT))
        first = dataverse.read_changes("contact", SELECT)
        everyone = [row for page in first for row in page.rows]
        changed = everyone[7]["contactid"]
        dataverse.upsert("contact", changed, {"emailaddress1": "moved@example.com"})
        second = dataverse.read_changes("contact", SELECT, first.cursor)
        rows = {row["contactid"]: row for page in second for row in page.rows}
    assert len(pages) == 4 and sum(len(page) for page in pages) == 200, "200 contacts in pages of 60"
    assert first.mode == "full" and link_option(first.cursor or "", "$deltatoken")
    assert second.mode == "delta" and rows[changed]["emailaddress1"] == "moved@example.com"
    assert all(path.startswith("/api/data/v8.2/") for path in transport.paths)


def test_change_tracking_turned_off_reads_by_watermark(sandbox: dict[str, Any]) -> None:
    dataverse, transport = client(sandbox, change_tracking=False)
    with dataverse:
        read = dataverse.read_changes("contact", SELECT)
        rows = [row for page in read for row in page.rows]
    assert read.mode == "full" and (read.cursor or "").startswith("watermark:") and len(rows) >= 200


def test_upserts_go_through_batch_without_asking_for_bulk_messages(sandbox: dict[str, Any]) -> None:
    rows = [{"contactid": str(uuid.uuid4()), "lastname": f"On premises {n}", "emailaddress1": f"op{n}@example.com"}
            for n in range(25)]
    dataverse, transport = client(sandbox, batch_size=10, max_concurrency=2)
    with dataverse:
        outcomes = dataverse.upsert_many("contact", rows, ["contactid"])
        written = {row["contactid"]: row["lastname"]
                   for page in dataverse.read("contact", ("lastname",), filter="startswith(lastname,'On premises')")
                   for row in page}
    assert all(outcome.ok for outcome in outcomes) and len(outcomes) == 25
    assert written == {row["contactid"]: row["lastname"] for row in rows}
    assert transport.paths.count("/api/data/v8.2/$batch") == 3, "10 + 10 + 5 records"
    assert not [path for path in transport.paths if "sdkmessagefilters" in path or path.endswith(BULK_MESSAGES)]


def test_list_members_leave_by_disassociation_without_remove_member_list(sandbox: dict[str, Any]) -> None:
    dataverse, transport = client(sandbox, batch_size=2, max_concurrency=2)
    with dataverse:
        list_id = str(uuid.uuid4())
        dataverse.upsert("list", list_id, {"listname": "On premises list", "createdfromcode": 2, "type": False})
        contacts = [row["contactid"] for row in next(dataverse.read("contact", ["contactid"]))[:5]]
        with httpx.Client(base_url=f"{sandbox['dataverse_url']}/api/data/v8.2/", verify=tls_verify(sandbox["ca_cert"]),
                          headers={"Authorization": f"Bearer {sign_in(sandbox).token()}"}) as http:
            http.post("AddListMembersList", json={  # as Microsoft's v8 reference documents the action
                "List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": list_id},
                "Members": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": c} for c in contacts[:4]],
            }).raise_for_status()
        deleted = str(uuid.uuid4())
        outcomes = dataverse.remove_list_members(list_id, [*contacts[:2], contacts[4], deleted],
                                                 member_table="contact")
        left = {row["_entityid_value"] for page in dataverse.read(
            "listmember", ["_entityid_value"], filter=f"_listid_value eq {literal(uuid.UUID(list_id))}")
            for row in page}
        [count] = next(dataverse.read("list", ["membercount"], filter=f"listid eq {literal(uuid.UUID(list_id))}"))
    assert [(o.ok, o.status) for o in outcomes] == [(True, 204), (True, 204), (True, 204), (False, 404)], \
        "a contact not on the list stays off it; one that no longer exists is the 404 a caller counts as gone"
    assert left == set(contacts[2:4]) and count["membercount"] == 2
    batches = [body for path, body in zip(transport.paths, transport.bodies, strict=True) if path.endswith("/$batch")]
    assert len(batches) == 2, "4 members in chunks of 2"
    assert all(b"DELETE /api/data/v8.2/lists(" in body and b"/listcontact_association(" in body for body in batches)
    assert not [body for body in transport.bodies if b"RemoveMemberList" in body]

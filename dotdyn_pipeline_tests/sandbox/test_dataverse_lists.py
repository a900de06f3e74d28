"""Marketing list membership through the list's many-to-many relationships (`listcontact_association` ...), as
Microsoft documents associating and disassociating records, on every version; and RemoveMemberList, which the
Web API has from v9.0 on only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from dotdyn_pipeline.sandbox.context import SandboxSettings
from dotdyn_pipeline.sandbox.process import running_sandbox
from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import error_of, web_api

private_sandbox = helpers.private_sandbox
pdv = helpers.pdv

V8 = SandboxSettings(seed=7, contacts=40, leads=10, accounts=10, email_accounts=1, days=1,
                     options={"dataverse.api_version": "v8.2"})


def new_list(client: httpx.Client, createdfromcode: int = 2) -> str:
    created = client.post("lists", json={"listname": f"Members {uuid.uuid4().hex[:6]}", "type": False,
                                         "createdfromcode": createdfromcode})
    assert created.status_code == 204
    return created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def ids(client: httpx.Client, entity_set: str, count: int) -> list[str]:
    key = entity_set.removesuffix("s") + "id"
    return [row[key] for row in client.get(entity_set, params={"$select": key, "$top": str(count)}).json()["value"]]


def members(client: httpx.Client, list_id: str) -> set[str]:
    return {row["_entityid_value"] for row in client.get("listmembers", params={
        "$select": "_entityid_value", "$filter": f"_listid_value eq {list_id}"}).json()["value"]}


def member_count(client: httpx.Client, list_id: str) -> int:
    return client.get(f"lists({list_id})", params={"$select": "membercount"}).json()["membercount"]


def test_members_are_associated_and_disassociated_through_the_lists_relationship(pdv, private_sandbox):
    list_id, contacts = new_list(pdv), ids(pdv, "contacts", 4)
    api_url = f"{private_sandbox['dataverse_url']}/api/data/v9.2"
    for contact in contacts[:2]:  # an absolute entity URL, as in Microsoft's example, or a relative one
        assert pdv.post(f"lists({list_id})/listcontact_association/$ref",
                        json={"@odata.id": f"{api_url}/contacts({contact})"}).status_code == 204
    assert pdv.post(f"lists({list_id})/listcontact_association/$ref",
                    json={"@odata.id": f"contacts({contacts[2]})"}).status_code == 204
    again = pdv.post(f"lists({list_id})/listcontact_association/$ref", json={"@odata.id": f"contacts({contacts[2]})"})
    assert again.status_code == 204, "associating a member twice changes nothing"
    assert members(pdv, list_id) == set(contacts[:3]) and member_count(pdv, list_id) == 3

    assert pdv.delete(f"lists({list_id})/listcontact_association({contacts[0]})/$ref").status_code == 204
    by_id = pdv.delete(f"lists({list_id})/listcontact_association/$ref",
                       params={"$id": f"{api_url}/contacts({contacts[1]})"})
    assert by_id.status_code == 204
    assert members(pdv, list_id) == {contacts[2]} and member_count(pdv, list_id) == 1
    not_a_member = pdv.delete(f"lists({list_id})/listcontact_association({contacts[3]})/$ref")
    assert not_a_member.status_code == 204 and member_count(pdv, list_id) == 1, "off the list already: stays off"


def test_a_member_that_does_not_fit_the_list_is_refused(pdv):
    list_id, (lead,) = new_list(pdv), ids(pdv, "leads", 1)
    missing = str(uuid.uuid4())
    gone = pdv.delete(f"lists({list_id})/listcontact_association({missing})/$ref")
    assert gone.status_code == 404 and error_of(gone)["message"] == f"contact With Id = {missing} Does Not Exist"
    other_type = pdv.delete(f"lists({list_id})/listlead_association({lead})/$ref")
    assert other_type.status_code == 400 and "lead" in error_of(other_type)["message"]
    assert pdv.post(f"lists({list_id})/listlead_association/$ref",
                    json={"@odata.id": f"leads({lead})"}).status_code == 400
    mislabelled = pdv.post(f"lists({list_id})/listcontact_association/$ref", json={"@odata.id": f"leads({lead})"})
    assert mislabelled.status_code == 400 and "does not name a contact" in error_of(mislabelled)["message"]
    assert pdv.post(f"lists({list_id})/listcontact_association/$ref", json={}).status_code == 400


def test_a_dynamic_list_refuses_both(pdv):
    dynamic = pdv.get("lists", params={"$select": "listid,createdfromcode",
                                       "$filter": "type eq true"}).json()["value"][0]
    kind = {1: "account", 2: "contact", 4: "lead"}[dynamic["createdfromcode"]]
    (member,) = ids(pdv, f"{kind}s", 1)
    added = pdv.post(f"lists({dynamic['listid']})/list{kind}_association/$ref",
                     json={"@odata.id": f"{kind}s({member})"})
    removed = pdv.delete(f"lists({dynamic['listid']})/list{kind}_association({member})/$ref")
    assert (added.status_code, removed.status_code) == (400, 400)
    assert "dynamic" in error_of(removed)["message"]


@pytest.fixture(scope="module")
def v8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The Web API of a small organisation served as Dynamics 365 8.2."""
    with running_sandbox(tmp_path_factory.mktemp("dataverse-v8"), V8) as contract, web_api(contract) as client:
        yield client


def test_v8_2_has_add_member_list_but_no_remove_member_list(v8: httpx.Client) -> None:
    list_id, (contact,) = new_list(v8), ids(v8, "contacts", 1)
    assert str(v8.base_url).endswith("/api/data/v8.2/")
    added = v8.post(f"lists({list_id})/Microsoft.Dynamics.CRM.AddMemberList", json={"EntityId": contact})
    assert added.status_code == 200 and member_count(v8, list_id) == 1
    refused = v8.post(f"lists({list_id})/Microsoft.Dynamics.CRM.RemoveMemberList", json={"EntityId": contact})
    assert refused.status_code == 404
    assert error_of(refused)["message"] == ("Resource not found for the segment "
                                            "'Microsoft.Dynamics.CRM.RemoveMemberList'.")
    assert members(v8, list_id) == {contact}, "the refused action removed no one"
    assert v8.delete(f"lists({list_id})/listcontact_association({contact})/$ref").status_code == 204
    assert members(v8, list_id) == set() and member_count(v8, list_id) == 0

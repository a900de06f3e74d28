"""Contract tests of Dataverse writes: create, PATCH upsert with conditions, alternate keys, bulk messages,
$batch, marketing list actions. They run on a private sandbox so the shared one stays as seeded."""

from __future__ import annotations

import json
import uuid

from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import error_of

# Fixtures shared by the Dataverse contract tests.
pdv = helpers.pdv
private_control = helpers.private_control
private_sandbox = helpers.private_sandbox


def _account(private_sandbox) -> str:
    return private_sandbox["accounts"][0]["emailaccount_id"]


def test_create_answers_204_with_the_entity_id_or_201_with_the_row(pdv):
    response = pdv.post("contacts", json={"firstname": "Ada", "lastname": "Lovelace", "donotbulkemail": True})
    assert response.status_code == 204
    url = response.headers["odata-entityid"]
    assert url.startswith(str(pdv.base_url) + "contacts(")
    created = pdv.get(url, params={"$select": "fullname,firstname,donotbulkemail"}).json()
    assert created["firstname"] == "Ada" and created["donotbulkemail"] is True
    shown = pdv.post("contacts", params={"$select": "firstname"}, json={"firstname": "Grace"},
                     headers={"Prefer": "return=representation"})
    assert shown.status_code == 201 and shown.headers["preference-applied"] == "return=representation"
    assert shown.json()["firstname"] == "Grace" and shown.json()["@odata.etag"].startswith('W/"')


def test_payload_errors(pdv):
    too_long = pdv.post("contacts", json={"firstname": "x" * 51})
    assert too_long.status_code == 400 and error_of(too_long)["code"] == "0x80044331"
    wrong_type = pdv.post("contacts", json={"numberofchildren": "two"})
    assert wrong_type.status_code == 400
    unknown = pdv.post("contacts", json={"nosuchcolumn": 1})
    assert unknown.status_code == 400 and "does not exist on type" in error_of(unknown)["message"]
    lookup_value = pdv.post("contacts", json={"_parentcustomerid_value": str(uuid.uuid4())})
    assert lookup_value.status_code == 400


def test_patch_upserts_and_honours_if_match_and_if_none_match(pdv):
    new_id = str(uuid.uuid4())
    missing = pdv.patch(f"contacts({new_id})", json={"lastname": "Nobody"}, headers={"If-Match": "*"})
    assert missing.status_code == 404 and error_of(missing)["code"] == "0x80040217"
    created = pdv.patch(f"contacts({new_id})", json={"lastname": "Upserted"})
    assert created.status_code == 204 and created.headers["odata-entityid"].endswith(f"contacts({new_id})")
    again = pdv.patch(f"contacts({new_id})", json={"lastname": "Again"}, headers={"If-None-Match": "*"})
    assert again.status_code == 412
    assert error_of(again)["message"] == "A record with matching key values already exists."
    etag = pdv.get(f"contacts({new_id})").json()["@odata.etag"]
    assert pdv.patch(f"contacts({new_id})", json={"lastname": "Fresh"}, headers={"If-Match": etag}).status_code == 204
    stale = pdv.patch(f"contacts({new_id})", json={"lastname": "Stale"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and "RowVersion" in error_of(stale)["message"]
    row = pdv.get(f"contacts({new_id})", params={"$select": "lastname"}).json()
    assert row["lastname"] == "Fresh" and row["@odata.etag"] != etag
    assert pdv.get(f"contacts({new_id})", headers={"If-None-Match": row["@odata.etag"]}).status_code == 304
    assert pdv.delete(f"contacts({new_id})").status_code == 204
    assert pdv.delete(f"contacts({new_id})").status_code == 404


def test_alternate_keys_address_upserts_and_lookups_bind(pdv, private_sandbox):
    account = _account(private_sandbox)
    contact = pdv.get("contacts", params={"$select": "contactid", "$top": "1"}).json()["value"][0]["contactid"]
    key = f"esc_emailsupressions(_esc_emailaccountid_value={account},esc_email='o''neil@example.com')"
    body = {"esc_reason": "HardBounced", "esc_dateremoved": "2024-03-01T10:00:00Z",
            "esc_emailaccountid@odata.bind": f"/esc_emailaccounts({account})",
            "esc_contactid@odata.bind": f"/contacts({contact})"}
    assert pdv.patch(key, json=body).status_code == 204
    assert pdv.patch(key, json={"esc_reason": "Unsubscribed"}).status_code == 204
    rows = pdv.get("esc_emailsupressions", params={"$filter": "esc_email eq 'o''neil@example.com'"}).json()["value"]
    assert len(rows) == 1
    assert rows[0]["esc_reason"] == "Unsubscribed" and rows[0]["_esc_contactid_value"] == contact
    assert rows[0]["_esc_emailaccountid_value"] == account
    assert pdv.get(key).json()["esc_emailsupressionid"] == rows[0]["esc_emailsupressionid"]
    wrong = pdv.patch("esc_emailsupressions(esc_email='x@example.com')", json={})
    assert wrong.status_code == 400 and "The key in the request URI is not valid" in error_of(wrong)["message"]
    dangling = pdv.post("esc_emailsupressions", json={"esc_email": "d@example.com",
                                                      "esc_contactid@odata.bind": f"/contacts({uuid.uuid4()})"})
    assert dangling.status_code == 404


def test_upsert_multiple_writes_atomically_and_is_refused_where_unsupported(pdv, private_sandbox):
    account = _account(private_sandbox)

    def target(number: int, **extra):
        key = f"_esc_emailaccountid_value={account},esc_dotdigitalcampaignid={number}"
        return {"@odata.type": "Microsoft.Dynamics.CRM.esc_emailcampaign", "@odata.id": f"esc_emailcampaigns({key})",
                "esc_name": f"Campaign {number}", **extra}

    url = "esc_emailcampaigns/Microsoft.Dynamics.CRM.UpsertMultiple"
    assert pdv.post(url, json={"Targets": [target(n, esc_numsent=n) for n in (901, 902)]}).status_code == 204
    assert pdv.post(url, json={"Targets": [target(901, esc_numsent=1000)]}).status_code == 204
    failing = pdv.post(url, json={"Targets": [target(902, esc_numsent=5), target(903, esc_numsent="bad")]})
    assert failing.status_code == 400
    rows = pdv.get("esc_emailcampaigns", params={"$select": "esc_dotdigitalcampaignid,esc_numsent",
                                                 "$filter": "esc_dotdigitalcampaignid ge 901"}).json()["value"]
    assert sorted((r["esc_dotdigitalcampaignid"], r["esc_numsent"]) for r in rows) == [(901, 1000), (902, 902)]
    refused = pdv.post("esc_listunsubscribers/Microsoft.Dynamics.CRM.UpsertMultiple",
                       json={"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.esc_listunsubscriber"}]})
    assert refused.status_code == 400 and "not supported" in error_of(refused)["message"]
    created = pdv.post("esc_emailcampaigns/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [
        {"@odata.type": "Microsoft.Dynamics.CRM.esc_emailcampaign", "esc_name": "Bulk",
         "esc_dotdigitalcampaignid": 990, "esc_emailaccountid@odata.bind": f"/esc_emailaccounts({account})"}]})
    assert created.status_code == 200 and len(created.json()["Ids"]) == 1


def _batch(parts: list[str], boundary: str = "batch_abc") -> tuple[str, dict[str, str]]:
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return body, {"Content-Type": f"multipart/mixed; boundary={boundary}"}


def _http_part(method: str, url: str, body: dict | None = None, content_id: int | None = None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1", "Content-Type: application/json; type=entry", ""]
    return "\r\n".join(lines) + "\r\n" + (json.dumps(body) if body is not None else "")


def _change_set(parts: list[str], boundary: str = "changeset_xyz") -> str:
    inner = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--"
    return f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{inner}"


def test_batch_change_sets_are_atomic_and_content_ids_resolve(pdv):
    api = str(pdv.base_url)
    ok, headers = _batch([
        _change_set([_http_part("POST", f"{api}contacts", {"lastname": "Batch-1"}, 1),
                     _http_part("PATCH", "$1", {"firstname": "Linked"}, 2)]),
        _http_part("GET", f"{api}contacts?$select=firstname&$filter=lastname%20eq%20'Batch-1'"),
    ])
    response = pdv.post("$batch", content=ok, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("multipart/mixed")
    assert response.text.count("HTTP/1.1 204 No Content") == 2 and '"firstname":"Linked"' in response.text
    failing, headers = _batch([_change_set([
        _http_part("POST", f"{api}contacts", {"lastname": "Batch-2"}, 1),
        _http_part("POST", f"{api}contacts", {"lastname": "x" * 500}, 2)])])
    rolled_back = pdv.post("$batch", content=failing, headers=headers)
    assert rolled_back.status_code == 400 and "0x80044331" in rolled_back.text
    assert pdv.get("contacts", params={"$filter": "lastname eq 'Batch-2'"}).json()["value"] == []


def test_batch_continue_on_error_and_the_request_limit(pdv):
    api = str(pdv.base_url)
    parts = [_http_part("POST", f"{api}contacts", {"lastname": "x" * 500}),
             _http_part("POST", f"{api}contacts", {"lastname": "After-Error"})]
    body, headers = _batch(parts)
    stopped = pdv.post("$batch", content=body, headers=headers)
    assert stopped.status_code == 400 and stopped.text.count("HTTP/1.1") == 1
    kept_going = pdv.post("$batch", content=body, headers={**headers, "Prefer": "odata.continue-on-error"})
    assert kept_going.status_code == 200 and "HTTP/1.1 204 No Content" in kept_going.text
    too_many, headers = _batch([_http_part("GET", f"{api}WhoAmI")] * 1001)
    refused = pdv.post("$batch", content=too_many, headers=headers)
    assert refused.status_code == 400 and "'1000'" in error_of(refused)["message"]


def test_marketing_list_member_actions(pdv):
    lists = pdv.get("lists", params={"$select": "listid,createdfromcode,type,membercount",
                                     "$filter": "type eq false"}).json()["value"]
    contact_list = next(lst for lst in lists if lst["createdfromcode"] == 2)
    contacts = [c["contactid"] for c in pdv.get("contacts", params={"$select": "contactid"}).json()["value"]]
    members = {m["_entityid_value"] for m in pdv.get("listmembers", params={
        "$filter": f"_listid_value eq {contact_list['listid']}", "$select": "_entityid_value"}).json()["value"]}
    outsiders = [c for c in contacts if c not in members][:3]
    body = {"List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": contact_list["listid"]},
            "Members": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": c} for c in outsiders]}
    assert pdv.post("AddListMembersList", json=body).status_code == 204
    assert pdv.post("AddListMembersList", json=body).status_code == 204  # adding again changes nothing
    after = pdv.get(f"lists({contact_list['listid']})", params={"$select": "membercount"}).json()
    assert after["membercount"] == contact_list["membercount"] + 3
    lead = pdv.get("leads", params={"$select": "leadid", "$top": "1"}).json()["value"][0]["leadid"]
    wrong_type = {**body, "Members": [{"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": lead}]}
    assert pdv.post("AddListMembersList", json=wrong_type).status_code == 400
    removed = pdv.post(f"lists({contact_list['listid']})/Microsoft.Dynamics.CRM.RemoveMemberList",
                       json={"EntityId": outsiders[0]})
    assert removed.status_code == 204
    added = pdv.post(f"lists({contact_list['listid']})/Microsoft.Dynamics.CRM.AddMemberList",
                     json={"EntityId": outsiders[0]})
    assert added.status_code == 200 and "Id" in added.json()
    dynamic = next(lst for lst in pdv.get("lists", params={"$filter": "type eq true"}).json()["value"])
    refused = pdv.post(f"lists({dynamic['listid']})/Microsoft.Dynamics.CRM.AddMemberList",
                       json={"EntityId": outsiders[1]})
    assert refused.status_code == 400

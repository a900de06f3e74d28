"""Contract tests of the metadata writes on a bare organisation over real HTTPS: tables, columns of every type,
lookups, alternate keys with their asynchronous index, change tracking turned on, and the documented errors;
what is created is usable for data at once (keys once Active)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from dotdyn_pipeline.sandbox.dataverse.seed import LISTS
from dotdyn_pipeline.solution import schema as solution
from dotdyn_pipeline_tests.sandbox import bare_helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import error_of

custom_sandbox, cdv, custom_control = bare_helpers.custom_sandbox, bare_helpers.cdv, bare_helpers.custom_control

CRM = "Microsoft.Dynamics.CRM."
IN_SOLUTION = {"MSCRM.SolutionUniqueName": solution.SOLUTION.unique_name}


def label(text: str) -> dict[str, Any]:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}]}


def string_column(schema_name: str, max_length: int = 100, primary: bool = False) -> dict[str, Any]:
    return {"@odata.type": CRM + "StringAttributeMetadata", "SchemaName": schema_name, "MaxLength": max_length,
            "FormatName": {"Value": "Text"}, "DisplayName": label(schema_name), "RequiredLevel": {"Value": "None"},
            **({"IsPrimaryName": True} if primary else {})}


def table_body(schema_name: str, tracked: bool = False) -> dict[str, Any]:
    return {"@odata.type": CRM + "EntityMetadata", "SchemaName": schema_name, "DisplayName": label("Gadget"),
            "DisplayCollectionName": label("Gadgets"), "Description": label("A test table."),
            "OwnershipType": "UserOwned", "HasActivities": False, "HasNotes": False, "IsActivity": False,
            "ChangeTrackingEnabled": tracked, "Attributes": [string_column("esc_Name", primary=True)]}


@pytest.fixture(scope="module")
def publisher(custom_sandbox) -> str:
    """The solution's publisher and solution, created as provisioning creates them."""
    with bare_helpers.web_api(custom_sandbox) as client:
        created = client.post("publishers", json={
            "uniquename": solution.PUBLISHER.unique_name, "friendlyname": solution.PUBLISHER.friendly_name,
            "customizationprefix": solution.PREFIX,
            "customizationoptionvalueprefix": solution.PUBLISHER.option_value_prefix})
        assert created.status_code == 204, created.text
        publisher_url = created.headers["OData-EntityId"]
        client.post("solutions", json={
            "uniquename": solution.SOLUTION.unique_name, "friendlyname": solution.SOLUTION.friendly_name,
            "version": solution.SOLUTION.version, "publisherid@odata.bind": publisher_url[publisher_url.index(
                "/publishers("):]}).raise_for_status()
    return solution.PREFIX


def create_table(client: httpx.Client, name: str, tracked: bool = False) -> tuple[str, str]:
    """A new table named `esc_<name>`: (logical name, entity set)."""
    response = client.post("EntityDefinitions", json=table_body(f"esc_{name}", tracked), headers=IN_SOLUTION)
    assert response.status_code == 204, response.text
    assert "/EntityDefinitions(" in response.headers["OData-EntityId"]
    logical = f"esc_{name}".lower()
    found = client.get("EntityDefinitions", params={"$select": "EntitySetName",
                                                    "$filter": f"LogicalName eq '{logical}'"}).json()["value"]
    return logical, found[0]["EntitySetName"]


def add_column(client: httpx.Client, logical: str, body: dict[str, Any]) -> httpx.Response:
    return client.post(f"EntityDefinitions(LogicalName='{logical}')/Attributes", json=body, headers=IN_SOLUTION)


def wait_for_key(client: httpx.Client, logical: str, wanted: str) -> dict[str, Any]:
    """Poll the key's index status (Dataverse builds it asynchronously) until it is no longer Pending."""
    deadline = time.monotonic() + 10 * bare_helpers.KEY_INDEX_SECONDS
    while True:
        [key] = client.get(f"EntityDefinitions(LogicalName='{logical}')/Keys",
                           params={"$select": "SchemaName,KeyAttributes,EntityKeyIndexStatus"}).json()["value"]
        if key["EntityKeyIndexStatus"] != "Pending" or time.monotonic() > deadline:
            assert key["EntityKeyIndexStatus"] == wanted
            return key
        time.sleep(0.1)


def test_a_created_table_has_its_columns_and_takes_rows(cdv, publisher):
    logical, entity_set = create_table(cdv, "Gadget")
    assert (logical, entity_set) == ("esc_gadget", "esc_gadgets")
    table = cdv.get(f"EntityDefinitions(LogicalName='{logical}')").json()
    assert (table["SchemaName"], table["IsCustomEntity"], table["OwnershipType"], table["PrimaryIdAttribute"],
            table["ChangeTrackingEnabled"]) == ("esc_Gadget", True, "UserOwned", "esc_gadgetid", False)
    assert table["DisplayName"]["UserLocalizedLabel"]["Label"] == "Gadget"
    names = {a["LogicalName"] for a in cdv.get(f"EntityDefinitions(LogicalName='{logical}')/Attributes",
                                               params={"$select": "LogicalName"}).json()["value"]}
    assert {"esc_gadgetid", table["PrimaryNameAttribute"], "statecode", "statuscode", "createdon", "modifiedon",
            "versionnumber", "ownerid", "owningbusinessunit"} <= names
    created = cdv.post(entity_set, json={table["PrimaryNameAttribute"]: "first"})
    assert created.status_code == 204
    assert cdv.get(created.headers["OData-EntityId"]).json()[table["PrimaryNameAttribute"]] == "first"
    privileges = cdv.get("privileges", params={"$select": "name", "$filter": f"name eq 'prvRead{table['SchemaName']}'"
                                               f" or name eq 'prvRead{logical}'"}).json()["value"]
    assert privileges, "Dataverse creates the table's privileges with it"


def test_columns_of_every_type_appear_in_metadata_select_and_data(cdv, publisher):
    logical, entity_set = create_table(cdv, "Widget")
    columns = {
        "esc_code": string_column("esc_Code", 20),
        "esc_notes": {"@odata.type": CRM + "MemoAttributeMetadata", "SchemaName": "esc_Notes", "MaxLength": 2000},
        "esc_count": {"@odata.type": CRM + "IntegerAttributeMetadata", "SchemaName": "esc_Count"},
        "esc_big": {"@odata.type": CRM + "BigIntAttributeMetadata", "SchemaName": "esc_Big"},
        "esc_ratio": {"@odata.type": CRM + "DoubleAttributeMetadata", "SchemaName": "esc_Ratio"},
        "esc_share": {"@odata.type": CRM + "DecimalAttributeMetadata", "SchemaName": "esc_Share"},
        "esc_price": {"@odata.type": CRM + "MoneyAttributeMetadata", "SchemaName": "esc_Price"},
        "esc_active": {"@odata.type": CRM + "BooleanAttributeMetadata", "SchemaName": "esc_Active",
                       "OptionSet": {"TrueOption": {"Value": 1, "Label": label("On")},
                                     "FalseOption": {"Value": 0, "Label": label("Off")}}},
        "esc_day": {"@odata.type": CRM + "DateTimeAttributeMetadata", "SchemaName": "esc_Day", "Format": "DateOnly"},
        "esc_seen": {"@odata.type": CRM + "DateTimeAttributeMetadata", "SchemaName": "esc_Seen",
                     "Format": "DateAndTime"},
        "esc_colour": {"@odata.type": CRM + "PicklistAttributeMetadata", "SchemaName": "esc_Colour",
                       "OptionSet": {"IsGlobal": False, "OptionSetType": "Picklist", "Options": [
                           {"Value": 721200000, "Label": label("Red")}, {"Value": 721200001, "Label": label("Blue")}]}},
    }
    for body in columns.values():
        response = add_column(cdv, logical, body)
        assert response.status_code == 204, response.text
        assert "/Attributes(" in response.headers["OData-EntityId"]
    attributes = {a["LogicalName"]: a for a in cdv.get(f"EntityDefinitions(LogicalName='{logical}')/Attributes"
                                                       ).json()["value"]}
    assert {name: attributes[name]["AttributeType"] for name in columns} == {
        "esc_code": "String", "esc_notes": "Memo", "esc_count": "Integer", "esc_big": "BigInt", "esc_ratio": "Double",
        "esc_share": "Decimal", "esc_price": "Money", "esc_active": "Boolean", "esc_day": "DateTime",
        "esc_seen": "DateTime", "esc_colour": "Picklist"}
    assert attributes["esc_code"]["MaxLength"] == 20 and attributes["esc_code"]["IsCustomAttribute"] is True
    colour = cdv.get(f"EntityDefinitions(LogicalName='{logical}')/Attributes(LogicalName='esc_colour')/"
                     f"{CRM}PicklistAttributeMetadata", params={"$select": "LogicalName",
                                                                 "$expand": "OptionSet($select=Options)"}).json()
    assert [o["Value"] for o in colour["OptionSet"]["Options"]] == [721200000, 721200001]
    active = cdv.get(f"EntityDefinitions(LogicalName='{logical}')/Attributes(LogicalName='esc_active')/"
                     f"{CRM}BooleanAttributeMetadata", params={"$expand": "OptionSet"}).json()
    assert active["OptionSet"]["TrueOption"]["Label"]["UserLocalizedLabel"]["Label"] == "On"

    values = {"esc_code": "W-1", "esc_notes": "long text", "esc_count": 3, "esc_big": 2 ** 40, "esc_ratio": 0.5,
              "esc_share": 1.25, "esc_price": 9.99, "esc_active": True, "esc_day": "2025-03-01",
              "esc_seen": "2025-03-01T10:00:00Z", "esc_colour": 721200001}
    created = cdv.post(entity_set, json=values)
    assert created.status_code == 204, created.text
    row = cdv.get(created.headers["OData-EntityId"], params={"$select": ",".join(values)}).json()
    assert {name: row[name] for name in values} == values
    too_long = cdv.post(entity_set, json={"esc_code": "x" * 21})
    assert too_long.status_code == 400


def test_a_lookup_from_a_relationship_is_read_as_its_value_and_bound(cdv, publisher):
    logical, entity_set = create_table(cdv, "Visit")
    body = {"@odata.type": CRM + "OneToManyRelationshipMetadata", "SchemaName": "esc_account_esc_visit",
            "ReferencedEntity": "account", "ReferencedAttribute": "accountid", "ReferencingEntity": logical,
            "Lookup": {"@odata.type": CRM + "LookupAttributeMetadata", "SchemaName": "esc_AccountId",
                       "DisplayName": label("Account"), "RequiredLevel": {"Value": "None"}},
            "CascadeConfiguration": {"Assign": "NoCascade", "Delete": "RemoveLink", "Merge": "NoCascade",
                                     "Reparent": "NoCascade", "Share": "NoCascade", "Unshare": "NoCascade"},
            "AssociatedMenuConfiguration": {"Behavior": "UseCollectionName", "Group": "Details", "Order": 10000}}
    response = cdv.post("RelationshipDefinitions", json=body, headers=IN_SOLUTION)
    assert response.status_code == 204, response.text
    relationship = cdv.get(response.headers["OData-EntityId"]).json()
    assert (relationship["ReferencingAttribute"], relationship["ReferencedEntity"]) == ("esc_accountid", "account")
    to_one = cdv.get(f"EntityDefinitions(LogicalName='{logical}')", params={
        "$select": "LogicalName", "$expand": "ManyToOneRelationships($select=SchemaName,ReferencedEntity,"
                                             "ReferencingAttribute)"}).json()["ManyToOneRelationships"]
    assert {(r["SchemaName"], r["ReferencedEntity"]) for r in to_one} >= {("esc_account_esc_visit", "account")}
    account = cdv.get("accounts", params={"$select": "accountid", "$top": "1"}).json()["value"][0]["accountid"]
    created = cdv.post(entity_set, json={"esc_accountid@odata.bind": f"/accounts({account})"})
    assert created.status_code == 204, created.text
    row = cdv.get(created.headers["OData-EntityId"], params={"$select": "_esc_accountid_value"}).json()
    assert row["_esc_accountid_value"] == account
    again = cdv.post("RelationshipDefinitions", json=body)
    assert again.status_code == 400 and "esc_account_esc_visit" in error_of(again)["message"]


def many_to_many_body(schema_name: str, entity1: str, entity2: str, intersect: str, **extra: str) -> dict[str, Any]:
    menu = {"Behavior": "UseCollectionName", "Group": "Details", "Label": label("Related"), "Order": 10000}
    return {"@odata.type": CRM + "ManyToManyRelationshipMetadata", "SchemaName": schema_name,
            "Entity1LogicalName": entity1, "Entity2LogicalName": entity2, "IntersectEntityName": intersect,
            "Entity1AssociatedMenuConfiguration": menu, "Entity2AssociatedMenuConfiguration": menu, **extra}


def test_a_many_to_many_relationship_is_created_with_its_intersect_and_links_rows(cdv, custom_sandbox, publisher):
    logical, entity_set = create_table(cdv, "Tag")
    response = cdv.post("RelationshipDefinitions", json=many_to_many_body("esc_contact_tag", "contact", logical,
                                                                          "esc_contact_tag"), headers=IN_SOLUTION)
    assert response.status_code == 204, response.text
    assert "/RelationshipDefinitions(" in response.headers["OData-EntityId"]
    made = cdv.get(response.headers["OData-EntityId"]).json()
    assert (made["@odata.type"], made["Entity1LogicalName"], made["Entity2LogicalName"], made["IntersectEntityName"],
            made["Entity1NavigationPropertyName"], made["Entity2NavigationPropertyName"]) == (
        f"#{CRM}ManyToManyRelationshipMetadata", "contact", logical, "esc_contact_tag", "esc_contact_tag",
        "esc_contact_tag")
    intersect = cdv.get("EntityDefinitions(LogicalName='esc_contact_tag')", params={
        "$select": "IsIntersect", "$expand": "Attributes($select=LogicalName)"}).json()
    assert intersect["IsIntersect"] is True
    assert {"contactid", f"{logical}id"} <= {a["LogicalName"] for a in intersect["Attributes"]}
    components = cdv.get("solutioncomponents", params={"$select": "componenttype",
                                                       "$filter": f"objectid eq {made['MetadataId']}"}).json()
    assert [c["componenttype"] for c in components["value"]] == [10], "MSCRM.SolutionUniqueName adds it"

    api = f"{custom_sandbox['dataverse_url']}/api/data/{custom_sandbox['dataverse_api_version']}"
    tag = cdv.post(entity_set, json={"esc_name": "VIP"}).headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    contact = cdv.get("contacts", params={"$select": "contactid", "$top": "1"}).json()["value"][0]["contactid"]
    linked = cdv.post(f"contacts({contact})/esc_contact_tag/$ref", json={"@odata.id": f"{api}/{entity_set}({tag})"})
    assert linked.status_code == 204, linked.text
    tags = cdv.get(f"contacts({contact})/esc_contact_tag", params={"$select": "esc_name"}).json()["value"]
    assert [t["esc_name"] for t in tags] == ["VIP"]

    named = cdv.post("RelationshipDefinitions", json=many_to_many_body(
        "esc_account_tag", "account", logical, "esc_account_tag", Entity1NavigationPropertyName="esc_tags",
        Entity2NavigationPropertyName="esc_accounts"))
    assert named.status_code == 204, named.text
    account = cdv.get("accounts", params={"$select": "accountid", "$top": "1"}).json()["value"][0]["accountid"]
    assert cdv.post(f"{entity_set}({tag})/esc_accounts/$ref",
                    json={"@odata.id": f"{api}/accounts({account})"}).status_code == 204
    assert [t[f"{logical}id"] for t in cdv.get(f"accounts({account})/esc_tags").json()["value"]] == [tag]

    refusals = {
        "the same name": (many_to_many_body("esc_contact_tag", "contact", logical, "esc_other"), 400),
        "an unknown table": (many_to_many_body("esc_lead_tag", "lead", "esc_nosuchtable", "esc_lead_tag"), 404),
        "a table with itself": (many_to_many_body("esc_tag_tag", logical, logical, "esc_tag_tag"), 400),
        "an intersect that is a table": (many_to_many_body("esc_lead_tag", "lead", logical, logical), 400),
        "an intersect without the prefix": (many_to_many_body("esc_lead_tag", "lead", logical, "lead_tag"), 400),
    }
    for what, (body, status) in refusals.items():
        refused = cdv.post("RelationshipDefinitions", json=body)
        assert refused.status_code == status, (what, refused.text)
    assert error_of(cdv.post("RelationshipDefinitions", json=refusals["the same name"][0]))["code"] == "0x80044363"


def test_an_alternate_key_is_pending_then_active_and_then_upserts(cdv, publisher):
    logical, entity_set = create_table(cdv, "Ticket")
    assert add_column(cdv, logical, string_column("esc_Number", 20)).status_code == 204
    response = cdv.post(f"EntityDefinitions(LogicalName='{logical}')/Keys", json={
        "SchemaName": "esc_ticket_number", "DisplayName": label("Number"), "KeyAttributes": ["esc_number"]},
        headers=IN_SOLUTION)
    assert response.status_code == 204 and "/Keys(" in response.headers["OData-EntityId"]
    pending = cdv.patch(f"{entity_set}(esc_number='T-1')", json={"esc_number": "T-1"})
    assert pending.status_code == 400 and "esc_ticket_number" in error_of(pending)["message"]
    key = wait_for_key(cdv, logical, "Active")
    assert (key["SchemaName"], key["KeyAttributes"]) == ("esc_ticket_number", ["esc_number"])
    created = cdv.patch(f"{entity_set}(esc_number='T-1')", json={}, headers={"Prefer": "return=representation"})
    assert created.status_code == 201
    updated = cdv.patch(f"{entity_set}(esc_number='T-1')", json={"esc_number": "T-1"})
    assert updated.status_code == 204
    assert int(cdv.get(f"{entity_set}/$count").text) == 1
    assert cdv.get(f"{entity_set}(esc_number='T-1')").json()[f"{logical}id"] == created.json()[f"{logical}id"]


def test_a_key_on_duplicated_values_fails_its_index(cdv, publisher):
    logical, entity_set = create_table(cdv, "Badge")
    assert add_column(cdv, logical, string_column("esc_Serial", 20)).status_code == 204
    for _ in range(2):
        assert cdv.post(entity_set, json={"esc_serial": "same"}).status_code == 204
    response = cdv.post(f"EntityDefinitions(LogicalName='{logical}')/Keys",
                        json={"SchemaName": "esc_badge_serial", "KeyAttributes": ["esc_serial"]})
    assert response.status_code == 204
    wait_for_key(cdv, logical, "Failed")
    refused = cdv.patch(f"{entity_set}(esc_serial='same')", json={})
    assert refused.status_code == 400 and "failed" in error_of(refused)["message"]


def test_change_tracking_turned_on_gives_a_delta_link_and_labels_merge(cdv, publisher):
    logical, entity_set = create_table(cdv, "Pass")
    tracked = {"Prefer": "odata.track-changes"}
    assert "@odata.deltaLink" not in cdv.get(entity_set, headers=tracked).json()
    definition = cdv.get(f"EntityDefinitions(LogicalName='{logical}')").json()
    definition.pop("@odata.context")
    changed = {**definition, "ChangeTrackingEnabled": True, "DisplayName": label("Pass (tracked)")}
    response = cdv.put(f"EntityDefinitions(LogicalName='{logical}')", json=changed,
                       headers={"MSCRM.MergeLabels": "true"})
    assert response.status_code == 204, response.text
    after = cdv.get(f"EntityDefinitions(LogicalName='{logical}')").json()
    assert after["ChangeTrackingEnabled"] is True
    assert after["DisplayName"]["UserLocalizedLabel"]["Label"] == "Pass (tracked)"
    assert after["Description"]["UserLocalizedLabel"]["Label"] == "A test table."
    assert cdv.post(entity_set, json={}).status_code == 204
    first = cdv.get(entity_set, headers=tracked).json()
    assert len(first["value"]) == 1 and "@odata.deltaLink" in first
    assert cdv.post(entity_set, json={}).status_code == 204
    assert len(cdv.get(first["@odata.deltaLink"]).json()["value"]) == 1


def test_metadata_writes_answer_the_documented_errors(cdv, publisher):
    logical, _ = create_table(cdv, "Crate")
    duplicate = cdv.post("EntityDefinitions", json=table_body("esc_Crate"))
    assert duplicate.status_code == 400 and "esc_Crate" in error_of(duplicate)["message"]
    no_prefix = cdv.post("EntityDefinitions", json=table_body("xyz_Crate"))
    assert no_prefix.status_code == 400 and error_of(no_prefix)["code"] == "0x80040203"
    assert add_column(cdv, logical, string_column("esc_Label")).status_code == 204
    twice = add_column(cdv, logical, string_column("esc_Label"))
    assert twice.status_code == 400 and "esc_Label" in error_of(twice)["message"]
    unknown_type = add_column(cdv, logical, {"@odata.type": CRM + "ImageAttributeMetadata", "SchemaName": "esc_Pic"})
    assert unknown_type.status_code == 400 and "ImageAttributeMetadata" in error_of(unknown_type)["message"]
    unknown_table = add_column(cdv, "esc_nosuchtable", string_column("esc_Other"))
    assert unknown_table.status_code == 404 and "MetadataCache" in error_of(unknown_table)["message"]
    unknown_solution = cdv.post("EntityDefinitions", json=table_body("esc_Box"),
                                headers={"MSCRM.SolutionUniqueName": "NoSuchSolution"})
    assert unknown_solution.status_code == 404
    no_primary = cdv.post("EntityDefinitions", json={**table_body("esc_Bin"), "Attributes": []})
    assert no_primary.status_code == 400
    deleted = cdv.delete(f"EntityDefinitions(LogicalName='{logical}')")
    assert deleted.status_code == 405 and set(deleted.json()) == {"error"}


def test_solution_data_fills_the_provisioned_setup_tables(cdv, custom_control, publisher):
    lookups = []
    for table in solution.TABLES:
        if table.logical_name not in ("esc_emailaccount", "esc_emailcampaigncustomfields", "esc_emaildatamapping",
                                      "esc_emailcampaignconfiguration", "esc_marketingpreference", "esc_crmfield"):
            continue
        body = table_body(table.logical_name, tracked=table.change_tracking)
        body["Attributes"] = [string_column(table.primary_name, primary=True)]
        body["EntitySetName"] = table.entity_set
        assert cdv.post("EntityDefinitions", json=body).status_code == 204
        lookups += _columns(cdv, table.logical_name, table.columns[2:len(table.columns) - len(
            solution.SYSTEM_COLUMNS)])
    lookups += _columns(cdv, "list", solution.EXTENSIONS["list"])
    for referencing, column in lookups:
        response = cdv.post("RelationshipDefinitions", json={
            "@odata.type": CRM + "OneToManyRelationshipMetadata",
            "SchemaName": f"{column.targets[0]}_{referencing}_{column.name}", "ReferencedEntity": column.targets[0],
            "ReferencingEntity": referencing, "Lookup": {"@odata.type": CRM + "LookupAttributeMetadata",
                                                         "SchemaName": column.name}})
        assert response.status_code == 204, response.text
    filled = custom_control.post("/dataverse/solution-data")
    assert filled.status_code == 200, filled.text
    assert filled.json()["rows"]["esc_emailaccount"] == 2
    accounts = cdv.get("esc_emailaccounts", params={"$select": "esc_apiuser"}).json()["value"]
    assert len(accounts) == 2
    activated = cdv.get("lists", params={"$select": "listname", "$filter": "esc_activatedforemail eq true"})
    assert len(activated.json()["value"]) == 2 * sum(1 for *_, email, _ in LISTS if email), "every account's lists"


def _columns(client: httpx.Client, logical: str, columns) -> list[tuple[str, Any]]:
    """Create the definition's columns on `logical`; returns the lookups, which need relationships."""
    types = {"String": "StringAttributeMetadata", "Integer": "IntegerAttributeMetadata",
             "Boolean": "BooleanAttributeMetadata", "DateTime": "DateTimeAttributeMetadata"}
    lookups = []
    for column in columns:
        if column.is_lookup:
            lookups.append((logical, column))
            continue
        body = {"@odata.type": CRM + types[column.type], "SchemaName": column.name}
        if column.type == "String":
            body["MaxLength"] = column.max_length
        assert add_column(client, logical, body).status_code == 204
    return lookups

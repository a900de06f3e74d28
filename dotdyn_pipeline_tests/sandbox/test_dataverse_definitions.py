"""Contract tests of the metadata reads (EntityDefinitions, Attributes, Keys, relationships) over real HTTPS, in
the shapes Microsoft documents and the three real clients read (PowerPlatform-Dataverse-Client, Airbyte's
source, dataverse-api)."""

from __future__ import annotations

from typing import Any

from dotdyn_pipeline_tests.sandbox import bare_helpers
from dotdyn_pipeline_tests.sandbox import dataverse_helpers as helpers
from dotdyn_pipeline_tests.sandbox.dataverse_helpers import error_of

dv = helpers.dv
bare_sandbox, bare_dv = bare_helpers.bare_sandbox, bare_helpers.bare_dv

LABEL_KEYS = {"LocalizedLabels", "UserLocalizedLabel"}


def _lists_hold_objects(value: Any) -> bool:
    """Every list anywhere in `value` holds only objects (dataverse-api converts each element's keys)."""
    if isinstance(value, list):
        return all(isinstance(v, dict) and _lists_hold_objects(v) for v in value)
    if isinstance(value, dict):
        return all(_lists_hold_objects(v) for v in value.values())
    return True


def _names(client, **params: str) -> set[str]:
    response = client.get("EntityDefinitions", params={"$select": "LogicalName", **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "@odata.nextLink" not in body
    return {d["LogicalName"] for d in body["value"]}


def test_the_collection_filters_on_the_documented_properties(dv):
    custom = _names(dv, **{"$filter": "IsCustomEntity eq true"})
    assert "esc_emailaccount" in custom and "contact" not in custom
    user_owned = _names(dv, **{"$filter": "OwnershipType eq Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned' and "
                                          "IsCustomEntity eq false"})
    assert {"contact", "lead", "account"} <= user_owned and "listmember" not in user_owned
    assert "esc_emailaccount" not in user_owned
    trackable = _names(dv, **{"$filter": "CanChangeTrackingBeEnabled/Value eq true and ChangeTrackingEnabled eq "
                                         "false"})
    assert {"campaign", "esc_crmfield"} <= trackable and "contact" not in trackable
    either = _names(dv, **{"$filter": "(LogicalName eq 'contact' or EntitySetName eq 'leads') and not "
                                      "(IsPrivate eq true) and IsActivity eq false and IsValidForAdvancedFind eq true"})
    assert either == {"contact", "lead"}
    assert _names(dv, **{"$filter": "SchemaName ne 'Contact' and LogicalName eq 'contact'"}) == set()
    refused = dv.get("EntityDefinitions", params={"$filter": "NoSuchProperty eq true"})
    assert refused.status_code == 400 and "NoSuchProperty" in error_of(refused)["message"]
    for option in ("$top", "$orderby", "$skip"):
        refused = dv.get("EntityDefinitions", params={option: "1"})
        assert refused.status_code == 400 and error_of(refused)["code"] == "0x80060888"


def test_the_whole_collection_expands_attributes_as_airbyte_discovers(dv):
    body = dv.get("EntityDefinitions", params={
        "$select": "LogicalName,EntitySetName,PrimaryIdAttribute,CanChangeTrackingBeEnabled,ChangeTrackingEnabled",
        "$expand": "Attributes($select=LogicalName,AttributeType)"}).json()
    by_name = {d["LogicalName"]: d for d in body["value"]}
    contact = by_name["contact"]
    assert contact["CanChangeTrackingBeEnabled"]["Value"] is True and contact["ChangeTrackingEnabled"] is True
    types = {a["LogicalName"]: a["AttributeType"] for a in contact["Attributes"]}
    assert (types["parentcustomerid"], types["birthdate"], types["donotemailname"]) == (
        "Customer", "DateTime", "Virtual")
    assert set(contact["Attributes"][0]) <= {"@odata.type", "MetadataId", "LogicalName", "AttributeType"}
    filtered = dv.get("EntityDefinitions(LogicalName='esc_emailaccount')", params={
        "$select": "LogicalName", "$expand": "Attributes($select=LogicalName;$filter=AttributeType eq 'Boolean'),"
                                             "Keys($select=SchemaName,KeyAttributes),ManyToOneRelationships("
                                             "$select=SchemaName,ReferencedEntity,ReferencingAttribute)"}).json()
    assert {a["LogicalName"] for a in filtered["Attributes"]} == {"esc_isdefault", "esc_csvformulaprotection"}
    assert [k["KeyAttributes"] for k in filtered["Keys"]] == [["esc_apiuser"]]
    assert {(r["SchemaName"], r["ReferencedEntity"]) for r in filtered["ManyToOneRelationships"]} == {
        ("lk_esc_emailaccount_createdby", "systemuser"), ("lk_esc_emailaccount_createdonbehalfby", "systemuser")}


def test_one_definition_has_the_documented_properties(bare_dv):
    response = bare_dv.get("EntityDefinitions(LogicalName='contact')")
    assert response.status_code == 200
    contact = response.json()
    assert contact["@odata.context"].endswith("$metadata#EntityDefinitions/$entity")
    assert (contact["LogicalName"], contact["SchemaName"], contact["EntitySetName"],
            contact["LogicalCollectionName"], contact["PrimaryIdAttribute"], contact["PrimaryNameAttribute"],
            contact["ObjectTypeCode"], contact["OwnershipType"]) == (
        "contact", "Contact", "contacts", "contacts", "contactid", "fullname", 2, "UserOwned")
    assert "PrimaryImageAttribute" in contact and contact["PrimaryImageAttribute"] is None
    assert contact["CanChangeTrackingBeEnabled"] == {"Value": True, "CanBeChanged": True,
                                                     "ManagedPropertyLogicalName": "canchangetrackingbeenabled"}
    for name in ("DisplayName", "DisplayCollectionName", "Description"):
        assert set(contact[name]) == LABEL_KEYS
    assert contact["DisplayName"]["LocalizedLabels"][0]["LanguageCode"] == 1033
    assert all(isinstance(contact[n], bool) for n in ("IsCustomEntity", "IsActivity", "IsPrivate", "HasActivities",
                                                       "HasNotes", "IsManaged", "ChangeTrackingEnabled"))
    assert "Attributes" not in contact and _lists_hold_objects(contact)
    by_id = bare_dv.get(f"EntityDefinitions({contact['MetadataId']})", params={"$select": "LogicalName"}).json()
    assert by_id["LogicalName"] == "contact" and set(by_id) == {"@odata.context", "MetadataId", "LogicalName"}
    chosen = bare_dv.get("EntityDefinitions(LogicalName='contact')", params={
        "$select": "EntitySetName,PrimaryIdAttribute,PrimaryImageAttribute"}).json()
    assert (chosen["EntitySetName"], chosen["PrimaryIdAttribute"], chosen["PrimaryImageAttribute"]) == (
        "contacts", "contactid", None)
    for missing in ("EntityDefinitions(LogicalName='nosuchtable')",
                    "EntityDefinitions(00000000-0000-0000-0000-000000000001)"):
        response = bare_dv.get(missing)
        assert response.status_code == 404 and error_of(response)["code"] == "0x80040217"
        assert "MetadataCache" in error_of(response)["message"]


def test_attributes_are_typed_and_castable(bare_dv):
    attributes = bare_dv.get("EntityDefinitions(LogicalName='contact')/Attributes").json()["value"]
    by_name = {a["LogicalName"]: a for a in attributes}
    firstname = by_name["firstname"]
    assert firstname["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    assert (firstname["AttributeType"], firstname["AttributeTypeName"], firstname["MaxLength"],
            firstname["FormatName"], firstname["IsCustomAttribute"], firstname["RequiredLevel"]["Value"]) == (
        "String", {"Value": "StringType"}, 50, {"Value": "Text"}, False, "None")
    assert by_name["contactid"]["IsPrimaryId"] and by_name["fullname"]["IsPrimaryName"]
    assert by_name["parentcustomerid"]["Targets"] == ["account", "contact"]
    assert by_name["createdon"]["IsValidForCreate"] is False and by_name["parentcustomeridname"]["AttributeOf"] == (
        "parentcustomerid")
    assert set(by_name["donotemail"]["DisplayName"]) == LABEL_KEYS

    dates = bare_dv.get("EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM."
                        "DateTimeAttributeMetadata", params={"$select": "LogicalName,DateTimeBehavior"}).json()
    assert {d["LogicalName"]: d["DateTimeBehavior"]["Value"] for d in dates["value"]} == {
        "birthdate": "DateOnly", "createdon": "UserLocal", "modifiedon": "UserLocal"}

    picklists = bare_dv.get("EntityDefinitions(LogicalName='list')/Attributes/Microsoft.Dynamics.CRM."
                            "PicklistAttributeMetadata", params={"$select": "LogicalName",
                                                                 "$expand": "OptionSet($select=Options)"}).json()
    [member_type] = picklists["value"]
    assert member_type["LogicalName"] == "createdfromcode"
    assert [(o["Value"], o["Label"]["LocalizedLabels"][0]["Label"]) for o in member_type["OptionSet"]["Options"]] == [
        (1, "Account"), (2, "Contact"), (4, "Lead")]
    none = bare_dv.get("EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM."
                       "PicklistAttributeMetadata", params={"$select": "LogicalName",
                                                            "$expand": "OptionSet($select=Options)"})
    assert none.status_code == 200 and none.json()["value"] == []

    boolean = bare_dv.get("EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='donotemail')/"
                          "Microsoft.Dynamics.CRM.BooleanAttributeMetadata", params={"$expand": "OptionSet"}).json()
    assert (boolean["OptionSet"]["TrueOption"]["Value"], boolean["OptionSet"]["FalseOption"]["Value"]) == (1, 0)
    by_id = bare_dv.get(f"EntityDefinitions(LogicalName='contact')/Attributes({firstname['MetadataId']})",
                        params={"$select": "LogicalName,MaxLength"})
    assert by_id.status_code == 400, "MaxLength needs the cast to StringAttributeMetadata"
    by_id = bare_dv.get(f"EntityDefinitions(LogicalName='contact')/Attributes({firstname['MetadataId']})",
                        params={"$select": "LogicalName,AttributeType"}).json()
    assert (by_id["LogicalName"], by_id["AttributeType"]) == ("firstname", "String")
    filtered = bare_dv.get("EntityDefinitions(LogicalName='contact')/Attributes", params={
        "$select": "LogicalName", "$filter": "AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Customer'"})
    assert [a["LogicalName"] for a in filtered.json()["value"]] == ["parentcustomerid"]
    unknown = bare_dv.get("EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='nosuchcolumn')")
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "0x80040217"


def test_keys_and_relationships(dv):
    keys = dv.get("EntityDefinitions(LogicalName='esc_emailsupression')/Keys",
                  params={"$select": "SchemaName,KeyAttributes,EntityKeyIndexStatus"}).json()["value"]
    assert [(k["KeyAttributes"], k["EntityKeyIndexStatus"]) for k in keys] == [
        (["esc_emailaccountid", "esc_email"], "Active")]
    one = dv.get(f"EntityDefinitions(LogicalName='esc_emailsupression')/Keys(LogicalName='{keys[0]['SchemaName']}')"
                 ).json()
    assert one["KeyAttributes"] == ["esc_emailaccountid", "esc_email"]

    to_one = dv.get("EntityDefinitions(LogicalName='contact')/ManyToOneRelationships").json()["value"]
    customer = [r for r in to_one if r["ReferencingAttribute"] == "parentcustomerid"]
    assert {r["ReferencedEntity"] for r in customer} == {"account", "contact"}
    assert {r["ReferencingEntityNavigationPropertyName"] for r in customer} == {
        "parentcustomerid_account", "parentcustomerid_contact"}
    to_many = dv.get("EntityDefinitions(LogicalName='esc_emailaccount')/OneToManyRelationships").json()["value"]
    assert all(r["ReferencedEntityNavigationPropertyName"] and r["ReferencingEntityNavigationPropertyName"]
               for r in to_many)
    assert {"esc_emailcampaign", "list"} <= {r["ReferencingEntity"] for r in to_many}
    assert dv.get("EntityDefinitions(LogicalName='contact')/ManyToManyRelationships").json()["value"] == []

    name = customer[0]["SchemaName"]
    found = dv.get("RelationshipDefinitions", params={"$filter": f"SchemaName eq '{name}'"}).json()["value"]
    assert [r["MetadataId"] for r in found] == [customer[0]["MetadataId"]]
    single = dv.get(f"RelationshipDefinitions({customer[0]['MetadataId']})").json()
    assert (single["SchemaName"], single["@odata.type"]) == (name, "#Microsoft.Dynamics.CRM."
                                                                   "OneToManyRelationshipMetadata")


def test_metadata_document_and_service_document_name_the_tables(bare_dv, dv):
    assert "esc_emailaccounts" not in {s["name"] for s in bare_dv.get("").json()["value"]}
    assert {"contacts", "esc_emailaccounts", "EntityDefinitions"} <= {s["name"] for s in dv.get("").json()["value"]}
    assert 'EntitySet Name="esc_emailaccounts"' in dv.get("$metadata").text
    assert 'EntitySet Name="esc_emailaccounts"' not in bare_dv.get("$metadata").text

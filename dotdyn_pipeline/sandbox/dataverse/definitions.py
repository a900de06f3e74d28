"""The organisation's metadata as the Web API serves it, computed from the catalog: EntityMetadata, the typed
AttributeMetadata of each column (and of the columns Dataverse derives from them), EntityKeyMetadata,
OneToManyRelationshipMetadata and ManyToManyRelationshipMetadata, with the documented property names and shapes
(Labels, managed properties, enum members as strings)."""

from __future__ import annotations

from typing import Any

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog, Relationship, metadata_id
from dotdyn_pipeline.sandbox.dataverse.schema import READ_ONLY, Column, ManyToMany, Table
from dotdyn_pipeline.solution import schema as solution

CRM = "Microsoft.Dynamics.CRM."
LANGUAGE = 1033
#: Attribute type -> (AttributeMetadata type, AttributeTypeName). DateOnly is a DateTime column whose
#: behaviour is DateOnly; Owner is the ownerid lookup Dataverse adds to user-owned tables.
ATTRIBUTE_TYPES: dict[str, tuple[str, str]] = {
    "String": ("StringAttributeMetadata", "StringType"), "Memo": ("MemoAttributeMetadata", "MemoType"),
    "Integer": ("IntegerAttributeMetadata", "IntegerType"), "BigInt": ("BigIntAttributeMetadata", "BigIntType"),
    "Double": ("DoubleAttributeMetadata", "DoubleType"), "Decimal": ("DecimalAttributeMetadata", "DecimalType"),
    "Money": ("MoneyAttributeMetadata", "MoneyType"), "Boolean": ("BooleanAttributeMetadata", "BooleanType"),
    "DateTime": ("DateTimeAttributeMetadata", "DateTimeType"), "DateOnly": ("DateTimeAttributeMetadata",
                                                                           "DateTimeType"),
    "Picklist": ("PicklistAttributeMetadata", "PicklistType"), "State": ("StateAttributeMetadata", "StateType"),
    "Status": ("StatusAttributeMetadata", "StatusType"), "Lookup": ("LookupAttributeMetadata", "LookupType"),
    "Customer": ("LookupAttributeMetadata", "CustomerType"), "Owner": ("LookupAttributeMetadata", "OwnerType"),
    "Uniqueidentifier": ("UniqueIdentifierAttributeMetadata", "UniqueidentifierType"),
    "EntityName": ("EntityNameAttributeMetadata", "EntityNameType"), "Virtual": ("AttributeMetadata", "VirtualType"),
}
#: Properties every AttributeMetadata has (what `$select` and `$filter` take without a cast).
ATTRIBUTE_PROPERTIES = {
    "MetadataId", "LogicalName", "SchemaName", "EntityLogicalName", "AttributeType", "AttributeTypeName",
    "AttributeOf", "ColumnNumber", "DisplayName", "Description", "IsCustomAttribute", "IsManaged", "IsPrimaryId",
    "IsPrimaryName", "IsValidForRead", "IsValidForCreate", "IsValidForUpdate", "IsValidForAdvancedFind",
    "IsLogical", "IsSecured", "IsFilterable", "IsSearchable", "IsRetrievable", "IsCustomizable", "RequiredLevel",
    "IntroducedVersion", "SourceType", "HasChanged", "IsAuditEnabled"}
#: Properties only the typed AttributeMetadata have (with a cast to the type, `$select` takes them).
TYPED_PROPERTIES = {
    "StringAttributeMetadata": {"MaxLength", "Format", "FormatName", "DatabaseLength", "ImeMode"},
    "MemoAttributeMetadata": {"MaxLength", "Format", "DatabaseLength", "ImeMode"},
    "IntegerAttributeMetadata": {"MinValue", "MaxValue", "Format"},
    "BigIntAttributeMetadata": {"MinValue", "MaxValue"},
    "DoubleAttributeMetadata": {"MinValue", "MaxValue", "Precision"},
    "DecimalAttributeMetadata": {"MinValue", "MaxValue", "Precision"},
    "MoneyAttributeMetadata": {"MinValue", "MaxValue", "Precision", "PrecisionSource"},
    "BooleanAttributeMetadata": {"DefaultValue", "OptionSet"},
    "DateTimeAttributeMetadata": {"Format", "DateTimeBehavior", "CanChangeDateTimeBehavior"},
    "PicklistAttributeMetadata": {"DefaultFormValue", "OptionSet", "GlobalOptionSet"},
    "StateAttributeMetadata": {"DefaultFormValue", "OptionSet"},
    "StatusAttributeMetadata": {"DefaultFormValue", "OptionSet"},
    "LookupAttributeMetadata": {"Targets", "Format"},
    "UniqueIdentifierAttributeMetadata": set(), "EntityNameAttributeMetadata": {"OptionSet"},
    "AttributeMetadata": set(),
}
#: Navigation properties of typed attributes, served only through `$expand`.
OPTION_SETS = ("OptionSet", "GlobalOptionSet")
ENTITY_NAVIGATIONS = ("Attributes", "Keys", "OneToManyRelationships", "ManyToOneRelationships",
                      "ManyToManyRelationships")
ENTITY_PROPERTIES = {
    "MetadataId", "LogicalName", "SchemaName", "EntitySetName", "LogicalCollectionName", "CollectionSchemaName",
    "PrimaryIdAttribute", "PrimaryNameAttribute", "PrimaryImageAttribute", "ObjectTypeCode", "IsCustomEntity",
    "IsActivity", "IsActivityParty", "IsPrivate", "IsIntersect", "IsValidForAdvancedFind", "IsManaged",
    "OwnershipType", "ChangeTrackingEnabled", "CanChangeTrackingBeEnabled", "DisplayName", "DisplayCollectionName",
    "Description", "HasActivities", "HasNotes", "HasFeedback", "IntroducedVersion", "IsAuditEnabled",
    "IsCustomizable", "IsRenameable", "IsValidForQueue", "IsLogicalEntity", "TableType", "EntityColor",
    "IconVectorName", "IsBPFEntity", "IsAvailableOffline", "IsSolutionAware", "HasChanged", "AutoRouteToOwnerQueue",
    "IsEnabledForCharts", "IsReadOnlyInMobileClient", "IsBusinessProcessEnabled", "IsStateModelAware",
    "IsOptimisticConcurrencyEnabled", "SyncToExternalSearchIndex", "UsesBusinessDataLabelTable",
    "IsDuplicateDetectionEnabled", "IsMailMergeEnabled", "IsConnectionsEnabled", "CreatedOn", "ModifiedOn"}
KEY_PROPERTIES = {"MetadataId", "LogicalName", "SchemaName", "EntityLogicalName", "KeyAttributes",
                  "EntityKeyIndexStatus", "DisplayName", "IsManaged", "IsCustomizable", "IntroducedVersion",
                  "AsyncJob", "HasChanged", "IsSecondaryKey"}
#: Properties of every relationship (RelationshipMetadataBase), then those of each kind.
RELATIONSHIP_BASE_PROPERTIES = {
    "MetadataId", "SchemaName", "RelationshipType", "IsCustomRelationship", "IsManaged", "IsValidForAdvancedFind",
    "SecurityTypes", "IntroducedVersion", "IsCustomizable", "HasChanged", "RelationshipBehavior"}
RELATIONSHIP_PROPERTIES = RELATIONSHIP_BASE_PROPERTIES | {
    "ReferencedEntity", "ReferencedAttribute", "ReferencingEntity", "ReferencingAttribute",
    "ReferencedEntityNavigationPropertyName", "ReferencingEntityNavigationPropertyName", "IsHierarchical",
    "CascadeConfiguration", "AssociatedMenuConfiguration", "IsDenormalizedLookup", "EntityKey"}
MANY_TO_MANY_PROPERTIES = RELATIONSHIP_BASE_PROPERTIES | {
    "Entity1LogicalName", "Entity2LogicalName", "IntersectEntityName", "Entity1IntersectAttribute",
    "Entity2IntersectAttribute", "Entity1NavigationPropertyName", "Entity2NavigationPropertyName",
    "Entity1AssociatedMenuConfiguration", "Entity2AssociatedMenuConfiguration"}
_CASCADE = {"Assign": "NoCascade", "Delete": "RemoveLink", "Merge": "NoCascade", "Reparent": "NoCascade",
            "Share": "NoCascade", "Unshare": "NoCascade", "RollupView": "NoCascade", "Archive": "NoCascade"}
_MENU = {"Behavior": "UseCollectionName", "Group": "Details", "Label": None, "Order": 10000,
         "IsCustomizable": None, "Icon": None, "ViewId": "00000000-0000-0000-0000-000000000000",
         "AvailableOffline": True, "MenuId": None, "QueryApi": None}
#: Options of the state and status every table has.
STATE_OPTIONS = ((0, "Active"), (1, "Inactive"))
STATUS_OPTIONS = ((1, "Active"), (2, "Inactive"))
NOT_VALID_FOR_WRITE = READ_ONLY


def managed(value: Any, name: str, can_be_changed: bool = True) -> dict[str, Any]:
    """A managed property: its value, whether it may be changed, and its logical name."""
    return {"Value": value, "CanBeChanged": can_be_changed, "ManagedPropertyLogicalName": name}


def label(text: str | None, owner: str) -> dict[str, Any]:
    """A Label: the text in the organisation's language (none when empty)."""
    if not text:
        return {"LocalizedLabels": [], "UserLocalizedLabel": None}
    localized = {"Label": text, "LanguageCode": LANGUAGE, "IsManaged": False,
                 "MetadataId": metadata_id("label", owner, text), "HasChanged": None}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": dict(localized)}


def label_text(value: Any) -> str | None:
    """The organisation-language text of a Label given in a request (None when it has none)."""
    if not isinstance(value, dict):
        return None
    for localized in value.get("LocalizedLabels") or []:
        if isinstance(localized, dict) and localized.get("LanguageCode", LANGUAGE) == LANGUAGE:
            return localized.get("Label")
    user = value.get("UserLocalizedLabel")
    return user.get("Label") if isinstance(user, dict) else None


def is_custom(name: str) -> bool:
    return name.startswith(solution.PREFIX + "_")


class Definitions:
    """Builds the definitions of the catalog's current tables."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def _props(self, *key: str) -> dict[str, Any]:
        return self.catalog.properties.get(key, {})

    # -- tables ------------------------------------------------------------------------------------------
    def entity(self, table: Table) -> dict[str, Any]:
        name = table.logical_name
        props = self._props(name)
        custom = table.custom or props.get("IsCustomEntity", False)
        schema_name = props.get("SchemaName", table.schema_name)
        display = props.get("DisplayName", table.display_name or solution.label(name.removeprefix(
            solution.PREFIX + "_")))
        standard_owned = "OrganizationOwned" if name == "listmember" else "UserOwned"
        return {
            "MetadataId": self.catalog.table_id(name), "LogicalName": name, "SchemaName": schema_name,
            "EntitySetName": table.entity_set, "LogicalCollectionName": table.entity_set,
            "CollectionSchemaName": props.get("CollectionSchemaName", schema_name + "s"),
            "PrimaryIdAttribute": table.primary_key, "PrimaryNameAttribute": table.primary_name,
            "PrimaryImageAttribute": None, "ObjectTypeCode": self.catalog.type_code(name),
            "IsCustomEntity": custom, "IsActivity": props.get("IsActivity", False), "IsActivityParty": False,
            "IsPrivate": not table.system, "IsIntersect": self.catalog.is_intersect(name),
            "IsValidForAdvancedFind": table.system,
            "IsManaged": not custom, "IsLogicalEntity": False, "IsSolutionAware": True,
            "OwnershipType": props.get("OwnershipType", standard_owned if table.system else "None"),
            "ChangeTrackingEnabled": self.catalog.is_tracked(name),
            "CanChangeTrackingBeEnabled": managed(table.system, "canchangetrackingbeenabled"),
            "DisplayName": label(display, name + ":display"),
            "DisplayCollectionName": label(props.get("DisplayCollectionName", display + "s"), name + ":collection"),
            "Description": label(props.get("Description", table.description), name + ":description"),
            "HasActivities": props.get("HasActivities", False), "HasNotes": props.get("HasNotes", False),
            "HasFeedback": False, "IntroducedVersion": props.get("IntroducedVersion", "1.0" if not custom else
                                                                  solution.SOLUTION.version),
            "IsAuditEnabled": managed(False, "canmodifyauditsettings"),
            "IsCustomizable": managed(True, "iscustomizable"), "IsRenameable": managed(custom, "isrenameable"),
            "IsValidForQueue": managed(False, "canmodifyqueuesettings"),
            "IsDuplicateDetectionEnabled": managed(False, "canmodifyduplicatedetectionsettings"),
            "IsMailMergeEnabled": managed(False, "canmodifymailmergesettings"),
            "IsConnectionsEnabled": managed(False, "canmodifyconnectionsettings"),
            "TableType": "Standard", "EntityColor": None, "IconVectorName": None, "IsBPFEntity": False,
            "IsAvailableOffline": True, "HasChanged": None, "AutoRouteToOwnerQueue": False,
            "IsEnabledForCharts": True, "IsReadOnlyInMobileClient": managed(False, "canmodifymobileclientreadonly"),
            "IsBusinessProcessEnabled": False, "IsStateModelAware": table.system,
            "IsOptimisticConcurrencyEnabled": table.system, "SyncToExternalSearchIndex": False,
            "UsesBusinessDataLabelTable": False, "CreatedOn": None, "ModifiedOn": None,
        }

    # -- columns -----------------------------------------------------------------------------------------
    def attributes(self, table: Table) -> list[dict[str, Any]]:
        """The table's columns, then those Dataverse derives from them (`AttributeOf` set)."""
        rows = [self.attribute(table, number, column) for number, column in enumerate(table.columns)]
        for column in table.columns:
            for name, kind in _derived(column):
                rows.append(self._derived(table, column, name, kind, len(rows)))
        return rows

    def attribute(self, table: Table, number: int, column: Column) -> dict[str, Any]:
        props = self._props(table.logical_name, column.name)
        kind = "Owner" if column.name == "ownerid" else column.type
        type_name, type_code = ATTRIBUTE_TYPES[kind]
        attribute_type = {"DateOnly": "DateTime"}.get(kind, kind)
        custom = props.get("IsCustomAttribute", is_custom(column.name))
        writable = column.name not in NOT_VALID_FOR_WRITE
        row = {
            "@odata.type": "#" + CRM + type_name, "MetadataId": self.catalog.column_id(table.logical_name, column.name),
            "LogicalName": column.name, "SchemaName": props.get("SchemaName", column.name),
            "EntityLogicalName": table.logical_name, "AttributeType": attribute_type,
            "AttributeTypeName": {"Value": type_code}, "AttributeOf": None, "ColumnNumber": number + 1,
            "DisplayName": label(props.get("DisplayName", column.label), f"{table.logical_name}.{column.name}"),
            "Description": label(props.get("Description", column.description),
                                 f"{table.logical_name}.{column.name}:description"),
            "IsCustomAttribute": custom, "IsManaged": not custom, "IsPrimaryId": number == 0,
            "IsPrimaryName": column.name == table.primary_name, "IsValidForRead": True,
            "IsValidForCreate": writable, "IsValidForUpdate": writable and number != 0,
            "IsValidForAdvancedFind": managed(True, "canmodifysearchsettings"), "IsLogical": False,
            "IsSecured": False, "IsFilterable": True, "IsSearchable": True, "IsRetrievable": True,
            "IsCustomizable": managed(True, "iscustomizable"),
            "RequiredLevel": managed(props.get("RequiredLevel", "SystemRequired" if number == 0 else "None"),
                                     "canmodifyrequirementlevelsettings"),
            "IntroducedVersion": "1.0" if not custom else solution.SOLUTION.version, "SourceType": 0,
            "HasChanged": None, "IsAuditEnabled": managed(False, "canmodifyauditsettings"),
        }
        row.update(self._typed(table, column, kind, props))
        return row

    def _typed(self, table: Table, column: Column, kind: str, props: dict[str, Any]) -> dict[str, Any]:
        if kind in ("String", "Memo"):
            text_format = props.get("Format", "Text" if kind == "String" else "TextArea")
            typed = {"MaxLength": column.max_length, "Format": text_format, "DatabaseLength": (column.max_length or 0)
                     * 2, "ImeMode": "Auto"}
            return {**typed, "FormatName": {"Value": text_format}} if kind == "String" else typed
        if kind == "Integer":
            return {"MinValue": -2_147_483_648, "MaxValue": 2_147_483_647, "Format": "None"}
        if kind == "BigInt":
            return {"MinValue": -9_223_372_036_854_775_808, "MaxValue": 9_223_372_036_854_775_807}
        if kind in ("Double", "Decimal", "Money"):
            return {"MinValue": props.get("MinValue", -100_000_000_000.0), "MaxValue":
                    props.get("MaxValue", 100_000_000_000.0), "Precision": props.get("Precision", 2)}
        if kind in ("DateTime", "DateOnly"):
            behavior = "DateOnly" if kind == "DateOnly" else props.get("DateTimeBehavior", "UserLocal")
            return {"Format": "DateOnly" if kind == "DateOnly" else props.get("Format", "DateAndTime"),
                    "DateTimeBehavior": {"Value": behavior}, "CanChangeDateTimeBehavior":
                    managed(False, "canchangedatetimebehavior")}
        if kind == "Boolean":
            return {"DefaultValue": bool(column.default)}
        if kind in ("Picklist", "State", "Status"):
            return {"DefaultFormValue": -1 if kind == "Picklist" else None}
        if kind in ("Lookup", "Customer", "Owner"):
            return {"Targets": list(column.targets), "Format": None}
        return {}

    def option_set(self, table: Table, column: Column) -> dict[str, Any] | None:
        """The OptionSet of a choice, state, status or Boolean column (what `$expand=OptionSet` adds)."""
        owner = f"{table.logical_name}.{column.name}"
        base = {"MetadataId": metadata_id("optionset", owner), "Name": f"{table.logical_name}_{column.name}",
                "IsGlobal": False, "IsCustomOptionSet": is_custom(column.name), "IsManaged": not is_custom(column.name),
                "DisplayName": label(column.label, owner + ":optionset"), "Description": label("", owner),
                "ExternalTypeName": None, "HasChanged": None}
        if column.type == "Boolean":
            labels = self._props(table.logical_name, column.name).get("BooleanLabels", ("Yes", "No"))
            return {**base, "OptionSetType": "Boolean",
                    "TrueOption": self._option(owner, 1, labels[0]), "FalseOption": self._option(owner, 0, labels[1])}
        options = {"State": STATE_OPTIONS, "Status": STATUS_OPTIONS}.get(column.type)
        if options is None and column.type == "Picklist":
            options = self._props(table.logical_name, column.name).get("Options", column.options)
        if options is None:
            return None
        return {**base, "OptionSetType": column.type,
                "Options": [self._option(owner, value, text) for value, text in options]}

    @staticmethod
    def _option(owner: str, value: int, text: str) -> dict[str, Any]:
        return {"Value": value, "Label": label(text, f"{owner}:{value}"), "Description": label("", owner),
                "Color": None, "IsManaged": False, "ExternalValue": None, "MetadataId": None, "HasChanged": None,
                "ParentValues": []}

    def _derived(self, table: Table, column: Column, name: str, kind: str, number: int) -> dict[str, Any]:
        type_name, type_code = ATTRIBUTE_TYPES[kind]
        return {"@odata.type": "#" + CRM + type_name,
                "MetadataId": metadata_id("derived attribute", table.logical_name, name), "LogicalName": name,
                "SchemaName": name, "EntityLogicalName": table.logical_name, "AttributeType": kind,
                "AttributeTypeName": {"Value": type_code}, "AttributeOf": column.name, "ColumnNumber": number + 1,
                "DisplayName": label("", name), "Description": label("", name),
                "IsCustomAttribute": is_custom(column.name), "IsManaged": not is_custom(column.name),
                "IsPrimaryId": False, "IsPrimaryName": False, "IsValidForRead": True, "IsValidForCreate": False,
                "IsValidForUpdate": False, "IsValidForAdvancedFind": managed(False, "canmodifysearchsettings"),
                "IsLogical": True, "IsSecured": False, "IsFilterable": False, "IsSearchable": False,
                "IsRetrievable": False, "IsCustomizable": managed(False, "iscustomizable"),
                "RequiredLevel": managed("None", "canmodifyrequirementlevelsettings"), "IntroducedVersion": "1.0",
                "SourceType": 0, "HasChanged": None, "IsAuditEnabled": managed(False, "canmodifyauditsettings"),
                **({"MaxLength": 100, "Format": "Text", "FormatName": {"Value": "Text"}, "DatabaseLength": 200,
                    "ImeMode": "Auto"} if kind == "String" else {})}

    # -- keys and relationships ----------------------------------------------------------------------------
    def keys(self, table: Table) -> list[dict[str, Any]]:
        return [{"MetadataId": metadata_id("key", table.logical_name, key.schema_name),
                 "LogicalName": key.schema_name.lower(), "SchemaName": key.schema_name,
                 "EntityLogicalName": table.logical_name, "KeyAttributes": list(key.columns),
                 "EntityKeyIndexStatus": self.catalog.key_status(key),
                 "DisplayName": label(self._props(table.logical_name, "key:" + key.schema_name).get(
                     "DisplayName", key.schema_name), key.schema_name), "IsManaged": False,
                 "IsCustomizable": managed(True, "iscustomizable"), "IntroducedVersion": "1.0", "AsyncJob": None,
                 "HasChanged": None, "IsSecondaryKey": False}
                for key in self.catalog.keys(table.logical_name)]

    def relationship(self, relationship: Relationship) -> dict[str, Any]:
        referencing = self.catalog.table(relationship.referencing)
        referenced = self.catalog.get(relationship.referenced)
        lookup = referencing.by_name[relationship.lookup]
        navigation = lookup.name if len(lookup.targets) == 1 else f"{lookup.name}_{relationship.referenced}"
        custom = is_custom(relationship.schema_name) or is_custom(lookup.name)
        return {"@odata.type": "#" + CRM + "OneToManyRelationshipMetadata", "MetadataId": relationship.metadata_id,
                "SchemaName": relationship.schema_name, "RelationshipType": "OneToManyRelationship",
                "ReferencedEntity": relationship.referenced,
                "ReferencedAttribute": referenced.primary_key if referenced else relationship.referenced + "id",
                "ReferencingEntity": relationship.referencing, "ReferencingAttribute": relationship.lookup,
                "ReferencedEntityNavigationPropertyName": relationship.schema_name,
                "ReferencingEntityNavigationPropertyName": navigation, "IsCustomRelationship": custom,
                "IsManaged": not custom, "IsValidForAdvancedFind": True, "IsHierarchical": False,
                "SecurityTypes": "Append", "CascadeConfiguration": dict(_CASCADE),
                "AssociatedMenuConfiguration": dict(_MENU), "IntroducedVersion": "1.0",
                "IsCustomizable": managed(True, "iscustomizable"), "HasChanged": None, "RelationshipBehavior": 0,
                "IsDenormalizedLookup": None, "EntityKey": None}

    def many_to_many(self, relationship: ManyToMany) -> dict[str, Any]:
        custom = is_custom(relationship.schema_name)
        menus = {f"Entity{n}AssociatedMenuConfiguration": {**_MENU, "Label": label(solution.label(
            entity.removeprefix(solution.PREFIX + "_")), f"{relationship.schema_name}:{n}")}
            for n, entity in ((1, relationship.entity1), (2, relationship.entity2))}
        return {"@odata.type": "#" + CRM + "ManyToManyRelationshipMetadata",
                "MetadataId": self.catalog.relationship_id(relationship.schema_name),
                "SchemaName": relationship.schema_name, "RelationshipType": "ManyToManyRelationship",
                "Entity1LogicalName": relationship.entity1, "Entity2LogicalName": relationship.entity2,
                "IntersectEntityName": relationship.intersect,
                "Entity1IntersectAttribute": relationship.entity1_attribute,
                "Entity2IntersectAttribute": relationship.entity2_attribute,
                "Entity1NavigationPropertyName": relationship.entity1_navigation,
                "Entity2NavigationPropertyName": relationship.entity2_navigation, **menus,
                "IsCustomRelationship": custom, "IsManaged": not custom, "IsValidForAdvancedFind": True,
                "SecurityTypes": "Append", "IntroducedVersion": "1.0",
                "IsCustomizable": managed(True, "iscustomizable"), "HasChanged": None, "RelationshipBehavior": 0}

    def relationships(self) -> list[dict[str, Any]]:
        """Every relationship of the organisation: the one-to-many, then the many-to-many."""
        return ([self.relationship(r) for r in self.catalog.relationships()]
                + [self.many_to_many(r) for r in self.catalog.many_to_many()])

    def one_to_many(self, table: Table) -> list[dict[str, Any]]:
        return [self.relationship(r) for r in self.catalog.relationships() if r.referenced == table.logical_name]

    def many_to_one(self, table: Table) -> list[dict[str, Any]]:
        return [self.relationship(r) for r in self.catalog.relationships() if r.referencing == table.logical_name]

    def navigation(self, table: Table, name: str) -> list[dict[str, Any]]:
        """The items of one of an entity's collection-valued navigation properties."""
        if name == "Attributes":
            return self.attributes(table)
        if name == "Keys":
            return self.keys(table)
        if name == "OneToManyRelationships":
            return self.one_to_many(table)
        if name == "ManyToOneRelationships":
            return self.many_to_one(table)
        return [self.many_to_many(side.relationship) for side in self.catalog.sides(table.logical_name)]


def _derived(column: Column) -> list[tuple[str, str]]:
    """(logical name, type) of the columns Dataverse derives from `column`: a lookup's record name (and, when it
    may point at more than one table, the table's name), an option's or a Boolean's label."""
    if column.is_lookup:
        return [(f"{column.name}name", "String")] + ([(f"{column.name}type", "EntityName")]
                                                      if len(column.targets) > 1 else [])
    if column.type in ("Picklist", "State", "Status", "Boolean"):
        return [(f"{column.name}name", "Virtual")]
    return []

"""The tables the Dataverse stand-in serves: standard ones the pipeline reads and the `esc_` solution.

One declarative description drives everything else: the SQLite tables, the Web API's names and types,
`$select`/`$filter` checks, alternate keys, `EntityDefinitions`, `$metadata` and the README's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Attribute type -> (OData primitive type, SQLite column type).
TYPES: dict[str, tuple[str, str]] = {
    "Uniqueidentifier": ("Edm.Guid", "TEXT"),
    "String": ("Edm.String", "TEXT COLLATE NOCASE"),
    "Memo": ("Edm.String", "TEXT COLLATE NOCASE"),
    "Integer": ("Edm.Int32", "INTEGER"),
    "BigInt": ("Edm.Int64", "INTEGER"),
    "Double": ("Edm.Double", "REAL"),
    "Decimal": ("Edm.Decimal", "REAL"),
    "Money": ("Edm.Decimal", "REAL"),
    "Boolean": ("Edm.Boolean", "INTEGER"),
    "DateTime": ("Edm.DateTimeOffset", "TEXT"),
    "DateOnly": ("Edm.Date", "TEXT"),
    "Picklist": ("Edm.Int32", "INTEGER"),
    "State": ("Edm.Int32", "INTEGER"),
    "Status": ("Edm.Int32", "INTEGER"),
    "Lookup": ("Edm.Guid", "TEXT"),
    "Customer": ("Edm.Guid", "TEXT"),
    "Complex": ("Edm.ComplexType", "TEXT"),  # metadata values such as CanChangeTrackingBeEnabled
}


@dataclass(frozen=True)
class Column:
    """One attribute: its logical name, type and, for lookups, the tables it may point at."""

    name: str
    type: str
    targets: tuple[str, ...] = ()  # lookups: logical names of the referenced tables
    max_length: int | None = None
    description: str = ""

    @property
    def is_lookup(self) -> bool:
        return self.type in ("Lookup", "Customer")

    @property
    def web_name(self) -> str:
        """The property name in Web API payloads: lookups read as `_name_value`."""
        return f"_{self.name}_value" if self.is_lookup else self.name

    @property
    def edm_type(self) -> str:
        return TYPES[self.type][0]


@dataclass(frozen=True)
class Table:
    """One table (entity): its entity set, primary key, columns, alternate keys and capabilities."""

    logical_name: str
    entity_set: str
    primary_name: str
    columns: tuple[Column, ...]
    keys: tuple[tuple[str, ...], ...] = ()  # alternate keys, each a tuple of column logical names
    change_tracking: bool = True
    bulk_operations: bool = False  # CreateMultiple / UpdateMultiple / UpsertMultiple
    custom: bool = False
    system: bool = True  # has createdon, modifiedon, versionnumber, statecode, statuscode
    description: str = ""
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)
    by_web_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "by_web_name", {c.web_name: c for c in self.columns})

    @property
    def primary_key(self) -> str:
        return self.columns[0].name

    def key_sets(self) -> list[tuple[str, ...]]:
        return [(self.primary_key,), *self.keys]


def _c(name: str, type_: str = "String", *targets: str, max_length: int | None = None, doc: str = "") -> Column:
    if type_ in ("String", "Memo") and max_length is None:
        max_length = 100 if type_ == "String" else 100_000
    return Column(name, type_, tuple(targets), max_length, doc)


_SYSTEM = (_c("statecode", "State"), _c("statuscode", "Status"), _c("createdon", "DateTime"),
           _c("modifiedon", "DateTime"), _c("versionnumber", "BigInt"))

#: Columns that the service sets and a client cannot write.
READ_ONLY = {"createdon", "modifiedon", "versionnumber"}


def _table(logical: str, entity_set: str, primary_name: str, *columns: Column, keys=(), system: bool = True,
           **kw) -> Table:
    pk = _c(f"{logical}id", "Uniqueidentifier")
    return Table(logical, entity_set, primary_name, (pk, *columns, *(_SYSTEM if system else ())),
                 keys=tuple(keys), custom=logical.startswith("esc_"), system=system, **kw)


def _engagement_links() -> tuple[Column, ...]:
    """Who an engagement row is about: the account, the Dotdigital ids and the CRM record."""
    return (_c("esc_emailaccountid", "Lookup", "esc_emailaccount"),
            _c("esc_emailcampaignid", "Lookup", "esc_emailcampaign"),
            _c("esc_dotdigitalcampaignid", "Integer"), _c("esc_dotdigitalcontactid", "Integer"),
            _c("esc_email", max_length=320), *_crm_links())


def _crm_links() -> tuple[Column, ...]:
    return (_c("esc_contactid", "Lookup", "contact"), _c("esc_leadid", "Lookup", "lead"),
            _c("esc_accountid", "Lookup", "account"))


_ACCOUNT = _c("esc_emailaccountid", "Lookup", "esc_emailaccount", doc="the Dotdigital account")
_PERSON = (_c("firstname", max_length=50), _c("lastname", max_length=50), _c("fullname", max_length=160),
           _c("emailaddress1", max_length=100), _c("donotbulkemail", "Boolean"), _c("donotemail", "Boolean"),
           _c("jobtitle"), _c("address1_city", max_length=80), _c("address1_country", max_length=80))

TABLES: tuple[Table, ...] = (
    _table("contact", "contacts", "fullname", *_PERSON, _c("birthdate", "DateOnly"),
           _c("numberofchildren", "Integer"), _c("parentcustomerid", "Customer", "account", "contact"),
           bulk_operations=True),
    _table("lead", "leads", "fullname", *_PERSON, _c("companyname"), bulk_operations=True),
    _table("account", "accounts", "name", _c("name", max_length=160), _c("emailaddress1"),
           _c("donotbulkemail", "Boolean"), _c("donotemail", "Boolean"), _c("address1_city", max_length=80),
           _c("address1_country", max_length=80), _c("primarycontactid", "Lookup", "contact"),
           bulk_operations=True),
    _table("campaign", "campaigns", "name", _c("name", max_length=128), _c("codename", max_length=32),
           _c("typecode", "Picklist"), _c("description", "Memo"), change_tracking=False),
    _table("list", "lists", "listname", _c("listname", max_length=128), _c("createdfromcode", "Picklist",
           doc="member type: 1 account, 2 contact, 4 lead"), _c("type", "Boolean", doc="true = dynamic"),
           _c("query", "Memo", doc="FetchXML of a dynamic list"), _c("membercount", "Integer"),
           _c("lockstatus", "Boolean"), _c("esc_activatedforemail", "Boolean", doc="the list syncs"),
           _ACCOUNT, _c("esc_addressbookid", "Integer", doc="the Dotdigital address book")),
    _table("listmember", "listmembers", "listmemberid", _c("listid", "Lookup", "list"),
           _c("entityid", "Lookup", "account", "contact", "lead"), _c("entitytype", max_length=64)),
    _table("esc_emailaccount", "esc_emailaccounts", "esc_name", _c("esc_name"),
           _c("esc_apiuser", doc="the Dotdigital API user"),
           _c("esc_secretname", doc="environment variable holding the API password"),
           _c("esc_transport", max_length=10, doc="rest or soap"), _c("esc_isdefault", "Boolean"),
           _c("esc_csvformulaprotection", "Boolean",
              doc="text values that begin like a spreadsheet formula are sent with a leading ' (empty: on)"),
           keys=[("esc_apiuser",)], description="One Dotdigital account; one partition."),
    _table("esc_emailcampaign", "esc_emailcampaigns", "esc_name", _c("esc_name", max_length=255), _ACCOUNT,
           _c("esc_dotdigitalcampaignid", "Integer"), _c("esc_campaignid", "Lookup", "campaign"),
           _c("esc_subject", max_length=255), _c("esc_fromname"), _c("esc_fromaddress", max_length=320),
           _c("esc_status", max_length=40), _c("esc_datesent", "DateTime"),
           *(_c(f"esc_{n}", "Integer") for n in (
               "numsent", "numdelivered", "numuniqueopens", "numopens", "numclicks", "numrecipientsclicked",
               "numpageviews", "numforwards", "numreplies", "numhardbounces", "numsoftbounces",
               "numunsubscribes", "numispcomplaints", "numorders")),
           *(_c(f"esc_{n}", "Double") for n in (
               "percentagedelivered", "percentageuniqueopens", "percentageopens", "percentageusersclicked",
               "percentageclickstoopens", "percentageunsubscribes", "percentagehardbounces")),
           _c("esc_revenue", "Money"), _c("esc_lastsyncedon", "DateTime"),
           keys=[("esc_emailaccountid", "esc_dotdigitalcampaignid")], bulk_operations=True,
           description="A Dotdigital campaign and its summary statistics."),
    _table("esc_emailcampaigncontactsummary", "esc_emailcampaigncontactsummaries", "esc_name",
           _c("esc_name", max_length=255), *_engagement_links(),
           *(_c(f"esc_{n}", "Integer") for n in (
               "numopens", "numpageviews", "numclicks", "numforwards", "numestimatedforwards", "numreplies")),
           _c("esc_datesent", "DateTime"), _c("esc_datefirstopened", "DateTime"),
           _c("esc_datelastopened", "DateTime"), _c("esc_firstopenip", max_length=45),
           _c("esc_unsubscribed", "Boolean"), _c("esc_softbounced", "Boolean"), _c("esc_hardbounced", "Boolean"),
           keys=[("esc_emailaccountid", "esc_dotdigitalcampaignid", "esc_dotdigitalcontactid")],
           bulk_operations=True, description="One contact's activity on one campaign."),
    _table("esc_emailcampaigncontactclick", "esc_emailcampaigncontactclicks", "esc_name",
           _c("esc_name", max_length=255), *_engagement_links(), _c("esc_url", max_length=2000),
           _c("esc_ipaddress", max_length=45), _c("esc_useragent", max_length=1000), _c("esc_keyword"),
           _c("esc_dateclicked", "DateTime"),
           keys=[("esc_emailaccountid", "esc_dotdigitalcampaignid", "esc_dotdigitalcontactid", "esc_url",
                  "esc_dateclicked")], bulk_operations=True, description="One click in a campaign."),
    _table("esc_emailroidetail", "esc_emailroidetails", "esc_name", _c("esc_name", max_length=255),
           *_engagement_links(), _c("esc_markername"), _c("esc_datatype", max_length=20,
           doc="String, Numeric, Date or Boolean"), _c("esc_value", max_length=1000), _c("esc_dateentered",
           "DateTime"),
           keys=[("esc_emailaccountid", "esc_dotdigitalcampaignid", "esc_dotdigitalcontactid", "esc_markername",
                  "esc_dateentered")], bulk_operations=True, description="One ROI marker of a campaign."),
    _table("esc_emailsupression", "esc_emailsupressions", "esc_name", _c("esc_name", max_length=255), _ACCOUNT,
           _c("esc_email", max_length=320), _c("esc_reason", max_length=40,
           doc="Unsubscribed, HardBounced, IspComplained ..."), _c("esc_dateremoved", "DateTime"),
           _c("esc_source", max_length=20, doc="dotdigital or dynamics"), *_crm_links(),
           keys=[("esc_emailaccountid", "esc_email")], bulk_operations=True,
           description="An address suppressed in an account."),
    _table("esc_listunsubscriber", "esc_listunsubscribers", "esc_name", _c("esc_name", max_length=255),
           _c("esc_listid", "Lookup", "list"), _ACCOUNT, _c("esc_email", max_length=320),
           _c("esc_addressbookid", "Integer"), _c("esc_dotdigitalcontactid", "Integer"),
           _c("esc_unsubscribedon", "DateTime"), *_crm_links(), keys=[("esc_listid", "esc_email")],
           description="An address that left one marketing list."),
    _table("esc_emailcampaigncustomfields", "esc_emailcampaigncustomfieldses", "esc_name",
           _c("esc_name", doc="the Dotdigital data field (data label)"), _ACCOUNT,
           _c("esc_type", max_length=10, doc="String, Numeric, Date or Boolean"), _c("esc_isprivate", "Boolean"),
           _c("esc_defaultvalue", max_length=255), keys=[("esc_emailaccountid", "esc_name")],
           description="An email data label: a Dotdigital contact data field."),
    _table("esc_emaildatamapping", "esc_emaildatamappings", "esc_name", _c("esc_name", max_length=255), _ACCOUNT,
           _c("esc_entityname", max_length=64, doc="contact, lead or account"),
           _c("esc_attributename", max_length=64, doc="CRM attribute logical name"),
           _c("esc_datalabelid", "Lookup", "esc_emailcampaigncustomfields"),
           _c("esc_datafieldname", doc="Dotdigital data field"),
           _c("esc_datafieldtype", max_length=10, doc="String, Numeric, Date or Boolean"),
           keys=[("esc_emailaccountid", "esc_entityname", "esc_datafieldname")],
           description="Maps a CRM attribute to a data label, per account."),
    _table("esc_emailcampaignconfiguration", "esc_emailcampaignconfigurations", "esc_name", _c("esc_name"),
           _ACCOUNT, _c("esc_unsubscribeattribute", max_length=64,
           doc="Boolean column set to true on contact, lead and account when an address unsubscribes"),
           _c("esc_syncsuppressions", "Boolean"), _c("esc_syncengagement", "Boolean"),
           _c("esc_engagementdays", "Integer", doc="how far back the first engagement import reaches"),
           _c("esc_syncmarketingpreferences", "Boolean"), keys=[("esc_emailaccountid",)],
           description="Per-account settings of the connector."),
    _table("esc_crmfield", "esc_crmfields", "esc_name", _c("esc_name"), _c("esc_entityname", max_length=64),
           _c("esc_attributename", max_length=64), _c("esc_attributetype", max_length=32),
           _c("esc_displayname"), keys=[("esc_entityname", "esc_attributename")], change_tracking=False,
           description="CRM attributes offered for data mapping."),
    _table("esc_emailsend", "esc_emailsends", "esc_name", _c("esc_name", max_length=255), _ACCOUNT,
           _c("esc_emailcampaignid", "Lookup", "esc_emailcampaign"), _c("esc_listid", "Lookup", "list"),
           _c("esc_sendid", max_length=64, doc="Dotdigital send id"), _c("esc_status", max_length=20),
           _c("esc_senddate", "DateTime"), description="A campaign send requested from Dynamics."),
    _table("esc_emailsinglesend", "esc_emailsinglesends", "esc_name", _c("esc_name", max_length=255), _ACCOUNT,
           _c("esc_dotdigitalcampaignid", "Integer"), _c("esc_email", max_length=320), *_crm_links(),
           _c("esc_status", max_length=20), _c("esc_sentdate", "DateTime"),
           description="A one-to-one triggered send."),
    _table("esc_marketingpreference", "esc_marketingpreferences", "esc_name", _c("esc_name"), _ACCOUNT,
           _c("esc_dotdigitalpreferenceid", "Integer"), _c("esc_publicname"), _c("esc_ispublic", "Boolean"),
           _c("esc_order", "Integer"), keys=[("esc_emailaccountid", "esc_dotdigitalpreferenceid")],
           description="A Dotdigital marketing preference."),
    _table("esc_marketingpreferencesubscription", "esc_marketingpreferencesubscriptions", "esc_name",
           _c("esc_name", max_length=255), _c("esc_marketingpreferenceid", "Lookup", "esc_marketingpreference"),
           _ACCOUNT, _c("esc_email", max_length=320), *_crm_links(), _c("esc_isoptedin", "Boolean"),
           _c("esc_datemodified", "DateTime"), keys=[("esc_marketingpreferenceid", "esc_email")],
           description="One address's opt-in to one preference."),
    # Platform tables the Web API exposes for discovery.
    Table("EntityDefinition", "EntityDefinitions", "LogicalName", (
        _c("MetadataId", "Uniqueidentifier"), _c("LogicalName"), _c("SchemaName"), _c("EntitySetName"),
        _c("PrimaryIdAttribute"), _c("PrimaryNameAttribute"), _c("ChangeTrackingEnabled", "Boolean"),
        _c("CanChangeTrackingBeEnabled", "Complex"), _c("IsCustomEntity", "Boolean"), _c("ObjectTypeCode",
        "Integer")), keys=(("LogicalName",),), change_tracking=False, system=False),
    _table("sdkmessagefilter", "sdkmessagefilters", "sdkmessagefilterid", _c("primaryobjecttypecode"),
           _c("sdkmessagename", doc="read as sdkmessageid/name"), change_tracking=False, system=False),
)

BY_SET: dict[str, Table] = {t.entity_set: t for t in TABLES}
BY_LOGICAL: dict[str, Table] = {t.logical_name: t for t in TABLES}
#: Navigation paths the filter accepts, mapped onto a column (the only one the discovery query needs).
PATHS: dict[tuple[str, str], str] = {("sdkmessagefilter", "sdkmessageid/name"): "sdkmessagename"}
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


def untracked(options: dict[str, str]) -> set[str]:
    """Logical names of the tables without change tracking (option `dataverse.untracked` overrides)."""
    if "dataverse.untracked" in options:
        return {name.strip() for name in options["dataverse.untracked"].split(",") if name.strip()}
    return {t.logical_name for t in TABLES if not t.change_tracking}


def markdown() -> str:
    """The `esc_` tables (and the solution's columns on `list`) as Markdown: the table reference of docs/solution.md.

    Every table also has statecode, statuscode, createdon, modifiedon and versionnumber.
    """
    system = {c.name for c in _SYSTEM}
    parts = []
    for table in TABLES:
        if not table.custom and table.logical_name != "list":
            continue
        keys = "; ".join(", ".join(k) for k in table.keys) or "none"
        parts.append(f"#### `{table.logical_name}` (`{table.entity_set}`, key `{table.primary_key}`)\n\n"
                     f"{table.description or 'Marketing list; the solution adds these columns.'}\n"
                     f"Alternate keys: {keys}. Change tracking: {'on' if table.change_tracking else 'off'}. "
                     f"Bulk operations: {'yes' if table.bulk_operations else 'no'}.\n\n"
                     "| column (Web API name) | type | notes |\n|---|---|---|")
        columns = [c for c in table.columns[1:] if c.name not in system and (table.custom or c.name.startswith("esc_"))]
        for col in columns:
            target = f" -> {', '.join(col.targets)}" if col.targets else ""
            parts.append(f"| `{col.web_name}` | {col.type}{target} | {col.description} |")
        parts.append("")
    return "\n".join(parts)

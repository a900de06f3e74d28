"""The Dynamics solution the pipeline needs, defined once: its publisher, tables, columns, keys and roles.

Plain data. `dotdyn provision` creates it in an organisation through the Web API's metadata operations, the
sandbox's Dataverse serves it (unless started `--bare`), `dotdyn doctor` checks an organisation against it and
docs/solution.md's table reference is generated from it (`markdown()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The publisher's customisation prefix: every table and column of the solution starts with it.
PREFIX = "esc"

#: Attribute type -> its OData primitive type in Web API payloads.
EDM_TYPES: dict[str, str] = {
    "Uniqueidentifier": "Edm.Guid", "String": "Edm.String", "Memo": "Edm.String", "Integer": "Edm.Int32",
    "BigInt": "Edm.Int64", "Double": "Edm.Double", "Decimal": "Edm.Decimal", "Money": "Edm.Decimal",
    "Boolean": "Edm.Boolean", "DateTime": "Edm.DateTimeOffset", "DateOnly": "Edm.Date", "Picklist": "Edm.Int32",
    "State": "Edm.Int32", "Status": "Edm.Int32", "Lookup": "Edm.Guid", "Customer": "Edm.Guid",
    "Complex": "Edm.ComplexType",  # metadata values such as CanChangeTrackingBeEnabled
}


@dataclass(frozen=True)
class Column:
    """One attribute: its logical name, type and, for lookups, the tables it may point at."""

    name: str
    type: str
    targets: tuple[str, ...] = ()  # lookups: logical names of the referenced tables
    max_length: int | None = None
    description: str = ""
    options: tuple[tuple[int, str], ...] = ()  # choices: (value, label)
    default: bool | None = None  # Yes/No columns: the value a new row gets when it is created without one

    @property
    def is_lookup(self) -> bool:
        return self.type in ("Lookup", "Customer")

    @property
    def web_name(self) -> str:
        """The property name in Web API payloads: lookups read as `_name_value`."""
        return f"_{self.name}_value" if self.is_lookup else self.name

    @property
    def edm_type(self) -> str:
        return EDM_TYPES[self.type]

    @property
    def label(self) -> str:
        """The display name an administrator sees: the name without the publisher's prefix, in words."""
        return label(self.name.removeprefix(PREFIX + "_").removesuffix("id") if self.is_lookup
                     else self.name.removeprefix(PREFIX + "_"))


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
    display_name: str = ""
    schema_name: str = ""  # empty: the logical name (the solution's tables are named in lower case)
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)
    by_web_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema_name", self.schema_name or STANDARD_SCHEMA_NAMES.get(
            self.logical_name, self.logical_name))
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "by_web_name", {c.web_name: c for c in self.columns})

    @property
    def primary_key(self) -> str:
        return self.columns[0].name

    def key_sets(self) -> list[tuple[str, ...]]:
        return [(self.primary_key,), *self.keys]

    def key_name(self, number: int) -> str:
        """The schema name of the table's alternate key number `number`."""
        return f"{self.logical_name}_key{number}"


@dataclass(frozen=True)
class ManyToMany:
    """A many-to-many relationship: rows of `entity1` and `entity2` linked by the rows of an intersect table
    (`intersect`, with the two tables' primary keys as its columns), each side reading the other's rows through
    a collection-valued navigation property (Dataverse names both after the relationship unless told otherwise)."""

    schema_name: str
    entity1: str
    entity2: str
    intersect: str
    entity1_navigation: str = ""  # the navigation property on entity1's rows; empty: the schema name
    entity2_navigation: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "entity1_navigation", self.entity1_navigation or self.schema_name)
        object.__setattr__(self, "entity2_navigation", self.entity2_navigation or self.schema_name)

    @property
    def entity1_attribute(self) -> str:
        """The intersect table's column holding entity1's key (Entity1IntersectAttribute)."""
        return f"{self.entity1}id"

    @property
    def entity2_attribute(self) -> str:
        return f"{self.entity2}id"


@dataclass(frozen=True)
class Grant:
    """Privileges of a role on one table: the access rights and how far they reach."""

    table: str
    rights: tuple[str, ...]  # Create, Read, Write, Delete, Append, AppendTo
    depth: str = "Global"  # Basic (user), Local (business unit), Deep, Global (organisation)


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    grants: tuple[Grant, ...]

    def privileges(self) -> dict[str, str]:
        """Privilege name (`prvReadesc_emailaccount`, `prvReadContact`) -> depth."""
        return {privilege_name(right, grant.table): grant.depth for grant in self.grants for right in grant.rights}


#: Schema names of the standard tables the solution touches (a table's privileges are named after it).
STANDARD_SCHEMA_NAMES = {"contact": "Contact", "lead": "Lead", "account": "Account", "list": "List",
                         "listmember": "ListMember", "campaign": "Campaign"}
#: The access rights every table has a privilege for, as Dataverse names them.
RIGHTS = ("Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share")


def privilege_name(right: str, logical_name: str) -> str:
    """Dataverse's name of the privilege for `right` on a table: `prv` + right + the table's schema name."""
    return f"prv{right}{STANDARD_SCHEMA_NAMES.get(logical_name, logical_name)}"


def label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def column(name: str, type_: str = "String", *targets: str, max_length: int | None = None, doc: str = "",
           options: tuple[tuple[int, str], ...] = (), default: bool | None = None) -> Column:
    """A column; text columns get Dataverse's default maximum length unless told otherwise, Yes/No columns
    Dataverse's default value (No) unless told otherwise."""
    if type_ in ("String", "Memo") and max_length is None:
        max_length = 100 if type_ == "String" else 100_000
    if type_ == "Boolean" and default is None:
        default = False
    return Column(name, type_, tuple(targets), max_length, doc, options, default)


_c = column  # the definitions below are long: a short name keeps each column on one line
#: Columns Dataverse gives every table: state and status, when and by whom a row was made (createdby is the
#: calling user, or the user it impersonates; createdonbehalfby then the caller), when it last changed, its version.
SYSTEM_COLUMNS = (_c("statecode", "State"), _c("statuscode", "Status"), _c("createdon", "DateTime"),
                  _c("createdby", "Lookup", "systemuser"), _c("createdonbehalfby", "Lookup", "systemuser"),
                  _c("modifiedon", "DateTime"), _c("versionnumber", "BigInt"))
#: Columns that the service sets and a client cannot write.
READ_ONLY = {"createdon", "createdby", "createdonbehalfby", "modifiedon", "versionnumber"}


def table(logical: str, entity_set: str, primary_name: str, *columns: Column, keys=(), system: bool = True,
          **kw) -> Table:
    """A table whose primary key is `<logical>id`, with the columns every Dataverse table has after its own."""
    pk = _c(f"{logical}id", "Uniqueidentifier")
    return Table(logical, entity_set, primary_name, (pk, *columns, *(SYSTEM_COLUMNS if system else ())),
                 keys=tuple(keys), custom=logical.startswith(PREFIX + "_"), system=system, **kw)


_table = table


@dataclass(frozen=True)
class Publisher:
    unique_name: str
    friendly_name: str
    prefix: str
    option_value_prefix: int  # choices the solution defines number from option_value_prefix * 10000


@dataclass(frozen=True)
class Solution:
    unique_name: str
    friendly_name: str
    version: str
    description: str


PUBLISHER = Publisher("emailcampaignconnector", "Email Campaign Connector", PREFIX, 72_120)
SOLUTION = Solution("EmailCampaignConnector", "Email Campaign Connector", "1.0.0.0",
                    "Tables, columns and roles of the Dotdigital integration for Dynamics 365.")


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

#: The solution's own tables.
TABLES: tuple[Table, ...] = (
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
           _c("esc_emailcampaignid", "Lookup", "esc_emailcampaign", doc="the campaign, whose row holds its "
              "Dotdigital id"),
           _c("esc_listid", "Lookup", "list", doc="a marketing list to send to (more through esc_emailsend_list)"),
           _c("esc_senddate", "DateTime", doc="when to send; empty or past: now"),
           _c("esc_status", max_length=20, doc="Draft, Scheduled, Sending, Sent, Failed or Cancelled"),
           _c("esc_resultmessage", max_length=2000, doc="what the send came to, in words"),
           _c("esc_sendid", max_length=64, doc="Dotdigital send id"), _c("esc_datesent", "DateTime"),
           _c("esc_recipients", "Integer", doc="how many it was sent to"),
           _c("esc_splittestmetric", max_length=10, doc="Opens, Clicks or ROI; empty: no split test"),
           _c("esc_splittestpercent", "Integer", doc="share of the audience in the split test"),
           _c("esc_splittesthours", "Integer", doc="hours before the winner goes to the rest"),
           _c("esc_allowrepeatsends", "Boolean", default=False,
              doc="send to people who were sent the campaign before (default No)"),
           description="A campaign send requested from Dynamics."),
    _table("esc_emailsinglesend", "esc_emailsinglesends", "esc_name", _c("esc_name", max_length=255), _ACCOUNT,
           _c("esc_dotdigitalcampaignid", "Integer", doc="a triggered campaign"), *_crm_links(),
           _c("esc_email", max_length=320, doc="filled from the person when empty"),
           _c("esc_status", max_length=20, doc="Scheduled, Sent or Failed"),
           _c("esc_senddate", "DateTime", doc="when to send; empty or past: now"), _c("esc_datesent", "DateTime"),
           _c("esc_resultmessage", max_length=2000, doc="what the send came to, in words"),
           _c("esc_personalisation", max_length=4000, doc="a JSON object of further name -> value "
              "personalisation values"),
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
)
BY_LOGICAL: dict[str, Table] = {t.logical_name: t for t in TABLES}

#: The solution's many-to-many relationships.
MANY_TO_MANY: tuple[ManyToMany, ...] = (
    ManyToMany("esc_emailsend_list", "esc_emailsend", "list", "esc_emailsend_list",
               description="the marketing lists a campaign send goes to, beside its esc_listid"),
)

#: Columns the solution adds to Microsoft's standard tables.
EXTENSIONS: dict[str, tuple[Column, ...]] = {
    "list": (_c("esc_activatedforemail", "Boolean", doc="the list syncs"), _ACCOUNT,
             _c("esc_addressbookid", "Integer", doc="the Dotdigital address book")),
}

#: Standard tables the pipeline reads incrementally: change tracking must be on for them too.
TRACKED_STANDARD_TABLES = ("contact", "lead", "account", "list", "listmember")
#: Standard tables the pipeline reads and writes (consent: unsubscribe flags; list members, governed by `list`).
_PEOPLE = ("contact", "lead", "account")
_ALL_RIGHTS = ("Create", "Read", "Write", "Delete", "Append", "AppendTo")


def _on_solution(rights: tuple[str, ...]) -> tuple[Grant, ...]:
    return tuple(Grant(t.logical_name, rights) for t in TABLES)


ROLES: tuple[Role, ...] = (
    Role("Email Campaign Connector Service", "The application user the pipeline signs in as.",
         _on_solution(_ALL_RIGHTS) + tuple(Grant(t, ("Read", "Write", "Append", "AppendTo")) for t in _PEOPLE)
         + (Grant("list", ("Read", "Write", "Append", "AppendTo")), Grant("campaign", ("Read", "AppendTo")))),
    Role("Email Marketing Manager", "Manages accounts, lists and mappings, syncs and sends.",
         _on_solution(_ALL_RIGHTS)),
    Role("Email Marketing Professional", "Manages lists and mappings and syncs; cannot send.",
         tuple(Grant(t.logical_name, _ALL_RIGHTS if t.logical_name not in ("esc_emailsend", "esc_emailsinglesend")
                     else ("Read",)) for t in TABLES)),
    Role("Email Marketing Viewer", "Reads what the connector brought in.", _on_solution(("Read",))),
)
CONNECTOR_ROLE = ROLES[0].name


def markdown() -> str:
    """The solution's tables and its columns on standard tables as Markdown: docs/solution.md's table reference.

    Every table also has statecode, statuscode, createdon, modifiedon and versionnumber.
    """
    parts = []
    for logical, columns in EXTENSIONS.items():
        parts.append(f"#### `{logical}` (standard table)\n\nThe solution adds these columns.\n\n"
                     "| column (Web API name) | type | notes |\n|---|---|---|")
        parts += [_markdown_row(c) for c in columns]
        parts.append("")
    system = {c.name for c in SYSTEM_COLUMNS}
    for t in TABLES:
        keys = "; ".join(", ".join(k) for k in t.keys) or "none"
        parts.append(f"#### `{t.logical_name}` (`{t.entity_set}`, key `{t.primary_key}`)\n\n"
                     f"{t.description}\n"
                     f"Alternate keys: {keys}. Change tracking: {'on' if t.change_tracking else 'off'}. "
                     f"Bulk operations: {'yes' if t.bulk_operations else 'no'}.\n\n"
                     "| column (Web API name) | type | notes |\n|---|---|---|")
        parts += [_markdown_row(c) for c in t.columns[1:] if c.name not in system]
        parts.append("")
    parts.append("#### Many-to-many relationships\n\nEach side reads the other's rows through the navigation "
                 "property named.\n\n| relationship | tables (navigation property) | intersect table (columns) | "
                 "notes |\n|---|---|---|---|")
    parts += [f"| `{r.schema_name}` | `{r.entity1}` (`{r.entity1_navigation}`), `{r.entity2}` "
              f"(`{r.entity2_navigation}`) | `{r.intersect}` ({r.entity1_attribute}, {r.entity2_attribute}) | "
              f"{r.description} |" for r in MANY_TO_MANY]
    parts.append("")
    return "\n".join(parts)


def _markdown_row(col: Column) -> str:
    target = f" -> {', '.join(col.targets)}" if col.targets else ""
    return f"| `{col.web_name}` | {col.type}{target} | {col.description} |"

"""The tables the Dataverse stand-in serves: Microsoft's standard ones the pipeline reads, and the solution.

The solution (`esc_` tables and the columns it adds to standard tables) comes from its one definition,
dotdyn_pipeline/solution/schema.py; a `--bare` organisation starts without it. These descriptions drive the
stand-in: the SQLite tables, the Web API's names and types, `$select`/`$filter` checks, alternate keys,
`EntityDefinitions` and `$metadata`.
"""

from __future__ import annotations

import dataclasses

from dotdyn_pipeline.solution import schema as solution
from dotdyn_pipeline.solution.schema import (  # noqa: F401 (re-exported)
    READ_ONLY,
    Column,
    ManyToMany,
    Table,
    column,
    table,
)

#: Attribute type -> SQLite column type of the stand-in's store.
SQL_TYPES: dict[str, str] = {
    "Uniqueidentifier": "TEXT", "String": "TEXT COLLATE NOCASE", "Memo": "TEXT COLLATE NOCASE", "Integer": "INTEGER",
    "BigInt": "INTEGER", "Double": "REAL", "Decimal": "REAL", "Money": "REAL", "Boolean": "INTEGER", "DateTime": "TEXT",
    "DateOnly": "TEXT", "Picklist": "INTEGER", "State": "INTEGER", "Status": "INTEGER", "Lookup": "TEXT",
    "Customer": "TEXT", "Complex": "TEXT",
}
_c, _table = column, table

_PERSON = (_c("firstname", max_length=50), _c("lastname", max_length=50), _c("fullname", max_length=160),
           _c("emailaddress1", max_length=100), _c("donotbulkemail", "Boolean"), _c("donotemail", "Boolean"),
           _c("jobtitle"), _c("address1_city", max_length=80), _c("address1_country", max_length=80))

#: Microsoft's standard tables, as an organisation has them before the solution is installed.
STANDARD_TABLES: tuple[Table, ...] = (
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
           doc="member type: 1 account, 2 contact, 4 lead", options=((1, "Account"), (2, "Contact"), (4, "Lead"))),
           _c("type", "Boolean", doc="true = dynamic"),
           _c("query", "Memo", doc="FetchXML of a dynamic list"), _c("membercount", "Integer"),
           _c("lockstatus", "Boolean")),
    _table("listmember", "listmembers", "listmemberid", _c("listid", "Lookup", "list"),
           _c("entityid", "Lookup", "account", "contact", "lead"), _c("entitytype", max_length=64)),
    # System jobs, as BulkDelete leaves them: the job (statecode 3 = completed, statuscode 30 = succeeded,
    # 31 = failed) and its bulk delete operation with the counts.
    _table("asyncoperation", "asyncoperations", "name", _c("name", max_length=256),
           _c("operationtype", "Picklist", doc="13 = bulk delete"), _c("message", "Memo"),
           _c("recurrencepattern", max_length=256), _c("startedon", "DateTime"), _c("completedon", "DateTime"),
           change_tracking=False),
    _table("bulkdeleteoperation", "bulkdeleteoperations", "name", _c("name", max_length=256),
           _c("asyncoperationid", "Lookup", "asyncoperation"), _c("successcount", "Integer"),
           _c("failurecount", "Integer"), change_tracking=False),
)
#: Platform tables the Web API exposes for discovery (EntityDefinitions are computed: definitions.py).
PLATFORM_TABLES: tuple[Table, ...] = (
    _table("sdkmessagefilter", "sdkmessagefilters", "sdkmessagefilterid", _c("primaryobjecttypecode"),
           _c("sdkmessagename", doc="read as sdkmessageid/name"), change_tracking=False, system=False),
)

#: Security and installation records (served by security.py).
SECURITY_TABLES: tuple[Table, ...] = (
    table("businessunit", "businessunits", "name", _c("name", max_length=160),
          _c("parentbusinessunitid", "Lookup", "businessunit"), change_tracking=False,
          schema_name="BusinessUnit"),
    table("systemuser", "systemusers", "fullname", _c("fullname", max_length=200),
          _c("domainname", max_length=1024), _c("applicationid", "Uniqueidentifier"),
          _c("businessunitid", "Lookup", "businessunit"), _c("isdisabled", "Boolean"),
          _c("accessmode", "Picklist", doc="4: non-interactive (an application user)"), change_tracking=False,
          schema_name="SystemUser"),
    table("role", "roles", "name", _c("name"), _c("description", "Memo"), _c("businessunitid", "Lookup",
          "businessunit"), change_tracking=False, schema_name="Role"),
    table("privilege", "privileges", "name", _c("name"), _c("accessright", "Integer"), change_tracking=False,
          system=False, schema_name="Privilege"),
    table("publisher", "publishers", "friendlyname", _c("uniquename"), _c("friendlyname", max_length=256),
          _c("customizationprefix", max_length=8), _c("customizationoptionvalueprefix", "Integer"),
          _c("description", "Memo"), change_tracking=False, schema_name="Publisher"),
    table("solution", "solutions", "friendlyname", _c("uniquename", max_length=65),
          _c("friendlyname", max_length=256), _c("version", max_length=256), _c("description", "Memo"),
          _c("publisherid", "Lookup", "publisher"), _c("ismanaged", "Boolean"), change_tracking=False,
          schema_name="Solution"),
    table("systemuserroles", "systemuserrolescollection", "systemuserrolesid",
          _c("systemuserid", "Uniqueidentifier"), _c("roleid", "Uniqueidentifier"),
          keys=[("systemuserid", "roleid")], change_tracking=False, system=False, schema_name="SystemUserRoles"),
    table("roleprivileges", "roleprivilegescollection", "roleprivilegesid", _c("roleid", "Uniqueidentifier"),
          _c("privilegeid", "Uniqueidentifier"), _c("privilegedepthmask", "Integer"),
          keys=[("roleid", "privilegeid")], change_tracking=False, system=False, schema_name="RolePrivileges"),
)

#: Microsoft's many-to-many relationships of the security tables (their intersect tables are above).
SECURITY_RELATIONSHIPS: tuple[ManyToMany, ...] = (
    ManyToMany("systemuserroles_association", "systemuser", "role", "systemuserroles"),
    ManyToMany("roleprivileges_association", "role", "privilege", "roleprivileges"),
)


def intersect_table(relationship: ManyToMany) -> Table:
    """The intersect table of a many-to-many relationship: its own key and the two tables' keys, unique together.
    Its entity set is the intersect name with `set` appended (the stand-in's choice); it is read only."""
    name = relationship.intersect
    return table(name, f"{name}set", f"{name}id", _c(relationship.entity1_attribute, "Uniqueidentifier"),
                 _c(relationship.entity2_attribute, "Uniqueidentifier"),
                 keys=[(relationship.entity1_attribute, relationship.entity2_attribute)], change_tracking=False,
                 system=False)


#: The components of the organisation's solutions (served read only by solution_components.py).
SOLUTION_COMPONENT = table(
    "solutioncomponent", "solutioncomponents", "solutioncomponentid",
    _c("componenttype", "Picklist", doc="1 Entity, 2 Attribute, 10 Entity Relationship, 14 Entity Key, 20 Role",
       options=((1, "Entity"), (2, "Attribute"), (10, "Entity Relationship"), (14, "Entity Key"), (20, "Role"))),
    _c("objectid", "Uniqueidentifier"), _c("solutionid", "Lookup", "solution"),
    _c("rootcomponentbehavior", "Picklist", options=((0, "Include Subcomponents"), (1, "Do not include subcomponents"),
                                                     (2, "Include As Shell Only"))),
    _c("rootsolutioncomponentid", "Lookup", "solutioncomponent"), _c("ismetadata", "Boolean"),
    _c("createdon", "DateTime"), _c("modifiedon", "DateTime"), change_tracking=False, system=False,
    schema_name="SolutionComponent")


def with_solution(standard: Table) -> Table:
    """A standard table with the columns the solution adds to it (before the system columns, as created)."""
    added = solution.EXTENSIONS.get(standard.logical_name, ())
    if not added:
        return standard
    own = standard.columns[:len(standard.columns) - len(solution.SYSTEM_COLUMNS)]
    return dataclasses.replace(standard, columns=(*own, *added, *solution.SYSTEM_COLUMNS))


def organisation_tables(bare: bool = False) -> tuple[Table, ...]:
    """Every table of an organisation: with the solution installed, or (`bare`) Microsoft's tables only."""
    if bare:
        return (*STANDARD_TABLES, *PLATFORM_TABLES, *SECURITY_TABLES, SOLUTION_COMPONENT)
    return (*(with_solution(t) for t in STANDARD_TABLES), *solution.TABLES,
            *(intersect_table(r) for r in solution.MANY_TO_MANY), *PLATFORM_TABLES, *SECURITY_TABLES,
            SOLUTION_COMPONENT)


def organisation_relationships(bare: bool = False) -> tuple[ManyToMany, ...]:
    """The many-to-many relationships of an organisation: Microsoft's, and the solution's unless `bare`."""
    return SECURITY_RELATIONSHIPS if bare else (*SECURITY_RELATIONSHIPS, *solution.MANY_TO_MANY)


#: Navigation paths the filter accepts, mapped onto a column (the only one the discovery query needs).
PATHS: dict[tuple[str, str], str] = {("sdkmessagefilter", "sdkmessageid/name"): "sdkmessagename"}
BULK_MESSAGES = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


def tracked(tables: tuple[Table, ...], options: dict[str, str]) -> set[str]:
    """Logical names of the change-tracked tables (option `dataverse.untracked` names those without)."""
    if "dataverse.untracked" in options:
        off = {name.strip() for name in options["dataverse.untracked"].split(",") if name.strip()}
    else:
        off = {t.logical_name for t in tables if not t.change_tracking}
    return {t.logical_name for t in tables if t.system} - off

"""The provisioning plan, computed from what an organisation has (no requests): order, idempotence, conflicts."""

from __future__ import annotations

import dataclasses

from dotdyn_pipeline.connectors.dataverse.metadata import KeyState, RoleState, TableState, attribute_type
from dotdyn_pipeline.solution import schema
from dotdyn_pipeline.solution.provision import KINDS, Organisation, SolutionSpec, plan

ROOT, USER = "bu-root", "user-1"
STANDARD = ("contact", "lead", "account", "list", "listmember", "campaign")


def bare_organisation() -> Organisation:
    """Microsoft's tables only; contact, lead and account tracked; the user is a System Administrator."""
    tables = {name: TableState(name, f"id-{name}", name + "s", name in ("contact", "lead", "account"),
                               {f"{name}id": "Uniqueidentifier"}) for name in STANDARD}
    return Organisation(None, None, tables, ROOT, {}, USER, ROOT, {"r-admin": "System Administrator"})


def complete_organisation(spec: SolutionSpec) -> Organisation:
    """An organisation that has everything `spec` defines, keys Active."""
    org = bare_organisation()
    for name in spec.tracked_standard:
        org.tables[name].change_tracking = True
    for name, columns in spec.extensions.items():
        org.tables[name].attributes.update((c.name, attribute_type(c)) for c in columns)
        org.tables[name].lookups.update((c.name, c.targets[0]) for c in columns if c.is_lookup)
    for table in spec.tables:
        org.tables[table.logical_name] = TableState(
            table.logical_name, "id", table.entity_set, table.change_tracking,
            {c.name: attribute_type(c) for c in table.columns}, {c.name: c.targets[0] for c in table.columns
                                                                  if c.is_lookup},
            [KeyState(table.key_name(n), key, "Active") for n, key in enumerate(table.keys)])
    for relationship in spec.many_to_many:  # EntityDefinitions lists a many-to-many relationship on both tables
        for name in (relationship.entity1, relationship.entity2):
            org.tables[name].many_to_many[relationship.schema_name] = (relationship.entity1, relationship.entity2)
    org.publisher = {"publisherid": "p", "customizationprefix": spec.publisher.prefix}
    org.solution = {"solutionid": "s"}
    org.roles = {(role.name, ROOT): RoleState(f"r-{role.name}", ROOT, frozenset(role.privileges()))
                 for role in spec.roles}
    org.solution_roles = {f"r-{role.name}".lower() for role in spec.roles}  # ids as solutioncomponents reads them
    org.user_roles["r-connector"] = spec.connector_role
    return org


def test_a_bare_organisation_gets_everything_in_dependency_order():
    spec = SolutionSpec()
    changes = plan(spec, bare_organisation()).changes
    kinds = [change.kind for change in changes]
    assert kinds == sorted(kinds, key=KINDS.index)
    assert kinds[:2] == ["publisher", "solution"]
    assert {c.name for c in changes if c.kind == "table"} == {t.logical_name for t in schema.TABLES}
    lookups = [c for c in changes if c.kind == "lookup"]
    assert {c.name for c in lookups} >= {"esc_emailcampaign.esc_emailaccountid", "list.esc_emailaccountid"}
    assert all(kinds.index("lookup") > i for i, k in enumerate(kinds) if k in ("table", "column"))
    keys = [c for c in changes if c.kind == "key"]
    assert len(keys) == sum(len(t.keys) for t in schema.TABLES)
    assert {c.name for c in changes if c.kind == "change tracking"} == {"list", "listmember"}
    assert {c.name for c in changes if c.kind == "role"} == {r.name for r in schema.ROLES}
    assert [c.name for c in changes if c.kind == "solution component"] == [r.name for r in schema.ROLES]
    assert kinds.index("solution component") > kinds.index("role")
    assert [c.name for c in changes if c.kind == "role assignment"] == [schema.CONNECTOR_ROLE]
    assert [(c.name, c.detail) for c in changes if c.kind == "relationship"] == [
        ("esc_emailsend_list", "esc_emailsend <-> list")]
    assert kinds.index("relationship") > max(i for i, k in enumerate(kinds) if k in ("table", "lookup"))
    columns = {c.name for c in changes if c.kind == "column"}
    assert "esc_emailaccount.esc_isdefault" in columns and "list.esc_activatedforemail" in columns
    assert "esc_emailaccount.esc_name" not in columns  # the primary name comes with its table
    made_with_tables = {f"{t.logical_name}.{c}" for t in schema.TABLES
                        for c in (t.primary_key, "statecode", "createdon", "createdby")}
    assert not columns & made_with_tables


def test_an_organisation_that_has_everything_needs_no_change():
    spec = SolutionSpec()
    result = plan(spec, complete_organisation(spec))
    assert (result.changes, result.conflicts, result.keys_to_wait_for) == ([], [], [])
    assert result.unchanged > len(schema.TABLES) * 5


def test_a_newer_definition_adds_only_what_is_missing():
    spec = SolutionSpec()
    org = complete_organisation(spec)
    account = schema.BY_LOGICAL["esc_emailaccount"]
    newer = dataclasses.replace(account, columns=(*account.columns, schema.column("esc_region", "Picklist",
                                options=((1, "r1"), (2, "r2")))), keys=(*account.keys, ("esc_name",)))
    extra = schema.table("esc_extra", "esc_extras", "esc_name", schema.column("esc_name"),
                         schema.column("esc_emailaccountid", "Lookup", "esc_emailaccount"))
    spec = dataclasses.replace(spec, tables=(*(newer if t is account else t for t in spec.tables), extra))
    changes = [(c.kind, c.name) for c in plan(spec, org).changes]
    assert changes == [("table", "esc_extra"), ("column", "esc_emailaccount.esc_region"),
                       ("lookup", "esc_extra.esc_emailaccountid"), ("key", "esc_emailaccount.esc_emailaccount_key1")]


def test_a_column_of_another_type_is_a_conflict_and_left_alone():
    spec = SolutionSpec()
    org = complete_organisation(spec)
    org.tables["esc_emailaccount"].attributes["esc_transport"] = "Picklist"
    result = plan(spec, org)
    assert result.changes == []
    assert len(result.conflicts) == 1 and "esc_emailaccount.esc_transport" in result.conflicts[0]


def test_keys_not_yet_active_are_waited_for_and_missing_privileges_granted():
    spec = SolutionSpec()
    org = complete_organisation(spec)
    org.tables["esc_emailsupression"].keys[0] = dataclasses.replace(org.tables["esc_emailsupression"].keys[0],
                                                                     status="InProgress")
    viewer = schema.ROLES[-1]
    state = org.roles[(viewer.name, ROOT)]
    org.roles[(viewer.name, ROOT)] = dataclasses.replace(state, privileges=state.privileges - {
        "prvReadesc_emailaccount"})
    result = plan(spec, org)
    assert result.keys_to_wait_for == ["esc_emailsupression"]
    assert [(c.kind, c.name, c.subject[1]) for c in result.changes] == [
        ("privileges", viewer.name, {"prvReadesc_emailaccount": "Global"})]


def test_a_role_the_solution_does_not_hold_is_added_to_it():
    spec = SolutionSpec()
    org = complete_organisation(spec)
    viewer = schema.ROLES[-1]
    org.solution_roles.discard(f"r-{viewer.name}".lower())
    changes = plan(spec, org).changes
    assert [(c.kind, c.name) for c in changes] == [("solution component", viewer.name)]
    assert changes[0].line(done=True) == (f"added solution component {viewer.name} (role, to "
                                          f"{spec.solution.unique_name})")


def test_a_missing_many_to_many_relationship_is_planned_and_one_linking_other_tables_is_a_conflict():
    spec = SolutionSpec()
    org = complete_organisation(spec)
    for name in ("esc_emailsend", "list"):
        del org.tables[name].many_to_many["esc_emailsend_list"]
    changes = plan(spec, org).changes
    assert [(c.kind, c.name, c.subject) for c in changes] == [("relationship", "esc_emailsend_list",
                                                                spec.many_to_many[0])]
    assert changes[0].line(done=True) == "created relationship esc_emailsend_list (esc_emailsend <-> list)"
    org.tables["list"].many_to_many["esc_emailsend_list"] = ("esc_emailsinglesend", "list")
    result = plan(spec, org)
    assert result.changes == []
    assert result.conflicts == ["relationship esc_emailsend_list: it links esc_emailsinglesend and list; the "
                                "solution's links esc_emailsend and list (left as it is)"]

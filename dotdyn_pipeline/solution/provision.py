"""`dotdyn provision`: read what an organisation has of the solution, plan what it lacks, and create it.

Additive and idempotent: nothing that exists is dropped or altered; a column that exists with another type is a
conflict, reported and left alone; a second run finds nothing to do. The plan is applied in dependency order:
publisher, solution, tables (each with its primary name column), columns, lookups (one-to-many relationships,
after the tables they point at), many-to-many relationships (after both their tables), alternate keys (after
their columns), change tracking, roles (each added to the
solution with AddSolutionComponent: Microsoft documents `MSCRM.SolutionUniqueName` for metadata, not for records)
and their privileges, then the connector's role for the application user the command signs in as. Dataverse builds each
key's index asynchronously: the command waits until every key of the solution is Active.

The plan is plain data (`plan`, no requests); `read_organisation` and `apply` talk to the Web API through
connectors/dataverse/metadata.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dotdyn_pipeline.connectors.dataverse import DataverseError, odata
from dotdyn_pipeline.connectors.dataverse.metadata import (
    ROLE_COMPONENT,
    MetadataClient,
    MissingPrivilege,
    RoleState,
    TableState,
    attribute_type,
)
from dotdyn_pipeline.solution import schema
from dotdyn_pipeline.solution.schema import Column, ManyToMany, Publisher, Role, Solution, Table

#: The order changes are applied in: each kind only needs kinds before it.
KINDS = ("publisher", "solution", "table", "column", "lookup", "relationship", "key", "change tracking", "role",
         "solution component", "privileges", "role assignment")
#: What a change does, as the present and past tense of its line, and what its line calls the thing changed.
VERBS = {"change tracking": ("turn on", "turned on"), "privileges": ("grant", "granted"),
         "role assignment": ("assign", "assigned"), "solution component": ("add", "added")}
NOUNS = {"change tracking": "change tracking for", "privileges": "privileges to role", "role assignment": "role"}
#: Columns Dataverse makes with every table: the primary key and the system columns.
_MADE_WITH_TABLE = {c.name for c in schema.SYSTEM_COLUMNS}


@dataclass(frozen=True)
class SolutionSpec:
    """What to install: the solution's definition (tests and the benchmark add tables of their own)."""

    publisher: Publisher = schema.PUBLISHER
    solution: Solution = schema.SOLUTION
    tables: tuple[Table, ...] = schema.TABLES
    extensions: dict[str, tuple[Column, ...]] = field(default_factory=lambda: dict(schema.EXTENSIONS))
    many_to_many: tuple[ManyToMany, ...] = schema.MANY_TO_MANY
    tracked_standard: tuple[str, ...] = schema.TRACKED_STANDARD_TABLES
    roles: tuple[Role, ...] = schema.ROLES
    connector_role: str = schema.CONNECTOR_ROLE

    def table_names(self) -> list[str]:
        """Every table the solution makes or touches."""
        names = [t.logical_name for t in self.tables] + list(self.extensions) + list(self.tracked_standard) + [
            name for r in self.many_to_many for name in (r.entity1, r.entity2)]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Change:
    """One thing to create or turn on; `subject` is what it is made from (a Table, Column, Role ...)."""

    kind: str
    name: str
    detail: str = ""
    table: str = ""
    subject: Any = field(default=None, compare=False, repr=False)

    def line(self, done: bool) -> str:
        """`created table x (...)` once made; `would create table x (...)` in a plan."""
        present, past = VERBS.get(self.kind, ("create", "created"))
        return f"{past} {self.what}" if done else f"would {self.action()}"

    def action(self) -> str:
        return f"{VERBS.get(self.kind, ('create',))[0]} {self.what}"

    @property
    def what(self) -> str:
        return f"{NOUNS.get(self.kind, self.kind)} {self.name}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Organisation:
    """What the organisation has of the solution, as read before planning."""

    publisher: dict[str, Any] | None
    solution: dict[str, Any] | None
    tables: dict[str, TableState]
    business_unit: str
    roles: dict[tuple[str, str], RoleState]
    user_id: str
    user_business_unit: str
    user_roles: dict[str, str]  # role id -> name
    solution_roles: set[str] = field(default_factory=set)  # ids of the roles the solution holds


@dataclass
class Plan:
    changes: list[Change]
    unchanged: int
    conflicts: list[str]
    keys_to_wait_for: list[str]  # tables with keys that exist but are not Active yet


class ProvisionStopped(Exception):
    """The organisation refused a change; `done` holds the changes made before it."""

    def __init__(self, message: str, done: list[Change], privilege: str | None = None) -> None:
        super().__init__(message)
        self.done, self.privilege = done, privilege


class KeyIndexFailed(Exception):
    """Dataverse could not build the index of one or more alternate keys (duplicate values in the rows)."""


def read_organisation(client: MetadataClient, spec: SolutionSpec) -> Organisation:
    """Everything `plan` compares: tables in one EntityDefinitions query, then publisher, solution, roles, user."""
    tables = client.tables(spec.table_names())
    publisher = client.find_one("publishers", ("publisherid", "customizationprefix"),
                                f"uniquename eq {odata.literal(spec.publisher.unique_name)}")
    solution = client.find_one("solutions", ("solutionid", "version"),
                               f"uniquename eq {odata.literal(spec.solution.unique_name)}")
    user_id, user_business_unit = client.who_am_i()
    solution_roles = client.solution_components(solution["solutionid"], ROLE_COMPONENT) if solution else set()
    return Organisation(publisher, solution, tables, client.root_business_unit(),
                        client.roles([role.name for role in spec.roles]), user_id, user_business_unit,
                        client.user_roles(user_id), solution_roles)


def _own_columns(table: Table) -> list[Column]:
    """The columns provisioning creates on a table of the solution: all but those Dataverse makes with it."""
    return [c for c in table.columns[1:] if c.name not in _MADE_WITH_TABLE and c.name != table.primary_name]


class _Planner:
    def __init__(self, spec: SolutionSpec, org: Organisation) -> None:
        self.spec, self.org = spec, org
        self.changes: list[Change] = []
        self.unchanged = 0
        self.conflicts: list[str] = []
        self.keys_to_wait_for: list[str] = []

    def add(self, kind: str, name: str, detail: str = "", table: str = "", subject: Any = None) -> None:
        self.changes.append(Change(kind, name, detail, table, subject))

    def plan(self) -> Plan:
        self._publisher_and_solution()
        self.plan_tables()
        self._roles()
        return self.result()

    def plan_tables(self) -> None:
        """Tables, columns, lookups, many-to-many relationships, keys and change tracking: what the pipeline's reads
        and writes need."""
        spec, org = self.spec, self.org
        for table in spec.tables:
            self._table(table)
        for relationship in spec.many_to_many:
            self._many_to_many(relationship)
        for logical, columns in spec.extensions.items():
            if logical not in org.tables:
                self.conflicts.append(f"table {logical}: Microsoft's standard table is missing; its columns "
                                      f"{', '.join(c.name for c in columns)} cannot be added")
                continue
            self._columns(logical, columns, org.tables[logical])
        for logical in spec.tracked_standard:
            if logical not in org.tables:
                self.conflicts.append(f"table {logical}: Microsoft's standard table is missing; the pipeline "
                                      "reads it")
            else:
                self._change_tracking(logical, org.tables[logical])

    def result(self) -> Plan:
        self.changes.sort(key=lambda change: KINDS.index(change.kind))
        return Plan(self.changes, self.unchanged, self.conflicts, self.keys_to_wait_for)

    def _publisher_and_solution(self) -> None:
        publisher, solution = self.spec.publisher, self.spec.solution
        if self.org.publisher is None:
            self.add("publisher", publisher.unique_name, f"prefix {publisher.prefix}", subject=publisher)
        elif self.org.publisher.get("customizationprefix") != publisher.prefix:
            self.conflicts.append(f"publisher {publisher.unique_name}: its prefix is "
                                  f"{self.org.publisher.get('customizationprefix')!r}, not {publisher.prefix!r}")
        else:
            self.unchanged += 1
        if self.org.solution is None:
            self.add("solution", solution.unique_name, f"version {solution.version}", subject=solution)
        else:
            self.unchanged += 1

    def _table(self, table: Table) -> None:
        state = self.org.tables.get(table.logical_name)
        if state is None:
            self.add("table", table.logical_name, f"entity set {table.entity_set}", table.logical_name, table)
            state = TableState(table.logical_name, "", table.entity_set, table.change_tracking,
                               {table.primary_name: "String"})
        else:
            self.unchanged += 1
            if state.entity_set != table.entity_set:
                self.conflicts.append(f"table {table.logical_name}: its entity set is {state.entity_set!r}; the "
                                      f"pipeline addresses it as {table.entity_set!r}")
            if table.change_tracking:
                self._change_tracking(table.logical_name, state)
        self._columns(table.logical_name, _own_columns(table), state)
        self._keys(table, state)

    def _columns(self, logical: str, columns: Iterable[Column], state: TableState) -> None:
        for col in columns:
            name = f"{logical}.{col.name}"
            found = state.attributes.get(col.name)
            if found is None:
                if col.is_lookup:
                    self.add("lookup", name, f"-> {col.targets[0]}", logical, col)
                else:
                    self.add("column", name, col.type, logical, col)
            elif found != attribute_type(col):
                self.conflicts.append(f"column {name}: it is a {found} column; the solution defines a "
                                      f"{attribute_type(col)} column (left as it is)")
            elif col.is_lookup and state.lookups.get(col.name) not in (None, col.targets[0]):
                self.conflicts.append(f"lookup {name}: it points at {state.lookups[col.name]}; the solution's "
                                      f"points at {col.targets[0]} (left as it is)")
            else:
                self.unchanged += 1

    def _many_to_many(self, relationship: ManyToMany) -> None:
        name, tables = relationship.schema_name, (relationship.entity1, relationship.entity2)
        made = {t.logical_name for t in self.spec.tables}
        missing = [t for t in tables if t not in self.org.tables and t not in made]
        if missing:
            self.conflicts.append(f"relationship {name}: the table {missing[0]} is missing")
            return
        found = next((state.many_to_many[name] for state in map(self.org.tables.get, tables)
                      if state is not None and name in state.many_to_many), None)
        if found is None:
            self.add("relationship", name, f"{relationship.entity1} <-> {relationship.entity2}",
                     relationship.entity1, relationship)
        elif set(found) != set(tables):
            self.conflicts.append(f"relationship {name}: it links {found[0]} and {found[1]}; the solution's links "
                                  f"{tables[0]} and {tables[1]} (left as it is)")
        else:
            self.unchanged += 1

    def _keys(self, table: Table, state: TableState) -> None:
        existing = {frozenset(k.columns): k for k in state.keys}
        taken = {k.schema_name for k in state.keys}
        for columns in table.keys:
            found = existing.get(frozenset(columns))
            if found is None:  # named after its place in the definition, or the next name no key of the table has
                number = table.keys.index(columns)
                while table.key_name(number) in taken:
                    number += 1
                name = table.key_name(number)
                taken.add(name)
                self.add("key", f"{table.logical_name}.{name}", ", ".join(columns), table.logical_name,
                         (name, columns))
                continue
            self.unchanged += 1
            if found.status != "Active" and table.logical_name not in self.keys_to_wait_for:
                self.keys_to_wait_for.append(table.logical_name)

    def _change_tracking(self, logical: str, state: TableState) -> None:
        if state.change_tracking:
            self.unchanged += 1
        else:
            self.add("change tracking", logical, table=logical)

    def _roles(self) -> None:
        org, bu = self.org, self.org.business_unit
        for role in self.spec.roles:
            state = org.roles.get((role.name, bu))
            if state is None:
                self.add("role", role.name, subject=role)
            else:
                self.unchanged += 1
            if state is None or state.role_id.lower() not in org.solution_roles:
                self.add("solution component", role.name, f"role, to {self.spec.solution.unique_name}",
                         subject=role)
            else:
                self.unchanged += 1
            wanted = role.privileges()
            missing = {name: depth for name, depth in wanted.items() if state is None or name not in state.privileges}
            if missing:
                self.add("privileges", role.name, f"{len(missing)} of {len(wanted)}", subject=(role, missing))
            else:
                self.unchanged += 1
        if self.spec.connector_role in org.user_roles.values():
            self.unchanged += 1
        else:
            self.add("role assignment", self.spec.connector_role, f"to the application user {org.user_id}")


def plan(spec: SolutionSpec, org: Organisation) -> Plan:
    """The changes that bring `org` to `spec`, in the order they can be made; no requests."""
    return _Planner(spec, org).plan()


def plan_tables(spec: SolutionSpec, tables: dict[str, TableState]) -> Plan:
    """The part of the plan about tables, columns, lookups, keys and change tracking (what the doctor checks)."""
    planner = _Planner(spec, Organisation(None, None, tables, "", {}, "", "", {}))
    planner.plan_tables()
    return planner.result()


@dataclass
class _Applier:
    client: MetadataClient
    spec: SolutionSpec
    org: Organisation
    done: list[Change] = field(default_factory=list)
    role_ids: dict[str, str] = field(default_factory=dict)
    privilege_ids: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.role_ids = {name: state.role_id for (name, bu), state in self.org.roles.items()
                         if bu == self.org.business_unit}

    def run(self, change: Change) -> None:
        getattr(self, "_" + change.kind.replace(" ", "_"))(change)

    def _publisher(self, change: Change) -> None:
        p: Publisher = change.subject
        publisher_id = self.client.create("publishers", {
            "uniquename": p.unique_name, "friendlyname": p.friendly_name, "customizationprefix": p.prefix,
            "customizationoptionvalueprefix": p.option_value_prefix})
        self.org.publisher = {"publisherid": publisher_id, "customizationprefix": p.prefix}

    def _solution(self, change: Change) -> None:
        s: Solution = change.subject
        self.client.create("solutions", {
            "uniquename": s.unique_name, "friendlyname": s.friendly_name, "version": s.version,
            "description": s.description,
            "publisherid@odata.bind": f"/publishers({self.org.publisher['publisherid']})"})

    def _table(self, change: Change) -> None:
        self.client.create_table(change.subject, self.spec.solution.unique_name)

    def _column(self, change: Change) -> None:
        self.client.create_column(change.table, change.subject, self.spec.solution.unique_name)

    def _lookup(self, change: Change) -> None:
        col: Column = change.subject
        self.client.create_lookup(change.table, col, f"{col.targets[0]}id", self.spec.solution.unique_name)

    def _relationship(self, change: Change) -> None:
        self.client.create_many_to_many(change.subject, self.spec.solution.unique_name)

    def _key(self, change: Change) -> None:
        schema_name, columns = change.subject
        self.client.create_key(change.table, schema_name, columns, self.spec.solution.unique_name)

    def _change_tracking(self, change: Change) -> None:
        self.client.enable_change_tracking(change.table)

    def _role(self, change: Change) -> None:
        role: Role = change.subject
        self.role_ids[role.name] = self.client.create("roles", {
            "name": role.name, "description": role.description,
            "businessunitid@odata.bind": f"/businessunits({self.org.business_unit})"})

    def _solution_component(self, change: Change) -> None:
        self.client.add_solution_component(self.role_ids[change.subject.name], ROLE_COMPONENT,
                                           self.spec.solution.unique_name)

    def _privileges(self, change: Change) -> None:
        role, missing = change.subject
        if self.privilege_ids is None:  # every role's privileges looked up at once, now that the tables exist
            names = sorted({name for r in self.spec.roles for name in r.privileges()})
            self.privilege_ids = self.client.privilege_ids(names)
        if unknown := sorted(set(missing) - set(self.privilege_ids)):
            raise ProvisionStopped(f"role {role.name}: the organisation has no privilege named "
                                   f"{', '.join(unknown[:5])}", self.done)
        self.client.add_privileges(self.role_ids[role.name], self.org.business_unit,
                                   {name: (self.privilege_ids[name], depth) for name, depth in missing.items()})

    def _role_assignment(self, change: Change) -> None:
        role_id = self.role_ids[change.name]
        if self.org.user_business_unit != self.org.business_unit:  # Dataverse copies each role into every unit
            role_id = self.client.roles([change.name])[(change.name, self.org.user_business_unit)].role_id
        self.client.assign_role(self.org.user_id, role_id)


def apply(client: MetadataClient, spec: SolutionSpec, org: Organisation, the_plan: Plan,
          report: Callable[[Change], None] = lambda change: None) -> list[Change]:
    """Make the plan's changes in order, calling `report` after each; the changes made.

    A refusal stops the run with ProvisionStopped, naming the change refused (and the privilege, when one was
    missing) and holding the changes made so far; the next run plans from what exists and goes on from there.
    """
    applier = _Applier(client, spec, org)
    for change in the_plan.changes:
        try:
            applier.run(change)
        except MissingPrivilege as refusal:
            privilege = refusal.privilege or "a privilege the service did not name"
            raise ProvisionStopped(
                f"the application user lacks the privilege {privilege}, needed to {change.action()}. "
                "Give it a role that holds that privilege (System Customizer, for example) and run dotdyn "
                "provision again: it goes on from where this run stopped", applier.done, refusal.privilege) from None
        except DataverseError as refusal:
            reason = str(refusal).rstrip(".")
            raise ProvisionStopped(f"the organisation refused to {change.action()}: {reason}. Once that is put "
                                   "right, run dotdyn provision again: it goes on from there",
                                   applier.done) from None
        applier.done.append(change)
        report(change)
    return applier.done


def wait_for_keys(client: MetadataClient, tables: list[str], *, timeout: float = 600.0,
                  first_delay: float = 0.1, max_delay: float = 5.0,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], float] = time.monotonic) -> float:
    """Wait until every alternate key of `tables` is Active; the seconds waited.

    Dataverse builds a key's index in a system job (Pending, InProgress, then Active or Failed): polled with a
    doubling delay up to `max_delay`, for at most `timeout` seconds. A Failed key raises KeyIndexFailed.
    """
    start, delay = clock(), first_delay
    while tables:
        keys = client.keys(tables)
        failed = [f"{table}.{k.schema_name} ({', '.join(k.columns)})" for table in tables
                  for k in keys.get(table, []) if k.status == "Failed"]
        if failed:
            raise KeyIndexFailed(
                f"Dataverse could not build the index of the alternate key {'; '.join(failed)}: rows of the table "
                "share the key's values. Remove or correct the duplicates, then reactivate the key "
                "(ReactivateEntityKey, or the key's page in the maker portal)")
        tables = [table for table in tables if any(k.status != "Active" for k in keys.get(table, []))]
        if not tables:
            break
        if clock() - start > timeout:
            pending = [f"{t}.{k.schema_name}: {k.status}" for t in tables for k in keys.get(t, [])
                       if k.status != "Active"]
            raise KeyIndexFailed(f"alternate keys still not Active after {timeout:.0f} s: {'; '.join(pending)}")
        sleep(delay)
        delay = min(max_delay, delay * 2)
    return round(clock() - start, 3)



@dataclass
class Outcome:
    """What a run did (or, dry, would do): the JSON line of `dotdyn provision --json`."""

    changes: list[Change]
    unchanged: int
    conflicts: list[str]
    dry_run: bool
    seconds: float = 0.0
    requests: int = 0
    key_wait_seconds: float = 0.0
    error: str | None = None
    missing_privilege: str | None = None

    def summary(self) -> dict[str, Any]:
        summary = {"changes": len(self.changes), "created": [change.what for change in self.changes],
                   "unchanged": self.unchanged, "conflicts": self.conflicts, "dry_run": self.dry_run,
                   "seconds": self.seconds, "requests": self.requests, "key_wait_seconds": self.key_wait_seconds}
        if self.error:
            summary.update(error=self.error, missing_privilege=self.missing_privilege)
        return summary

    @property
    def ok(self) -> bool:
        return not (self.error or self.conflicts)


def provision(client: MetadataClient, spec: SolutionSpec | None = None, *, dry_run: bool = False,
              report: Callable[[Change], None] = lambda change: None, key_timeout: float = 600.0) -> Outcome:
    """Read, plan and (unless `dry_run`) apply, then wait for the keys; refusals end up in the outcome."""
    spec, start, calls = spec or SolutionSpec(), time.perf_counter(), client.counter.total
    org = read_organisation(client, spec)
    the_plan = plan(spec, org)
    outcome = Outcome(the_plan.changes, the_plan.unchanged, the_plan.conflicts, dry_run)
    if dry_run:
        for change in the_plan.changes:
            report(change)
    else:
        try:
            outcome.changes = apply(client, spec, org, the_plan, report)
            tables = {c.table for c in outcome.changes if c.kind == "key"} | set(the_plan.keys_to_wait_for)
            outcome.key_wait_seconds = wait_for_keys(client, sorted(tables), timeout=key_timeout)
        except ProvisionStopped as stopped:
            outcome.changes, outcome.error = stopped.done, str(stopped)
            outcome.missing_privilege = stopped.privilege
        except KeyIndexFailed as failed:
            outcome.error = str(failed)
    outcome.seconds = round(time.perf_counter() - start, 3)
    outcome.requests = client.counter.total - calls
    return outcome


def run_command(*, dry_run: bool, as_json: bool, key_timeout: float, spec: SolutionSpec | None = None) -> int:
    """`dotdyn provision`: one line per change, a closing line, and with `as_json` one JSON line at the end."""
    import json

    from dotdyn_pipeline.organisation import dataverse_config

    with MetadataClient(dataverse_config()) as client:
        outcome = provision(client, spec, dry_run=dry_run, key_timeout=key_timeout,
                            report=lambda change: print(change.line(done=not dry_run), flush=True))
    for conflict in outcome.conflicts:
        print(f"conflict: {conflict}")
    if outcome.error:
        print(f"stopped after {len(outcome.changes)} changes{' (above)' if outcome.changes else ''}: "
              f"{outcome.error}")
    verb = "to make" if dry_run else "made"
    print(f"{len(outcome.changes)} changes {verb}, {outcome.unchanged} unchanged, {len(outcome.conflicts)} "
          f"conflicts; {outcome.requests} requests in {outcome.seconds:.1f} s")
    if as_json:
        print(json.dumps(outcome.summary(), sort_keys=True))
    return 0 if outcome.ok else 1

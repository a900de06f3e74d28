"""The tables of one organisation as they are now: what every part of the Dataverse stand-in asks about them.

Tables change at run time (the metadata operations create tables, columns, relationships and keys). A change
replaces the table's `Table` object and never mutates it, so that nothing built from the old object (a cached
SQL expression, a parsed `$select`) is mistaken for the new one. The catalog also holds what a `Table` does
not say: which tables are change-tracked, the index status of each alternate key, relationship names, the
many-to-many relationships, metadata ids, labels, the components each solution holds, and the organisation's
metadata version.
(The privileges each table has are the security module's: security.py.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError, segment_not_found
from dotdyn_pipeline.sandbox.dataverse.schema import READ_ONLY, Column, ManyToMany, Table

#: ObjectTypeCode of Microsoft's tables; custom tables count up from 10000 in the order they were created.
TYPE_CODES = {"account": 1, "contact": 2, "lead": 4, "list": 4300, "listmember": 4301, "campaign": 4400,
              "publisher": 7101, "solution": 7100, "solutioncomponent": 7103, "sdkmessagefilter": 4607}
PENDING, ACTIVE, FAILED = "Pending", "Active", "Failed"
#: solutioncomponent.componenttype of the components the stand-in keeps (Microsoft's option values).
ENTITY, ATTRIBUTE, RELATIONSHIP, ENTITY_KEY, ROLE = 1, 2, 10, 14, 20
#: solutioncomponent.rootcomponentbehavior of a root component.
INCLUDE_SUBCOMPONENTS, DO_NOT_INCLUDE_SUBCOMPONENTS = 0, 1


def metadata_id(*parts: str) -> str:
    """The stable MetadataId of a table, column, key, relationship or privilege, from what names it."""
    digest = hashlib.blake2b(":".join(("metadata", *parts)).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


@dataclass
class KeyIndex:
    """An alternate key and the index behind it, which Dataverse builds after the key is defined."""

    schema_name: str
    columns: tuple[str, ...]
    ready_at: float  # clock reading at which the index job ends
    failed: bool = False  # the job ends Failed: the existing rows are not unique on the key

    def status(self, now: float) -> str:
        if now < self.ready_at:
            return PENDING
        return FAILED if self.failed else ACTIVE


@dataclass(frozen=True)
class Relationship:
    """A one-to-many relationship: `referencing.lookup` points at a `referenced` row."""

    schema_name: str
    referenced: str
    referencing: str
    lookup: str

    @property
    def metadata_id(self) -> str:
        return metadata_id("relationship", self.schema_name)


@dataclass(frozen=True)
class Side:
    """A many-to-many relationship as one table's navigation property sees it: the property, the intersect column
    holding this table's key, the table across and the intersect column holding its key."""

    relationship: ManyToMany
    navigation: str
    mine: str
    other: str
    theirs: str


@dataclass(frozen=True)
class SolutionComponent:
    """One component of one solution, as `solutioncomponents` lists it."""

    solution: str  # the solution's unique name
    component_type: int
    object_id: str  # a table's, column's, relationship's or key's MetadataId; a record's id (a role)
    behavior: int | None  # rootcomponentbehavior of a root component; None for a subcomponent
    root: tuple[int, str] | None = None  # (type, object id) of the table a column or key came with

    @property
    def id(self) -> str:
        return metadata_id("solutioncomponent", self.solution.lower(), str(self.component_type), self.object_id)


class Catalog:
    """The organisation's tables by logical name and entity set, with their metadata state."""

    def __init__(self, tables: Iterable[Table], tracked: set[str], key_index_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, many_to_many: Iterable[ManyToMany] = ()) -> None:
        self.key_index_seconds, self.clock = key_index_seconds, clock
        self.version = 1  # bumped by every metadata change
        self._tables: dict[str, Table] = {}
        self._sets: dict[str, Table] = {}
        self._tracked: set[str] = set()
        self._keys: dict[str, list[KeyIndex]] = {}
        self._relationship_names: dict[tuple[str, str, str], str] = {}  # (referencing, lookup, referenced)
        self._many_to_many: dict[str, ManyToMany] = {r.schema_name.lower(): r for r in many_to_many}
        self._type_codes: dict[str, int] = {}
        #: What a metadata write said about a table (table,) or column (table, column) beyond its Table: schema
        #: name, labels, ownership, options ..., which the definitions serve instead of derived defaults.
        self.properties: dict[tuple[str, ...], dict[str, Any]] = {}
        #: (solution unique name in lower case, component type, object id) -> the component, in the order added.
        self.components: dict[tuple[str, int, str], SolutionComponent] = {}
        for table in tables:
            self.add_table(table, table.logical_name in tracked, index_ready=True)
        self.version = 1

    # -- lookups -----------------------------------------------------------------------------------------
    def tables(self) -> list[Table]:
        return list(self._tables.values())

    def data_tables(self) -> list[Table]:
        """The tables EntityDefinitions describes (Dataverse's own platform sets such as sdkmessagefilters
        are described too, but the pipeline never asks for them)."""
        return [t for t in self._tables.values() if t.system]

    def get(self, logical_name: str) -> Table | None:
        return self._tables.get(logical_name)

    def table(self, logical_name: str) -> Table:
        """The table, which the caller knows exists (a standard table the stand-in always has)."""
        return self._tables[logical_name]

    def by_set(self, entity_set: str) -> Table | None:
        return self._sets.get(entity_set)

    def require_set(self, entity_set: str) -> Table:
        table = self._sets.get(entity_set)
        if table is None:
            raise segment_not_found(entity_set)
        return table

    def is_tracked(self, logical_name: str) -> bool:
        return logical_name in self._tracked

    def tracked(self) -> set[str]:
        return set(self._tracked)

    def type_code(self, logical_name: str) -> int:
        return self._type_codes[logical_name]

    def table_id(self, logical_name: str) -> str:
        return metadata_id("entity", logical_name)

    def column_id(self, logical_name: str, column: str) -> str:
        return metadata_id("attribute", logical_name, column)

    def key_id(self, logical_name: str, schema_name: str) -> str:
        return metadata_id("key", logical_name, schema_name)

    # -- keys --------------------------------------------------------------------------------------------
    def keys(self, logical_name: str) -> list[KeyIndex]:
        return list(self._keys.get(logical_name, []))

    def key_status(self, key: KeyIndex) -> str:
        return key.status(self.clock())

    def require_active_key(self, table: Table, columns: Iterable[str]) -> None:
        """Refuse addressing a row by an alternate key whose index is not (yet) active, as Dataverse does."""
        wanted = set(columns)
        for key in self._keys.get(table.logical_name, []):
            if set(key.columns) == wanted and self.key_status(key) != ACTIVE:
                raise DataverseError(400, "0x80060891", f"The entity key '{key.schema_name}' of entity "
                                     f"'{table.logical_name}' is {self.key_status(key).lower()}: its index is not "
                                     "active yet, so it cannot be used to address a record.")

    # -- relationships -----------------------------------------------------------------------------------
    def relationships(self) -> list[Relationship]:
        """Every one-to-many relationship: one per lookup column and table it may point at (those of the columns
        the service sets, createdby and createdonbehalfby, named `lk_<table>_<column>` as Dataverse names them)."""
        found = []
        for table in self._tables.values():
            for column in table.columns:
                for target in column.targets if column.is_lookup else ():
                    name = self._relationship_names.get((table.logical_name, column.name, target),
                                                        f"lk_{table.logical_name}_{column.name}"
                                                        if column.name in READ_ONLY else
                                                        f"{target}_{table.logical_name}_{column.name}")
                    found.append(Relationship(name, target, table.logical_name, column.name))
        return found

    def many_to_many(self) -> list[ManyToMany]:
        return list(self._many_to_many.values())

    def relationship_id(self, schema_name: str) -> str:
        """The MetadataId of a one-to-many or many-to-many relationship."""
        return metadata_id("relationship", schema_name)

    def relationship_taken(self, schema_name: str) -> bool:
        """Whether a relationship of either kind has the schema name (which Dataverse compares without case)."""
        wanted = schema_name.lower()
        return wanted in self._many_to_many or any(r.schema_name.lower() == wanted for r in self.relationships())

    def sides(self, logical_name: str) -> list[Side]:
        """Every many-to-many relationship the table takes part in, as its navigation properties see them."""
        found = []
        for r in self._many_to_many.values():
            if r.entity1 == logical_name:
                found.append(Side(r, r.entity1_navigation, r.entity1_attribute, r.entity2, r.entity2_attribute))
            if r.entity2 == logical_name:
                found.append(Side(r, r.entity2_navigation, r.entity2_attribute, r.entity1, r.entity1_attribute))
        return found

    def side(self, logical_name: str, navigation: str) -> Side | None:
        """The many-to-many relationship behind a collection-valued navigation property of the table, if any."""
        return next((side for side in self.sides(logical_name) if side.navigation == navigation), None)

    def is_intersect(self, logical_name: str) -> bool:
        return any(r.intersect == logical_name for r in self._many_to_many.values())

    # -- changes -----------------------------------------------------------------------------------------
    def add_table(self, table: Table, tracked: bool, index_ready: bool = False) -> None:
        if table.logical_name in self._tables or table.entity_set in self._sets:
            raise ValueError(f"table {table.logical_name} exists")
        self._type_codes[table.logical_name] = TYPE_CODES.get(
            table.logical_name, 10_000 + sum(1 for code in self._type_codes.values() if code >= 10_000))
        self._keys[table.logical_name] = [KeyIndex(table.key_name(number), key, 0.0 if index_ready else
                                                   self.clock() + self.key_index_seconds)
                                          for number, key in enumerate(table.keys)]
        self._put(table)
        if tracked:
            self._tracked.add(table.logical_name)

    def add_column(self, table: Table, column: Column) -> Table:
        """A new version of `table` with `column` appended; returns it."""
        return self._put(dataclasses.replace(table, columns=(*table.columns, column)))

    def add_key(self, table: Table, schema_name: str, columns: tuple[str, ...], unique: bool) -> Table:
        """Define an alternate key; its index becomes Active (or Failed, when `unique` is false) after the
        configured delay."""
        self._keys[table.logical_name].append(KeyIndex(schema_name, columns,
                                                       self.clock() + self.key_index_seconds, not unique))
        return self._put(dataclasses.replace(table, keys=(*table.keys, columns)))

    def name_relationship(self, referencing: str, lookup: str, referenced: str, schema_name: str) -> None:
        self._relationship_names[(referencing, lookup, referenced)] = schema_name
        self.version += 1

    def add_many_to_many(self, relationship: ManyToMany, intersect: Table) -> None:
        """A new many-to-many relationship with its intersect table."""
        self.add_table(intersect, tracked=False, index_ready=True)
        self._many_to_many[relationship.schema_name.lower()] = relationship

    def add_component(self, solution: str, component_type: int, object_id: str,
                      behavior: int = INCLUDE_SUBCOMPONENTS, table: str | None = None) -> SolutionComponent:
        """Record that `solution` holds the component; a component it holds already stays as it is. A column or
        key (`table` names its table) of a table the solution holds is a subcomponent of that table."""
        found = self.components.get((solution.lower(), component_type, object_id))
        if found is not None:
            return found
        root = (ENTITY, self.table_id(table)) if table else None
        if root is not None and (solution.lower(), *root) not in self.components:
            root = None
        component = SolutionComponent(solution, component_type, object_id, None if root else behavior, root)
        self.components[(solution.lower(), component_type, object_id)] = component
        return component

    def add_table_component(self, solution: str, logical_name: str) -> None:
        """`solution` holds the table with its subcomponents: every column it has and every alternate key."""
        self.add_component(solution, ENTITY, self.table_id(logical_name))
        for column in self._tables[logical_name].columns:
            self.add_component(solution, ATTRIBUTE, self.column_id(logical_name, column.name), table=logical_name)
        for key in self._keys.get(logical_name, []):
            self.add_component(solution, ENTITY_KEY, self.key_id(logical_name, key.schema_name), table=logical_name)

    def set_tracking(self, logical_name: str, on: bool) -> None:
        (self._tracked.add if on else self._tracked.discard)(logical_name)
        self.version += 1

    def _put(self, table: Table) -> Table:
        self._tables[table.logical_name] = table
        self._sets[table.entity_set] = table
        self.version += 1
        return table

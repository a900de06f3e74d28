"""Many-to-many relationships between rows, through each table's collection-valued navigation property, as the
Web API documents them ("Associate and disassociate table rows using the Web API"):

- `GET <set>(<id>)/<navigation>`: the related rows, with an entity set's query options and paging;
- `POST <set>(<id>)/<navigation>/$ref` with `{"@odata.id": "<URL of the other row>"}` links two rows;
- `DELETE <set>(<id>)/<navigation>(<other id>)/$ref`, or `.../<navigation>/$ref?$id=<URL of the other row>`,
  unlinks them.

Both writes answer 204 and are idempotent, as Dataverse answers them: linking rows already linked, or unlinking
rows that are not, changes nothing. A row that does not exist is 404, a reference to a row of another table 400.
The links are the intersect table's rows, which its entity set serves read only; deleting a row removes its
links. Links that need a privilege (a role given to a user needs prvAssignRole) are checked for it.
"""

from __future__ import annotations

from typing import Any

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog, Side
from dotdyn_pipeline.sandbox.dataverse.customization import Guard
from dotdyn_pipeline.sandbox.dataverse.errors import DataverseError, segment_not_found
from dotdyn_pipeline.sandbox.dataverse.messages import ApiRequest, ApiResponse
from dotdyn_pipeline.sandbox.dataverse.odata import parse_key, split_segment
from dotdyn_pipeline.sandbox.dataverse.query import CollectionReader, Scope
from dotdyn_pipeline.sandbox.dataverse.schema import Table
from dotdyn_pipeline.sandbox.dataverse.store import Store, q
from dotdyn_pipeline.sandbox.dataverse.writes import Writer


class Associations:
    """Reads and changes the links of the organisation's many-to-many relationships."""

    def __init__(self, store: Store, catalog: Catalog, writer: Writer, reader: CollectionReader, guard: Guard,
                 user_id: str, privileges: dict[str, str]) -> None:
        self.store, self.catalog, self.writer, self.reader = store, catalog, writer, reader
        self.guard, self.user_id = guard, user_id
        self.privileges = privileges  # relationship schema name -> the privilege linking needs

    def handle(self, side: Side, table: Table, row: dict[str, Any], rest: str, request: ApiRequest) -> ApiResponse:
        """A request to `<set>(<id>)/<rest>`, where `rest` starts with the navigation property of `side`."""
        navigation, other_key, ref = split_segment(rest)
        target, method, own_id = self.catalog.table(side.other), request.method, row[table.primary_key]
        if method == "GET" and other_key is None and ref == "":
            scope = Scope(f"{q(target.primary_key)} IN (SELECT _link.{q(side.theirs)} FROM "
                          f"{q(side.relationship.intersect)} AS _link WHERE _link.{q(side.mine)} = ?)", (own_id,),
                          f"{table.entity_set}({own_id})/{navigation}")
            return self.reader.read(target, request, scope)
        if ref != "$ref":
            raise segment_not_found(rest)
        if method == "POST" and other_key is None:
            body = request.json()
            other = self.writer.referenced(target.logical_name, body.get("@odata.id") if isinstance(body, dict)
                                           else None)
            self._require(side)
            with self.store.transaction():
                self.associate(side, own_id, other)
            return ApiResponse(204)
        if method == "DELETE":
            if other_key is None:
                other = self.writer.referenced(target.logical_name, request.query.get("$id"))
            else:
                other = self.writer.require(target, parse_key(target, other_key))[target.primary_key]
            self._require(side)
            with self.store.transaction():
                self.disassociate(side, own_id, other)
            return ApiResponse(204)
        raise DataverseError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on '{rest}'.")

    def associate(self, side: Side, own_id: str, other_id: str) -> None:
        intersect = self.catalog.table(side.relationship.intersect)
        if self.store.find(intersect, {side.mine: own_id, side.theirs: other_id}) is None:
            self.store.insert(intersect, {side.mine: own_id, side.theirs: other_id})

    def disassociate(self, side: Side, own_id: str, other_id: str) -> None:
        intersect = self.catalog.table(side.relationship.intersect)
        link = self.store.find(intersect, {side.mine: own_id, side.theirs: other_id})
        if link is not None:
            self.store.delete(intersect, link)

    def forget(self, table: Table, row: dict[str, Any]) -> None:
        """Remove the links of a row being deleted, as Dataverse does."""
        for side in self.catalog.sides(table.logical_name):
            intersect = self.catalog.table(side.relationship.intersect)
            while (link := self.store.find(intersect, {side.mine: row[table.primary_key]})) is not None:
                self.store.delete(intersect, link)

    def _require(self, side: Side) -> None:
        privilege = self.privileges.get(side.relationship.schema_name)
        if privilege:
            self.guard.require(self.user_id, privilege)

"""Marketing list membership: the `listmember` rows behind AddMemberList, AddListMembersList, RemoveMemberList and
the list's many-to-many relationships to its members (`listcontact_association` ...), whose intersect they are."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from dotdyn_pipeline.sandbox.dataverse.catalog import Catalog
from dotdyn_pipeline.sandbox.dataverse.errors import bad_request, not_found
from dotdyn_pipeline.sandbox.dataverse.store import Store, q

#: list.createdfromcode -> the table its members come from.
MEMBER_TYPES = {1: "account", 2: "contact", 4: "lead"}
#: The list's collection-valued navigation property to each member table -> that table.
RELATIONSHIPS = {f"list{kind}_association": kind for kind in MEMBER_TYPES.values()}


def member_id(list_id: str, entity_id: str) -> str:
    """The stable id of a membership, so adding a member twice finds the same row."""
    digest = hashlib.blake2b(f"{list_id}:{entity_id}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


class Memberships:
    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store, self.catalog = store, catalog

    def member_type(self, list_row: dict[str, Any]) -> str:
        if list_row.get("type"):
            raise bad_request("Members cannot be added to or removed from a dynamic marketing list.")
        if list_row.get("lockstatus"):
            raise bad_request("The marketing list is locked; members cannot be changed.")
        kind = MEMBER_TYPES.get(list_row.get("createdfromcode"))
        if kind is None:
            raise bad_request("The marketing list has no valid member type (createdfromcode).")
        return kind

    def add(self, list_row: dict[str, Any], kind: str, entity_ids: list[str]) -> list[str]:
        """Add members (idempotent); every member must exist and be of the list's member type."""
        expected = self.member_type(list_row)
        if kind != expected:
            raise bad_request(f"Members of type {kind} cannot be added to a list of {expected} members.")
        table, listmember = self.catalog.table(kind), self.catalog.table("listmember")
        ids = []
        for entity_id in entity_ids:
            if self.store.find(table, {table.primary_key: entity_id}) is None:
                raise not_found(kind, entity_id)
            membership = member_id(list_row["listid"], entity_id)
            if self.store.find(listmember, {"listmemberid": membership}) is None:
                self.store.insert(listmember, {"listmemberid": membership, "listid": list_row["listid"],
                                               "entityid": entity_id, "entityid@type": kind, "entitytype": kind})
            ids.append(membership)
        self.refresh_count(list_row)
        return ids

    def disassociate(self, list_row: dict[str, Any], kind: str, entity_id: str) -> None:
        """Take a record of table `kind` off the list: a table other than the list's member type is refused as
        AddMemberList refuses it; a record already off the list stays off, as RemoveMemberList leaves it."""
        expected = self.member_type(list_row)
        if kind != expected:
            raise bad_request(f"Members of type {kind} cannot be added to or removed from a list of {expected} "
                              "members.")
        self.remove(list_row, entity_id)

    def remove(self, list_row: dict[str, Any], entity_id: str) -> None:
        self.member_type(list_row)
        listmember = self.catalog.table("listmember")
        row = self.store.find(listmember, {"listmemberid": member_id(list_row["listid"], entity_id)})
        if row is not None:
            self.store.delete(listmember, row)
        self.refresh_count(list_row)

    def refresh_count(self, list_row: dict[str, Any]) -> None:
        count = self.store.db.execute(f"SELECT COUNT(*) FROM {q('listmember')} WHERE listid = ?",
                                      (list_row["listid"],)).fetchone()[0]
        if count != list_row.get("membercount"):
            self.store.update(self.catalog.table("list"), list_row, {"membercount": count})

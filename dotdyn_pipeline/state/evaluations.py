"""Each dynamic marketing list's last evaluation: the records its query selected, and whether it failed since.

The members are kept in the mirror as link rows of `QUERY_MEMBERS` (parent: the list, ref: the record), the
shape a static list's `listmember` rows have there, so that an account's sync reads both kinds of list the same
way. The status of each evaluation is in `list_evaluation` (sql/0016).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dotdyn_pipeline.state.backend import Backend
from dotdyn_pipeline.state.mirror import CrmMirror, MirrorRow, _now, chunks, rows_in

#: The mirror's link table of the records each dynamic list's query selected.
QUERY_MEMBERS = "list_query_member"


@dataclass(frozen=True)
class Evaluation:
    """A list's last evaluation: its members' table and count as of the last success (`evaluated_at`; None
    before any), and the error of a failure since (None when the last evaluation succeeded)."""

    list_id: str
    account: str
    member_table: str | None
    members: int
    evaluated_at: str | None
    error: str | None
    failed_at: str | None


@dataclass(frozen=True)
class MemberChange:
    """What one evaluation changed: the records that entered the list and those that left it (ids of
    `member_table`), and the evaluation before it (None: the list's first)."""

    entered: list[str]
    left: list[str]
    before: Evaluation | None


def _link_id(list_id: str, record_id: str) -> str:
    return f"{list_id}:{record_id}"


class ListEvaluations:
    """The dynamic lists' last evaluations."""

    def __init__(self, backend: Backend, mirror: CrmMirror) -> None:
        self.backend = backend
        self.mirror = mirror

    def get(self, list_id: str) -> Evaluation | None:
        rows = self.backend.query("SELECT list_id, account, member_table, members, evaluated_at, error, failed_at "
                                  "FROM list_evaluation WHERE list_id = ?", (list_id,))
        return Evaluation(*rows[0]) if rows else None

    def member_ids(self, list_id: str) -> set[str]:
        """The records the list's last successful evaluation selected."""
        return {ref for (ref,) in self.backend.query(
            "SELECT ref_id FROM crm_record WHERE crm_table = ? AND parent_id = ?", (QUERY_MEMBERS, list_id))}

    def save(self, account: str, list_id: str, member_table: str, record_ids: Iterable[str]) -> MemberChange:
        """Keep a successful evaluation (the ids of `member_table` records the query selected) in place of the
        last one; return who entered and who left."""
        selected = set(record_ids)
        with self.backend.transaction():
            before = self.get(list_id)
            held = self.member_ids(list_id)
            entered, left = sorted(selected - held), sorted(held - selected)
            self.mirror.upsert(QUERY_MEMBERS, (MirrorRow(_link_id(list_id, ref), {}, parent_id=list_id, ref_id=ref)
                                               for ref in entered))
            self.mirror.delete(QUERY_MEMBERS, (_link_id(list_id, ref) for ref in left))
            self.backend.execute(
                "INSERT INTO list_evaluation (list_id, account, member_table, members, evaluated_at, error, "
                "failed_at) VALUES (?, ?, ?, ?, ?, NULL, NULL) ON CONFLICT (list_id) DO UPDATE SET "
                "account = excluded.account, member_table = excluded.member_table, members = excluded.members, "
                "evaluated_at = excluded.evaluated_at, error = NULL, failed_at = NULL",
                (list_id, account, member_table, len(selected), _now()))
        return MemberChange(entered, left, before)

    def fail(self, account: str, list_id: str, error: str) -> None:
        """Note that the list's query failed: its members stay those of its last success."""
        self.backend.execute(
            "INSERT INTO list_evaluation (list_id, account, members, error, failed_at) VALUES (?, ?, 0, ?, ?) "
            "ON CONFLICT (list_id) DO UPDATE SET account = excluded.account, error = excluded.error, "
            "failed_at = excluded.failed_at", (list_id, account, error, _now()))

    def unusable(self, list_ids: Iterable[str]) -> set[str]:
        """Those of `list_ids` whose members are not known as of now: never evaluated, or failed last time."""
        wanted = set(list_ids)
        good = {list_id for (list_id,) in rows_in(
            self.backend, "SELECT list_id FROM list_evaluation WHERE error IS NULL AND list_id IN ({marks})", (),
            wanted)}
        return wanted - good

    def forget_others(self, account: str, keep: Iterable[str]) -> list[str]:
        """Drop the evaluations and members of the account's lists other than `keep` (no longer dynamic,
        activated or the account's); return their ids."""
        kept = set(keep)
        gone = [list_id for (list_id,) in self.backend.query(
            "SELECT list_id FROM list_evaluation WHERE account = ? ORDER BY list_id", (account,))
            if list_id not in kept]
        with self.backend.transaction():
            for chunk in chunks(gone):
                marks = ", ".join("?" for _ in chunk)
                self.backend.execute(f"DELETE FROM crm_record WHERE crm_table = ? AND parent_id IN ({marks})",
                                     [QUERY_MEMBERS, *chunk])
                self.backend.execute(f"DELETE FROM list_evaluation WHERE list_id IN ({marks})", list(chunk))
        return gone

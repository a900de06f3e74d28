"""The state store: the middleware's own tables (schema in sql/), on PostgreSQL or SQLite."""

from dotdyn_pipeline.state.mirror import BookMember, LeaseBusy, MirrorRow
from dotdyn_pipeline.state.store import (
    ORG_SCOPE,
    AccountPartition,
    ContactLink,
    ImportJob,
    LedgerEntry,
    QuarantinedRow,
    StateStore,
    SyncCursor,
    UnsubscribeEvent,
)

__all__ = [
    "ORG_SCOPE", "AccountPartition", "BookMember", "ContactLink", "ImportJob", "LeaseBusy", "LedgerEntry", "MirrorRow",
    "QuarantinedRow", "StateStore", "SyncCursor", "UnsubscribeEvent",
]

"""The state store: the middleware's own tables (schema in sql/), on PostgreSQL or SQLite."""

from dotdyn_pipeline.state.leases import Holder, LeaseBusy
from dotdyn_pipeline.state.mirror import BookMember, MirrorRow
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
    "ORG_SCOPE", "AccountPartition", "BookMember", "ContactLink", "Holder", "ImportJob", "LeaseBusy", "LedgerEntry",
    "MirrorRow", "QuarantinedRow", "StateStore", "SyncCursor", "UnsubscribeEvent",
]

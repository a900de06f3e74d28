"""The Web API versions the client speaks, and what an older one lacks that the client would otherwise use.

`v8.2` is Dynamics 365 (on-premises) 8.2 and its December 2016 online update; `v9.0` and `v9.1` are the
on-premises 9.0 and 9.1 releases; `v9.2` is Dataverse online today. Every one of them has what the reads
need (`Prefer: odata.maxpagesize`, `@odata.nextLink`, `EntityDefinitions`, `$batch` with change sets, upsert
by alternate key). The bulk messages CreateMultiple, UpdateMultiple and UpsertMultiple exist from v9.2 on:
against an older version the client writes through `$batch` without asking `sdkmessagefilters`. The list action
RemoveMemberList exists from v9.0 on (Microsoft's v8 SDK reference lists it among the messages without a Web API
action): against v8.2 the client disassociates the member through the list's many-to-many relationship to the
member's table (`listcontact_association`, `listlead_association`, `listaccount_association`).
"""

from __future__ import annotations

#: The versions a client may be configured with, oldest first.
API_VERSIONS = ("v8.2", "v9.0", "v9.1", "v9.2")
#: The first version that has CreateMultiple, UpdateMultiple and UpsertMultiple.
BULK_MESSAGES_FROM = "v9.2"
#: The first version that has the bound action RemoveMemberList.
REMOVE_MEMBER_LIST_FROM = "v9.0"


def check_version(version: str) -> str:
    """`version` if the client speaks it, else a ValueError naming the ones it does."""
    if version not in API_VERSIONS:
        raise ValueError(f"must be one of {', '.join(API_VERSIONS)}")
    return version


def has_bulk_messages(version: str) -> bool:
    """Whether the Web API of `version` offers CreateMultiple, UpdateMultiple and UpsertMultiple."""
    return _at_least(version, BULK_MESSAGES_FROM)


def has_remove_member_list(version: str) -> bool:
    """Whether the Web API of `version` offers the list action RemoveMemberList."""
    return _at_least(version, REMOVE_MEMBER_LIST_FROM)


def _at_least(version: str, first: str) -> bool:
    return API_VERSIONS.index(check_version(version)) >= API_VERSIONS.index(first)

"""The Web API version the stand-in serves (`dataverse.api_version`), and what that version offers.

Dataverse online serves `/api/data/v9.2/`; the on-premises releases serve their own: Dynamics 365 8.2 `v8.2`,
9.0 `v9.0`, 9.1 `v9.1`. The stand-in serves exactly one of them. The bulk messages CreateMultiple,
UpdateMultiple and UpsertMultiple came with v9.2: an older version answers them as an action it does not know,
and its `sdkmessagefilters` hold no rows for them. The list action RemoveMemberList came with v9.0 (Microsoft's v8
SDK reference lists it among the messages without a Web API action; AddMemberList has one): v8.2 answers it as an
action it does not know, and a member leaves a list there by disassociation (`listcontact_association` ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from dotdyn_pipeline.sandbox.context import SandboxSettings

VERSIONS = ("v8.2", "v9.0", "v9.1", "v9.2")
BULK_MESSAGES_FROM = "v9.2"
REMOVE_MEMBER_LIST_FROM = "v9.0"


@dataclass(frozen=True)
class ApiVersion:
    """One Web API version: where it is served and which of the newer messages it has."""

    name: str

    @property
    def root(self) -> str:
        """The Web API's path below the organisation's URL, without a trailing slash: `/api/data/v9.2`."""
        return f"/api/data/{self.name}"

    @property
    def bulk_messages(self) -> bool:
        return self._at_least(BULK_MESSAGES_FROM)

    @property
    def remove_member_list(self) -> bool:
        return self._at_least(REMOVE_MEMBER_LIST_FROM)

    def _at_least(self, first: str) -> bool:
        return VERSIONS.index(self.name) >= VERSIONS.index(first)


def served_version(settings: SandboxSettings) -> ApiVersion:
    """The version the options ask for (default v9.2); an unknown one stops the sandbox at start."""
    name = settings.option("dataverse.api_version", "v9.2")
    if name not in VERSIONS:
        raise ValueError(f"dataverse.api_version={name!r}: must be one of {', '.join(VERSIONS)}")
    return ApiVersion(name)

"""Client of the Dataverse Web API (Dynamics 365): msal tokens, paged and incremental reads, bulk writes."""

from dotdyn_pipeline.connectors.dataverse.auth import ClientCredentials, MsalTokenSource, TokenSource
from dotdyn_pipeline.connectors.dataverse.client import (
    ChangePage,
    ChangeRead,
    DataverseClient,
    DataverseConfig,
    EntityInfo,
    RecordOutcome,
)
from dotdyn_pipeline.connectors.dataverse.errors import (
    DataverseAuthError,
    DataverseError,
    DataverseNotFound,
    DataversePreconditionFailed,
    DataverseThrottled,
    DataverseUnavailable,
    DataverseValidationError,
)

__all__ = [
    "ChangePage", "ChangeRead", "ClientCredentials", "DataverseAuthError", "DataverseClient", "DataverseConfig",
    "DataverseError", "DataverseNotFound", "DataversePreconditionFailed", "DataverseThrottled",
    "DataverseUnavailable", "DataverseValidationError", "EntityInfo", "MsalTokenSource", "RecordOutcome",
    "TokenSource",
]

"""The Dotdigital client: one interface (`DotdigitalClient`), REST v2 (httpx) or SOAP v2 (zeep) underneath.

    client = connect(DotdigitalConfig(api_user=..., api_password=..., transport="rest"))
    book = client.find_address_book("Newsletter") or client.create_address_book("Newsletter")
    result = client.import_contacts(book.id, rows, ["Email", "FIRSTNAME", "LASTNAME"])
"""

from dotdyn_pipeline.connectors.dotdigital.api import DotdigitalClient, Transport, connect
from dotdyn_pipeline.connectors.dotdigital.config import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.errors import (
    AlreadyExists,
    AuthError,
    ContactSuppressed,
    DotdigitalError,
    ImportFailed,
    InvalidEmail,
    NotFound,
    NotTriggeredCampaign,
    QuotaExceeded,
    RateLimited,
    SendOutcomeUnknown,
    ServiceUnavailable,
    ValidationError,
)
from dotdyn_pipeline.connectors.dotdigital.imports import ImportOutcome, ImportResult
from dotdyn_pipeline.connectors.dotdigital.models import CampaignSend, SplitTest

__all__ = [
    "AlreadyExists", "AuthError", "CampaignSend", "ContactSuppressed", "DotdigitalClient", "DotdigitalConfig",
    "DotdigitalError", "ImportFailed", "ImportOutcome", "ImportResult", "InvalidEmail", "NotFound",
    "NotTriggeredCampaign", "QuotaExceeded", "RateLimited", "SendOutcomeUnknown", "ServiceUnavailable",
    "SplitTest", "Transport", "ValidationError", "connect",
]

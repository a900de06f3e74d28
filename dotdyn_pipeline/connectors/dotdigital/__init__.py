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
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
)
from dotdyn_pipeline.connectors.dotdigital.imports import ImportOutcome, ImportResult

__all__ = [
    "AlreadyExists", "AuthError", "ContactSuppressed", "DotdigitalClient", "DotdigitalConfig", "DotdigitalError",
    "ImportFailed", "ImportOutcome", "ImportResult", "NotFound", "QuotaExceeded", "RateLimited",
    "ServiceUnavailable", "Transport", "ValidationError", "connect",
]

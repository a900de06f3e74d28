"""Typed Dotdigital errors, the same for REST and SOAP: each carries the ERROR_ code and the HTTP status.

Messages hold the server's text and the code only: never a password, an auth header or a request body.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dotdyn_pipeline.connectors.dotdigital.models import ImportReport, RowFault

_CODE = re.compile(r"\bERROR_[A-Z0-9_]+")


class DotdigitalError(Exception):
    """A call that Dotdigital refused or that could not be completed."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 operation: str | None = None) -> None:
        where = f"{operation}: " if operation else ""
        super().__init__(f"{where}{message}".strip())
        self.code, self.status, self.operation = code, status, operation


class AuthError(DotdigitalError):
    """Bad API user or password, disabled account, or the wrong region (401/403)."""


class NotFound(DotdigitalError):
    """The object (contact, address book, campaign, import, ...) does not exist."""


class AlreadyExists(DotdigitalError):
    """A name that must be unique is taken (data field, address book)."""


class ValidationError(DotdigitalError):
    """The request was refused as invalid (bad parameter, email, data field value ...)."""


class ContactSuppressed(DotdigitalError):
    """The contact is suppressed and cannot be added or changed that way."""


class QuotaExceeded(DotdigitalError):
    """The hourly call quota (ERROR_APIUSAGE_EXCEEDED) was still exhausted after waiting as configured."""


class RateLimited(DotdigitalError):
    """Tiered rate limiting (429) outlasted the retry policy."""


class ServiceUnavailable(DotdigitalError):
    """Server errors or dropped connections outlasted the retry policy."""


class SendOutcomeUnknown(DotdigitalError):
    """A send (campaign or triggered) reached Dotdigital, or may have, and no answer said what became of it: a
    server error or a dropped connection. It is not sent again; the caller finds out whether it happened (the
    campaigns sent to the send's address book, the campaign's activity) before deciding anything."""


class InvalidEmail(ValidationError):
    """An email address the service refuses (ERROR_INVALID_EMAIL), e.g. a triggered send's recipient."""


class NotTriggeredCampaign(ValidationError):
    """A triggered send named a campaign that is not a triggered campaign."""


class ImportFailed(DotdigitalError):
    """A bulk import ended in a status other than Finished (e.g. RejectedByWatchdog, InvalidFileFormat)."""

    def __init__(self, message: str, *, import_id: str, import_status: str, report: ImportReport | None,
                 faults: list[RowFault] | None = None, rows: int = 0, completed: list[Any] | None = None,
                 ) -> None:
        super().__init__(message, code=None, status=None, operation="import")
        self.import_id, self.import_status, self.report = import_id, import_status, report
        self.faults, self.rows = faults or [], rows
        self.completed = completed or []  # the outcomes of the imports of the same batch that finished


def error_code(text: str | None) -> str | None:
    """The ERROR_ code in a message such as 'Contact is suppressed. ERROR_CONTACT_SUPPRESSED'."""
    match = _CODE.search(text or "")
    return match.group(0) if match else None


_BY_CODE: dict[str, type[DotdigitalError]] = {
    "ERROR_APIUSAGE_EXCEEDED": QuotaExceeded,
    "ERROR_INVALID_LOGIN": AuthError,
    "ERROR_APIUSER_INVALID": AuthError,
    "ERROR_ACCOUNT_INVALID": AuthError,
    "ERROR_NON_UNIQUE_DATAFIELD": AlreadyExists,
    "ERROR_ADDRESSBOOK_DUPLICATE": AlreadyExists,
    "ERROR_NON_UNIQUE_EMAIL": AlreadyExists,
    "ERROR_CONTACT_SUPPRESSED": ContactSuppressed,
    "ERROR_CONTACT_SUPPRESSEDFORADDRESSBOOK": ContactSuppressed,
    "ERROR_INVALID_EMAIL": InvalidEmail,
}
#: Codes whose meaning depends on the call: the code alone is generic. No code is documented for a triggered
#: send of a campaign that is not a triggered one; ERROR_CAMPAIGN_INVALID is what the campaign send object
#: being wrong is called (the sandbox answers it).
_BY_OPERATION_CODE: dict[tuple[str, str], type[DotdigitalError]] = {
    ("send_triggered_campaign", "ERROR_CAMPAIGN_INVALID"): NotTriggeredCampaign,
}


def error_for(message: str | None, *, status: int | None, operation: str | None = None) -> DotdigitalError:
    """The typed error for a refused call, from its message (holding the ERROR_ code) and HTTP status."""
    code = error_code(message)
    text = (message or "").strip() or f"HTTP {status}"
    if (operation, code) in _BY_OPERATION_CODE:
        cls = _BY_OPERATION_CODE[operation, code]
    elif code in _BY_CODE:
        cls = _BY_CODE[code]
    elif status == 429:
        cls = RateLimited
    elif status in (401, 403):
        cls = AuthError
    elif status == 404 or (code and (code.endswith("NOT_FOUND") or code.endswith("NOTFOUND"))):
        cls = NotFound
    elif status is not None and status >= 500 and code is None:
        cls = ServiceUnavailable
    elif code is not None or (status is not None and 400 <= status < 500):
        cls = ValidationError
    else:
        cls = DotdigitalError
    return cls(text, code=code, status=status, operation=operation)

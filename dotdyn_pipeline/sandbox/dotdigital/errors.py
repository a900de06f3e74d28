"""Dotdigital's v2 errors: one exception for every transport, rendered as `{"message": "... ERROR_CODE"}`.

The message texts are the ones seen from the real service where known (reference/dotdigital.md §1);
codes named `*_NOT_FOUND` answer 404, login problems 401, everything else 400, as the service does.
"""

from __future__ import annotations

#: code -> (HTTP status, human text placed before the code)
KNOWN: dict[str, tuple[int, str]] = {
    "ERROR_ADDRESSBOOK_NOT_FOUND": (404, "Error:"),
    "ERROR_ADDRESSBOOK_DUPLICATE": (400, "An address book with that name already exists."),
    "ERROR_ADDRESSBOOK_INVALID": (400, "The address book is not valid."),
    "ERROR_ADDRESSBOOK_IN_USE": (400, "The address book is in use; retrying later may succeed."),
    "ERROR_ADDRESSBOOK_NOTWRITABLE": (400, "Address book cannot be written to via the API."),
    "ERROR_APIUSAGE_EXCEEDED": (400, "Your account has generated excess API activity and is being temporarily "
                                     "capped. Please contact support."),
    "ERROR_CAMPAIGN_INVALID": (400, "The campaign is not valid."),
    "ERROR_CAMPAIGN_NOT_FOUND": (404, "Error:"),
    "ERROR_CAMPAIGN_SEND_INVALID": (400, "The campaign send is not valid."),
    "ERROR_CAMPAIGN_SENDNOTPERMITTED": (400, "Send not permitted at this time."),
    "ERROR_CONTACT_INVALID": (400, "The contact is not valid."),
    "ERROR_CONTACT_NOT_FOUND": (404, "Error:"),
    "ERROR_CONTACT_SUPPRESSED": (400, "Contact is suppressed."),
    "ERROR_CONTACT_SUPPRESSEDFORADDRESSBOOK": (400, "Contact is unsubscribed from this address book."),
    "ERROR_DATAFIELD_INVALID": (400, "The data field is not valid."),
    "ERROR_DATAFIELD_NOTFOUND": (400, "The data field does not exist."),
    "ERROR_IMPORT_NOT_FOUND": (404, "Error:"),
    "ERROR_IMPORT_REPORT_NOT_FOUND": (404, "Import is not processed yet or completed with error."),
    "ERROR_IMPORT_TOOMANYACTIVEIMPORTS": (400, "There are too many imports in progress."),
    "ERROR_IMPORT_UNSUPPORTED_FORMAT": (400, "The import file is not in a supported format."),
    "ERROR_INVALID_EMAIL": (400, "Email is not a valid email address."),
    "ERROR_MALFORMED_REQUEST": (400, "The request could not be read."),
    "ERROR_MULTI_FILE_UPLOAD_NOT_ALLOWED": (400, "Please upload one file per call."),
    "ERROR_NON_UNIQUE_DATAFIELD": (400, "Field already exists."),
    "ERROR_NON_UNIQUE_EMAIL": (400, "The email address is not unique."),
    "ERROR_NO_EMAIL_COLUMN": (400, "The file has no Email column."),
    "ERROR_PARAMETER_INVALID": (400, "A parameter is not valid."),
    "ERROR_SYSTEM_SERVICETEMPORARILYUNAVAILABLE": (503, "The service is temporarily unavailable."),
    "ERROR_UNKNOWN": (500, "An unexpected error occurred."),
}

#: The body ASP.NET Web API sends with a 401 (reference/dotdigital.md §1, Authentication).
UNAUTHORIZED_MESSAGE = "Authorization has been denied for this request."


class ApiError(Exception):
    """A Dotdigital error: its code, HTTP status and the message that carries the code."""

    def __init__(self, code: str, detail: str | None = None, status: int | None = None) -> None:
        known_status, text = KNOWN.get(code, (400, "Error:"))
        self.code = code
        self.status = status or known_status
        self.message = f"{detail or text} {code}"
        super().__init__(self.message)

    def body(self) -> dict[str, str]:
        return {"message": self.message}

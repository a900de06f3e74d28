"""Dataverse's error responses: `{"error": {"code": "0x...", "message": "..."}}` with the documented status."""

from __future__ import annotations

#: Codes as the Web API reports them (see the reference notes, sections 4 and 5).
BAD_REQUEST = "0x80060888"  # OData syntax and payload errors
NOT_FOUND = "0x80040217"  # record does not exist
DUPLICATE = "0x80040237"  # a record with matching key values already exists
VERSION_MISMATCH = "0x80060882"  # If-Match etag does not match the row version
VALIDATION = "0x80044331"  # value too long or of the wrong type
CHANGE_TRACKING = "0x80048d0c"  # delta token missing, invalid or expired (the stand-in's choice)
REQUESTS_LIMIT, TIME_LIMIT, CONCURRENCY_LIMIT = "0x80072322", "0x80072321", "0x80072326"
SERVER = "0x80040216"  # an unexpected error occurred

THROTTLE_MESSAGES = {
    REQUESTS_LIMIT: "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    TIME_LIMIT: "Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over "
                "time window of 300 seconds. Decrease number of concurrent requests or reduce the duration of "
                "requests and try again later.",
    CONCURRENCY_LIMIT: "Number of concurrent requests exceeded the limit of 52.",
}


class DataverseError(Exception):
    """An error the Web API answers with; `headers` are added to the response."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str) -> DataverseError:
    return DataverseError(400, BAD_REQUEST, message)


def no_property(name: str, logical_name: str) -> DataverseError:
    return bad_request(f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{logical_name}'.")


def not_found(logical_name: str, record_id: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND, f"{logical_name} With Id = {record_id} Does Not Exist")


def missing_solution(unique_name: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND, f"The solution with unique name '{unique_name}' does not exist.")


def key_not_found(logical_name: str) -> DataverseError:
    return DataverseError(404, NOT_FOUND,
                          f"A record with the specified key values does not exist in {logical_name} entity")


def segment_not_found(segment: str) -> DataverseError:
    return DataverseError(404, BAD_REQUEST, f"Resource not found for the segment '{segment}'.")


def duplicate() -> DataverseError:
    return DataverseError(412, DUPLICATE, "A record with matching key values already exists.")

"""Pure logic of the Dotdigital client: CSV chunking, dates, errors, rate limits, paging, report parsing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from dotdyn_pipeline.connectors.dotdigital import DotdigitalConfig
from dotdyn_pipeline.connectors.dotdigital.dates import csv_value, format_date, parse_datetime
from dotdyn_pipeline.connectors.dotdigital.errors import (
    AlreadyExists,
    AuthError,
    ContactSuppressed,
    NotFound,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
    error_code,
    error_for,
)
from dotdyn_pipeline.connectors.dotdigital.imports import csv_chunks
from dotdyn_pipeline.connectors.dotdigital.limits import reset_after, retry_decision
from dotdyn_pipeline.connectors.dotdigital.models import (
    AccountInfo,
    Contact,
    ImportReport,
    check_data_field_name,
    parse_faults_csv,
)
from dotdyn_pipeline.connectors.dotdigital.paging import page_size, pages
from dotdyn_pipeline.connectors.dotdigital.wire import exhausted
from dotdyn_pipeline.connectors.http import RetriesExhausted

COLUMNS = ["Email", "FIRSTNAME", "CITY", "BIRTHDAY", "VIP"]


def _rows(n: int) -> list[dict]:
    return [{"Email": f"person.{i}@example.com", "FIRSTNAME": "Zoë, \"the\" one" if i % 7 == 0 else f"N{i}",
             "CITY": "Kraków\nNorth" if i % 11 == 0 else "Paris", "BIRTHDAY": date(1980, 1, 1 + i % 28),
             "VIP": i % 2 == 0} for i in range(n)]


def test_csv_chunks_stay_under_the_limit_and_keep_every_row_once() -> None:
    rows = _rows(2_000)
    chunks = list(csv_chunks(iter(rows), COLUMNS, max_bytes=8_000))
    assert len(chunks) > 5
    parsed = []
    for chunk in chunks:
        assert len(chunk.data) <= 8_000
        table = list(csv.reader(io.StringIO(bytes(chunk.data).decode())))
        assert table[0] == COLUMNS
        assert len(table) - 1 == chunk.rows
        parsed += table[1:]
    assert [r[0] for r in parsed] == [r["Email"] for r in rows]
    assert parsed[0][1:] == ["Zoë, \"the\" one", "Kraków\nNorth", "1980-01-01", "True"]
    assert sum(c.rows for c in chunks) == len(rows)


def test_csv_chunks_fill_chunks_close_to_the_limit() -> None:
    chunks = list(csv_chunks(iter(_rows(5_000)), COLUMNS, max_bytes=50_000))
    # every chunk but the last is full: adding its next row would have crossed the limit
    assert all(len(c.data) > 50_000 - 100 for c in chunks[:-1])


def test_csv_chunks_refuse_a_row_larger_than_the_limit_and_need_email_first() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        list(csv_chunks([{"Email": "a@b.c", "FIRSTNAME": "x" * 500}], ["Email", "FIRSTNAME"], max_bytes=200))
    with pytest.raises(ValueError, match="Email"):
        list(csv_chunks([], ["FIRSTNAME", "Email"], max_bytes=200))
    assert list(csv_chunks([], ["Email"], max_bytes=200)) == []


def test_dates_are_sent_as_utc_iso_and_parsed_from_every_documented_form() -> None:
    assert format_date(datetime(2024, 1, 31, 9, 5)) == "2024-01-31T09:05:00"
    assert format_date(datetime(2024, 1, 31, 11, 5, tzinfo=timezone(timedelta(hours=2)))) == "2024-01-31T09:05:00"
    assert format_date(date(2024, 2, 1)) == "2024-02-01T00:00:00"
    expected = datetime(2020, 1, 1, 9, 40, 18, 527000, tzinfo=UTC)
    for text in ("2020-01-01T09:40:18.527Z", "2020-01-01 09:40:18.527000+00:00", "2020-01-01T09:40:18.527"):
        assert parse_datetime(text) == expected
    assert parse_datetime("2016-08-01 10:09:22") == datetime(2016, 8, 1, 10, 9, 22, tzinfo=UTC)
    assert parse_datetime(datetime(2020, 1, 1)) == datetime(2020, 1, 1, tzinfo=UTC)
    assert parse_datetime(None) is None and parse_datetime("") is None
    assert parse_datetime("0001-01-01T00:00:00") is None


def test_csv_values_use_four_digit_years_and_true_false() -> None:
    assert csv_value(date(999, 1, 2)) == "0999-01-02"
    assert csv_value(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05"
    assert (csv_value(True), csv_value(False), csv_value(None), csv_value(12.5)) == ("True", "False", "", "12.5")


@pytest.mark.parametrize(("message", "status", "cls", "code"), [
    ("Contact is suppressed. ERROR_CONTACT_SUPPRESSED", 400, ContactSuppressed, "ERROR_CONTACT_SUPPRESSED"),
    ("Field already exists. ERROR_NON_UNIQUE_DATAFIELD", 400, AlreadyExists, "ERROR_NON_UNIQUE_DATAFIELD"),
    ("Error: ERROR_ADDRESSBOOK_NOT_FOUND", 404, NotFound, "ERROR_ADDRESSBOOK_NOT_FOUND"),
    ("Import is not processed yet or completed with error. ERROR_IMPORT_REPORT_NOT_FOUND", 400, NotFound,
     "ERROR_IMPORT_REPORT_NOT_FOUND"),
    ("Email is not a valid email address. ERROR_PARAMETER_INVALID", 400, ValidationError,
     "ERROR_PARAMETER_INVALID"),
    ("Authorization has been denied for this request.", 401, AuthError, None),
    ("", 404, NotFound, None),
    ("Your account has generated excess API activity ... ERROR_APIUSAGE_EXCEEDED", 400, QuotaExceeded,
     "ERROR_APIUSAGE_EXCEEDED"),
    ("Too many", 429, RateLimited, None),
    ("oops", 503, ServiceUnavailable, None),
])
def test_errors_are_typed_by_code_then_status(message, status, cls, code) -> None:
    error = error_for(message, status=status, operation="op")
    assert type(error) is cls
    assert (error.code, error.status) == (code, status)
    assert str(error).startswith("op: ")


def test_error_code_is_found_anywhere_in_the_text() -> None:
    assert error_code("Server was unable to process request. ---> Campaign not found ERROR_CAMPAIGN_NOT_FOUND") \
        == "ERROR_CAMPAIGN_NOT_FOUND"
    assert error_code("nothing here") is None


def test_the_password_never_shows_in_the_config_repr() -> None:
    config = DotdigitalConfig(api_user="apiuser-1@apiconnector.com", api_password="s3cr3t-Pa55")
    assert "s3cr3t-Pa55" not in repr(config)
    with pytest.raises(ValueError):
        DotdigitalConfig(api_user="u", api_password="p", import_chunk_bytes=60_000_000)
    with pytest.raises(ValueError):
        DotdigitalConfig(api_user="u", api_password="p", max_active_imports=26)


def test_reset_is_read_as_seconds_or_as_an_epoch_time() -> None:
    now = lambda: 1_700_000_000.0  # noqa: E731
    assert reset_after({"X-RateLimit-Reset": "12"}, now) == 12
    assert reset_after({"x-ratelimit-reset": "1700000030"}, now) == 30
    assert reset_after({"Retry-After": "7"}, now) == 7
    assert reset_after({"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"}, now) == 20
    assert reset_after({}, now) is None


def test_retry_decisions_wait_out_quota_and_throttling_and_retry_server_errors() -> None:
    quota = retry_decision(400, {}, "capped. ERROR_APIUSAGE_EXCEEDED", quota_wait=600)
    assert quota is not None and quota.reason.startswith("quota") and quota.after == 600
    throttle = retry_decision(429, {"X-RateLimit-Reset": "3", "X-RateLimit-Scope": "lowCallRate"}, "",
                              quota_wait=600)
    assert throttle is not None and throttle.reason.startswith("throttle") and throttle.after == 3
    tiered = retry_decision(429, {"Retry-After": "4"}, "ERROR_APIUSAGE_EXCEEDED", quota_wait=600)
    assert tiered is not None and tiered.reason.startswith("throttle") and tiered.after == 4
    server = retry_decision(503, {}, "", quota_wait=600)
    assert server is not None and server.after is None
    assert retry_decision(500, {}, "Busy ERROR_SYSTEM_SERVICETEMPORARILYUNAVAILABLE", quota_wait=1) is not None
    assert retry_decision(500, {}, "Contact not found ERROR_CONTACT_NOT_FOUND", quota_wait=1) is None
    assert retry_decision(400, {}, "ERROR_PARAMETER_INVALID", quota_wait=1) is None


def test_only_quota_and_throttling_say_a_request_was_not_processed() -> None:
    """What a send may be retried after: the rest could have come after the send happened."""
    assert retry_decision(400, {}, "capped. ERROR_APIUSAGE_EXCEEDED", quota_wait=1).unprocessed
    assert retry_decision(429, {"Retry-After": "2"}, "", quota_wait=1).unprocessed
    assert not retry_decision(503, {}, "", quota_wait=1).unprocessed
    assert not retry_decision(500, {}, "Oops ERROR_UNKNOWN", quota_wait=1).unprocessed


def test_exhausted_retries_become_typed_errors() -> None:
    assert isinstance(exhausted(RetriesExhausted("x", 3, "quota: ERROR_APIUSAGE_EXCEEDED"), "op"), QuotaExceeded)
    assert isinstance(exhausted(RetriesExhausted("x", 3, "throttle: HTTP 429"), "op"), RateLimited)
    assert isinstance(exhausted(RetriesExhausted("x", 3, "ConnectError: refused"), "op"), ServiceUnavailable)


def test_pages_stop_on_a_short_page_and_select_is_capped_per_endpoint() -> None:
    data = list(range(2_500))
    calls = []

    def fetch(select: int, skip: int) -> list[int]:
        calls.append((select, skip))
        return data[skip:skip + select]

    assert [x for page in pages(fetch, 1000) for x in page] == data
    assert calls == [(1000, 0), (1000, 1000), (1000, 2000)]
    calls.clear()
    assert [x for page in pages(fetch, 500) for x in page][-1] == 2_499 and calls[-1] == (500, 2500)
    assert page_size("address_books", 5000) == 1000
    assert page_size("activities_since", 5000) == 2000
    assert page_size("campaigns", 10) == 10


def test_faults_csv_becomes_per_row_reasons() -> None:
    data = ("\ufeffReason,email,firstname\r\nUnsubscribed,karina.plain@example.com,Karina\r\n"
            "Duplicate,demo@apiconnector.com,\r\n").encode()
    faults = parse_faults_csv(data)
    assert [(f.reason, f.email) for f in faults] == [("Unsubscribed", "karina.plain@example.com"),
                                                      ("Duplicate", "demo@apiconnector.com")]
    assert faults[0].values == {"email": "karina.plain@example.com", "firstname": "Karina"}
    assert parse_faults_csv(b"") == []


def test_import_report_keeps_the_fault_counters() -> None:
    report = ImportReport.from_api({"newContacts": 8, "updatedContacts": 1, "duplicateEmails": 2,
                                    "invalidEntries": 1, "hardBounced": 0})
    assert (report.new_contacts, report.updated_contacts) == (8, 1)
    assert report.faults == {"duplicateEmails": 2, "invalidEntries": 1} and report.fault_count == 3


def test_models_read_the_documented_shapes() -> None:
    account = AccountInfo.from_api({"id": 5, "properties": [
        {"name": "ApiEndpoint", "type": "String", "value": "https://r2-api.dotdigital.com/"},
        {"name": "ApiCallsRemaining", "type": "Int", "value": "1985"}]})
    assert account.api_endpoint == "https://r2-api.dotdigital.com"
    contact = Contact.from_api({"id": 1, "email": "a@b.c", "dataFields": [{"key": "FIRSTNAME", "value": "Jo"}]})
    assert contact.data_fields == {"FIRSTNAME": "Jo"}
    assert Contact.from_api({"id": 1, "email": "a@b.c", "dataFields": None}).data_fields is None
    assert contact.to_api() == {"email": "a@b.c", "id": 1, "dataFields": [{"key": "FIRSTNAME", "value": "Jo"}]}


def test_data_field_names_follow_the_naming_rule() -> None:
    assert check_data_field_name("Loyalty_tier-2") == "LOYALTY_TIER-2"
    for bad in ("", "has space", "x" * 21, "dot.name", "ünï"):
        with pytest.raises(ValueError):
            check_data_field_name(bad)

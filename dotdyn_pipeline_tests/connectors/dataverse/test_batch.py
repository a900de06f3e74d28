"""`$batch` encoding and decoding against the shapes in "Execute batch operations using the Web API"."""

from __future__ import annotations

import json

import pytest

from dotdyn_pipeline.connectors.dataverse.batch import (
    MAX_BATCH_REQUESTS,
    BatchRequest,
    decode_batch,
    encode_batch,
)

API = "/api/data/v9.2/"


def test_encode_plain_parts_and_a_changeset() -> None:
    content_type, body = encode_batch(
        [BatchRequest("GET", "contacts?$select=fullname"),
         [BatchRequest("PATCH", "contacts(00000000-0000-0000-0000-000000000001)", {"firstname": "Zoë"}),
          BatchRequest("POST", "tasks", {"subject": "x"})]],
        api_path=API, boundary="batch_B")
    assert content_type == "multipart/mixed; boundary=batch_B"
    text = body.decode()
    assert text.startswith("--batch_B\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n")
    assert "\r\nGET /api/data/v9.2/contacts?$select=fullname HTTP/1.1\r\n" in text
    assert text.rstrip("\r\n").endswith("--batch_B--")
    changeset = text.split("boundary=changeset_")[1].split("\r\n")[0]
    assert text.count(f"--changeset_{changeset}\r\n") == 2
    assert f"--changeset_{changeset}--" in text
    assert "Content-ID: 1\r\n" in text and "Content-ID: 2\r\n" in text
    assert ("PATCH /api/data/v9.2/contacts(00000000-0000-0000-0000-000000000001) HTTP/1.1\r\n"
            "Content-Type: application/json; type=entry\r\n\r\n"
            '{"firstname":"Zoë"}') in text
    assert "\n" not in text.replace("\r\n", "")  # CRLF line endings only


def test_encode_enforces_the_1000_request_cap() -> None:
    requests = [BatchRequest("DELETE", f"tasks({i})") for i in range(MAX_BATCH_REQUESTS + 1)]
    encode_batch(requests[:MAX_BATCH_REQUESTS], API)
    with pytest.raises(ValueError, match="1000"):
        encode_batch(requests, API)
    with pytest.raises(ValueError):
        encode_batch([], API)


def test_encode_then_decode_round_trip_of_request_bodies() -> None:
    """The encoder's own output parses as multipart with our decoder's splitter (requests look like responses)."""
    content_type, body = encode_batch([BatchRequest("POST", "tasks", {"a": 1})], API, boundary="batch_R")
    responses_like = body.replace(b"POST /api/data/v9.2/tasks HTTP/1.1", b"HTTP/1.1 200 OK")
    (part,) = decode_batch(content_type, responses_like)
    assert part.status == 200 and json.loads(part.body) == {"a": 1}


#: The response example of Microsoft's batch document, with its changeset and a GET answer.
DOCUMENTED_RESPONSE = (
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f\r\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abb\r\n"
    "\r\n"
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abb\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "Content-ID: 1\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "OData-Version: 4.0\r\n"
    "Location: https://org.crm.dynamics.com/api/data/v9.2/tasks(a59c24a3-ff4f-e611-80d5-00155db216b3)\r\n"
    "OData-EntityId: https://org.crm.dynamics.com/api/data/v9.2/tasks(a59c24a3-ff4f-e611-80d5-00155db216b3)\r\n"
    "\r\n"
    "\r\n"
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abb\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "Content-ID: 2\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "OData-Version: 4.0\r\n"
    "\r\n"
    "\r\n"
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abb--\r\n"
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json; odata.metadata=minimal\r\n"
    "OData-Version: 4.0\r\n"
    "\r\n"
    '{"@odata.context":"https://org/api/data/v9.2/$metadata#tasks(subject)","value":[{"subject":"Task 1"}]}\r\n'
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f--\r\n"
)


def test_decode_the_documented_response() -> None:
    responses = decode_batch("multipart/mixed; boundary=batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f",
                             DOCUMENTED_RESPONSE.encode())
    assert [r.status for r in responses] == [204, 204, 200]
    assert [r.content_id for r in responses] == ["1", "2", None]
    assert responses[0].headers["odata-entityid"].endswith("tasks(a59c24a3-ff4f-e611-80d5-00155db216b3)")
    assert responses[1].body == b""
    assert json.loads(responses[2].body)["value"] == [{"subject": "Task 1"}]


def test_decode_an_error_part_with_lf_line_endings_and_a_quoted_boundary() -> None:
    body = ("--batchresponse_x\n"
            "Content-Type: application/http\n"
            "Content-Transfer-Encoding: binary\n"
            "\n"
            "HTTP/1.1 400 Bad Request\n"
            "REQ_ID: 5ecd1cb3-1730-4ffc-909c-d44c22270026\n"
            "Content-Type: application/json; odata.metadata=minimal\n"
            "\n"
            '{"error":{"code":"0x80044331","message":"A validation error occurred."}}\n'
            "--batchresponse_x--\n")
    (response,) = decode_batch('multipart/mixed; boundary="batchresponse_x"', body.encode())
    assert response.status == 400 and not response.ok
    assert response.headers["req_id"] == "5ecd1cb3-1730-4ffc-909c-d44c22270026"
    assert json.loads(response.body)["error"]["code"] == "0x80044331"


def test_decode_rejects_a_part_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="not an HTTP response"):
        decode_batch("multipart/mixed; boundary=b", b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n")
    with pytest.raises(ValueError, match="boundary"):
        decode_batch("application/json", b"{}")

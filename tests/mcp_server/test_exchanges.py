"""What ``mcp --http`` answers itself: malformed messages, unknown versions, phantom sessions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from async_pipeline.mcp_server._frames import MAX_LINE_BYTES
from tests.conftest import FIXTURES
from tests.mcp_server._support import TIMEOUT
from tests.mcp_server.test_http import ACCEPT, HttpServer, http_server

JSON = {**ACCEPT, "Content-Type": "application/json"}
TOOLS_LIST = b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}'


@pytest.fixture(scope="module")
def server() -> Iterator[HttpServer]:
    with http_server(FIXTURES / "minimal") as running:
        yield running


def _session(url: str, version: str) -> dict[str, str]:
    """Headers for a fresh, initialized session that negotiated ``version``."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    opened = httpx.post(url, json=initialize, headers=JSON, timeout=TIMEOUT)
    assert opened.status_code == 200, opened.text
    assert f'"protocolVersion":"{version}"' in opened.text
    headers = {
        **JSON,
        "Mcp-Session-Id": opened.headers["mcp-session-id"],
        "MCP-Protocol-Version": version,
    }
    initialized = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
    assert httpx.post(url, content=initialized, headers=headers).status_code == 202
    return headers


def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=body, headers=headers, timeout=TIMEOUT)


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    error: dict[str, Any] = body["error"]
    # Our words, never a pydantic dump.
    assert "validation error" not in error["message"].lower()
    return {"status": response.status_code, "id": body["id"], "code": error["code"]}


@pytest.mark.parametrize("version", ["2025-06-18", "2025-03-26", "2025-11-25"])
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" + TOOLS_LIST + b"]", -32600),  # a batch: not over HTTP, on any version
        (b"[]", -32600),
        (b"42", -32600),
        (b'"tools/list"', -32600),
        (b"null", -32600),
        (b'{"jsonrpc":', -32700),
        (b"", -32700),
        (b'{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}', -32600),
        (b'{"jsonrpc":"1.0","method":"notifications/initialized"}', -32600),
    ],
)
def test_a_malformed_message_is_answered_like_stdio_answers_it(
    server: HttpServer, version: str, body: bytes, code: int
) -> None:
    response = _post(server.url, body, _session(server.url, version))
    assert _error(response) == {"status": 400, "id": None, "code": code}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"jsonrpc":"2.0","id":7,"method":"tools/list","params":1}', -32602),
        (b'{"jsonrpc":"2.0","id":7}', -32600),
        (b'{"jsonrpc":"2.0","id":7,"method":""}', -32600),
    ],
)
def test_a_malformed_request_with_a_readable_id_is_answered_with_that_id(
    server: HttpServer, body: bytes, code: int
) -> None:
    response = _post(server.url, body, _session(server.url, "2025-06-18"))
    assert _error(response) == {"status": 400, "id": 7, "code": code}


def test_an_oversized_message_is_refused_with_413(server: HttpServer) -> None:
    headers = _session(server.url, "2025-06-18")
    body = b'{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"x":"' + b"a" * MAX_LINE_BYTES
    response = _post(server.url, body + b'"}}', headers)
    assert _error(response) == {"status": 413, "id": None, "code": -32600}


def test_an_unsupported_protocol_version_header_is_refused_plainly(server: HttpServer) -> None:
    headers = {**_session(server.url, "2025-06-18"), "MCP-Protocol-Version": "1999-01-01"}
    response = _post(server.url, TOOLS_LIST, headers)
    assert _error(response) == {"status": 400, "id": 2, "code": -32600}
    message = response.json()["error"]["message"].lower()
    assert "unsupported protocol version" in message
    assert response.json()["error"]["data"]["requested"] == "1999-01-01"


def test_a_well_formed_request_still_reaches_the_sdk(server: HttpServer) -> None:
    response = _post(server.url, TOOLS_LIST, _session(server.url, "2025-06-18"))
    assert response.status_code == 200
    assert '"tools":[' in response.text


@pytest.mark.parametrize(
    "body",
    [TOOLS_LIST, b'{"jsonrpc":"2.0","method":"notifications/initialized"}'],
)
def test_an_error_to_a_request_without_a_session_names_no_session(
    server: HttpServer, body: bytes
) -> None:
    # The SDK opens a session for any request without an id and discards it on refusal.
    response = _post(server.url, body, JSON)
    assert response.status_code == 400
    assert "mcp-session-id" not in response.headers


def test_a_refused_request_in_a_session_still_names_its_session(server: HttpServer) -> None:
    headers = _session(server.url, "2025-06-18")
    response = _post(server.url, TOOLS_LIST, {**headers, "Accept": "application/json"})
    assert response.status_code == 406
    assert response.headers["mcp-session-id"] == headers["Mcp-Session-Id"]

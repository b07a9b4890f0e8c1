"""Requests refused before any tool runs say why: not initialized yet, or which field is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from tests.mcp_server._support import TIMEOUT
from tests.mcp_server.test_run_job import project
from tests.mcp_server.test_stdio import call, converse, opening, request
from tests.mcp_server.test_wire import INITIALIZE

pytestmark = pytest.mark.anyio


def dump(*messages: Any) -> list[bytes]:
    return [json.dumps(message).encode() for message in messages]


async def test_requests_before_initialize_are_told_to_initialize_first(tmp_path: Path) -> None:
    early = dump(request(1, "tools/list"), call(2, "list_tasks", {}), request(3, "resources/list"))
    with anyio.fail_after(TIMEOUT):
        talk = await converse(project(tmp_path), [*early, *opening(), *dump(request(4, "ping"))])
    assert (talk.code, talk.stderr) == (0, "")
    for request_id in (1, 2, 3):
        error = talk.by_id[request_id]["error"]
        assert error["code"] == -32602
        assert "initialize" in error["message"], error
    assert talk.by_id[4]["result"] == {}


MALFORMED: list[tuple[Any, str]] = [
    (None, "params"),
    ({"name": 5}, "params.name"),
    ({"name": "list_tasks", "arguments": []}, "params.arguments"),
    ({"name": "list_tasks", "_meta": {"progressToken": {}}}, "params._meta.progressToken"),
]


async def test_malformed_tools_call_params_name_the_wrong_field(tmp_path: Path) -> None:
    asked = dump(*(request(n, "tools/call", params) for n, (params, _) in enumerate(MALFORMED)))
    with anyio.fail_after(TIMEOUT):
        talk = await converse(project(tmp_path), [*opening(), *asked])
    assert (talk.code, talk.stderr) == (0, "")
    for n, (_, field) in enumerate(MALFORMED):
        error = talk.by_id[n]["error"]
        assert error["code"] == -32602
        assert f" {field}: " in error["message"], error


@pytest.mark.parametrize("offered", ["1999-01-01", "2099-12-31"])
async def test_an_unknown_protocol_version_is_answered_with_the_latest_supported(
    tmp_path: Path, offered: str
) -> None:
    init = request("init", "initialize", {**INITIALIZE, "protocolVersion": offered})
    with anyio.fail_after(TIMEOUT):
        talk = await converse(project(tmp_path), dump(init))
    assert talk.by_id["init"]["result"]["protocolVersion"] == LATEST_HANDSHAKE_VERSION
    assert LATEST_HANDSHAKE_VERSION == max(HANDSHAKE_PROTOCOL_VERSIONS)

"""The stdio transport's edges: stdin's end, a last line without a newline, batches.

Most tests pipe a whole conversation into a real server process and close stdin, as
``printf ... | async-pipeline mcp`` would, then read everything it printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from async_pipeline.mcp_server._ledger import Ledger
from async_pipeline.mcp_server._stdio import Outgoing, _write
from tests.mcp_server._support import TIMEOUT
from tests.mcp_server.test_run_job import project
from tests.mcp_server.test_wire import INITIALIZE

pytestmark = pytest.mark.anyio

INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class _AnyText(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


ANY_TEXT = _AnyText()


def request(request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def call(request_id: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return request(request_id, "tools/call", {"name": name, "arguments": arguments})


def opening(version: str = "2025-06-18") -> list[bytes]:
    init = request("init", "initialize", {**INITIALIZE, "protocolVersion": version})
    return [json.dumps(init).encode(), json.dumps(INITIALIZED).encode()]


class Conversation:
    """What a server printed for a piped-in conversation, and how it ended."""

    def __init__(self, done: subprocess.CompletedProcess[bytes]) -> None:
        self.code = done.returncode
        self.stderr = done.stderr.decode(errors="replace")
        self.lines = [json.loads(line) for line in done.stdout.splitlines()]
        self.by_id = {
            m["id"]: m for m in self.lines if isinstance(m, dict) and m.get("id") is not None
        }


async def converse(root: Path, lines: list[bytes], *args: str, end: bytes = b"\n") -> Conversation:
    """Pipe ``lines`` (joined by newlines, then ``end``) into a server and close its stdin."""
    done = await anyio.run_process(
        [sys.executable, "-m", "async_pipeline", "mcp", *args],
        input=b"\n".join(lines) + end,
        cwd=root,
        check=False,
    )
    return Conversation(done)


async def test_requests_read_before_stdin_closes_are_all_answered(tmp_path: Path) -> None:
    # The run takes a second, so every request is still in flight when stdin ends.
    root = project(tmp_path, seconds="1")
    asked = [call("run", "run_job", {"job": "slow"})]
    asked += [call(f"list{n}", "list_tasks", {}) for n in range(20)]
    asked += [request(f"ping{n}", "ping") for n in range(20)]
    with anyio.fail_after(TIMEOUT):
        talk = await converse(
            root, [*opening(), *(json.dumps(m).encode() for m in asked)], "--allow-run"
        )
    assert (talk.code, talk.stderr) == (0, "")
    assert set(talk.by_id) == {"init"} | {m["id"] for m in asked}
    assert all("result" in reply for reply in talk.by_id.values()), talk.lines
    record = talk.by_id["run"]["result"]["structuredContent"]
    assert (record["status"], record["interrupted"]) == ("passed", None)


async def test_a_parse_error_just_before_stdin_closes_costs_no_answer(tmp_path: Path) -> None:
    # Which of the two replies is queued last when input ends varies from run to run; a few
    # servers at once cover both orders.
    root = project(tmp_path)
    talks: list[Conversation] = []

    async def one() -> None:
        talks.append(await converse(root, [opening()[0], b"garbage"]))

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
    for talk in talks:
        assert (talk.code, talk.stderr) == (0, "")
        assert [m.get("error", {}).get("code") for m in talk.lines if m["id"] is None] == [-32700]
        assert "result" in talk.by_id["init"]


async def test_the_writer_writes_what_it_took_when_the_queue_ends_meanwhile() -> None:
    # The writer takes all that is queued in one go; the queue's end may come in between.
    outbox, to_host = anyio.create_memory_object_stream[Outgoing](8)
    ping = SessionMessage(types.JSONRPCNotification(jsonrpc="2.0", method="a"))
    for _ in range(2):
        outbox.send_nowait(ping)
    outbox.close()
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader:
        try:
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as group:
                    await _write(to_host, write_end, group, Ledger())
        finally:
            os.close(write_end)
        written = reader.read()
    assert written.splitlines() == [b'{"jsonrpc":"2.0","method":"a"}'] * 2


async def test_a_last_request_without_a_newline_is_answered(tmp_path: Path) -> None:
    root = project(tmp_path)
    last = json.dumps(request("last", "ping")).encode()
    with anyio.fail_after(TIMEOUT):
        talk = await converse(root, [*opening(), last], end=b"")
    assert (talk.code, talk.stderr) == (0, "")
    assert talk.by_id["last"]["result"] == {}


async def test_a_2025_03_26_session_answers_a_batch_with_one_array(tmp_path: Path) -> None:
    root = project(tmp_path)
    batch = [
        request(1, "ping"),
        call(2, "list_tasks", {"limit": 1}),
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        5,
        {"jsonrpc": "1.0", "id": 3, "method": "ping"},
        request(4, "nope"),
        request(6, "initialize", INITIALIZE),
        call(7, "explain_task", {"task": "nope"}),
    ]
    lines = [json.dumps(batch).encode()]
    # Only notifications: answered with nothing at all (the ping after it comes back next).
    lines.append(json.dumps([INITIALIZED, INITIALIZED]).encode())
    lines.append(json.dumps(request("after", "ping")).encode())
    lines.append(b"[]")
    with anyio.fail_after(TIMEOUT):
        talk = await converse(root, [*opening("2025-03-26"), *lines])
    assert (talk.code, talk.stderr) == (0, "")
    assert talk.by_id["init"]["result"]["protocolVersion"] == "2025-03-26"
    [array] = [line for line in talk.lines if isinstance(line, list)]
    answers = {m["id"]: m for m in array}
    assert len(array) == len(answers) == 7, array
    assert answers[1]["result"] == {}
    assert answers[2]["result"]["structuredContent"]["tasks"][0]["id"] == "a"
    assert answers[None]["error"]["code"] == -32600  # the 5
    assert answers[3]["error"]["code"] == -32600
    assert answers[4]["error"]["code"] == -32601
    assert answers[6]["error"]["code"] == -32600  # initialize is never part of a batch
    assert answers[7]["result"]["isError"] is True
    rest = [line for line in talk.lines[1:] if line is not array]
    assert sorted(rest, key=lambda m: str(m["id"])) == [
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": ANY_TEXT}},
        {"jsonrpc": "2.0", "id": "after", "result": {}},
    ]  # so [] is one error object, and the batch of notifications got no answer


@pytest.mark.parametrize("version", ["2024-11-05", "2025-06-18", "2025-11-25"])
async def test_other_protocols_refuse_a_batch_with_one_error(tmp_path: Path, version: str) -> None:
    root = project(tmp_path)
    batch = json.dumps([request(1, "ping"), request(2, "ping")]).encode()
    with anyio.fail_after(TIMEOUT):
        talk = await converse(root, [*opening(version), batch])
    assert (talk.code, talk.stderr) == (0, "")
    assert talk.by_id["init"]["result"]["protocolVersion"] == version
    assert [(m["id"], m["error"]["code"]) for m in talk.lines[1:]] == [(None, -32600)]

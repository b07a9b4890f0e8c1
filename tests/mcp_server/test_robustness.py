"""Malformed input on the raw stdio wire: every bad line answered right, nothing crashes.

Ten thousand generated messages (fixed seed) go to one real server process, each followed
by a ``ping``; writes are pipelined while a second task reads every reply, so the run stays
within seconds. Expectations are written from the JSON-RPC and MCP specs, not derived from
the server's code.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from async_pipeline.mcp_server._frames import MAX_LINE_BYTES
from tests.conftest import run_cli_process
from tests.mcp_server.test_run_job import project
from tests.mcp_server.test_wire import INITIALIZE, snapshot

pytestmark = pytest.mark.anyio

GENERATED = 10_000
PARSE, INVALID, NO_METHOD, PARAMS = -32700, -32600, -32601, -32602
OK, TOOL_ERROR, SILENT = "ok", "isError", "no reply"
Expect = int | str  # a JSON-RPC error code, OK, TOOL_ERROR or SILENT


@dataclass
class Plan:
    """The lines to send and what each id (or, for ``id: null``, each position) expects."""

    lines: list[bytes] = field(default_factory=list)
    by_id: dict[Any, Expect] = field(default_factory=dict)
    null_codes: list[int] = field(default_factory=list)
    counter: int = 0

    def new_id(self) -> str:
        self.counter += 1
        return f"m{self.counter}"

    def add(self, line: bytes, expect: Expect, request_id: Any = None) -> None:
        self.lines.append(line)
        if request_id is not None:
            self.by_id[request_id] = expect
        elif isinstance(expect, int):
            self.null_codes.append(expect)


def dump(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def request(request_id: Any, method: str, params: Any = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method, **extra}
    if params is not None:
        message["params"] = params
    return message


def call(request_id: Any, name: str, arguments: Any) -> dict[str, Any]:
    return request(request_id, "tools/call", {"name": name, "arguments": arguments})


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def generators(run_id: str) -> list[Callable[[random.Random, Plan], None]]:
    """Each adds one message of a kind (and its expectation) to the plan."""

    def truncated(rng: random.Random, plan: Plan) -> None:
        whole = dump(call(plan.new_id(), "list_tasks", {"prefix": "x" * rng.randint(0, 40)}))
        plan.add(whole[: rng.randint(1, len(whole) - 1)], PARSE)  # any proper prefix of {...}

    def garbage(rng: random.Random, plan: Plan) -> None:
        body = bytes(rng.choice(b"{}[]:,\"'abc019\\ \t") for _ in range(rng.randint(0, 60)))
        plan.add(rng.choice([b"}", b"@", b"nul", b"'"]) + body, PARSE)

    def bad_utf8(rng: random.Random, plan: Plan) -> None:
        bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
        plan.add(dump(request(plan.new_id(), "ping"))[:-1] + b',"x":"' + bad + b'"}', PARSE)

    def wrong_jsonrpc(rng: random.Random, plan: Plan) -> None:
        version = rng.choice(["1.0", 2.0, None, "2", "", "2.0 "])
        message = request(plan.new_id(), "ping")
        message["jsonrpc"] = version
        if rng.random() < 0.2:
            del message["jsonrpc"]
        plan.add(dump(message), INVALID, message["id"])

    def bad_method(rng: random.Random, plan: Plan) -> None:
        message = request(plan.new_id(), "ping")
        if rng.random() < 0.3:
            del message["method"]
        else:
            message["method"] = rng.choice([None, 5, "", ["ping"], {"m": 1}, True])
        plan.add(dump(message), INVALID, message["id"])

    def unknown_method(rng: random.Random, plan: Plan) -> None:
        name = rng.choice(["nope", "tools/nope", "prompts/list", "Ping", "tools/list/"])
        message = request(plan.new_id(), f"{name}{rng.randint(0, 9)}")
        plan.add(dump(message), NO_METHOD, message["id"])

    def bad_params(rng: random.Random, plan: Plan) -> None:
        request_id = plan.new_id()
        method, params = rng.choice(
            [
                ("ping", [1]),
                ("tools/list", "x"),
                ("tools/call", 5),
                ("tools/call", {"name": 5}),
                ("tools/call", {}),
                ("tools/call", {"name": "list_tasks", "arguments": []}),
                ("tools/list", {"cursor": 5}),
                ("resources/read", {"uri": 5}),
                ("resources/read", {}),
                ("initialize", {"protocolVersion": 1}),
            ]
        )
        plan.add(dump(request(request_id, method, params)), PARAMS, request_id)

    def bad_tool(rng: random.Random, plan: Plan) -> None:
        request_id = plan.new_id()
        if rng.random() < 0.3:
            message = call(request_id, rng.choice(["nope", "", "list-tasks", "LIST_TASKS"]), {})
            plan.add(dump(message), PARAMS, request_id)
            return
        name, arguments = rng.choice(
            [
                ("list_tasks", {"prefix": 5}),
                ("list_tasks", {"bogus": "x"}),
                ("graph", {"job": ["quick"]}),
                ("explain_task", {}),
                ("explain_task", {"task": "no-such-task"}),
                ("list_runs", {"limit": "5"}),
                ("list_runs", {"limit": 0}),
                ("list_runs", {"limit": 10**30}),
                ("read_run", {"runId": "../../etc"}),
                ("diff_inputs", {"task": None}),
                ("metadata", {"includeSources": "yes"}),
                ("run_job", {"job": "quick"}),
                ("list_tasks", {"prefix": nested(rng.randint(10, 800))}),
            ]
        )
        plan.add(dump(call(request_id, name, arguments)), TOOL_ERROR, request_id)

    def batch(rng: random.Random, plan: Plan) -> None:
        items = [request(plan.new_id(), "ping") for _ in range(rng.randint(0, 3))]
        plan.add(dump(rng.choice([items, [1, 2], [[]]])), INVALID)

    def bad_id(rng: random.Random, plan: Plan) -> None:
        message = request(rng.choice([None, True, 1.5, {"a": 1}, [1], 1e300]), "ping")
        plan.add(dump(message), INVALID)

    def huge_number(rng: random.Random, plan: Plan) -> None:
        digits = "9" * rng.randint(400, 2000)
        head = b'{"jsonrpc":"2.0","id":"h","method":"ping","params":{"n":'
        plan.add(head + digits.encode() + b"e999}}", PARSE)

    def deep(rng: random.Random, plan: Plan) -> None:
        message = call(plan.new_id(), "list_tasks", {"prefix": "DEEP"})
        depth = rng.randint(1100, 10_000)  # beyond any sane nesting: built as bytes
        plan.add(dump(message).replace(b'"DEEP"', b"[" * depth + b"]" * depth), PARSE)

    def not_an_object(rng: random.Random, plan: Plan) -> None:
        plan.add(rng.choice([b"1", b'"ping"', b"null", b"true", b"-0.5"]), INVALID)

    def bad_notification(rng: random.Random, plan: Plan) -> None:
        message = rng.choice(
            [
                {"jsonrpc": "1.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": "x"},
                {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"x": 1}},
                {"jsonrpc": "2.0", "method": "notifications/nope"},
                {"jsonrpc": "2.0", "method": 5},
                {"jsonrpc": "2.0", "method": "notifications/progress", "params": [1]},
                {"jsonrpc": "2.0", "id": "stray-response", "result": {}},
                {"jsonrpc": "2.0", "id": 424242, "error": {"code": 1, "message": "x"}},
            ]
        )
        plan.add(dump(message), SILENT)

    def inspection(rng: random.Random, plan: Plan) -> None:
        request_id = plan.new_id()
        message = rng.choice(
            [
                call(request_id, "list_tasks", {}),
                call(request_id, "graph", {"job": "quick"}),
                call(request_id, "explain_task", {"task": "chatty"}),
                call(request_id, "metadata", {}),
                call(request_id, "list_runs", {"limit": 5}),
                call(request_id, "read_run", {"runId": run_id}),
                call(request_id, "diff_inputs", {"task": "a"}),
                request(request_id, "tools/list"),
                request(request_id, "resources/list"),
                request(request_id, "resources/read", {"uri": f"async-pipeline://runs/{run_id}"}),
            ]
        )
        plan.add(dump(message), OK, request_id)

    return [
        truncated, garbage, bad_utf8, wrong_jsonrpc, bad_method, unknown_method, bad_params,
        bad_tool, batch, bad_id, huge_number, deep, not_an_object, bad_notification,
        *[inspection] * 4,  # weighted: thousands of inspection calls must leave .async/ alone
    ]  # fmt: skip


def make_plan(run_id: str, seed: int = 20261129) -> Plan:
    rng = random.Random(seed)
    plan = Plan()
    plan.add(dump(request("init", "initialize", INITIALIZE)), OK, "init")
    plan.add(dump({"jsonrpc": "2.0", "method": "notifications/initialized"}), SILENT)
    kinds = generators(run_id)
    # A few oversized lines, and a valid ping exactly at the limit, at random places.
    specials = dict.fromkeys(rng.sample(range(GENERATED), 6), "oversized")
    specials[rng.randrange(GENERATED)] = "at-limit"
    for n in range(GENERATED):
        kind = specials.get(n)
        if kind == "oversized":
            plan.add(b"{" + b" " * (MAX_LINE_BYTES + rng.randint(0, 70_000)) + b"}", INVALID)
        elif kind == "at-limit":
            head = b'{"jsonrpc":"2.0","id":"big","method":"ping","params":{"_meta":{"x":"'
            plan.add(head + b"y" * (MAX_LINE_BYTES - len(head) - 4) + b'"}}}', OK, "big")
        else:
            rng.choice(kinds)(rng, plan)
        plan.add(dump(request(f"p{n}", "ping")), OK, f"p{n}")
    return plan


class Replies:
    """Every stdout line, checked as a JSON-RPC message as it arrives."""

    def __init__(self, process: Process) -> None:
        assert process.stdout is not None
        self.stdout = BufferedByteReceiveStream(process.stdout)
        self.by_id: dict[Any, dict[str, Any]] = {}
        self.null_codes: list[int] = []
        self.count = 0

    async def read(self, expected: int) -> None:
        while self.count < expected:
            self.take(await self.stdout.receive_until(b"\n", 64 * 1024 * 1024))

    def take(self, line: bytes) -> None:
        self.count += 1
        message = types.jsonrpc_message_adapter.validate_json(line)
        assert isinstance(message, types.JSONRPCResponse | types.JSONRPCError), line[:300]
        parsed = json.loads(line)
        if message.id is None:
            self.null_codes.append(parsed["error"]["code"])
        else:
            assert message.id not in self.by_id, f"two replies to {message.id!r}"
            self.by_id[message.id] = parsed


def outcome(reply: dict[str, Any]) -> Expect:
    if "error" in reply:
        code: int = reply["error"]["code"]
        return code
    return TOOL_ERROR if reply["result"].get("isError") else OK


async def spawn(root: Path, errlog: Any) -> Process:
    return await anyio.open_process(
        [sys.executable, "-m", "async_pipeline", "mcp"],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
    )


async def test_ten_thousand_malformed_messages_get_the_right_answers_and_crash_nothing(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    assert run_cli_process(["run", "quick"], root).code == 0
    [run_id] = [p.name for p in (root / ".async" / "runs").iterdir()]
    before = snapshot(root / ".async")
    plan = make_plan(run_id)
    expected_replies = len(plan.by_id) + len(plan.null_codes)
    with anyio.fail_after(60), (tmp_path / "server.err").open("wb") as errlog:
        async with await spawn(root, errlog) as process:
            assert process.stdin is not None
            replies = Replies(process)
            async with anyio.create_task_group() as group:
                group.start_soon(replies.read, expected_replies)
                # Pipelined: all lines go out while the replies are read concurrently.
                for line in plan.lines:
                    await process.stdin.send(line + b"\n")
            assert process.returncode is None, "the server died"
            await process.stdin.aclose()
            assert await process.wait() == 0
            rest = b""
            try:
                rest = await replies.stdout.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                pass
    assert rest == b"", f"unexpected output after the last reply: {rest[:300]!r}"
    assert sum(kind == OK for kind in plan.by_id.values()) > 1000  # pings and inspections
    assert len(plan.lines) >= 2 * GENERATED
    # Front-end errors without an id come back in the order their lines were sent.
    assert replies.null_codes == plan.null_codes
    assert set(replies.by_id) == set(plan.by_id), "a request without a reply, or vice versa"
    wrong = {
        rid: (want, replies.by_id[rid])
        for rid, want in plan.by_id.items()
        if outcome(replies.by_id[rid]) != want
    }
    assert not wrong, list(wrong.items())[:5]
    assert b"Traceback" not in (tmp_path / "server.err").read_bytes()
    assert snapshot(root / ".async") == before


async def test_calls_before_initialize_are_answered_with_json_rpc_errors(tmp_path: Path) -> None:
    root = project(tmp_path)
    early = [
        request(1, "tools/list"),
        call(2, "list_tasks", {}),
        request(3, "resources/list"),
        request(4, "resources/read", {"uri": "async-pipeline://runs/x"}),
        request(5, "nope"),
    ]
    lines = [dump(m) for m in early] + [b"[]", b"{", dump(request(6, "ping"))]
    lines += [dump(request(7, "initialize", INITIALIZE)), dump(request(8, "tools/list"))]
    with anyio.fail_after(30), (tmp_path / "server.err").open("wb") as errlog:
        async with await spawn(root, errlog) as process:
            assert process.stdin is not None
            replies = Replies(process)
            await process.stdin.send(b"\n".join(lines) + b"\n")
            await replies.read(10)
            await process.stdin.aclose()
            assert await process.wait() == 0
    for request_id in range(1, 6):
        assert "error" in replies.by_id[request_id], replies.by_id[request_id]
        assert isinstance(replies.by_id[request_id]["error"]["code"], int)
    assert replies.null_codes == [INVALID, PARSE]
    assert replies.by_id[6]["result"] == {}
    assert replies.by_id[7]["result"]["serverInfo"]["name"] == "async-pipeline"
    assert "tools" in replies.by_id[8]["result"]
    assert b"Traceback" not in (tmp_path / "server.err").read_bytes()

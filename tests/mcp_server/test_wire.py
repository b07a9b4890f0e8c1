"""The raw stdio wire: only JSON-RPC on stdout, bad input survived, .async/ left untouched."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.mcp_server._support import TIMEOUT
from tests.mcp_server.test_run_job import project

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "raw", "version": "0"},
}


class Wire:
    """A server subprocess spoken to in raw lines; every line it prints is kept."""

    def __init__(self, process: Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self.stdin = process.stdin
        self.stdout = BufferedByteReceiveStream(process.stdout)
        self.lines: list[bytes] = []
        self.ids = itertools.count(1)

    async def send(self, raw: bytes) -> None:
        await self.stdin.send(raw + b"\n")

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and read until its response; earlier lines are kept, not checked."""
        request_id = next(self.ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(json.dumps(message).encode())
        while True:
            line = await self.stdout.receive_until(b"\n", 64 * 1024 * 1024)
            self.lines.append(line)
            parsed: dict[str, Any] = json.loads(line)
            if parsed.get("id") == request_id:
                return parsed

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        response = await self.request("tools/call", {"name": name, "arguments": arguments})
        result: dict[str, Any] = response["result"]
        return result


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


async def test_stdout_carries_only_json_rpc_and_inspection_leaves_async_untouched(
    tmp_path: Path,
) -> None:
    root = project(tmp_path)
    with anyio.fail_after(TIMEOUT), (tmp_path / "server.err").open("wb") as errlog:
        process = await anyio.open_process(
            [sys.executable, "-m", "async_pipeline", "mcp", "--allow-run"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
        )
        async with process:
            wire = Wire(process)
            assert "result" in await wire.request("initialize", INITIALIZE)
            await wire.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
            # Shell output, stderr and a function step's print() all happen during this run.
            record = await wire.call("run_job", {"job": "quick"})
            assert record["structuredContent"]["status"] == "passed"
            run_id = record["structuredContent"]["id"]
            before = snapshot(root / ".async")
            calls: list[tuple[str, dict[str, Any]]] = [
                ("list_tasks", {}),
                ("graph", {"job": "quick"}),
                ("explain_task", {"task": "chatty"}),
                ("metadata", {}),
                ("list_runs", {"limit": 5}),
                ("read_run", {"runId": run_id}),
                ("diff_inputs", {"task": "a"}),
                ("explain_task", {"task": "nope"}),
                ("list_tasks", {"bad": 1}),
            ]
            for name, arguments in calls * 40:
                await wire.call(name, arguments)
            assert snapshot(root / ".async") == before
            await wire.stdin.aclose()
            assert await process.wait() == 0
        wire.lines.extend(line for line in (await _rest(wire)).split(b"\n") if line)
    assert len(wire.lines) > len(calls) * 40
    for line in wire.lines:
        message = types.jsonrpc_message_adapter.validate_json(line)
        assert message.jsonrpc == "2.0"
    # A function step's print() lands in its task's log, neither on the wire nor on stderr.
    assert b"function step output" not in (tmp_path / "server.err").read_bytes()
    logs = (root / ".async" / "runs" / run_id / "logs").glob("*.stdout.log")
    assert any(b"function step output" in path.read_bytes() for path in logs)


async def _rest(wire: Wire) -> bytes:
    chunks = []
    try:
        while True:
            chunks.append(await wire.stdout.receive())
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        return b"".join(chunks)

"""How fast does ``async-pipeline mcp`` start and answer (issue 6, point 8)?

Run on demand: ``.venv/bin/python bench/mcp_server.py [--tasks N] [--starts N] [--calls N]``.

1. Cold start: wall time from spawning the server to reading its ``initialize`` response,
   ``async-pipeline mcp`` against a bare SDK low-level server with one tool over stdio,
   measured alternately in the same run. Target: ratio <= 1.15.
2. In-session latency on the generated 1,000-task pipeline (``synthetic.write_pipeline``):
   p50 of ``list_tasks`` and ``graph`` round trips, next to a ``ping`` round trip in the same
   session. Target: <= 25 ms each.
3. ``--importtime``: where the server's start goes, the biggest imports by cumulative time.

Both servers run on this venv's interpreter directly (a shim can add 100 ms) with the bytecode
cache on, as by default: ``PYTHONDONTWRITEBYTECODE``, which some shells here export, is dropped
from the children's environment. The client speaks raw JSON lines over pipes, so its own cost
is the same for both servers and small.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import write_pipeline

START_TARGET = 1.15
LATENCY_TARGET_MS = 25.0
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
PROTOCOL = "2025-06-18"

# The peer: what any server on the SDK's low-level API pays at least. One tool, stdio.
BARE_SERVER = """
import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server


async def list_tools(ctx, params):
    return types.ListToolsResult(
        tools=[types.Tool(name="echo", input_schema={"type": "object"})]
    )


async def call_tool(ctx, params):
    return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


async def main():
    server = Server("bare", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


anyio.run(main)
"""


class Session:
    """A server subprocess spoken to in JSON lines, one request at a time."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._next_id = 0

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params or {}})
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit(f"the server closed stdout during {method}")
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise SystemExit(f"{method} failed: {message['error']}")
                return message

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def initialize(self) -> dict[str, Any]:
        params = {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        }
        return self.request("initialize", params)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def cold_start(argv: list[str], cwd: Path) -> float:
    """Seconds from spawn to the ``initialize`` response."""
    start = time.perf_counter()
    session = Session(argv, cwd)
    session.initialize()
    elapsed = time.perf_counter() - start
    session.close()
    return elapsed


def p50_ms(session: Session, method: str, params: dict[str, Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        answer = session.request(method, params)
        times.append(time.perf_counter() - start)
        if answer.get("result", {}).get("isError"):
            raise SystemExit(f"{method} {params} failed: {answer['result']}")
    return statistics.median(times) * 1000


def import_profile(cwd: Path, top: int) -> list[tuple[float, str]]:
    """Self import time (ms) per top-level package of the server's start, biggest first."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import async_pipeline.mcp_server"],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    by_package: dict[str, float] = {}
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if found:
            package = found.group(2).split(".")[0]
            by_package[package] = by_package.get(package, 0.0) + int(found.group(1)) / 1000
    return sorted(((ms, name) for name, ms in by_package.items()), reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=15, help="cold starts of each server")
    parser.add_argument("--calls", type=int, default=101, help="calls of each method")
    parser.add_argument("--importtime", action="store_true", help="also profile the imports")
    args = parser.parse_args()
    python = sys.executable
    ours = [python, "-m", "async_pipeline", "mcp"]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_pipeline(root, tasks=args.tasks)
        bare_path = root / "bare_server.py"
        bare_path.write_text(BARE_SERVER, encoding="utf-8")
        bare = [python, str(bare_path)]

        cold_start(ours, root)  # fill the OS file cache and the bytecode caches once
        cold_start(bare, root)
        ours_t: list[float] = []
        bare_t: list[float] = []
        for _ in range(args.starts):
            ours_t.append(cold_start(ours, root))
            bare_t.append(cold_start(bare, root))
        ours_m, bare_m = statistics.median(ours_t), statistics.median(bare_t)
        ratio = ours_m / bare_m
        ok &= ratio <= START_TARGET
        print(f"cold start, spawn to initialize response (median of {args.starts}):")
        print(f"  async-pipeline mcp:       {ours_m * 1000:7.1f} ms")
        print(f"  bare low-level server:    {bare_m * 1000:7.1f} ms")
        verdict = "ok" if ratio <= START_TARGET else "MISSED"
        print(f"  ratio: {ratio:.2f} (target <= {START_TARGET}) {verdict}")

        session = Session(ours, root)
        session.initialize()
        session.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        ping = p50_ms(session, "ping", {}, args.calls)
        print(f"in-session p50 on {args.tasks} tasks ({args.calls} calls each):")
        print(f"  ping:       {ping:7.2f} ms")
        for tool in ("list_tasks", "graph"):
            params = {"name": tool, "arguments": {}}
            p50 = p50_ms(session, "tools/call", params, args.calls)
            ok &= p50 <= LATENCY_TARGET_MS
            verdict = "ok" if p50 <= LATENCY_TARGET_MS else "MISSED"
            print(
                f"  {tool + ':':11} {p50:7.2f} ms  ({p50 / ping:.0f}x ping; "
                f"target <= {LATENCY_TARGET_MS:.0f} ms) {verdict}"
            )
        session.close()

        if args.importtime:
            print("`import async_pipeline.mcp_server`, self time by top-level package (ms):")
            for ms, name in import_profile(root, 15):
                print(f"  {ms:7.1f}  {name}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""``async-pipeline mcp --http``: a real server subprocess driven by the SDK's HTTP client."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from async_pipeline.errors import UsageError
from async_pipeline.mcp_server._http import parse_address
from tests.conftest import FIXTURES, run_cli_process
from tests.mcp_server._support import TIMEOUT, cli_json

FULL = FIXTURES / "full"
TOKEN = "s3cret-token-for-tests"
ANNOUNCEMENT = re.compile(r"MCP over HTTP at (http://\S+)")
INSPECTION_TOOLS = {
    "list_tasks",
    "graph",
    "explain_task",
    "metadata",
    "list_runs",
    "read_run",
    "diff_inputs",
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


@dataclass
class HttpServer:
    """A running ``mcp --http`` process: its URL and everything it wrote to stderr."""

    url: str
    process: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)


@contextmanager
def http_server(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
    address: str = "127.0.0.1:0",
) -> Iterator[HttpServer]:
    """``python -m async_pipeline mcp --http ADDRESS ARGS`` in ``cwd``, stopped with SIGTERM.

    Port 0 and the announced URL, rather than a port picked beforehand, leave no window for
    another process to take the port.
    """
    process = subprocess.Popen(
        [python, "-m", "async_pipeline", "mcp", "--http", address, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    server = HttpServer(url="", process=process)

    def drain() -> None:
        # Keep reading after the announcement so a chatty server never blocks on a full pipe.
        stream = process.stderr
        assert stream is not None
        with stream:
            for line in stream:
                server.stderr.append(line)
                lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        while not server.url:
            line = lines.get(timeout=TIMEOUT)
            assert line is not None, "".join(server.stderr)
            if found := ANNOUNCEMENT.search(line):
                server.url = found.group(1)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=TIMEOUT)
        finally:
            process.kill()
            process.wait()
            reader.join(timeout=TIMEOUT)


@asynccontextmanager
async def http_session(
    url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session over streamable HTTP."""
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=TIMEOUT) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@pytest.fixture(scope="module")
def open_server() -> Iterator[HttpServer]:
    with http_server(FULL) as server:
        yield server


@pytest.fixture(scope="module")
def token_server() -> Iterator[HttpServer]:
    with http_server(FULL, "--token-env", "AP_TEST_TOKEN", env={"AP_TEST_TOKEN": TOKEN}) as server:
        yield server


def post_initialize(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, json=INITIALIZE, headers={**ACCEPT, **headers}, timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8765", (None, 8765)),
        ("0", (None, 0)),
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:8765", ("::1", 8765)),
    ],
)
def test_http_address_is_an_optional_host_and_a_port(
    text: str, expected: tuple[str | None, int]
) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "x", ":80", "host:", "host:port", "1:65536", "[::1]8765"])
def test_a_malformed_http_address_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_address(text)
    assert caught.value.code == "ASYNC_PIPELINE_USAGE"


@pytest.mark.anyio
async def test_the_sdk_client_lists_and_calls_tools_over_http(open_server: HttpServer) -> None:
    assert open_server.url.startswith("http://127.0.0.1:")
    with anyio.fail_after(TIMEOUT):
        async with http_session(open_server.url) as session:
            listed = await session.list_tools()
            result = await session.call_tool("list_tasks", {})
    assert {tool.name for tool in listed.tools} == INSPECTION_TOOLS
    assert not result.is_error, result.content
    assert result.structured_content == cli_json(FULL, "list")


@pytest.mark.anyio
async def test_allow_run_offers_run_job_over_http_too() -> None:
    with http_server(FIXTURES / "minimal", "--allow-run") as server, anyio.fail_after(TIMEOUT):
        async with http_session(server.url) as session:
            listed = await session.list_tools()
    assert {tool.name for tool in listed.tools} == {*INSPECTION_TOOLS, "run_job"}


def test_localhost_names_and_origins_are_accepted(open_server: HttpServer) -> None:
    port = open_server.url.split(":")[2].split("/")[0]
    for headers in (
        {},
        {"Host": f"localhost:{port}"},
        {"Origin": f"http://localhost:{port}"},
        {"Origin": "http://127.0.0.1:6274"},
    ):
        assert post_initialize(open_server.url, headers).status_code == 200, headers


def test_a_foreign_origin_is_rejected(open_server: HttpServer) -> None:
    # What a page at evil.example would send after rebinding its name to 127.0.0.1.
    response = post_initialize(open_server.url, {"Origin": "http://evil.example"})
    assert response.status_code == 403


def test_a_foreign_host_header_is_rejected(open_server: HttpServer) -> None:
    response = post_initialize(open_server.url, {"Host": "evil.example:80"})
    assert response.status_code == 421


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
def test_requests_without_the_right_bearer_token_get_401(
    token_server: HttpServer, headers: dict[str, str]
) -> None:
    response = post_initialize(token_server.url, headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.anyio
async def test_the_right_bearer_token_gets_a_session(token_server: HttpServer) -> None:
    with anyio.fail_after(TIMEOUT):
        async with http_session(token_server.url, {"Authorization": f"Bearer {TOKEN}"}) as session:
            result = await session.call_tool("graph", {})
    assert result.structured_content == cli_json(FULL, "graph")


def test_the_token_is_checked_before_the_origin(token_server: HttpServer) -> None:
    # An unauthenticated caller learns nothing about which headers would pass.
    response = post_initialize(token_server.url, {"Origin": "http://evil.example"})
    assert response.status_code == 401


def test_the_token_never_reaches_the_log(token_server: HttpServer) -> None:
    post_initialize(token_server.url, {"Authorization": "Bearer wrong"})
    post_initialize(token_server.url, {"Authorization": f"Bearer {TOKEN}"})
    assert token_server.stderr, "the announcement at least"
    assert not any(TOKEN in line for line in token_server.stderr)


def test_sigterm_stops_the_server_with_exit_code_0() -> None:
    with http_server(FIXTURES / "minimal") as server:
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=TIMEOUT) == 0


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--http", "0", "--token-env", "AP_UNSET_TOKEN"], {}),
        (["--http", "0", "--token-env", "AP_EMPTY_TOKEN"], {"AP_EMPTY_TOKEN": ""}),
        (["--token-env", "AP_TEST_TOKEN"], {"AP_TEST_TOKEN": TOKEN}),
        (["--http", "nope"], {}),
        # Abbreviated IPv4: the system would bind 0.0.0.0 and 127.0.0.1.
        (["--http", "0:0"], {}),
        (["--http", "127.1:0"], {}),
    ],
)
def test_http_usage_mistakes_exit_with_a_usage_error(args: list[str], env: dict[str, str]) -> None:
    done = run_cli_process(["mcp", *args], FIXTURES / "minimal", env=env, timeout=TIMEOUT)
    assert done.code == 1
    assert "error[ASYNC_PIPELINE_USAGE]" in done.stderr
    assert TOKEN not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--http", "0.0.0.0:0"],
        ["--http", "0.0.0.0:0", "--allow-run"],
        ["--http", "[::]:0", "--allow-run"],
        ["--http", "build-box.example:0"],
    ],
)
def test_a_non_loopback_bind_without_a_token_is_refused(args: list[str]) -> None:
    done = run_cli_process(["mcp", *args], FIXTURES / "minimal", timeout=TIMEOUT)
    assert done.code == 1
    assert "error[ASYNC_PIPELINE_USAGE]" in done.stderr
    assert "--token-env" in done.stderr
    assert "MCP over HTTP at" not in done.stderr


TOKEN_PIPELINE = """
import os

from async_pipeline import define_pipeline, job, sh, task


def peek(ctx):
    print("fn sees", os.environ.get("AP_TEST_TOKEN"))


pipeline = define_pipeline(
    name="token-demo",
    tasks={
        "shell": task(sh('echo "sh sees $AP_TEST_TOKEN"; env')),
        "fn": task(run=peek),
    },
    jobs={"peek": job(target=["shell", "fn"])},
)
"""


@pytest.mark.anyio
async def test_runs_never_see_the_token_variable(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(TOKEN_PIPELINE)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with http_server(
        tmp_path, "--allow-run", "--token-env", "AP_TEST_TOKEN", env={"AP_TEST_TOKEN": TOKEN}
    ) as server:
        with anyio.fail_after(TIMEOUT):
            async with http_session(server.url, auth) as session:
                ran = await session.call_tool("run_job", {"job": "peek"})
                assert ran.structured_content is not None, ran.content
                run_id = ran.structured_content["id"]
                read = await session.call_tool("read_run", {"runId": run_id})
    assert ran.structured_content["status"] == "passed"
    logs = tmp_path / ".async" / "runs" / run_id / "logs"
    assert "sh sees \n" in (logs / "shell.stdout.log").read_text()
    assert "fn sees None" in (logs / "fn.stdout.log").read_text()
    files = [path for path in (tmp_path / ".async").rglob("*") if path.is_file()]
    assert [path for path in files if TOKEN.encode() in path.read_bytes()] == []
    # read_run relays task output: what the tasks printed is there, the token is not.
    assert "sh sees" in read.model_dump_json()
    assert not any(TOKEN in answer.model_dump_json() for answer in (ran, read))
    assert not any(TOKEN in line for line in server.stderr)

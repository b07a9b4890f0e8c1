"""A stopping ``mcp --http`` interrupts its runs at once and answers their callers."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from async_pipeline.mcp_server._inflight import SHUTTING_DOWN
from tests.mcp_server._support import TIMEOUT
from tests.mcp_server.test_http import http_server, http_session
from tests.mcp_server.test_run_job import project, records
from tests.runner._procs import live_processes_with, marker_seconds

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_interrupts_a_run_in_flight_and_its_caller_gets_an_error(
    tmp_path: Path, signum: signal.Signals
) -> None:
    marker = marker_seconds()
    root = project(tmp_path, seconds=marker)
    a_done = anyio.Event()
    caught: list[MCPError] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        if message == "a passed":
            a_done.set()

    with http_server(root, "--allow-run") as server, anyio.fail_after(TIMEOUT):
        # The SDK client also holds a GET event stream open, which never ends by itself.
        async with http_session(server.url) as session, anyio.create_task_group() as group:

            async def run() -> None:
                try:
                    await session.call_tool(
                        "run_job", {"job": "slow"}, progress_callback=on_progress
                    )
                except MCPError as exc:
                    caught.append(exc)

            group.start_soon(run)
            await a_done.wait()
            assert live_processes_with(marker)
            server.process.send_signal(signum)
            code = await anyio.to_thread.run_sync(server.process.wait)
    assert code == 0
    [error] = caught
    assert error.code == SHUTTING_DOWN
    [record] = records(root)
    assert error.data == {"runId": record["id"], "interrupted": signum.name}
    assert (record["status"], record["interrupted"]) == ("failed", signum.name)
    statuses = {t["id"]: t["status"] for t in record["tasks"]}  # type: ignore[attr-defined]
    assert statuses == {"a": "passed", "slow": "cancelled"}
    assert not live_processes_with(marker)
    log = "".join(server.stderr)
    # Nothing left to uvicorn's graceful timeout, which cancels with a traceback.
    assert "Traceback" not in log
    assert "graceful shutdown exceeded" not in log
    assert "ERROR" not in log


async def test_a_signal_with_only_event_streams_open_exits_at_once(tmp_path: Path) -> None:
    with http_server(project(tmp_path)) as server, anyio.fail_after(TIMEOUT):
        async with http_session(server.url) as session:
            await session.list_tools()
            server.process.send_signal(signal.SIGTERM)
            code = await anyio.to_thread.run_sync(server.process.wait)
    assert code == 0
    log = "".join(server.stderr)
    assert "Traceback" not in log
    assert "graceful shutdown exceeded" not in log
    assert "ERROR" not in log

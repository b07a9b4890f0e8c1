"""Drive a real ``async-pipeline mcp`` subprocess with the SDK's own stdio client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.conftest import run_cli_process

TIMEOUT = 20


class Connected(NamedTuple):
    session: ClientSession
    init: types.InitializeResult


@asynccontextmanager
async def mcp_session(
    cwd: Path, *args: str, errlog: TextIO | None = None, env: dict[str, str] | None = None
) -> AsyncIterator[Connected]:
    """An initialized session with ``python -m async_pipeline mcp ARGS`` run in ``cwd``.

    The server's stderr goes to ``errlog`` (a real file) when given, else to a temporary one.
    """
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "async_pipeline", "mcp", *args],
        cwd=cwd,
        env=dict(os.environ) if env is None else env,
    )
    # The server's stderr (its log) goes to a real file: the client hands it to a process.
    with tempfile.TemporaryFile("w+") as scratch:
        async with (
            stdio_client(params, errlog=errlog or scratch) as (read, write),
            ClientSession(read, write) as session,
        ):
            yield Connected(session, await session.initialize())


def cli_json(cwd: Path, *args: str) -> Any:
    """What ``python -m async_pipeline ARGS --format json`` prints, parsed."""
    done = run_cli_process([*args, "--format", "json"], cwd)
    assert done.code == 0, done.stderr
    return json.loads(done.stdout)


def cli_jsons(cwd: Path, *commands: list[str]) -> list[Any]:
    """:func:`cli_json` for several commands, run side by side to keep the suite fast."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "async_pipeline", *args, "--format", "json"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for args in commands
    ]
    found = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err.decode()
        found.append(json.loads(out))
    return found


def error_of(result: Any) -> dict[str, Any]:
    """The ``{"error": {...}}`` body of an ``isError`` tool result."""
    assert result.is_error, result
    assert result.structured_content is None
    body = json.loads(result.content[0].text)
    error: dict[str, Any] = body["error"]
    return error

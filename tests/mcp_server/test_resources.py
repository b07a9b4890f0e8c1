"""Runs and context packs as resources, read with the SDK's own client over stdio."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from tests.conftest import run_cli_process
from tests.mcp_server._support import TIMEOUT, cli_json, mcp_session
from tests.mcp_server.test_tools import RUNS_PIPELINE

pytestmark = pytest.mark.anyio

RUNS = "async-pipeline://runs/"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs of one job: passed, failed (so a context pack for 'check'), passed."""
    root = tmp_path_factory.mktemp("resources")
    (root / "pipeline.py").write_text(RUNS_PIPELINE)
    for content, code in (("good\n", 0), ("bad\n", 1), ("good\n", 0)):
        (root / "src.txt").write_text(content)
        assert run_cli_process(["run", "verify"], root).code == code
    return root


@pytest.fixture(scope="module")
async def session(project: Path) -> AsyncIterator[ClientSession]:
    async with mcp_session(project) as (connected, _):
        yield connected


def page(cursor: str) -> types.PaginatedRequestParams:
    return types.PaginatedRequestParams(cursor=cursor)


def run_ids(project: Path) -> list[str]:
    """Newest first, as the CLI lists them."""
    return [run["id"] for run in cli_json(project, "runs")["runs"]]


async def read_json(session: ClientSession, uri: str) -> Any:
    result = await session.read_resource(uri)
    [content] = result.contents
    assert content.mime_type == "application/json"
    assert str(content.uri) == uri
    return json.loads(content.text)  # type: ignore[union-attr]  # text, not blob, or it fails


async def test_templates_name_a_run_and_a_context_pack(session: ClientSession) -> None:
    with anyio.fail_after(TIMEOUT):
        listed = await session.list_resource_templates()
    assert [t.uri_template for t in listed.resource_templates] == [
        f"{RUNS}{{runId}}",
        f"{RUNS}{{runId}}/context/{{taskId}}",
    ]


async def test_resources_list_the_recent_runs_newest_first(
    session: ClientSession, project: Path
) -> None:
    with anyio.fail_after(TIMEOUT):
        listed = await session.list_resources()
    assert [str(r.uri) for r in listed.resources] == [f"{RUNS}{i}" for i in run_ids(project)]
    assert listed.next_cursor is None
    assert "verify" in (listed.resources[0].title or "")


async def test_resources_list_is_paginated_twenty_at_a_time(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(
        'from async_pipeline import define_pipeline\npipeline = define_pipeline(name="p")\n'
    )
    runs = tmp_path / ".async" / "runs"
    ids = [f"20260101T0000{n:02d}000Z-aaaaaa" for n in range(25)]
    for run_id in ids:
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / "execution.json").write_text('{"jobId": "j", "status": "passed"}')
    with anyio.fail_after(TIMEOUT):
        async with mcp_session(tmp_path) as (session, _):
            first = await session.list_resources()
            assert first.next_cursor is not None
            second = await session.list_resources(params=page(first.next_cursor))
            with pytest.raises(MCPError) as caught:
                await session.list_resources(params=page("../.."))
    assert [r.name for r in first.resources] == sorted(ids, reverse=True)[:20]
    assert [r.name for r in second.resources] == sorted(ids, reverse=True)[20:]
    assert second.next_cursor is None
    assert caught.value.code == -32602


async def test_a_run_resource_is_the_cli_runs_show_json(
    session: ClientSession, project: Path
) -> None:
    for run_id in run_ids(project):
        with anyio.fail_after(TIMEOUT):
            found = await read_json(session, f"{RUNS}{run_id}")
        assert found == cli_json(project, "runs", "show", run_id)


async def test_a_context_pack_resource_is_the_pack_of_the_failed_task(
    session: ClientSession, project: Path
) -> None:
    failed = run_ids(project)[1]
    with anyio.fail_after(TIMEOUT):
        pack = await read_json(session, f"{RUNS}{failed}/context/check")
    assert pack == cli_json(project, "runs", "show", failed)["contextPacks"]["check"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("20990101T000000000Z-ffffff", "ASYNC_PIPELINE_UNKNOWN_RUN"),
        ("..", "ASYNC_PIPELINE_UNKNOWN_RUN"),
        ("%2E%2E%2F%2E%2E", "ASYNC_PIPELINE_UNKNOWN_RUN"),
        ("../../pipeline.py", "ASYNC_PIPELINE_USAGE"),
        ("{run}/context/build", "ASYNC_PIPELINE_UNKNOWN_TASK"),
        ("{run}/context/..%2Fexecution", "ASYNC_PIPELINE_UNKNOWN_TASK"),
        ("{run}/logs/check", "ASYNC_PIPELINE_USAGE"),
        ("", "ASYNC_PIPELINE_UNKNOWN_RUN"),
        ("%ff", "ASYNC_PIPELINE_USAGE"),
        ("%c3%28", "ASYNC_PIPELINE_USAGE"),
        ("{run}/context/%ff", "ASYNC_PIPELINE_USAGE"),
    ],
)
async def test_unknown_or_malformed_uris_are_invalid_params_errors_with_a_code(
    session: ClientSession, project: Path, path: str, code: str
) -> None:
    uri = RUNS + path.format(run=run_ids(project)[1])
    with anyio.fail_after(TIMEOUT), pytest.raises(MCPError) as caught:
        await session.read_resource(uri)
    assert caught.value.code == -32602
    assert caught.value.data["error"]["code"] == code


async def test_a_uri_of_another_scheme_is_an_invalid_params_error(
    session: ClientSession,
) -> None:
    with anyio.fail_after(TIMEOUT), pytest.raises(MCPError) as caught:
        await session.read_resource("file:///etc/passwd")
    assert caught.value.code == -32602
    assert caught.value.data["error"]["code"] == "ASYNC_PIPELINE_USAGE"


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("read_run", lambda client: client.read_resource(f"{RUNS}20260101T000000000Z-aaaaaa")),
        ("list_runs", lambda client: client.list_resources()),
    ],
)
async def test_an_unexpected_failure_is_an_internal_error_without_its_internals(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    method: str,
    call: Any,
) -> None:
    from mcp import Client

    from async_pipeline.mcp_server import ServerOptions, tool_specs
    from async_pipeline.mcp_server._server import build_server
    from async_pipeline.query import _data

    def broken(*args: object, **kwargs: object) -> None:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "internal detail")

    # No record on disk makes the query layer fail this way; the seam stands in for a bug.
    monkeypatch.setattr(_data, method, broken)
    (tmp_path / "pipeline.py").write_text(
        'from async_pipeline import define_pipeline\npipeline = define_pipeline(name="p")\n'
    )
    options = ServerOptions(cwd=tmp_path)
    with anyio.fail_after(TIMEOUT):
        async with Client(build_server(options, tool_specs(options)), mode="legacy") as client:
            with pytest.raises(MCPError) as caught:
                await call(client)
    assert caught.value.code == -32603
    assert "internal detail" not in caught.value.error.model_dump_json()
    assert "internal detail" in caplog.text  # the operator's log keeps it

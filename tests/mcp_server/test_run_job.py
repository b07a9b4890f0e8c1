"""run_job over a real stdio server: gated by --allow-run, same lock and records, cancellable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from async_pipeline.runner.lock import lock_holder
from async_pipeline.runner.records import RUNS_DIR
from tests.conftest import run_cli_process
from tests.mcp_server._support import TIMEOUT, error_of, mcp_session
from tests.runner._procs import live_processes_with, marker_seconds

pytestmark = pytest.mark.anyio

PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task


def chatty(ctx):
    print("function step output on the server's stdout")


pipeline = define_pipeline(
    name="run-demo",
    tasks={{
        "a": task(sh("echo from-a; echo to-stderr >&2; touch marker")),
        "chatty": task(run=chatty, depends_on=["a"]),
        "gate": task(sh("while [ ! -f release ]; do sleep 0.02; done"), depends_on=["a"]),
        "slow": task(sh("sleep {seconds}"), depends_on=["a"]),
    }},
    jobs={{
        "quick": job(target=["a", "chatty"]),
        "gated": job(target="gate"),
        "slow": job(target="slow"),
    }},
)
"""


def project(root: Path, seconds: str = "1") -> Path:
    (root / "pipeline.py").write_text(PIPELINE.format(seconds=seconds))
    return root


def records(root: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_bytes()) for p in sorted((root / RUNS_DIR).glob("*/execution.json"))]


async def test_run_job_without_allow_run_is_an_error_and_spawns_nothing(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with mcp_session(project(tmp_path)) as (session, _):
            error = error_of(await session.call_tool("run_job", {"job": "quick"}))
    assert error["code"] == "ASYNC_PIPELINE_USAGE"
    assert "--allow-run" in error["hint"]
    assert not (tmp_path / "marker").exists()
    assert not (tmp_path / ".async").exists()


async def test_run_job_runs_writes_the_record_and_reports_progress(tmp_path: Path) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    with anyio.fail_after(TIMEOUT):
        async with mcp_session(project(tmp_path), "--allow-run") as (session, _):
            result = await session.call_tool(
                "run_job", {"job": "quick", "concurrency": 1}, progress_callback=on_progress
            )
    assert not result.is_error, result.content
    record = result.structured_content
    assert record is not None
    assert (tmp_path / "marker").exists()
    assert records(tmp_path) == [record]
    assert (record["status"], record["jobId"], record["concurrency"]) == ("passed", "quick", 1)
    assert json.loads(result.content[0].text) == record
    assert sorted(m for _, _, m in progress) == ["a passed", "chatty passed"]
    assert [(d, t) for d, t, _ in progress] == [(1, 2), (2, 2)]
    # Task output went to the run's logs, not to the host.
    stdout_log = tmp_path / RUNS_DIR / str(record["id"]) / "logs" / "a.stdout.log"
    assert stdout_log.read_text() == "from-a\n"


async def test_run_job_holds_the_cli_run_lock(tmp_path: Path) -> None:
    root = project(tmp_path)
    a_done = anyio.Event()

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        if message == "a passed":
            a_done.set()

    with anyio.fail_after(TIMEOUT):
        async with mcp_session(root, "--allow-run") as (session, _):
            async with anyio.create_task_group() as group:
                results = []

                async def run() -> None:
                    results.append(
                        await session.call_tool(
                            "run_job", {"job": "gated"}, progress_callback=on_progress
                        )
                    )

                group.start_soon(run)
                await a_done.wait()
                cli = await anyio.to_thread.run_sync(run_cli_process, ["run", "quick"], root)
                (root / "release").touch()
            second = await session.call_tool("run_job", {"job": "quick"})
    assert cli.code == 1
    assert "ASYNC_PIPELINE_RUN_ACTIVE" in cli.stderr
    assert results[0].structured_content["status"] == "passed"
    assert second.structured_content is not None and second.structured_content["status"] == "passed"
    assert [r["jobId"] for r in records(root)] == ["gated", "quick"]


async def test_cancelling_run_job_ends_its_tasks_and_finalizes_the_record(tmp_path: Path) -> None:
    marker = marker_seconds()
    root = project(tmp_path, seconds=marker)
    a_done = anyio.Event()

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        if message == "a passed":
            a_done.set()

    with anyio.fail_after(TIMEOUT):
        async with mcp_session(root, "--allow-run") as (session, _):
            async with anyio.create_task_group() as group:

                async def run() -> None:
                    await session.call_tool(
                        "run_job", {"job": "slow"}, progress_callback=on_progress
                    )

                group.start_soon(run)
                await a_done.wait()
                assert live_processes_with(marker)
                # Abandoning the call makes the SDK client send notifications/cancelled.
                group.cancel_scope.cancel()
            # Same session: the server finalizes the record while it keeps serving.
            while lock_holder(root) is not None or records(root)[0]["status"] == "running":
                await session.send_ping()
                await anyio.sleep(0.02)
    [record] = records(root)
    assert (record["status"], record["interrupted"]) == ("failed", "cancelled")
    statuses = {t["id"]: t["status"] for t in record["tasks"]}  # type: ignore[attr-defined]
    assert statuses == {"a": "passed", "slow": "cancelled"}
    assert not live_processes_with(marker)


CACHED = """
from async_pipeline import define_pipeline, job, sh, task

pipeline = define_pipeline(
    name="stamped",
    tasks={"c": task(sh("mkdir -p out && cat src/*.txt > out/c.txt"), inputs=["src/**"],
                     outputs=["out/c.txt"], cache=True)},
    jobs={"build": job(target="c")},
)
"""


def _flip_last_byte(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 1]))


async def test_run_job_skips_what_the_job_stamp_proves_and_leaves_a_stamp(tmp_path: Path) -> None:
    from async_pipeline.runner.stamp import check_stamp

    (tmp_path / "pipeline.py").write_text(CACHED)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "1.txt").write_text("one\n")
    config = (tmp_path / "pipeline.py").resolve()
    with anyio.fail_after(TIMEOUT + 10):
        async with mcp_session(tmp_path, "--allow-run") as (session, _):

            async def hit() -> bool:
                result = await session.call_tool("run_job", {"job": "build"})
                assert not result.is_error, result.content
                assert result.structured_content is not None
                return bool(result.structured_content["tasks"][0]["cacheHit"])

            assert not await hit()
            # Files written a moment ago are not vouched for (racy timestamps): past that
            # window, a hit through the usual path leaves a stamp that proves the task.
            await anyio.sleep(2.2)
            assert await hit()
            check = check_stamp(tmp_path, "build", config, dict(os.environ))
            assert check is not None and set(check.tasks) == {"c"}
            # A proven task's entry is not even read: damage it in place (same inode and
            # size) and the run is still a hit, which the usual path would not give.
            _flip_last_byte(next((tmp_path / ".async" / "cache" / "tasks").glob("*.entry")))
            assert await hit()
    assert (tmp_path / "out" / "c.txt").read_text() == "one\n"


SECRET_PIPELINE = """
from async_pipeline import define_pipeline, env, job, sh, task

pipeline = define_pipeline(
    name="secret-demo",
    env={"TOKEN": env.secret("ASYNC_PIPELINE_TEST_ABSENT_SECRET")},
    tasks={"a": task(sh("touch marker"))},
    jobs={"quick": job(target="a")},
)
"""


async def test_a_runner_error_is_answered_with_its_own_code_and_no_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "pipeline.py").write_text(SECRET_PIPELINE)
    environ = {k: v for k, v in os.environ.items() if k != "ASYNC_PIPELINE_TEST_ABSENT_SECRET"}
    with anyio.fail_after(TIMEOUT), (tmp_path / "server.err").open("w+") as errlog:
        async with mcp_session(tmp_path, "--allow-run", errlog=errlog, env=environ) as (s, _):
            error = error_of(await s.call_tool("run_job", {"job": "quick"}))
    assert error["code"] == "ASYNC_PIPELINE_ENV_MISSING"
    assert not (tmp_path / "marker").exists()
    assert "Traceback" not in (tmp_path / "server.err").read_text()


async def test_run_job_while_another_runs_is_run_active(tmp_path: Path) -> None:
    root = project(tmp_path)
    a_done = anyio.Event()

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        if message == "a passed":
            a_done.set()

    with anyio.fail_after(TIMEOUT), (tmp_path / "server.err").open("w+") as errlog:
        async with mcp_session(root, "--allow-run", errlog=errlog) as (session, _):
            async with anyio.create_task_group() as group:
                first = []

                async def run() -> None:
                    first.append(
                        await session.call_tool(
                            "run_job", {"job": "gated"}, progress_callback=on_progress
                        )
                    )

                group.start_soon(run)
                await a_done.wait()
                second = await session.call_tool("run_job", {"job": "quick"})
                (root / "release").touch()
    assert error_of(second)["code"] == "ASYNC_PIPELINE_RUN_ACTIVE"
    assert first[0].structured_content["status"] == "passed"
    assert [r["jobId"] for r in records(root)] == ["gated"]
    assert "Traceback" not in (tmp_path / "server.err").read_text()


async def test_run_job_takes_a_whole_number_concurrency_given_as_a_float(tmp_path: Path) -> None:
    with anyio.fail_after(TIMEOUT):
        async with mcp_session(project(tmp_path), "--allow-run") as (session, _):
            fraction = await session.call_tool("run_job", {"job": "quick", "concurrency": 1.5})
            whole = await session.call_tool("run_job", {"job": "quick", "concurrency": 2.0})
    assert error_of(fraction)["path"] == "concurrency"
    assert whole.structured_content is not None
    assert (whole.structured_content["status"], whole.structured_content["concurrency"]) == (
        "passed",
        2,
    )


def test_a_group_holding_one_pipeline_error_is_that_error() -> None:
    from async_pipeline.errors import PipelineError
    from async_pipeline.mcp_server._server import sole_pipeline_error

    error = PipelineError("ASYNC_PIPELINE_RUN_ACTIVE", "busy")
    assert sole_pipeline_error(ExceptionGroup("g", [ExceptionGroup("h", [error])])) is error
    assert sole_pipeline_error(ExceptionGroup("g", [error, ValueError()])) is None
    assert sole_pipeline_error(ExceptionGroup("g", [error, error])) is None
    assert sole_pipeline_error(ExceptionGroup("g", [ValueError()])) is None
    assert sole_pipeline_error(ValueError()) is None

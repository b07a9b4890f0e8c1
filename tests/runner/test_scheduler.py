"""Scheduling over the task graph, with a scripted executor (no processes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import define_pipeline, depends_on, env, job, sh, task
from async_pipeline.errors import PipelineError
from async_pipeline.runner import run_job
from async_pipeline.testing.fake_executor import FakeCommand, FakeExecutor


def _run(
    pipeline: Any, tmp_path: Path, executor: FakeExecutor, job_id: str = "all", **kw: Any
) -> Any:
    return run_job(
        pipeline, id=job_id, cwd=tmp_path, env={"PATH": os.defpath}, executor=executor, **kw
    )


def _statuses(record: Any) -> dict[str, str]:
    return {t.id: t.status for t in record.tasks}


def test_ready_tasks_run_in_parallel_up_to_the_concurrency(tmp_path: Path) -> None:
    tasks = {f"t{i}": task(sh(f"work {i}")) for i in range(8)}
    pipeline = define_pipeline(name="p", tasks=tasks, jobs={"all": job(target=list(tasks))})
    executor = FakeExecutor(default=FakeCommand(seconds=0.05))
    record = _run(pipeline, tmp_path, executor, concurrency=3)
    assert record.status == "passed"
    assert executor.max_running == 3
    assert record.concurrency == 3


@pytest.mark.parametrize("concurrency", [0, -1, True, 2.0, "2", 100_001, 2**64])
def test_a_concurrency_that_is_no_count_of_tasks_is_a_usage_error_before_anything_runs(
    tmp_path: Path, concurrency: object
) -> None:
    pipeline = define_pipeline(name="p", tasks={"a": task(sh("x"))}, jobs={"all": job(target="a")})
    executor = FakeExecutor(default=FakeCommand())
    with pytest.raises(PipelineError) as raised:
        _run(pipeline, tmp_path, executor, concurrency=concurrency)
    assert raised.value.code == "ASYNC_PIPELINE_USAGE"
    assert "concurrency" in raised.value.message
    assert executor.calls == [] and not (tmp_path / ".async").exists()


def test_dependencies_run_before_dependents(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={
            "a": task(sh("a")),
            "b": task(sh("b"), depends_on=["a"]),
            "c": task(sh("c"), depends_on=["a"]),
            "d": task(sh("d"), depends_on=["b", "c"]),
        },
        jobs={"all": job(target="d")},
    )
    executor = FakeExecutor(default=FakeCommand(seconds=0.01))
    _run(pipeline, tmp_path, executor, concurrency=4)
    order = [c.command for c in executor.calls]
    assert order[0] == "a" and order[-1] == "d"
    assert set(order[1:3]) == {"b", "c"}


def test_a_job_runs_only_its_subgraph(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"a": task(sh("a")), "b": task(sh("b"), depends_on=["a"]), "other": task(sh("x"))},
        jobs={"all": job(target="b")},
    )
    record = _run(pipeline, tmp_path, FakeExecutor())
    assert [t.id for t in record.tasks] == ["a", "b"]


def test_after_the_first_failure_no_new_task_starts_and_running_ones_finish(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={
            "fail": task(sh("fail")),
            "slow": task(sh("slow")),
            "after-fail": task(sh("later"), depends_on=["fail"]),
            "queued": task(sh("queued")),
        },
        jobs={"all": job(target=["fail", "slow", "after-fail", "queued"])},
    )
    executor = FakeExecutor(
        commands={"fail": FakeCommand(exit_code=2), "slow": FakeCommand(seconds=0.2)},
    )
    record = _run(pipeline, tmp_path, executor, concurrency=2)
    assert record.status == "failed"
    assert _statuses(record) == {
        "fail": "failed",
        "slow": "passed",
        "after-fail": "skipped",
        "queued": "skipped",
    }
    assert [c.command for c in executor.calls] == ["fail", "slow"]
    failed = record.tasks[0]
    assert failed.exit_code == 2
    assert failed.error is not None and failed.error.code == "ASYNC_PIPELINE_TASK_FAILED"


def test_steps_run_in_order_and_stop_at_the_first_failing_step(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"t": task(sh("one"), sh("two"), sh("three"))},
        jobs={"all": job(target="t")},
    )
    executor = FakeExecutor(commands={"two": 1})
    record = _run(pipeline, tmp_path, executor)
    assert [c.command for c in executor.calls] == ["one", "two"]
    assert record.tasks[0].status == "failed"


def test_deferred_sh_and_function_steps_receive_the_run_context(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def record_ctx(ctx: Any) -> None:
        seen.update(
            task_id=ctx.task_id,
            run_id=ctx.run_id,
            cwd=ctx.cwd,
            root=ctx.root.dir,
            candidate=ctx.candidate.dir,
            source=ctx.source,
            greeting=ctx.env["GREETING"],
        )
        ctx.log("logged from the step")
        ctx.meta({"checked": True}, count=3)

    async def async_step(ctx: Any) -> None:
        seen["async"] = ctx.task_id

    pipeline = define_pipeline(
        name="p",
        env={"GREETING": "hi"},
        tasks={
            "t": task(
                sh(lambda ctx: sh("deploy {dir}", dir=ctx.cwd)),
                record_ctx,
                async_step,
            )
        },
        jobs={"all": job(target="t")},
    )
    executor = FakeExecutor()
    record = _run(pipeline, tmp_path, executor)
    assert record.status == "passed", record.tasks[0].error
    assert executor.calls[0].command == f"deploy {tmp_path}"
    assert seen["task_id"] == "t" and seen["async"] == "t"
    assert seen["run_id"] == record.id
    assert seen["cwd"] == seen["root"] == seen["candidate"] == tmp_path
    assert seen["source"] is None and seen["greeting"] == "hi"
    assert record.tasks[0].metadata == {"checked": True, "count": 3}
    log = (tmp_path / ".async" / "runs" / record.id / "logs" / "t.stdout.log").read_text()
    assert "logged from the step" in log


def test_a_raising_function_step_fails_the_task_with_its_traceback_in_the_log(
    tmp_path: Path,
) -> None:
    def broken(ctx: Any) -> None:
        raise ValueError("bad input")

    pipeline = define_pipeline(name="p", tasks={"t": task(broken)}, jobs={"all": job(target="t")})
    record = _run(pipeline, tmp_path, FakeExecutor())
    result = record.tasks[0]
    assert result.status == "failed"
    assert result.error is not None and result.error.code == "ASYNC_PIPELINE_STEP_FAILED"
    log = (tmp_path / ".async" / "runs" / record.id / "logs" / "t.stderr.log").read_text()
    assert "ValueError: bad input" in log


def test_retry_counts_attempts_in_total(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={
            "twice": task(sh("flaky"), retry=2),
            "once": task(sh("flaky2")),
            "delayed": task(sh("flaky3"), retry={"attempts": 3, "delay_ms": 30}),
        },
        jobs={"all": job(target=["twice"]), "one": job(target="once"), "d": job(target="delayed")},
    )
    executor = FakeExecutor(default=FakeCommand(exit_code=1))
    record = _run(pipeline, tmp_path, executor)
    assert record.tasks[0].attempts == 2
    assert [a.attempt for a in record.tasks[0].attempt_results] == [1, 2]
    assert _run(pipeline, tmp_path, executor, job_id="one").tasks[0].attempts == 1
    delayed = _run(pipeline, tmp_path, executor, job_id="d").tasks[0]
    assert delayed.attempts == 3
    assert delayed.duration_ms is not None and delayed.duration_ms >= 60


def test_a_retry_that_succeeds_passes_the_task(tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky(ctx: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first attempt fails")

    pipeline = define_pipeline(
        name="p", tasks={"t": task(flaky, retry=2)}, jobs={"all": job(target="t")}
    )
    record = _run(pipeline, tmp_path, FakeExecutor())
    assert record.status == "passed"
    assert record.tasks[0].attempts == 2


def test_a_timeout_records_exit_code_124_and_fails_the_run(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p", tasks={"t": task(sh("hang"), timeout="100ms")}, jobs={"all": job(target="t")}
    )
    record = _run(pipeline, tmp_path, FakeExecutor(default=FakeCommand(seconds=30)))
    result = record.tasks[0]
    assert result.exit_code == 124
    assert result.error is not None and result.error.code == "ASYNC_PIPELINE_TASK_TIMEOUT"
    assert result.attempt_results[0].timed_out is True
    assert record.status == "failed"


def test_a_missing_required_tool_fails_the_task_before_it_runs(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"t": task(sh("build"), requires={"tools": ["present", "absent-tool"]})},
        jobs={"all": job(target="t")},
    )
    executor = FakeExecutor(tools=["present"])
    record = _run(pipeline, tmp_path, executor)
    assert executor.calls == []
    error = record.tasks[0].error
    assert error is not None and error.code == "ASYNC_PIPELINE_TOOL_MISSING"
    assert "absent-tool" in error.message


def test_directive_dependencies_are_scheduled(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"a": task(sh("a")), "b": task(depends_on("a"), sh("b"))},
        jobs={"all": job(target="b")},
    )
    executor = FakeExecutor()
    _run(pipeline, tmp_path, executor)
    assert [c.command for c in executor.calls] == ["a", "b"]


def test_unknown_job_is_a_query_error(tmp_path: Path) -> None:
    pipeline = define_pipeline(name="p", tasks={"a": task(sh("a"))}, jobs={"all": job(target="a")})
    with pytest.raises(PipelineError) as caught:
        _run(pipeline, tmp_path, FakeExecutor(), job_id="al")
    assert caught.value.code == "ASYNC_PIPELINE_UNKNOWN_JOB"


def test_env_reaches_commands_with_job_over_pipeline_over_caller(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        env={"A": "pipeline", "B": "pipeline", "SECRET": env.secret("SRC")},
        tasks={"t": task(sh("x"), env={"C": "task"})},
        jobs={"all": job(target="t", env={"B": "job"})},
    )
    executor = FakeExecutor()
    run_job(
        pipeline,
        id="all",
        cwd=tmp_path,
        env={"A": "caller", "Z": "caller", "SRC": "s3cr3t-value"},
        executor=executor,
    )
    seen = executor.calls[0].env
    assert (seen["A"], seen["B"], seen["C"], seen["Z"]) == ("pipeline", "job", "task", "caller")
    assert seen["SECRET"] == "s3cr3t-value"


@pytest.mark.anyio
async def test_arun_job_runs_inside_an_existing_event_loop(tmp_path: Path) -> None:
    from async_pipeline.runner import arun_job

    pipeline = define_pipeline(name="p", tasks={"a": task(sh("a"))}, jobs={"all": job(target="a")})
    executor = FakeExecutor()
    record = await arun_job(pipeline, id="all", cwd=tmp_path, env={}, executor=executor)
    assert record.status == "passed"
    assert [c.command for c in executor.calls] == ["a"]


def test_sandbox_selection_is_refused_clearly_until_sandboxes_can_run(tmp_path: Path) -> None:
    pipeline = define_pipeline(name="p", tasks={"a": task(sh("a"))}, jobs={"all": job(target="a")})
    with pytest.raises(PipelineError) as caught:
        _run(pipeline, tmp_path, FakeExecutor(), sandbox="docker")
    assert caught.value.code == "ASYNC_PIPELINE_SANDBOX_UNAVAILABLE"


class _BrokenExecutor(FakeExecutor):
    async def run_shell(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the executor's own bug with s3cret-value-123 in it")


class _PlainExecutor(FakeExecutor):
    def run_shell(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return None  # not a coroutine: awaiting it fails


@pytest.mark.parametrize("executor", [_BrokenExecutor(), _PlainExecutor()])
def test_an_executor_that_fails_fails_its_task_not_the_run(
    tmp_path: Path, executor: FakeExecutor
) -> None:
    pipeline = define_pipeline(
        name="p",
        env={"TOKEN": env.secret("TOKEN_SOURCE")},
        tasks={"a": task(sh("x")), "b": task(sh("y"), depends_on=["a"])},
        jobs={"all": job(target="b")},
    )
    record = run_job(
        pipeline,
        id="all",
        cwd=tmp_path,
        env={"PATH": os.defpath, "TOKEN_SOURCE": "s3cret-value-123"},
        executor=executor,
    )
    assert record.status == "failed" and record.interrupted is None
    assert _statuses(record) == {"a": "failed", "b": "skipped"}
    error = record.tasks[0].error
    assert error is not None and error.code == "ASYNC_PIPELINE_STEP_FAILED"
    assert "executor failed" in error.message
    stored = "".join(p.read_text() for p in (tmp_path / ".async" / "runs").rglob("*.json"))
    assert "s3cret-value-123" not in stored and "s3cret-value-123" not in error.message

"""What a step's own code can do wrong is that step's failure, never the run's crash.

Function steps and deferred ``sh`` callbacks run user code: whatever it raises (BaseException
subclasses included), however long it blocks, whatever it puts in ``ctx.meta``, the task
fails or passes with a coded error, its retries apply, running siblings finish, the record is
finalized and no secret reaches an error message.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import define_pipeline, env, job, sh, task
from async_pipeline.runner import run_job

SECRET = "s3cret-canary-value-42"


def _run(tasks: dict[str, Any], root: Path, target: str | list[str]) -> Any:
    pipeline = define_pipeline(
        name="p",
        env={"TOK": env.secret("TOK_SOURCE")},
        tasks=tasks,
        jobs={"j": job(target=target)},
    )
    return run_job(
        pipeline, id="j", cwd=root, env={"PATH": os.environ["PATH"], "TOK_SOURCE": SECRET}
    )


def _stored(root: Path) -> str:
    return "".join(
        p.read_text(errors="replace") for p in (root / ".async").rglob("*") if p.is_file()
    )


def test_a_deferred_callback_that_raises_fails_its_task_retried_and_redacted(
    tmp_path: Path,
) -> None:
    calls: list[int] = []

    def build(ctx: Any) -> str:
        calls.append(1)
        raise RuntimeError("deferred boom " + ctx.env["TOK"])

    record = _run(
        {
            "bad": task(sh(build), retry=3),
            "sibling": task(sh("sleep 0.3 && echo done > sibling.txt")),
        },
        tmp_path,
        ["bad", "sibling"],
    )
    statuses = {t.id: t.status for t in record.tasks}
    assert statuses == {"bad": "failed", "sibling": "passed"}
    assert record.interrupted is None and len(calls) == 3
    bad = next(t for t in record.tasks if t.id == "bad")
    assert bad.error is not None and bad.error.code == "ASYNC_PIPELINE_STEP_FAILED"
    assert "deferred sh callback raised RuntimeError" in bad.error.message
    assert SECRET not in bad.error.message and SECRET not in _stored(tmp_path)
    assert "Traceback" in (tmp_path / ".async/runs" / record.id / "logs/bad.stderr.log").read_text()


def test_a_deferred_callback_that_blocks_is_held_to_the_task_timeout(tmp_path: Path) -> None:
    def build(ctx: Any) -> str:
        time.sleep(3)
        return "true"

    started = time.monotonic()
    record = _run({"slow": task(sh(build), timeout="200ms")}, tmp_path, "slow")
    assert time.monotonic() - started < 2.5
    assert record.tasks[0].exit_code == 124
    assert record.tasks[0].error is not None
    assert record.tasks[0].error.code == "ASYNC_PIPELINE_TASK_TIMEOUT"


class _Own(BaseException):
    pass


@pytest.mark.parametrize("raised", [SystemExit(3), KeyboardInterrupt(), _Own("a library's own")])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_base_exception_from_a_step_is_that_steps_failure(
    tmp_path: Path, raised: BaseException, kind: str
) -> None:
    def step(ctx: Any) -> None:
        raise raised

    async def astep(ctx: Any) -> None:
        raise raised

    record = _run({"t": task(step if kind == "sync" else astep)}, tmp_path, "t")
    assert record.status == "failed" and record.interrupted is None
    error = record.tasks[0].error
    assert error is not None and error.code == "ASYNC_PIPELINE_STEP_FAILED"
    assert type(raised).__name__ in error.message


def test_an_async_step_that_holds_the_loop_past_its_timeout_times_out(tmp_path: Path) -> None:
    async def hog(ctx: Any) -> None:
        time.sleep(0.5)  # noqa: ASYNC251  # holds the loop: no cancellation can reach it

    record = _run({"t": task(hog, timeout="100ms")}, tmp_path, "t")
    assert record.tasks[0].exit_code == 124


@pytest.mark.parametrize(
    "meta",
    [
        {"big": 2**70},
        {(1, 2): "tuple key"},
        {"set": {1, 2}},
        {"object": object()},
    ],
)
def test_metadata_json_cannot_hold_is_kept_as_text_and_the_record_is_final(
    tmp_path: Path, meta: dict[Any, Any]
) -> None:
    def step(ctx: Any) -> None:
        ctx.meta(value=meta)

    record = _run({"t": task(step)}, tmp_path, "t")
    assert record.status == "passed" and record.finished_at is not None
    assert "value" in record.tasks[0].metadata


def test_metadata_that_contains_itself_is_kept_with_the_cycle_marked(tmp_path: Path) -> None:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop

    def step(ctx: Any) -> None:
        ctx.meta(loop=loop)

    record = _run({"t": task(step)}, tmp_path, "t")
    assert record.status == "passed"
    assert record.tasks[0].metadata["loop"] == {"name": "loop", "self": "<cycle>"}

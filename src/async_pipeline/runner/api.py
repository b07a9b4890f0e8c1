"""``run_job`` / ``arun_job``: execute one job of a pipeline and return its execution record."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from async_pipeline.core import graph
from async_pipeline.core.commands import CommandPolicy
from async_pipeline.core.model import Pipeline
from async_pipeline.errors import PipelineError
from async_pipeline.redaction import MIN_SECRET_LENGTH, Redactor
from async_pipeline.runner.cache.engine import CacheEngine
from async_pipeline.runner.env import ResolvedEnv, resolve_declared
from async_pipeline.runner.executor import CommandExecutor, HostExecutor
from async_pipeline.runner.housekeeping import keep_runs
from async_pipeline.runner.lock import RunLock
from async_pipeline.runner.logs import max_log_bytes
from async_pipeline.runner.records import (
    RUNS_DIR,
    RunRecord,
    TaskResult,
    new_run_id,
    now_iso,
    prune_runs,
)
from async_pipeline.runner.scheduler import Reporter, Scheduler, TaskPlan

if TYPE_CHECKING:
    from async_pipeline.runner.models import ExecutionRecord

__all__ = ["StopReason", "arun_job", "run_job"]

API_KEY_VARIABLES = ("ANTHROPIC_API_KEY",)


@dataclass
class StopReason:
    """Set by whoever cancels a run (the CLI on SIGINT, SIGTERM or EPIPE) to record why."""

    reason: str | None = None


def default_concurrency() -> int:
    return max(1, os.cpu_count() or 1)


def _run_mode(explicit: str | None, job_mode: str | None, env: Mapping[str, str]) -> str:
    if explicit is not None:
        if explicit not in ("manual", "ci"):
            raise PipelineError(
                "ASYNC_PIPELINE_USAGE", f"mode must be 'manual' or 'ci', got {explicit!r}"
            )
        return explicit
    if job_mode is not None:
        return job_mode
    ci = env.get("CI", "").strip().lower()
    return "ci" if ci and ci not in ("0", "false", "no") else "manual"


def plan_job(
    pipeline: Pipeline, job_id: str, targets: tuple[str, ...], root: Path, env: Mapping[str, str]
) -> tuple[dict[str, TaskPlan], ResolvedEnv]:
    """Select the subgraph and resolve every env value it needs, before anything runs."""
    order = graph.transitive_dependencies(pipeline, targets)
    external = [t for t in order if t not in pipeline.tasks]
    if external:
        raise PipelineError(
            "ASYNC_PIPELINE_SOURCE_UNAVAILABLE",
            f"job {job_id!r} reaches source tasks ({', '.join(external)}); running tasks of "
            "other repositories is not available in this version",
        )
    shared = resolve_declared(pipeline.env, env, "env")
    job = pipeline.jobs.get(job_id)
    if job is not None:
        shared = shared.overlay(resolve_declared(job.env, env, f"jobs.{job_id}.env"))
    secrets = dict(shared.secrets)
    plans: dict[str, TaskPlan] = {}
    for task_id in order:
        task = pipeline.tasks[task_id]
        own = resolve_declared(task.env, env, f"tasks.{task_id}.env")
        for key, value in own.secrets.items():
            secrets[f"{task_id}:{key}" if key in secrets and secrets[key] != value else key] = value
        declared = shared.overlay(own)
        plans[task_id] = TaskPlan(
            task=task,
            env={**env, **declared.values},
            cwd=root,
            deps={d for d in task.depends_on if d in pipeline.tasks},
            declared_env=declared.values,
            secret_keys=set(declared.secrets),
        )
    # An API agent's key is a credential even when the pipeline forgot env.secret(...) and
    # the key simply sits in the caller's environment: mask it all the same.
    if any(profile.api for profile in pipeline.agents.values()):
        for name in API_KEY_VARIABLES:
            for plan in plans.values():
                if plan.env.get(name):
                    secrets.setdefault(name, plan.env[name])
                    break
    return plans, ResolvedEnv(shared.values, secrets)


async def execute_job(
    pipeline: Pipeline,
    *,
    id: str,
    mode: str | None = None,
    concurrency: int | None = None,
    force: bool = False,
    echo: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    commands: CommandPolicy | None = None,
    executor: CommandExecutor | None = None,
    sandbox: object = None,
    execution: str | None = None,
    provider: str | None = None,
    reporter: Reporter | None = None,
    stop: StopReason | None = None,
    task: str | None = None,
) -> RunRecord:
    """:func:`arun_job` returning the record as plain data (the CLI's path: no pydantic)."""
    if sandbox is not None or execution is not None or provider is not None:
        raise PipelineError(
            "ASYNC_PIPELINE_SANDBOX_UNAVAILABLE",
            "sandboxed and execution-profile runs are not available in this version; "
            "run on the host (omit sandbox, execution and provider)",
        )
    if commands is not None and not isinstance(commands, CommandPolicy):
        raise PipelineError("ASYNC_PIPELINE_USAGE", "commands must be command.policy(...)")
    root = Path(cwd) if cwd is not None else Path.cwd()
    source_env = dict(os.environ if env is None else env)
    targets: tuple[str, ...]
    if task is not None:
        if task not in pipeline.tasks:
            from async_pipeline.query._data import check_task

            check_task(pipeline, task)
        job_id, targets, job_mode = f"task:{task}", (task,), None
    else:
        if id not in pipeline.jobs:
            from async_pipeline.query._data import check_job

            check_job(pipeline, id)
        job_id, targets, job_mode = id, pipeline.jobs[id].targets, pipeline.jobs[id].mode
    plans, resolved = plan_job(pipeline, id if task is None else "", targets, root, source_env)
    redactor = Redactor(resolved.secrets)
    run_id = new_run_id()
    run_dir = root / RUNS_DIR / run_id
    results = {t: TaskResult(t) for t in plans}
    record = RunRecord(
        id=run_id,
        pipeline_name=pipeline.name,
        job_id=job_id,
        cwd=str(root),
        mode=_run_mode(mode, job_mode, source_env),
        concurrency=concurrency or default_concurrency(),
        force=force,
        tasks=list(results.values()),
    )
    record.warnings.extend(
        f"secret {skipped.name} is shorter than {MIN_SECRET_LENGTH} characters and is not "
        "masked in output"
        for skipped in redactor.skipped
    )

    def warn(message: str) -> None:
        if message not in record.warnings:
            record.warnings.append(message)

    lock = RunLock(root, run_id)
    lock.acquire()
    try:
        record.write(run_dir)
        cache = CacheEngine(root, pipeline, source_env, redactor, force=force, warn=warn)
        scheduler = Scheduler(
            pipeline,
            plans,
            results,
            run_id=run_id,
            root=root,
            logs_dir=run_dir / "logs",
            executor=executor or HostExecutor(),
            redactor=redactor,
            concurrency=record.concurrency,
            max_log_bytes=max_log_bytes(source_env),
            reporter=reporter,
            echo=echo,
            cache=cache,
            job_id=job_id,
            policy=commands if commands is not None else pipeline.commands,
            command_decisions=record.commands,
        )
        try:
            await scheduler.execute()
        except anyio.get_cancelled_exc_class():
            record.interrupted = (stop.reason if stop else None) or "cancelled"
            raise
        finally:
            cache.finish()
            for result in results.values():
                if result.status in ("pending", "running"):
                    result.status = "skipped" if result.status == "pending" else "cancelled"
            failed = record.interrupted is not None or any(
                r.status != "passed" for r in results.values()
            )
            record.status = "failed" if failed else "passed"
            record.finished_at = now_iso()
            record.write(run_dir)
            prune_runs(root, keep_runs(source_env), protect=run_id)
    finally:
        lock.release()
    return record


async def arun_job(pipeline: Pipeline, *, id: str, **options: Any) -> ExecutionRecord:
    """Run job ``id`` (or, with ``task=``, one task and its dependencies); return its record.

    Options: ``mode``, ``concurrency``, ``force``, ``echo``, ``cwd`` (default: the process's
    working directory), ``env`` (default: the process's environment; pass your own to test
    without touching global state), ``commands``, ``executor``, ``reporter``, ``task``.
    """
    from async_pipeline.runner.models import ExecutionRecord

    record = await execute_job(pipeline, id=id, **options)
    return ExecutionRecord.model_validate(record.to_json())


def run_job(pipeline: Pipeline, *, id: str, **options: Any) -> ExecutionRecord:
    """The synchronous form of :func:`arun_job` (do not call it from a running event loop)."""
    return anyio.run(functools.partial(arun_job, pipeline, id=id, **options))

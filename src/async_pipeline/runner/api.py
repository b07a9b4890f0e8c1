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
from async_pipeline.core.commands import CommandPolicy, Mock
from async_pipeline.core.env import EnvSecret, EnvVar
from async_pipeline.core.model import Pipeline
from async_pipeline.errors import PipelineError
from async_pipeline.redaction import MIN_SECRET_LENGTH, Redactor
from async_pipeline.runner.cache.engine import CacheEngine
from async_pipeline.runner.env import ResolvedEnv, resolve_declared
from async_pipeline.runner.executor import CommandExecutor, HostExecutor
from async_pipeline.runner.lock import RunLock
from async_pipeline.runner.logs import max_log_bytes
from async_pipeline.runner.records import (
    RUNS_DIR,
    RunRecord,
    TaskResult,
    check_concurrency,
    check_settings,
    default_concurrency,
    keep_runs,
    new_run_id,
    now_iso,
    prune_runs,
    run_mode,
)
from async_pipeline.runner.scheduler import Reporter, Scheduler, TaskPlan

if TYPE_CHECKING:
    from async_pipeline.runner.models import ExecutionRecord
    from async_pipeline.runner.stamp import Preflight, StampCheck

__all__ = ["StopReason", "arun_job", "run_job"]

API_KEY_VARIABLES = ("ANTHROPIC_API_KEY",)


@dataclass
class StopReason:
    """Set by whoever cancels a run (the CLI on SIGINT, SIGTERM or EPIPE) to record why;
    the run leaves its finalized ``record`` here, as a cancelled call returns nothing."""

    reason: str | None = None
    record: RunRecord | None = None


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
    envs: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for task_id in order:
        task = pipeline.tasks[task_id]
        own = resolve_declared(task.env, env, f"tasks.{task_id}.env")
        for key, value in own.secrets.items():
            secrets[f"{task_id}:{key}" if key in secrets and secrets[key] != value else key] = value
        declared = shared.overlay(own)
        # Tasks declaring the same values share one env mapping (never mutated): the host
        # executor encodes an env for spawning once per mapping, not once per command.
        identity = tuple(declared.values.items())
        if identity not in envs:
            envs[identity] = {**env, **declared.values}
        plans[task_id] = TaskPlan(
            task=task,
            env=envs[identity],
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
    preflight: Preflight | None = None,
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
    concurrency = check_concurrency(concurrency)
    root = Path(cwd) if cwd is not None else Path.cwd()
    source_env = dict(os.environ if env is None else env)
    check_settings(source_env)
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
    run_id = preflight.run_id if preflight is not None else new_run_id()
    run_dir = root / RUNS_DIR / run_id
    results = {t: TaskResult(t) for t in plans}
    record = RunRecord(
        id=run_id,
        pipeline_name=pipeline.name,
        job_id=job_id,
        cwd=str(root),
        mode=run_mode(mode, job_mode, source_env),
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

    lock = preflight.lock if preflight is not None and preflight.lock is not None else None
    if lock is None:
        lock = RunLock(root, run_id)
        lock.acquire()
    try:
        policy = commands if commands is not None else pipeline.commands
        check = _stamp_check(preflight, root, job_id, source_env) if not force else None
        record.write(run_dir)
        cache: CacheEngine | None = None
        if _mocks(policy):
            # A mocked answer is a test double: stored, a later real run would replay it;
            # read, a real cached result would hide the mock from the test.
            warn("cache: not used in this run: its command policy mocks commands")
            check = None
        else:
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
            policy=policy,
            command_decisions=record.commands,
            proven=check.tasks if check is not None else None,
        )
        try:
            await scheduler.execute()
        except anyio.get_cancelled_exc_class():
            record.interrupted = (stop.reason if stop else None) or "cancelled"
            if stop is not None:
                stop.record = record  # finalized below, before the cancellation goes on
            raise
        finally:
            if cache is not None:
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
            if preflight is not None:
                try:
                    _stamp(preflight, pipeline, job_id, job_mode, plans, record, cache, source_env)
                except Exception:  # the run is recorded: never fail it here
                    from async_pipeline.runner.stamp import remove_stamp

                    # Derived state: without a stamp the next run takes the usual path.
                    remove_stamp(root, job_id)
            prune_runs(root, keep_runs(source_env), protect=run_id)
    finally:
        lock.release()
    return record


def _mocks(policy: CommandPolicy | None) -> bool:
    """Whether the command policy answers any command with a mock."""
    if policy is None:
        return False
    return isinstance(policy.fallback, Mock) or any(
        isinstance(rule.action, Mock) for rule in policy.rules
    )


def _stamp_check(
    preflight: Preflight | None, root: Path, job_id: str, env: Mapping[str, str]
) -> StampCheck | None:
    """The job stamp's check: the caller's, or made now, under the run lock."""
    if preflight is None:
        return None
    if not preflight.checked and preflight.fingerprint is not None:
        from async_pipeline.runner.stamp import check_stamp

        preflight.check = check_stamp(root, job_id, preflight.config, env)
        preflight.checked = True
    return preflight.check


def _stamp(
    preflight: Preflight,
    pipeline: Pipeline,
    job_id: str,
    job_mode: str | None,
    plans: Mapping[str, TaskPlan],
    record: RunRecord,
    cache: CacheEngine | None,
    env: Mapping[str, str],
) -> None:
    """Write the job's stamp after a clean run (see runner.stamp); remove it otherwise."""
    from async_pipeline.runner.stamp import StampBuilder, remove_stamp

    root = Path(record.cwd)
    if (
        cache is None
        or preflight.fingerprint is None
        or record.status != "passed"
        or record.warnings
        or record.commands
    ):
        remove_stamp(root, job_id)
        return
    proven = preflight.check.tasks if preflight.check is not None and not record.force else {}
    # Mostly carried over: extend the previous stamp's tables rather than rebuild them.
    reuse = preflight.check is not None and 2 * len(proven) >= len(record.tasks)
    builder = StampBuilder(preflight.check.data if reuse and preflight.check else None)
    for result in record.tasks:
        if result.id in proven:
            assert preflight.check is not None
            builder.carry(proven[result.id], preflight.check.data)
            continue
        note = cache.stamp_note(result.id) if result.cache_key else None
        if note is not None:
            logs = result.logs or {}
            builder.add(
                result.id,
                deps=plans[result.id].deps,
                metadata=result.metadata,
                logs=(bool(logs.get("stdout")), bool(logs.get("stderr"))),
                **note,
            )
    builder.write(
        root,
        job_id,
        order=[r.id for r in record.tasks],
        pipeline_name=pipeline.name,
        job_mode=job_mode,
        config=preflight.config,
        fingerprint=preflight.fingerprint,
        env_names=env_names(pipeline, job_id, plans),
        env=env,
    )


def env_names(pipeline: Pipeline, job_id: str, plans: Mapping[str, TaskPlan]) -> set[str]:
    """Every environment variable a run of this job reads to resolve its declared env (both
    the source name and the destination key), and those that shape its record and logs."""
    names = {"CI", "ASYNC_PIPELINE_MAX_LOG_BYTES"}
    declared = [pipeline.env, *(p.task.env for p in plans.values())]
    if job_id in pipeline.jobs:
        declared.append(pipeline.jobs[job_id].env)
    for values in declared:
        for key, value in values.items():
            if isinstance(value, EnvSecret | EnvVar):
                names.update((key, value.name))
    return names


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

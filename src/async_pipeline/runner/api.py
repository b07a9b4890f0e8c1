"""``run_job`` / ``arun_job``: execute one job of a pipeline and return its execution record."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from async_pipeline.core import graph
from async_pipeline.core._validate import reject_unknown
from async_pipeline.core.commands import CommandPolicy, Mock
from async_pipeline.core.env import EnvSecret, EnvVar
from async_pipeline.core.model import Pipeline
from async_pipeline.errors import PipelineError, UsageError
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
    ``sandbox``, ``execution`` and ``provider`` are accepted and raise
    ``ASYNC_PIPELINE_SANDBOX_UNAVAILABLE``. Any other option is ``ASYNC_PIPELINE_UNKNOWN_FIELD``;
    an option of the wrong type is ``ASYNC_PIPELINE_USAGE``, raised before anything is created.
    """
    check_run_arguments("arun_job", pipeline, id, options)
    return await _arun_job(pipeline, id, options)


def run_job(pipeline: Pipeline, *, id: str, **options: Any) -> ExecutionRecord:
    """The synchronous form of :func:`arun_job`; inside a running event loop, await
    :func:`arun_job` instead (calling this there is ``ASYNC_PIPELINE_USAGE``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            "run_job cannot be called from a running event loop; use await arun_job(...)",
        )
    check_run_arguments("run_job", pipeline, id, options)
    return anyio.run(_arun_job, pipeline, id, options)


async def _arun_job(pipeline: Pipeline, id: str, options: Mapping[str, Any]) -> ExecutionRecord:
    from async_pipeline.runner.models import ExecutionRecord

    record = await execute_job(pipeline, id=id, **options)
    return ExecutionRecord.model_validate(record.to_json())


# The options of the public run functions. execute_job takes more (stop=, preflight=): the
# CLI and the MCP server pass those, and no caller of run_job should reach them.
RUN_OPTIONS = frozenset(
    {
        "mode",
        "concurrency",
        "force",
        "echo",
        "cwd",
        "env",
        "commands",
        "executor",
        "reporter",
        "task",
        "sandbox",
        "execution",
        "provider",
    }
)


def check_run_arguments(
    where: str, pipeline: object, job_id: object, options: Mapping[str, object]
) -> None:
    """Every argument of a public run call, checked before any lock, record or directory is
    made: a wrong one is a usage error naming it, not a Python error from inside the run."""
    reject_unknown(options, RUN_OPTIONS, "", f"{where}()")
    if not isinstance(pipeline, Pipeline):
        raise _usage(
            f"{where}: pipeline must be a Pipeline, got {_kind(pipeline)}",
            hint="pass the result of define_pipeline(...) or load_pipeline(...)",
        )
    if not isinstance(job_id, str):
        raise _usage(f"{where}: id must be a job id (a string), got {_kind(job_id)}")
    task = options.get("task")
    if task is not None and not isinstance(task, str):
        raise _usage(f"{where}: task must be a task id (a string) or None, got {_kind(task)}")
    for flag in ("force", "echo"):
        if not isinstance(options.get(flag, False), bool):
            raise _usage(f"{where}: {flag} must be True or False, got {_kind(options[flag])}")
    check_concurrency(options.get("concurrency"))
    if options.get("cwd") is not None:
        check_cwd(options["cwd"], where)
    if options.get("env") is not None:
        check_env(options["env"], where)
    if options.get("executor") is not None:
        _check_methods(options["executor"], "executor", "CommandExecutor", _EXECUTOR, where)
    if options.get("reporter") is not None:
        _check_methods(options["reporter"], "reporter", "Reporter", _REPORTER, where)


_EXECUTOR = ("run_shell", "check_tool")
_REPORTER = ("task_started", "task_finished", "task_output")


def check_cwd(cwd: object, where: str) -> Path:
    """``cwd`` as an existing directory; a usage error before anything is made in it."""
    if not isinstance(cwd, str | os.PathLike):
        raise _usage(
            f"{where}: cwd must be a directory path (str or os.PathLike), got {_kind(cwd)}"
        )
    path = os.fspath(cwd)
    if not isinstance(path, str):
        raise _usage(f"{where}: cwd must be a str path, got {_kind(path)}")
    if not os.path.isdir(path):
        what = "is not a directory" if os.path.exists(path) else "does not exist"
        raise _usage(
            f"{where}: cwd {path!r} {what}",
            hint="pass the project's directory, where pipeline.py is",
        )
    return Path(path)


def check_env(env: object, where: str) -> None:
    """``env`` as a process environment: names without '=' or NUL, values strings without NUL.
    The message names the key, never a value (it may be a secret)."""
    if not isinstance(env, Mapping):
        raise _usage(
            f"{where}: env must be a mapping of variable names to strings (like os.environ), "
            f"got {_kind(env)}"
        )
    for key, value in env.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise _usage(
                f"{where}: env key {key!r} is not a variable name: keys must be non-empty "
                "strings without '=' or NUL"
            )
        if not isinstance(value, str):
            raise _usage(f"{where}: env[{key!r}] must be a string, got {_kind(value)}")
        if "\0" in value:
            raise _usage(f"{where}: env[{key!r}] contains a NUL character")


def _check_methods(
    value: object, name: str, protocol: str, methods: tuple[str, ...], where: str
) -> None:
    if isinstance(value, type):
        raise _usage(
            f"{where}: {name} must be a {protocol} instance, got the class {value.__name__}",
            hint=f"pass an instance: {value.__name__}()",
        )
    missing = [m for m in methods if not callable(getattr(value, m, None))]
    if missing:
        raise _usage(
            f"{where}: {name} must be a {protocol} (an object with the methods "
            f"{', '.join(methods)}), got {_kind(value)} without {', '.join(missing)}"
        )


def _kind(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _usage(message: str, *, hint: str | None = None) -> UsageError:
    return UsageError("ASYNC_PIPELINE_USAGE", message, hint=hint)

"""``doctor``: is this project ready to run? Errors make it exit 1, warnings do not.

Checks that the pipeline loads and validates, that tools tasks require are on PATH, that
the adapter command of each agent profile a job would use is found, what the run lock says,
and the shape of agent tasks: an agent task should declare outputs (or its effects cannot be
verified or cached), its ``stdout_to`` among them (or a cache hit does not restore it), and a
job that CI triggers should not reach an agent whose profile cannot be switched (to a mock)
by an environment variable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from async_pipeline.agents.adapter import find_adapter
from async_pipeline.core import graph
from async_pipeline.core._validate import segments
from async_pipeline.core.env import EnvVar
from async_pipeline.core.model import Pipeline
from async_pipeline.core.steps import AgentStep
from async_pipeline.core.triggers import CronTrigger, GithubTrigger
from async_pipeline.errors import PipelineError

__all__ = ["doctor"]


def _finding(level: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"level": level, "code": code, "message": message, **extra}


def doctor(load: Callable[[], Pipeline], root: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Run every check; ``load`` is a zero-argument callable returning the pipeline."""
    findings: list[dict[str, Any]] = []
    pipeline: Pipeline | None = None
    try:
        pipeline = load()
    except PipelineError as exc:
        findings.append(
            _finding("error", exc.code, str(exc.message), location=exc.location, hint=exc.hint)
        )
    if pipeline is not None:
        root = Path(pipeline.config_path).parent if pipeline.config_path else root
        findings += _tools(pipeline, env)
        findings += _adapters(pipeline, root, env)
        findings += _agents(pipeline)
    findings += _lock(root)
    errors = [f for f in findings if f["level"] == "error"]
    return {
        "ok": not errors,
        "pipelineName": pipeline.name if pipeline is not None else None,
        "findings": findings,
    }


def _tools(pipeline: Pipeline, env: Mapping[str, str]) -> list[dict[str, Any]]:
    path = env.get("PATH", os.defpath)
    missing: dict[str, list[str]] = {}
    for task in pipeline.tasks.values():
        for tool in task.requires.tools:
            if shutil.which(tool, path=path) is None:
                missing.setdefault(tool, []).append(task.id)
    return [
        _finding(
            "error",
            "ASYNC_PIPELINE_TOOL_MISSING",
            f"{tool!r} is not on PATH; required by {', '.join(tasks)}",
        )
        for tool, tasks in missing.items()
    ]


def _agents(pipeline: Pipeline) -> list[dict[str, Any]]:
    agent_steps = {
        task.id: [s for s in task.steps if isinstance(s, AgentStep)]
        for task in pipeline.tasks.values()
    }
    agent_steps = {t: steps for t, steps in agent_steps.items() if steps}
    found = [
        _finding(
            "warning",
            "agent-without-outputs",
            f"agent task {task_id!r} declares no outputs: what it changes cannot be "
            "verified by a dependent task or restored from the cache",
            task=task_id,
        )
        for task_id in agent_steps
        if not pipeline.tasks[task_id].outputs
    ]
    found.extend(
        _finding(
            "warning",
            "agent-stdout-not-output",
            f"agent task {task_id!r} writes stdout_to {step.stdout_to!r}, which none of its "
            "outputs match: a cache hit does not restore it; add it to the task's outputs",
            task=task_id,
        )
        for task_id, steps in agent_steps.items()
        for step in steps
        if step.stdout_to is not None
        and pipeline.tasks[task_id].outputs
        and not _declared(step.stdout_to, pipeline.tasks[task_id].outputs)
    )
    for job in pipeline.jobs.values():
        ci = [
            t
            for t in job.triggers
            if isinstance(pipeline.triggers.get(t), GithubTrigger | CronTrigger)
        ]
        if not ci:
            continue
        found.extend(
            _finding(
                "warning",
                "agent-in-ci",
                f"job {job.id!r} runs on {', '.join(ci)} and reaches agent task {task_id!r}, "
                f"whose profile {step.use!r} is fixed: use "
                'use=env.var("ASYNC_AGENT", default=...) so CI can select a mock',
                task=task_id,
                job=job.id,
            )
            for task_id in graph.job_tasks(pipeline, job.id)
            for step in agent_steps.get(task_id, [])
            if isinstance(step.use, str)
        )
    return found


def _declared(path: str, outputs: tuple[str, ...]) -> bool:
    """Whether the task's output patterns (which the cache restores) match ``path``."""
    from async_pipeline.runner.cache.inputs import Globs

    return bool(Globs(outputs).select(["/".join(segments(path))]))


def _adapters(pipeline: Pipeline, root: Path, env: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each CLI adapter a job would start, as this environment selects its profile, must be
    found, like requires.tools: otherwise the run fails with the shell's exit 127."""
    users: dict[str, list[str]] = {}
    for job in pipeline.jobs.values():
        for task_id in graph.job_tasks(pipeline, job.id):
            task = pipeline.tasks.get(task_id)
            if task is None:
                continue
            # The selecting variable may be one the pipeline, job or task sets literally.
            source = {
                **env,
                **{
                    k: v
                    for scope in (pipeline.env, job.env, task.env)
                    for k, v in scope.items()
                    if isinstance(v, str)
                },
            }
            for step in task.steps:
                if isinstance(step, AgentStep):
                    profile_id = _profile_id(step.use, source)
                    if profile_id is not None and task_id not in users.get(profile_id, []):
                        users.setdefault(profile_id, []).append(task_id)
    found = []
    for profile_id, tasks in users.items():
        profile = pipeline.agents.get(profile_id)
        if profile is None or profile.api is not None or not profile.command:
            continue  # an unknown profile fails the run with its own error
        program = profile.command[0]
        if find_adapter(program, cwd=root, env=env) is None:
            where = "does not exist or is not executable" if "/" in program else "is not on PATH"
            found.append(
                _finding(
                    "error",
                    "agent-adapter-missing",
                    f"agent profile {profile_id!r} runs {program!r}, which {where}; "
                    f"used by {', '.join(tasks)}",
                    profile=profile_id,
                    tasks=tasks,
                    hint=f"install it, or fix agents.{profile_id}.command",
                )
            )
    return found


def _profile_id(use: str | EnvVar, env: Mapping[str, str]) -> str | None:
    """The profile ``use`` selects in ``env`` (None if that cannot be known before a run)."""
    if isinstance(use, str):
        return use
    from async_pipeline.runner.env import resolve_var

    try:
        return resolve_var(use, env, "agent use")
    except PipelineError:
        return None


def _lock(root: Path) -> list[dict[str, Any]]:
    from async_pipeline.runner.lock import LOCK_FILE, lock_holder

    holder = lock_holder(root)
    if holder is not None:
        return [
            _finding(
                "info",
                "run-active",
                f"a run holds {LOCK_FILE} (pid {holder.get('pid')}, run {holder.get('runId')})",
            )
        ]
    path = root / LOCK_FILE
    try:
        leftover = path.read_bytes().strip()
    except OSError:
        return []
    if leftover:
        return [
            _finding(
                "info",
                "stale-lock",
                f"{LOCK_FILE} names a run whose process has exited; the next run reclaims it",
            )
        ]
    return []

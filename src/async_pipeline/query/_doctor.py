"""``doctor``: is this project ready to run? Errors make it exit 1, warnings do not.

Checks that the pipeline loads and validates, that tools tasks require are on PATH, what
the run lock says, and the shape of agent tasks: an agent task should declare outputs (or
its effects cannot be verified or cached), and a job that CI triggers should not reach an
agent whose profile cannot be switched (to a mock) by an environment variable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from async_pipeline.core import graph
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

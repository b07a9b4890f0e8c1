"""The answers to inspection questions, as JSON-ready data. Reads declarations only."""

from __future__ import annotations

from pathlib import Path

from async_pipeline.core import graph as g
from async_pipeline.core._validate import nearest
from async_pipeline.core.loader import DEFAULT_CONFIG, load_pipeline
from async_pipeline.core.model import Pipeline, Task
from async_pipeline.core.sources import GitSource, PathSource
from async_pipeline.core.steps import AgentStep
from async_pipeline.errors import PipelineError, QueryError
from async_pipeline.query import _render as r
from async_pipeline.query._render import Data

SCHEMA_VERSION = 1


def metadata(pipeline: Pipeline, *, include_sources: bool = False) -> Data:
    root = r.root_of(pipeline)
    data: Data = {
        "schemaVersion": SCHEMA_VERSION,
        "pipelineName": pipeline.name,
        "root": None if root is None else str(root),
        "configPath": None if pipeline.config_path is None else Path(pipeline.config_path).name,
        "env": r.env_map(pipeline.env),
        "cache": {
            "default": pipeline.cache.default,
            "stores": {k: r.store(v) for k, v in pipeline.cache.all_stores().items()},
        },
        "namedInputs": {k: list(v) for k, v in pipeline.named_inputs.items()},
        "taskDefaults": {k: r.task_default(v) for k, v in pipeline.task_defaults.items()},
        "triggers": {k: r.trigger(v) for k, v in pipeline.triggers.items()},
        "sync": _sync(pipeline),
        "sources": {k: r.source(v, root) for k, v in pipeline.sources.items()},
        "tasks": [r.task(t, root) for t in pipeline.tasks.values()],
        "jobs": [r.job(j) for j in pipeline.jobs.values()],
        "sandboxes": {k: r.sandbox(v) for k, v in pipeline.sandboxes.items()},
        "execution": {
            k: {
                "kind": v.kind,
                "sandbox": v.sandbox,
                "provider": v.provider,
                "runsOn": list(v.runs_on),
            }
            for k, v in pipeline.execution.items()
        },
        "agents": {
            k: {
                "command": list(v.command),
                "model": r.env_value(v.model),
                "api": v.api,
                "maxTokens": v.max_tokens,
            }
            for k, v in pipeline.agents.items()
        },
        "commands": r.commands(pipeline.commands),
        "sourcePipelines": _source_pipelines(pipeline, root) if include_sources else None,
    }
    return data


def _sync(pipeline: Pipeline) -> Data:
    github, tasks = pipeline.sync.github, pipeline.sync.tasks
    return {
        "github": None
        if github is None
        else {
            "workflow": github.workflow,
            "lock": github.lock,
            "pythonVersion": github.python_version,
            "cache": github.cache,
        },
        "tasks": None
        if tasks is None
        else {
            "prefix": tasks.prefix,
            "runners": list(tasks.runners),
            "targets": [{"kind": kind, "ref": ref} for kind, ref in tasks.targets],
            "jobs": None if tasks.jobs is None else list(tasks.jobs),
            "tasks": list(tasks.tasks),
            "scripts": dict(tasks.scripts),
        },
    }


def _source_pipelines(pipeline: Pipeline, root: Path | None) -> Data:
    """Metadata of sources already on disk; never clones, fetches or prepares."""
    found: Data = {}
    for key, item in pipeline.sources.items():
        if root is None:
            found[key] = _unavailable("the pipeline was not loaded from a file")
            continue
        if isinstance(item, PathSource):
            directory = (root / item.path).resolve()
        else:
            assert isinstance(item, GitSource)
            directory = root / ".async" / "sources" / key
        config = directory / (item.pipeline or DEFAULT_CONFIG)
        if not config.is_file():
            how = "not checked out yet" if isinstance(item, GitSource) else "not found"
            found[key] = _unavailable(f"{config} {how}")
            continue
        try:
            nested = load_pipeline(config, cwd=directory)
        except PipelineError as exc:
            found[key] = {**_unavailable(str(exc)), "error": exc.code}
            continue
        found[key] = {
            "available": True,
            "reason": None,
            "error": None,
            "metadata": metadata(nested, include_sources=False),
        }
    return found


def _unavailable(reason: str) -> Data:
    return {"available": False, "reason": reason, "error": None, "metadata": None}


def _jobs_by_task(pipeline: Pipeline) -> dict[str, list[str]]:
    reached: dict[str, list[str]] = {}
    for job_id in pipeline.jobs:
        for task_id in g.job_tasks(pipeline, job_id):
            reached.setdefault(task_id, []).append(job_id)
    return reached


def _selected(pipeline: Pipeline, prefix: str | None, job: str | None) -> list[str]:
    ids = list(pipeline.tasks)
    if job is not None:
        check_job(pipeline, job)
        members = set(g.job_tasks(pipeline, job))
        ids = [t for t in ids if t in members]
    if prefix:
        ids = [t for t in ids if t.startswith(prefix)]
    return ids


DEFAULT_PAGE = 200
"""Tasks per answer unless asked otherwise: bounded, so an agent's context is not flooded."""


def _page(ids: list[str], limit: int, offset: int, what: str) -> tuple[list[str], Data]:
    """One page of ``ids`` (``limit`` 0: all) and the paging facts every answer carries."""
    if limit < 0 or offset < 0:
        raise QueryError("ASYNC_PIPELINE_INVALID_VALUE", "limit and offset must not be negative")
    page = ids[offset:] if limit == 0 else ids[offset : offset + limit]
    end = offset + len(page)
    truncated = end < len(ids)
    return page, {
        "offset": offset,
        "limit": limit,
        "truncated": truncated,
        "nextOffset": end if truncated else None,
        "hint": f"{len(ids) - end} more {what}: ask again with offset {end}, or narrow with "
        "a task id prefix or a job"
        if truncated
        else None,
    }


def list_tasks(
    pipeline: Pipeline,
    *,
    prefix: str | None = None,
    job: str | None = None,
    limit: int = DEFAULT_PAGE,
    offset: int = 0,
) -> Data:
    reached = _jobs_by_task(pipeline)
    ids = _selected(pipeline, prefix, job)
    page, paging = _page(ids, limit, offset, "tasks")
    return {
        "pipelineName": pipeline.name,
        "filter": {"prefix": prefix, "job": job},
        "total": len(ids),
        **paging,
        "tasks": [_task_line(pipeline.tasks[t], reached) for t in page],
    }


def _task_line(item: Task, reached: dict[str, list[str]]) -> Data:
    return {
        "id": item.id,
        "description": item.description,
        "dependsOn": list(item.depends_on),
        "cache": None if item.cache is None else item.cache.ref,
        "outputs": list(item.outputs),
        "jobs": reached.get(item.id, []),
    }


def graph(
    pipeline: Pipeline,
    *,
    job: str | None = None,
    prefix: str | None = None,
    limit: int = DEFAULT_PAGE,
    offset: int = 0,
) -> Data:
    selected = _selected(pipeline, prefix, job)
    ids, paging = _page(selected, limit, offset, "task nodes")
    members = set(ids)
    nodes: list[Data] = [
        {"id": t, "kind": "task", "description": pipeline.tasks[t].description} for t in ids
    ]
    edges: list[Data] = []
    sources_seen: dict[str, None] = {}
    for t in ids:
        for dep in pipeline.tasks[t].depends_on:
            if ":" in dep:
                sources_seen[dep] = None
            elif dep not in members:
                continue
            edges.append({"from": dep, "to": t})
    nodes.extend({"id": s, "kind": "source", "description": None} for s in sources_seen)
    return {
        "pipelineName": pipeline.name,
        "filter": {"prefix": prefix, "job": job},
        "total": len(selected),
        **paging,
        "nodes": nodes,
        "edges": edges,
    }


def explain_task(pipeline: Pipeline, task_id: str) -> Data:
    item = check_task(pipeline, task_id)
    root = r.root_of(pipeline)
    closure = g.transitive_dependencies(pipeline, [task_id])
    used_groups = _groups_used(pipeline, item.inputs)
    agent_profiles = {
        s.use: r.env_value(pipeline.agents[s.use].model)
        for s in item.steps
        if isinstance(s, AgentStep) and isinstance(s.use, str) and s.use in pipeline.agents
    }
    return {
        "pipelineName": pipeline.name,
        "task": _short_prompts(r.task(item, root), pipeline),
        "dependencies": {
            "direct": list(item.depends_on),
            "transitive": [t for t in closure if t != task_id],
        },
        "dependents": {
            "direct": g.dependents(pipeline, task_id),
            "transitive": g.dependents(pipeline, task_id, transitive=True),
        },
        "namedInputs": {k: list(pipeline.named_inputs[k]) for k in used_groups},
        "agentModels": agent_profiles,
        "jobs": _jobs_by_task(pipeline).get(task_id, []),
    }


# An explanation goes whole into an MCP client's context: a long prompt is cut to its start.
MAX_EXPLAINED_PROMPT = 4000


def _short_prompts(task: Data, pipeline: Pipeline) -> Data:
    """The task's agent prompts cut to MAX_EXPLAINED_PROMPT characters, saying where the rest is."""
    config = Path(pipeline.config_path).name if pipeline.config_path else DEFAULT_CONFIG
    for step in task["steps"]:
        prompt = step.get("prompt") if step.get("kind") == "agent" else None
        if isinstance(prompt, str) and len(prompt) > MAX_EXPLAINED_PROMPT:
            step["prompt"] = (
                prompt[:MAX_EXPLAINED_PROMPT]
                + f"\n[... prompt truncated: {len(prompt)} characters in all; the full text is "
                f"in {config} (task {task['id']}), and once the task has run in "
                f".async/runs/<run-id>/agents/{task['id']}.prompt.txt]"
            )
    return task


def _groups_used(pipeline: Pipeline, inputs: tuple[str, ...]) -> list[str]:
    used: dict[str, None] = {}
    stack = [e for e in inputs if e in pipeline.named_inputs]
    while stack:
        name = stack.pop(0)
        if name not in used:
            used[name] = None
            stack.extend(e for e in pipeline.named_inputs[name] if e in pipeline.named_inputs)
    return list(used)


def check_task(pipeline: Pipeline, task_id: str) -> Task:
    if task_id not in pipeline.tasks:
        guess = nearest(task_id, pipeline.tasks)
        raise QueryError(
            "ASYNC_PIPELINE_UNKNOWN_TASK",
            f"no task {task_id!r} in pipeline {pipeline.name!r}",
            path=task_id,
            hint=f'did you mean "{guess}"?' if guess else "list tasks with `async-pipeline list`",
        )
    return pipeline.tasks[task_id]


def check_job(pipeline: Pipeline, job_id: str) -> None:
    if job_id not in pipeline.jobs:
        guess = nearest(job_id, pipeline.jobs)
        raise QueryError(
            "ASYNC_PIPELINE_UNKNOWN_JOB",
            f"no job {job_id!r} in pipeline {pipeline.name!r}"
            + (" (jobs: " + ", ".join(pipeline.jobs) + ")" if pipeline.jobs else ""),
            path=job_id,
            hint=f'did you mean "{guess}"?'
            if guess
            else "run one of the jobs listed"
            if pipeline.jobs
            else "declare one in pipeline.py: jobs={'name': job(target='task')}",
        )


# Answers about runs and input diffs live in _runs; re-exported so every answer builder is here.
from async_pipeline.query._runs import diff_inputs, list_runs, read_run  # noqa: E402

__all__ = [
    "check_job",
    "check_task",
    "diff_inputs",
    "explain_task",
    "graph",
    "list_runs",
    "list_tasks",
    "metadata",
    "read_run",
]

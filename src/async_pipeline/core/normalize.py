"""``define_pipeline``: validate declarations and build the normalized, frozen ``Pipeline``.

Nothing here runs a step, reads the environment or the clock, opens a cache, or touches
the filesystem beyond what Python's own imports already did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from async_pipeline.core import _sections as sections
from async_pipeline.core._tasks import (
    DEFAULTABLE_FIELDS,
    Context,
    FlatTask,
    build_task,
    check_fields,
    flatten,
)
from async_pipeline.core._validate import (
    TASK_NAME_RULE,
    expect_mapping,
    expect_str,
    invalid,
    is_task_name,
    join,
    nearest,
    reject_unknown,
)
from async_pipeline.core.env import normalize_env
from async_pipeline.core.model import Job, Pipeline, Task
from async_pipeline.core.task import MISSING
from async_pipeline.errors import DefinitionError

__all__ = ["PIPELINE_FIELDS", "define_pipeline"]

PIPELINE_FIELDS = (
    "name",
    "env",
    "cache",
    "named_inputs",
    "task_defaults",
    "triggers",
    "sync",
    "sources",
    "tasks",
    "jobs",
    "sandboxes",
    "execution",
    "agents",
    "commands",
)


def define_pipeline(
    *,
    name: str = MISSING,
    env: Mapping[str, object] = MISSING,
    cache: object = MISSING,
    named_inputs: Mapping[str, object] = MISSING,
    task_defaults: Mapping[str, Mapping[str, object]] = MISSING,
    triggers: Mapping[str, object] = MISSING,
    sync: Mapping[str, object] = MISSING,
    sources: Mapping[str, object] = MISSING,
    tasks: Mapping[str, object] = MISSING,
    jobs: Mapping[str, object] = MISSING,
    sandboxes: Mapping[str, object] = MISSING,
    execution: Mapping[str, object] = MISSING,
    agents: Mapping[str, Mapping[str, object]] = MISSING,
    commands: object = MISSING,
    **unknown: object,
) -> Pipeline:
    """Declare a pipeline. Raises ``DefinitionError`` (with a code and path) if invalid.

    Assign the result to a module-level ``pipeline`` in ``pipeline.py``.
    """
    given = {
        "name": name,
        "env": env,
        "cache": cache,
        "named_inputs": named_inputs,
        "task_defaults": task_defaults,
        "triggers": triggers,
        "sync": sync,
        "sources": sources,
        "tasks": tasks,
        "jobs": jobs,
        "sandboxes": sandboxes,
        "execution": execution,
        "agents": agents,
        "commands": commands,
    }
    fields = {k: v for k, v in given.items() if v is not MISSING}
    reject_unknown(unknown, PIPELINE_FIELDS, "", "pipeline")
    return normalize(fields)


def normalize(fields: Mapping[str, object]) -> Pipeline:
    """Build a ``Pipeline`` from raw section values (as ``define_pipeline`` receives them)."""
    reject_unknown(fields, PIPELINE_FIELDS, "", "pipeline")
    if "name" not in fields:
        raise invalid("name", "the pipeline's name (written into run records)", None)
    pipeline_name = expect_str(fields["name"], "name")
    registry = sections.cache_registry(fields.get("cache"))
    ctx = Context(
        registry=registry,
        named_inputs=sections.named_inputs(fields.get("named_inputs", {})),
        agents=sections.agents(fields.get("agents", {})),
    )
    declared_sources = sections.sources(fields.get("sources", {}))
    declared_triggers = sections.triggers(fields.get("triggers", {}))
    declared_sandboxes = sections.sandboxes(fields.get("sandboxes", {}))
    profiles = sections.execution(fields.get("execution", {}), declared_sandboxes)
    defaults = _task_defaults(fields.get("task_defaults", {}), ctx)

    flat = flatten(fields.get("tasks", {}))
    _reject_duplicates(flat)
    built = {item.id: build_task(item, defaults, ctx) for item in flat}
    tasks = _resolve_dependencies(flat, built, declared_sources)
    _reject_cycles(tasks)

    jobs: dict[str, Job] = {}
    for key, value in sections.names(fields.get("jobs", {}), "jobs").items():
        jobs[key] = sections.job(key, value, tasks, declared_triggers, profiles)

    return Pipeline(
        name=pipeline_name,
        tasks=tasks,
        jobs=jobs,
        env=normalize_env(fields.get("env", {}), "env"),
        cache=registry,
        named_inputs=ctx.named_inputs,
        task_defaults=defaults,
        triggers=declared_triggers,
        sync=sections.sync(fields.get("sync"), tasks, jobs),
        sources=declared_sources,
        sandboxes=declared_sandboxes,
        execution=profiles,
        agents=ctx.agents,
        commands=sections.commands(fields.get("commands")),
    )


def _task_defaults(value: object, ctx: Context) -> dict[str, dict[str, object]]:
    raw = expect_mapping(value, "task_defaults")
    return {
        key: check_fields(
            expect_mapping(item, join("task_defaults", key)),
            DEFAULTABLE_FIELDS,
            join("task_defaults", key),
            "task_defaults",
            ctx,
        )
        for key, item in raw.items()
    }


def _reject_duplicates(flat: list[FlatTask]) -> None:
    seen: dict[str, str] = {}
    for item in flat:
        if item.id in seen:
            raise DefinitionError(
                "ASYNC_PIPELINE_DUPLICATE_TASK",
                f"task id {item.id!r} is declared twice: at {seen[item.id]} and at "
                f"{item.path}; rename one of them",
                path=item.path,
            )
        seen[item.id] = item.path


def _resolve_dependencies(
    flat: list[FlatTask], built: dict[str, Task], declared_sources: Mapping[str, object]
) -> dict[str, Task]:
    """Group-local names first, then outward to the root; ``src:task`` stays a source ref."""
    resolved: dict[str, Task] = {}
    for item in flat:
        task = built[item.id]
        deps: list[str] = []
        for i, dep in enumerate(task.depends_on):
            where = f"{join(item.path, 'depends_on')}[{i}]"
            if ":" in dep:
                source_id, name = dep.split(":", 1)
                if source_id not in declared_sources:
                    guess = nearest(source_id, declared_sources)
                    raise DefinitionError(
                        "ASYNC_PIPELINE_UNKNOWN_SOURCE",
                        f"{where}: task {item.id!r} depends on {dep!r}, but source "
                        f"{source_id!r} is not declared in sources",
                        path=where,
                        hint=f'did you mean "{guess}"?' if guess else None,
                    )
                if not is_task_name(name):
                    # The source's task id becomes file names just as a local one does.
                    raise invalid(where, f"'<source>:<task>' with {TASK_NAME_RULE}", dep)
                deps.append(dep)
                continue
            target = _lookup(dep, item.scope, built, item.id)
            if target is None:
                raise sections.unknown_task(where, f"task {item.id!r}", dep, built)
            deps.append(target)
        resolved[item.id] = _replace_deps(task, tuple(dict.fromkeys(deps)))
    return resolved


def _lookup(
    name: str, scope: tuple[str, ...], tasks: Mapping[str, Task], own_id: str
) -> str | None:
    """The nearest enclosing match, skipping the task itself: ``pkg.test`` depending on
    ``test`` means an outer ``test``. Naming one's own full id still reports the cycle."""
    if name == own_id:
        return name
    for depth in range(len(scope), -1, -1):
        candidate = ".".join((*scope[:depth], name))
        if candidate in tasks and candidate != own_id:
            return candidate
    return None


def _replace_deps(task: Task, deps: tuple[str, ...]) -> Task:
    return task if deps == task.depends_on else replace(task, depends_on=deps)


def _reject_cycles(tasks: Mapping[str, Task]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in tasks:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        trail: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                trail.append(node)
            deps = [d for d in tasks[node].depends_on if ":" not in d]
            if index < len(deps):
                stack.append((node, index + 1))
                dep = deps[index]
                if state.get(dep) == 1:
                    cycle = [*trail[trail.index(dep) :], dep]
                    raise DefinitionError(
                        "ASYNC_PIPELINE_DEPENDENCY_CYCLE",
                        "tasks depend on each other in a cycle: " + " -> ".join(cycle),
                        path=join(tasks[cycle[0]].declared_at, "depends_on"),
                    )
                if not state.get(dep):
                    stack.append((dep, 0))
            else:
                state[node] = 2
                trail.pop()

"""Task normalization: flatten groups, apply defaults, lift directives, resolve dependencies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from async_pipeline.core._validate import (
    TASK_NAME_RULE,
    expect_int,
    expect_mapping,
    expect_str,
    expect_str_list,
    invalid,
    is_task_name,
    join,
    join_key,
    nearest,
    not_reserved,
    parse_duration,
    reject_unknown,
    repo_relative_pattern,
)
from async_pipeline.core.cache import CacheRegistry, CacheUse, check_ref
from async_pipeline.core.env import EnvVar, normalize_env
from async_pipeline.core.model import AgentProfile, Requires, Retry, Task, TaskCache
from async_pipeline.core.steps import (
    AgentStep,
    DeferredShell,
    DependsOn,
    FunctionStep,
    Shell,
    Step,
)
from async_pipeline.core.task import TASK_FIELDS, TaskDecl
from async_pipeline.errors import DefinitionError

DEFAULTABLE_FIELDS = (
    "depends_on",
    "inputs",
    "outputs",
    "cache",
    "retry",
    "timeout",
    "requires",
    "env",
)
_GROUP_DEFAULTS = ("default", "index")
_STEP_TYPES = (Shell, DeferredShell, FunctionStep, AgentStep)
_RETRY_FORMS = (
    "a number of attempts (an integer >= 1, e.g. 2) or a mapping such as "
    "{'attempts': 2, 'delay_ms': 500}"
)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FlatTask:
    id: str
    scope: tuple[str, ...]  # enclosing group segments, innermost last
    path: str  # where it was declared: tasks.claims.default, tasks['claims.report']
    fields: Mapping[str, object]
    items: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Context:
    registry: CacheRegistry
    named_inputs: Mapping[str, tuple[str, ...]]
    agents: Mapping[str, AgentProfile]


# Task ids name files (<id>.stdout.log, <id>.json): well within a file name's 255 bytes.
MAX_TASK_ID_BYTES = 200


def flatten(value: object, path: str = "tasks", scope: tuple[str, ...] = ()) -> list[FlatTask]:
    """Groups become dotted ids; a ``default`` (or ``index``) child is the group's own id.

    Every key, a group's too, is a segment of a task id, and task ids name files.
    """
    found: list[FlatTask] = []
    for key, item in expect_mapping(value, path).items():
        item_path = join_key(path, key)
        if not is_task_name(key):
            raise invalid(item_path, TASK_NAME_RULE, key)
        if scope and key in _GROUP_DEFAULTS:
            task_id = ".".join(scope)
        else:
            task_id = ".".join((*scope, key))
        if len(task_id.encode()) > MAX_TASK_ID_BYTES:
            raise invalid(
                item_path,
                f"a task id of at most {MAX_TASK_ID_BYTES} bytes (it names files such as "
                "<id>.stdout.log); shorten the name or its groups'",
                task_id,
            )
        if isinstance(item, TaskDecl):
            found.append(FlatTask(task_id, scope, item_path, item.fields, item.items))
        elif isinstance(item, Mapping) and _is_raw_task(item):
            found.append(FlatTask(task_id, scope, item_path, dict(item), ()))
        elif isinstance(item, Mapping):
            found.extend(flatten(item, item_path, (*scope, key)))
        else:
            raise invalid(item_path, "task(...), a task dict, or a group of tasks", item)
    return found


def _is_raw_task(mapping: Mapping[Any, Any]) -> bool:
    """A dict is a raw task when it is empty, names a task field, or holds a non-task value."""
    if not mapping:
        return True
    if any(key in TASK_FIELDS for key in mapping):
        return True
    return any(not isinstance(v, TaskDecl | Mapping) for v in mapping.values())


def _cache(value: object, path: str, ctx: Context) -> TaskCache | bool:
    if value is True:
        return TaskCache(ctx.registry.default)
    if value is False or value is None:
        return False
    if isinstance(value, str):
        return TaskCache(check_ref(value, ctx.registry, path))
    options = expect_mapping(value, path)
    reject_unknown(options, ("store", "ttl_ms"), path, "cache option")
    ref = check_ref(options.get("store", ctx.registry.default), ctx.registry, join(path, "store"))
    ttl = options.get("ttl_ms")
    return TaskCache(ref, None if ttl is None else expect_int(ttl, join(path, "ttl_ms"), minimum=1))


def _retry(value: object, path: str, _: Context) -> Retry:
    if isinstance(value, bool) or not isinstance(value, int | Mapping):
        raise invalid(path, _RETRY_FORMS, value)
    if isinstance(value, int):
        return Retry(expect_int(value, path, minimum=1))
    options = expect_mapping(value, path)
    reject_unknown(options, ("attempts", "delay_ms"), path, "retry")
    attempts = expect_int(options.get("attempts", 1), join(path, "attempts"), minimum=1)
    delay = options.get("delay_ms", 0)
    return Retry(attempts, parse_duration(delay, join(path, "delay_ms"), allow_zero=True))


def _requires(value: object, path: str, _: Context) -> Requires:
    options = expect_mapping(value, path)
    reject_unknown(options, ("tools", "secrets", "runtime"), path, "requires")
    runtime = expect_mapping(options.get("runtime", {}), join(path, "runtime"))
    return Requires(
        expect_str_list(options.get("tools", ()), join(path, "tools")),
        expect_str_list(options.get("secrets", ()), join(path, "secrets")),
        {k: expect_str(v, join(join(path, "runtime"), k)) for k, v in runtime.items()},
    )


def _inputs(value: object, path: str, ctx: Context) -> tuple[str, ...]:
    entries = expect_str_list(value, path)
    for i, entry in enumerate(entries):
        if entry not in ctx.named_inputs:
            repo_relative_pattern(entry, f"{path}[{i}]")
    return entries


def _outputs(value: object, path: str, _: Context) -> tuple[str, ...]:
    """Output patterns: inside the repository, and never in ``.async/`` or ``.git/`` (a
    cache restore writes outputs back over whatever they match)."""
    entries = expect_str_list(value, path)
    for i, entry in enumerate(entries):
        where = f"{path}[{i}]"
        repo_relative_pattern(entry, where)
        if not entry.startswith("!"):
            not_reserved(entry, where, "declare the task's outputs elsewhere in the repository")
    return entries


_FIELD_CHECKS: dict[str, Callable[[object, str, Context], object]] = {
    "description": lambda v, p, _: expect_str(v, p, allow_empty=True),
    "depends_on": lambda v, p, _: expect_str_list(v, p),
    "inputs": _inputs,
    "outputs": _outputs,
    "cache": _cache,
    "retry": _retry,
    "timeout": lambda v, p, _: parse_duration(v, p),
    "requires": _requires,
    "env": lambda v, p, _: normalize_env(v, p),
}


def check_fields(
    fields: Mapping[str, object], allowed: tuple[str, ...], path: str, what: str, ctx: Context
) -> dict[str, object]:
    """Validate each given field; the result maps field name to its normalized value."""
    reject_unknown(fields, allowed, path, what)
    return {
        k: _FIELD_CHECKS[k](v, join(path, k), ctx) for k, v in fields.items() if k in _FIELD_CHECKS
    }


def _steps(flat: FlatTask, ctx: Context) -> tuple[tuple[Step, ...], tuple[str, ...], str | None]:
    """Steps in order, plus dependencies and a cache ref lifted from directives."""
    if "run" in flat.fields and "steps" in flat.fields:
        raise DefinitionError(
            "ASYNC_PIPELINE_TASK_ARGUMENT_CONFLICT",
            f"{flat.path}: give run= or steps=, not both",
            path=flat.path,
        )
    if "run" in flat.fields:
        key, raw = "run", flat.fields["run"]
        entries = list(raw) if isinstance(raw, list | tuple) else [raw]
    elif "steps" in flat.fields:
        key, raw = "steps", flat.fields["steps"]
        if not isinstance(raw, list | tuple):
            raise invalid(join(flat.path, "steps"), "a list of steps", raw)
        entries = list(raw)
    else:
        key, entries = "steps", list(flat.items)
    steps: list[Step] = []
    deps: list[str] = []
    cache_ref: str | None = None
    for i, entry in enumerate(entries):
        where = f"{join(flat.path, key)}[{i}]"
        if isinstance(entry, _STEP_TYPES):
            if isinstance(entry, AgentStep):
                check_agent_use(entry, where, ctx.agents)
            steps.append(entry)
        elif isinstance(entry, DependsOn):
            deps.extend(entry.tasks)
        elif isinstance(entry, CacheUse):
            if cache_ref is not None:
                raise invalid(where, "a single cache.use(...) per task", entry.ref)
            cache_ref = check_ref(entry.ref, ctx.registry, where)
        elif isinstance(entry, str):
            steps.append(Shell(expect_str(entry, where)))
        elif callable(entry):
            steps.append(FunctionStep(entry))
        else:
            raise invalid(where, "sh(...), agent(...), a function, or a directive", entry)
    return tuple(steps), tuple(deps), cache_ref


def check_agent_use(step: AgentStep, path: str, agents: Mapping[str, AgentProfile]) -> None:
    """Every profile name knowable before the run (a literal, a default, a mapped value)."""
    names: list[str] = []
    if isinstance(step.use, EnvVar):
        if step.use.mapping is not None:
            names.extend(step.use.mapping.values())
        elif step.use.default is not None:
            names.append(step.use.default)
    else:
        names.append(step.use)
    for name in names:
        if name not in agents:
            guess = nearest(name, agents)
            raise DefinitionError(
                "ASYNC_PIPELINE_AGENT_UNKNOWN",
                f"{path}: agent profile {name!r} is not declared in agents"
                + (" (declared: " + ", ".join(sorted(agents)) + ")" if agents else ""),
                path=path,
                hint=f'did you mean "{guess}"?' if guess else None,
            )


def default_keys(task_id: str, defaults: Mapping[str, object]) -> list[str]:
    """task_defaults keys applying to a task: name segments outermost first, then the id."""
    segments = task_id.split(".")
    keys = [s for s in dict.fromkeys(segments) if s in defaults and s != task_id]
    if task_id in defaults:
        keys.append(task_id)
    return keys


def build_task(flat: FlatTask, defaults: Mapping[str, Mapping[str, object]], ctx: Context) -> Task:
    own = check_fields(flat.fields, TASK_FIELDS, flat.path, "task", ctx)
    steps, lifted_deps, cache_ref = _steps(flat, ctx)
    applied = default_keys(flat.id, defaults)
    merged: dict[str, object] = {}
    for key in applied:
        merged.update(defaults[key])
    merged.update(own)
    if cache_ref is not None:
        if "cache" in own:
            raise invalid(join(flat.path, "cache"), "cache= or cache.use(...), not both", cache_ref)
        merged["cache"] = TaskCache(cache_ref)
    deps = tuple(dict.fromkeys((*_as_tuple(merged.get("depends_on")), *lifted_deps)))
    inputs = _as_tuple(merged.get("inputs"))
    cache = merged.get("cache")
    return Task(
        id=flat.id,
        description=_opt_str(merged.get("description")),
        depends_on=deps,
        inputs=inputs,
        resolved_inputs=expand_inputs(inputs, ctx.named_inputs),
        outputs=_as_tuple(merged.get("outputs")),
        cache=cache if isinstance(cache, TaskCache) else None,
        retry=_typed(merged, "retry", Retry, Retry()),
        timeout_ms=_opt_int(merged.get("timeout")),
        requires=_typed(merged, "requires", Requires, Requires()),
        env=_typed(merged, "env", dict, {}),
        steps=steps,
        defaults_applied=tuple(applied),
        declared_at=flat.path,
    )


def expand_inputs(inputs: tuple[str, ...], named: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Named input groups replaced by their patterns (already checked to be acyclic)."""
    out: dict[str, None] = {}
    for entry in inputs:
        if entry in named:
            out.update(dict.fromkeys(expand_inputs(named[entry], named)))
        else:
            out[entry] = None
    return tuple(out)


def _typed(merged: Mapping[str, object], key: str, kind: type[T], default: T) -> T:
    value = merged.get(key)
    return value if isinstance(value, kind) else default


def _as_tuple(value: object) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else ()


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) else None

"""Normalization of the pipeline's non-task sections: jobs, sync, agents, and friends."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

from async_pipeline.core._validate import (
    expect_bool,
    expect_choice,
    expect_int,
    expect_mapping,
    expect_str,
    expect_str_list,
    invalid,
    join,
    nearest,
    not_reserved,
    reject_unknown,
    repo_relative_pattern,
    segments,
)
from async_pipeline.core.cache import CacheRegistry, check_ref
from async_pipeline.core.commands import CommandPolicy
from async_pipeline.core.env import EnvVar, normalize_env
from async_pipeline.core.model import (
    AgentProfile,
    Environment,
    GithubJobConfig,
    Job,
    Sync,
    SyncGithub,
    SyncTasks,
    Task,
)
from async_pipeline.core.sandboxes import (
    ContainerSandbox,
    DockerSandbox,
    ExecutionProfile,
    LimaSandbox,
    Sandbox,
)
from async_pipeline.core.sources import GitSource, PathSource, Source
from async_pipeline.core.task import JOB_FIELDS, JobDecl
from async_pipeline.core.triggers import CronTrigger, GithubTrigger, ManualTrigger, Trigger
from async_pipeline.errors import DefinitionError

T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
PERMISSIONS = ("contents", "id_token", "issues", "packages", "pull_requests")
AGENT_PROFILE_FIELDS = ("command", "model", "api", "max_tokens")
AGENT_APIS = ("anthropic",)
GITHUB_JOB_FIELDS = ("permissions", "runs_on", "timeout_minutes", "concurrency", "if")


def names(value: object, path: str) -> Mapping[str, object]:
    """A section mapping whose keys are simple names (no '.', ':' or spaces)."""
    mapping = expect_mapping(value, path)
    for key in mapping:
        if not _NAME.match(key):
            raise invalid(join(path, key), "a name of letters, digits, - and _", key)
    return mapping


def typed_section(
    value: object, path: str, kinds: tuple[type[T], ...], expected: str
) -> dict[str, T]:
    result: dict[str, T] = {}
    for key, item in names(value, path).items():
        if not isinstance(item, kinds):
            raise invalid(join(path, key), expected, item)
        result[key] = item
    return result


def cache_registry(value: object) -> CacheRegistry:
    if value is None:
        return CacheRegistry()
    if isinstance(value, CacheRegistry):
        return value
    if isinstance(value, str):
        registry = CacheRegistry(default=value)
        check_ref(value, registry, "cache")
        return registry
    raise invalid("cache", "a cache ref such as 'file:local' or define_cache(...)", value)


def named_inputs(value: object) -> dict[str, tuple[str, ...]]:
    raw = names(value, "named_inputs")
    groups = {k: expect_str_list(v, join("named_inputs", k)) for k, v in raw.items()}
    for key, entries in groups.items():
        for i, entry in enumerate(entries):
            if entry not in groups:
                repo_relative_pattern(entry, f"named_inputs.{key}[{i}]")
    for start in groups:
        _check_named_cycle(start, groups, [start])
    return groups


def _check_named_cycle(name: str, groups: Mapping[str, tuple[str, ...]], trail: list[str]) -> None:
    for entry in groups[name]:
        if entry in groups:
            if entry in trail:
                cycle = " -> ".join([*trail[trail.index(entry) :], entry])
                raise invalid(f"named_inputs.{name}", f"groups without a cycle ({cycle})", entry)
            _check_named_cycle(entry, groups, [*trail, entry])


def agents(value: object) -> dict[str, AgentProfile]:
    profiles: dict[str, AgentProfile] = {}
    for key, item in names(value, "agents").items():
        path = join("agents", key)
        fields = expect_mapping(item, path)
        reject_unknown(fields, AGENT_PROFILE_FIELDS, path, "agent profile")
        api = fields.get("api")
        if api is not None:
            expect_choice(api, join(path, "api"), AGENT_APIS)
            if "command" in fields:
                raise invalid(path, "either command=[...] (a CLI adapter) or api=, not both", api)
            command: tuple[str, ...] = ()
        else:
            if fields.get("command") is None:
                raise DefinitionError(
                    "ASYNC_PIPELINE_INVALID_VALUE",
                    f"{join(path, 'command')} is required: the adapter's argv prefix, such as "
                    "['claude', '-p'] (or api='anthropic' for the API backend)",
                    path=join(path, "command"),
                )
            command = expect_str_list(
                fields.get("command"), join(path, "command"), allow_single=False
            )
            if not command:
                raise invalid(
                    join(path, "command"), "a non-empty argv list such as ['claude', '-p']", []
                )
        max_tokens = fields.get("max_tokens")
        if max_tokens is not None:
            if api is None:
                raise invalid(join(path, "max_tokens"), "max_tokens only with api=", max_tokens)
            expect_int(max_tokens, join(path, "max_tokens"), minimum=1)
        if "model" not in fields:
            raise invalid(join(path, "model"), "a model (the profile's cache identity)", None)
        model = fields["model"]
        if not isinstance(model, EnvVar):
            model = expect_str(model, join(path, "model"))
        profiles[key] = AgentProfile(command, model, api, max_tokens)
    return profiles


def triggers(value: object) -> dict[str, Trigger]:
    return typed_section(
        value,
        "triggers",
        (ManualTrigger, GithubTrigger, CronTrigger),
        "trigger.manual(), trigger.github(...) or trigger.cron(...)",
    )


def sources(value: object) -> dict[str, Source]:
    return typed_section(
        value, "sources", (PathSource, GitSource), "source.path(...) or source.git(...)"
    )


def sandboxes(value: object) -> dict[str, Sandbox]:
    return typed_section(
        value,
        "sandboxes",
        (LimaSandbox, DockerSandbox, ContainerSandbox),
        "sandbox.lima(...), sandbox.docker(...) or sandbox.container(...)",
    )


def execution(value: object, declared: Mapping[str, Sandbox]) -> dict[str, ExecutionProfile]:
    profiles = typed_section(
        value, "execution", (ExecutionProfile,), "execution.local(...) or execution.github(...)"
    )
    for key, profile in profiles.items():
        if profile.sandbox is not None and profile.sandbox not in declared:
            raise DefinitionError(
                "ASYNC_PIPELINE_UNKNOWN_SANDBOX",
                f"execution.{key}: sandbox {profile.sandbox!r} is not declared in sandboxes",
                path=f"execution.{key}.sandbox",
                hint=_did_you_mean(profile.sandbox, declared),
            )
    return profiles


def commands(value: object) -> CommandPolicy | None:
    if value is None or isinstance(value, CommandPolicy):
        return value
    raise invalid("commands", "command.policy(...)", value)


def _did_you_mean(name: str, options: Mapping[str, object] | tuple[str, ...]) -> str | None:
    guess = nearest(name, options)
    return f'did you mean "{guess}"?' if guess else None


def unknown_task(path: str, owner: str, name: str, tasks: Mapping[str, Task]) -> DefinitionError:
    return DefinitionError(
        "ASYNC_PIPELINE_UNKNOWN_TASK",
        f"{path}: {owner} refers to task {name!r}, which does not exist",
        path=path,
        hint=_did_you_mean(name, tasks),
    )


def job(
    key: str,
    value: object,
    tasks: Mapping[str, Task],
    declared_triggers: Mapping[str, Trigger],
    profiles: Mapping[str, ExecutionProfile],
) -> Job:
    path = join("jobs", key)
    fields = value.fields if isinstance(value, JobDecl) else expect_mapping(value, path)
    reject_unknown(fields, JOB_FIELDS, path, "job")
    if "target" not in fields:
        raise invalid(join(path, "target"), "the task id (or ids) this job runs", None)
    targets = expect_str_list(fields["target"], join(path, "target"))
    if not targets:
        raise invalid(join(path, "target"), "at least one task id", fields["target"])
    for i, target in enumerate(targets):
        if target not in tasks:
            raise unknown_task(f"{path}.target[{i}]", f"job {key!r}", target, tasks)
    trigger_ids = expect_str_list(fields.get("trigger", ()), join(path, "trigger"))
    for i, trigger_id in enumerate(trigger_ids):
        if trigger_id not in declared_triggers:
            raise DefinitionError(
                "ASYNC_PIPELINE_UNKNOWN_TRIGGER",
                f"{path}.trigger[{i}]: trigger {trigger_id!r} is not declared in triggers",
                path=f"{path}.trigger[{i}]",
                hint=_did_you_mean(trigger_id, declared_triggers),
            )
    execution_id = fields.get("execution")
    if execution_id is not None:
        expect_str(execution_id, join(path, "execution"))
        if execution_id not in profiles:
            raise DefinitionError(
                "ASYNC_PIPELINE_UNKNOWN_EXECUTION",
                f"{path}.execution: execution profile {execution_id!r} is not declared",
                path=join(path, "execution"),
                hint=_did_you_mean(str(execution_id), profiles),
            )
    requires = expect_mapping(fields.get("requires", {}), join(path, "requires"))
    reject_unknown(requires, ("provenance",), join(path, "requires"), "job requires")
    mode = fields.get("mode")
    return Job(
        id=key,
        targets=targets,
        description=None
        if fields.get("description") is None
        else expect_str(fields["description"], join(path, "description"), allow_empty=True),
        triggers=trigger_ids,
        environment=_environment(fields.get("environment"), join(path, "environment")),
        provenance=expect_bool(
            requires.get("provenance", False), join(path, "requires.provenance")
        ),
        env=normalize_env(fields.get("env", {}), join(path, "env")),
        github=_github(fields.get("github"), join(path, "github")),
        mode=None if mode is None else expect_choice(mode, join(path, "mode"), ("manual", "ci")),
        execution=None if execution_id is None else str(execution_id),
    )


def _environment(value: object, path: str) -> Environment | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Environment(expect_str(value, path))
    fields = expect_mapping(value, path)
    reject_unknown(fields, ("name", "url"), path, "environment")
    url = fields.get("url")
    return Environment(
        expect_str(fields.get("name"), join(path, "name")),
        None if url is None else expect_str(url, join(path, "url")),
    )


def _github(value: object, path: str) -> GithubJobConfig | None:
    if value is None:
        return None
    fields = expect_mapping(value, path)
    reject_unknown(fields, GITHUB_JOB_FIELDS, path, "job github")
    permissions = expect_mapping(fields.get("permissions", {}), join(path, "permissions"))
    reject_unknown(permissions, PERMISSIONS, join(path, "permissions"), "github permission")
    timeout = fields.get("timeout_minutes")
    concurrency = fields.get("concurrency")
    condition = fields.get("if")
    return GithubJobConfig(
        permissions={
            k: expect_choice(v, join(join(path, "permissions"), k), ("read", "write", "none"))
            for k, v in permissions.items()
        },
        runs_on=expect_str_list(fields.get("runs_on", ()), join(path, "runs_on")),
        timeout_minutes=None
        if timeout is None
        else expect_int(timeout, join(path, "timeout_minutes"), minimum=1),
        concurrency=None
        if concurrency is None
        else expect_str(concurrency, join(path, "concurrency")),
        condition=None if condition is None else expect_str(condition, join(path, "if")),
    )


def sync(value: object, tasks: Mapping[str, Task], jobs: Mapping[str, Job]) -> Sync:
    fields = expect_mapping(value if value is not None else {}, "sync")
    reject_unknown(fields, ("github", "tasks"), "sync", "sync")
    return Sync(_sync_github(fields.get("github")), _sync_tasks(fields.get("tasks"), tasks, jobs))


def _sync_github(value: object) -> SyncGithub | None:
    if value is None or value is False:
        return None
    if value is True:
        return SyncGithub()
    path = "sync.github"
    fields = expect_mapping(value, path)
    reject_unknown(fields, ("workflow", "lock", "python_version", "cache"), path, "sync.github")
    base = SyncGithub()
    workflow = generated_file(fields.get("workflow", base.workflow), join(path, "workflow"))
    lock = generated_file(fields.get("lock", base.lock), join(path, "lock"))
    return SyncGithub(
        workflow,
        distinct_files(workflow, lock, join(path, "lock")),
        # A string: a float such as 3.10 would silently become "3.1".
        expect_str(fields.get("python_version", base.python_version), join(path, "python_version")),
        expect_bool(fields.get("cache", True), join(path, "cache")),
    )


def _bad_path(path: str, text: str, problem: str) -> DefinitionError:
    return DefinitionError("ASYNC_PIPELINE_INVALID_PATH", f"{path}: {text!r} {problem}", path=path)


def generated_file(value: object, path: str) -> str:
    """The path of a file async-pipeline generates: a plain file path in the repository.

    Not a glob (it would be written as a file with that literal name), not a directory,
    and not in ``.git/`` or ``.async/``, which belong to git and to the runner.
    """
    text = repo_relative_pattern(value, path)
    if text.startswith("!") or any(char in text for char in "*?[]"):
        raise _bad_path(path, text, "must be a plain file path, not a glob or an exclusion")
    if not text.isprintable():
        raise _bad_path(path, text, "must not contain control characters")
    last = text.replace("\\", "/").split("/")[-1]
    if not segments(text) or last in ("", ".", ".."):
        raise _bad_path(path, text, "names a directory; give the path of a file")
    return not_reserved(text, path, "generate it somewhere else, such as .github/")


def distinct_files(workflow: str, lock: str, path: str) -> str:
    """``lock``, unless it is the workflow's own file (compared as a case-insensitive
    filesystem would): each write would replace the other, and check never passes."""
    if [p.casefold() for p in segments(lock)] == [p.casefold() for p in segments(workflow)]:
        raise _bad_path(path, lock, f"is the workflow file ({workflow!r}); give the lock its own")
    return lock


def _sync_tasks(
    value: object, tasks: Mapping[str, Task], jobs: Mapping[str, Job]
) -> SyncTasks | None:
    if value is None or value is False:
        return None
    if value is True:
        return SyncTasks()
    path = "sync.tasks"
    fields = expect_mapping(value, path)
    reject_unknown(
        fields, ("prefix", "runners", "targets", "jobs", "tasks", "scripts"), path, "sync.tasks"
    )
    runners = expect_str_list(fields.get("runners", ("package",)), join(path, "runners"))
    for i, runner in enumerate(runners):
        expect_choice(runner, f"{path}.runners[{i}]", ("package", "deno"))
    targets: list[tuple[str, str]] = []
    raw_targets = fields.get("targets", ())
    if not isinstance(raw_targets, list | tuple):
        raise invalid(
            join(path, "targets"), "a list of {'package': name} or {'path': file}", raw_targets
        )
    for i, item in enumerate(raw_targets):
        where = f"{path}.targets[{i}]"
        target = expect_mapping(item, where)
        reject_unknown(target, ("package", "path"), where, "sync target")
        if len(target) != 1:
            raise invalid(where, "exactly one of package= or path=", item)
        kind, ref = next(iter(target.items()))
        ref = expect_str(ref, join(where, kind))
        if kind == "path":
            repo_relative_pattern(ref, join(where, "path"))
            if not ref.endswith(("package.json", "deno.json", "deno.jsonc")):
                raise invalid(
                    join(where, "path"), "a package.json, deno.json or deno.jsonc path", ref
                )
        targets.append((kind, ref))
    job_ids = None if "jobs" not in fields else expect_str_list(fields["jobs"], join(path, "jobs"))
    for i, job_id in enumerate(job_ids or ()):
        if job_id not in jobs:
            raise DefinitionError(
                "ASYNC_PIPELINE_UNKNOWN_JOB",
                f"{path}.jobs[{i}]: job {job_id!r} does not exist",
                path=f"{path}.jobs[{i}]",
                hint=_did_you_mean(job_id, jobs),
            )
    task_ids = expect_str_list(fields.get("tasks", ()), join(path, "tasks"))
    for i, task_id in enumerate(task_ids):
        if task_id not in tasks:
            raise unknown_task(f"{path}.tasks[{i}]", "sync.tasks", task_id, tasks)
    scripts = expect_mapping(fields.get("scripts", {}), join(path, "scripts"))
    return SyncTasks(
        expect_str(fields.get("prefix", "pipeline"), join(path, "prefix")),
        runners,
        tuple(targets),
        job_ids,
        task_ids,
        {k: expect_str(v, join(join(path, "scripts"), k)) for k, v in scripts.items()},
    )

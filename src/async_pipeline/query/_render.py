"""Declarations rendered as JSON-ready data with the spec's camelCase keys.

These builders are the single producer of every query's data. The pydantic models in
``query.models`` describe the same shapes (a test checks every builder against them);
the CLI serializes this data directly so that ``metadata`` starts without building
model classes (see adr/0001-query-data-and-models.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from async_pipeline.core.cache import FileCache, MemoryCache, RedisCache, Store
from async_pipeline.core.commands import Allow, CommandPolicy, Deny, Mock, RuleAction
from async_pipeline.core.env import EnvSecret, EnvValue, EnvVar
from async_pipeline.core.model import Job, Pipeline, Requires, Task
from async_pipeline.core.sandboxes import ContainerSandbox, DockerSandbox, LimaSandbox, Sandbox
from async_pipeline.core.sources import GitSource, PathSource, Source
from async_pipeline.core.steps import (
    AgentStep,
    DeferredShell,
    FunctionStep,
    Shell,
    callable_location,
    callable_name,
    is_async_callable,
)
from async_pipeline.core.triggers import CronTrigger, GithubTrigger, Trigger

Data = dict[str, Any]
_URL_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)([^/@]*)@", re.IGNORECASE)


def root_of(pipeline: Pipeline) -> Path | None:
    return Path(pipeline.config_path).parent if pipeline.config_path else None


def mask_url(url: str) -> str:
    """Credentials in a URL never reach output: ``https://***@host/...``."""
    return _URL_USERINFO.sub(r"\1***@", url)


def env_value(value: EnvValue) -> Data:
    if isinstance(value, EnvSecret):
        return {"kind": "secret", "name": value.name}
    if isinstance(value, EnvVar):
        return {
            "kind": "var",
            "name": value.name,
            "default": value.default,
            "mapping": None if value.mapping is None else dict(value.mapping),
        }
    return {"kind": "literal", "value": value}


def env_map(values: Mapping[str, EnvValue]) -> Data:
    return {key: env_value(value) for key, value in values.items()}


def step(item: object, root: Path | None) -> Data:
    if isinstance(item, Shell):
        return {"kind": "shell", "command": item.command}
    if isinstance(item, DeferredShell):
        return {
            "kind": "deferredShell",
            "callable": callable_name(item.callback),
            "location": callable_location(item.callback, root),
        }
    if isinstance(item, FunctionStep):
        return {
            "kind": "function",
            "callable": callable_name(item.function),
            "location": callable_location(item.function, root),
            "async": is_async_callable(item.function),
        }
    assert isinstance(item, AgentStep)
    return {
        "kind": "agent",
        "use": env_value(item.use),
        "prompt": item.prompt,
        "stdoutTo": item.stdout_to,
    }


def requires(value: Requires) -> Data:
    return {
        "tools": list(value.tools),
        "secrets": list(value.secrets),
        "runtime": dict(value.runtime),
    }


def task(item: Task, root: Path | None) -> Data:
    return {
        "id": item.id,
        "name": item.name,
        "group": item.group,
        "description": item.description,
        "dependsOn": list(item.depends_on),
        "inputs": list(item.inputs),
        "resolvedInputs": list(item.resolved_inputs),
        "outputs": list(item.outputs),
        "cache": None
        if item.cache is None
        else {"ref": item.cache.ref, "ttlMs": item.cache.ttl_ms},
        "retry": {"attempts": item.retry.attempts, "delayMs": item.retry.delay_ms},
        "timeoutMs": item.timeout_ms,
        "requires": requires(item.requires),
        "env": env_map(item.env),
        "steps": [step(s, root) for s in item.steps],
        "defaultsApplied": list(item.defaults_applied),
        "declaredAt": item.declared_at,
    }


def job(item: Job) -> Data:
    github = item.github
    return {
        "id": item.id,
        "description": item.description,
        "targets": list(item.targets),
        "triggers": list(item.triggers),
        "environment": None
        if item.environment is None
        else {"name": item.environment.name, "url": item.environment.url},
        "requires": {"provenance": item.provenance},
        "env": env_map(item.env),
        "github": None
        if github is None
        else {
            "permissions": dict(github.permissions),
            "runsOn": list(github.runs_on),
            "timeoutMinutes": github.timeout_minutes,
            "concurrency": github.concurrency,
            "if": github.condition,
        },
        "mode": item.mode,
        "execution": item.execution,
    }


def store(item: Store) -> Data:
    if isinstance(item, FileCache):
        return {"kind": "file", "root": item.root, "ttlMs": item.ttl_ms}
    if isinstance(item, MemoryCache):
        return {"kind": "memory", "ttlMs": item.ttl_ms}
    assert isinstance(item, RedisCache)
    url = env_value(item.url) if not isinstance(item.url, str) else env_value(mask_url(item.url))
    return {
        "kind": "redis",
        "url": url,
        "ttlMs": item.ttl_ms,
        "maxEntryBytes": item.max_entry_bytes,
        "prefix": item.prefix,
    }


def trigger(item: Trigger) -> Data:
    if isinstance(item, GithubTrigger):
        return {"kind": "github", "events": list(item.events), "branches": list(item.branches)}
    if isinstance(item, CronTrigger):
        return {"kind": "cron", "cron": item.cron}
    return {"kind": "manual"}


def source(item: Source, root: Path | None) -> Data:
    prepare = [step(s, root) for s in item.prepare]
    if isinstance(item, PathSource):
        return {
            "kind": "path",
            "path": item.path,
            "writable": item.writable,
            "pipeline": item.pipeline,
            "prepare": prepare,
        }
    assert isinstance(item, GitSource)
    return {
        "kind": "git",
        "url": mask_url(item.url),
        "ref": item.ref,
        "pipeline": item.pipeline,
        "prepare": prepare,
    }


def sandbox(item: Sandbox) -> Data:
    if isinstance(item, LimaSandbox):
        return {"kind": "lima", "vm": item.vm}
    if isinstance(item, DockerSandbox):
        return {"kind": "docker", "image": item.image, "cwd": item.cwd}
    assert isinstance(item, ContainerSandbox)
    return {
        "kind": "container",
        "image": item.image,
        "workdir": item.workdir,
        "volumes": [{"source": v.source, "target": v.target} for v in item.volumes],
    }


def action(item: RuleAction) -> Data:
    if isinstance(item, Allow):
        return {"kind": "allow"}
    if isinstance(item, Deny):
        return {"kind": "deny"}
    if isinstance(item, Mock):
        return {"kind": "mock", "code": item.code, "stdout": item.stdout, "stderr": item.stderr}
    return {"kind": "requireEnvironment", "environments": list(item.environments)}


def commands(policy: CommandPolicy | None) -> Data | None:
    if policy is None:
        return None
    return {
        "rules": [
            {"match": r.match, "argv": list(r.argv), "action": action(r.action)}
            for r in policy.rules
        ],
        "fallback": action(policy.fallback),
        "record": policy.record,
        "output": {"maxBytes": policy.max_output_bytes, "redactSecrets": policy.redact_secrets},
    }


def task_default(fields: Mapping[str, object]) -> Data:
    """A task_defaults entry: the defaultable fields, null where not set."""
    cache = fields.get("cache")
    retry = fields.get("retry")
    req = fields.get("requires")
    env = fields.get("env")
    return {
        "dependsOn": _opt_list(fields.get("depends_on")),
        "inputs": _opt_list(fields.get("inputs")),
        "outputs": _opt_list(fields.get("outputs")),
        "cache": _default_cache(cache),
        "retry": None
        if retry is None
        else {"attempts": getattr(retry, "attempts", 1), "delayMs": getattr(retry, "delay_ms", 0)},
        "timeoutMs": fields.get("timeout"),
        "requires": requires(req) if isinstance(req, Requires) else None,
        "env": env_map(env) if isinstance(env, dict) else None,
    }


def _default_cache(value: object) -> Data | bool | None:
    if value is None:
        return None
    if value is False:
        return False
    return {"ref": getattr(value, "ref", ""), "ttlMs": getattr(value, "ttl_ms", None)}


def _opt_list(value: object) -> list[str] | None:
    return list(value) if isinstance(value, tuple) else None

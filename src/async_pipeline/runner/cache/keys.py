"""Cache keys: a digest of everything that can change a task's result.

A key covers the key-format version, the task id, its cache namespace, its steps (shell
text; a function's qualified name and source digest), its declared outputs, the env values
it declares (secrets only as keyed digests), the content digests of its inputs, and the
keys of its direct dependencies, so a changed dependency invalidates its dependents.
Environment variables a pipeline does not declare are not part of any key.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import marshal
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from async_pipeline.core.model import Task
from async_pipeline.core.steps import AgentStep, DeferredShell, FunctionStep, Shell, Step

__all__ = ["KEY_VERSION", "step_identity", "task_key"]

KEY_VERSION = "async-pipeline-task-key-1"
_SECRET_SALT = b"async-pipeline secret digest v1"


def _callable_identity(fn: Callable[..., Any]) -> str:
    """Qualified name and source digest: stable across processes and checkouts.

    The module name is left out on purpose: ``pipeline.py`` is imported under a name
    that differs between loads, and the source digest already identifies the code.
    """
    target = inspect.unwrap(fn)
    name = getattr(target, "__qualname__", None) or repr(target)
    try:
        source = inspect.getsource(target).encode()
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        source = marshal.dumps(code) if code is not None else repr(target).encode()
    return f"{name}:{hashlib.sha256(source).hexdigest()}"


def step_identity(step: Step, agent_identity: Callable[[AgentStep], str] | None = None) -> str:
    """What a step contributes to its task's key."""
    if isinstance(step, Shell):
        return f"sh:{step.command}"
    if isinstance(step, DeferredShell):
        return f"deferred:{_callable_identity(step.callback)}"
    if isinstance(step, FunctionStep):
        return f"function:{_callable_identity(step.function)}"
    if agent_identity is None:
        return f"agent:{step.use!r}:{step.prompt}"
    return f"agent:{agent_identity(step)}"


def secret_digest(value: str, key: str, salt: bytes = _SECRET_SALT) -> str:
    """A keyed digest of a secret value: equal values give equal keys, the value stays out."""
    return hmac.new(salt, f"{key}\0{value}".encode(), hashlib.sha256).hexdigest()


def task_key(
    task: Task,
    *,
    namespace: str,
    steps: list[str],
    env: Mapping[str, str],
    secret_keys: set[str],
    inputs: Mapping[str, str],
    dependencies: Mapping[str, str],
    salt: bytes = _SECRET_SALT,
) -> str:
    """The task's cache key (hex sha256)."""
    declared = {
        key: {"secret": secret_digest(value, key, salt)} if key in secret_keys else value
        for key, value in sorted(env.items())
    }
    document = {
        "version": KEY_VERSION,
        "task": task.id,
        "namespace": namespace,
        "steps": steps,
        "outputs": list(task.outputs),
        "env": declared,
        "inputs": sorted(inputs.items()),
        "dependencies": sorted(dependencies.items()),
    }
    return hashlib.sha256(orjson.dumps(document)).hexdigest()

"""Resolve declared env values against a run's source environment, before any task runs.

Precedence for a task: the caller's environment, then pipeline env, job env and task env,
each overriding the previous key by key. ``env.secret("N")`` and ``env.var("N")`` read
``N``; when ``N`` is absent the destination key is accepted too, which is how a generated
GitHub workflow delivers the value (``KEY: ${{ secrets.N }}``). Errors name the key and
its source, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from async_pipeline.core.env import EnvSecret, EnvValue, EnvVar
from async_pipeline.errors import PipelineError

__all__ = ["ResolvedEnv", "resolve_declared", "resolve_var"]


@dataclass
class ResolvedEnv:
    """Declared keys resolved to strings, and the secret ones (env key -> value)."""

    values: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def overlay(self, other: ResolvedEnv) -> ResolvedEnv:
        return ResolvedEnv({**self.values, **other.values}, {**self.secrets, **other.secrets})


def _lookup(source: Mapping[str, str], name: str, key: str) -> str | None:
    for candidate in (name, key):
        value = source.get(candidate)
        if value:  # an empty value is how CI renders a missing secret or variable
            return value
    return None


def resolve_declared(
    declared: Mapping[str, EnvValue], source: Mapping[str, str], where: str
) -> ResolvedEnv:
    """Resolve ``declared`` (``where`` names it in errors, e.g. ``jobs.deploy.env``)."""
    resolved = ResolvedEnv()
    for key, value in declared.items():
        if isinstance(value, str):
            resolved.values[key] = value
        elif isinstance(value, EnvSecret):
            found = _lookup(source, value.name, key)
            if found is None:
                raise PipelineError(
                    "ASYNC_PIPELINE_ENV_MISSING",
                    f"{where}.{key}: secret {value.name} is not set (set {value.name}, or {key})",
                    path=f"{where}.{key}",
                    hint=f"export {value.name} in the environment the run starts from",
                )
            resolved.values[key] = found
            resolved.secrets[key] = found
        else:
            resolved.values[key] = _resolve_var(value, key, source, where)
    return resolved


def _resolve_var(value: EnvVar, key: str, source: Mapping[str, str], where: str) -> str:
    return resolve_var(value, source, f"{where}.{key}", destination=key)


def resolve_var(
    value: EnvVar, source: Mapping[str, str], where: str, *, destination: str | None = None
) -> str:
    """``env.var(...)``'s value: the variable (or its ``destination`` key), else the default,
    then mapped. ``where`` names it in errors; values are never printed."""
    selector = _lookup(source, value.name, destination or value.name)
    if selector is None:
        selector = value.default
    if selector is None:
        raise PipelineError(
            "ASYNC_PIPELINE_ENV_MISSING",
            f"{where}: variable {value.name} is not set and has no default",
            path=where,
            hint=f"export {value.name}, or give it one: env.var({value.name!r}, default=...)",
        )
    if value.mapping is None:
        return selector
    if selector in value.mapping:
        return value.mapping[selector]
    if selector in value.mapping.values():  # already the rendered value (destination key)
        return selector
    raise PipelineError(
        "ASYNC_PIPELINE_ENV_UNMAPPED",
        f"{where}: the value of {value.name} is not one of " + ", ".join(sorted(value.mapping)),
        path=where,
        hint=f"set {value.name} to one of those, or add its value to the mapping",
    )

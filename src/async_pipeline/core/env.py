"""Environment values: literals, ``env.secret(...)`` and ``env.var(...)``.

Declaring a value never reads ``os.environ``: resolution happens in the runner, at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from async_pipeline.core._validate import (
    env_name,
    expect_mapping,
    expect_str,
    invalid,
    join,
    reject_unknown,
)

__all__ = ["EnvSecret", "EnvValue", "EnvVar", "env", "normalize_env"]


@dataclass(frozen=True, slots=True)
class EnvSecret:
    """A secret read from the source variable ``name`` at run time; never shown."""

    name: str


@dataclass(frozen=True, slots=True)
class EnvVar:
    """A variable read from ``name``; optionally defaulted and mapped to runtime values."""

    name: str
    default: str | None = None
    mapping: Mapping[str, str] | None = None


EnvValue = str | EnvSecret | EnvVar


class _Env:
    """The ``env`` helper namespace: ``env.secret(name)`` and ``env.var(name, ...)``."""

    def secret(self, name: str) -> EnvSecret:
        """A secret from the variable ``name`` (GitHub: ``${{ secrets.NAME }}``)."""
        return EnvSecret(env_name(name, "env.secret"))

    def var(
        self,
        name: str,
        mapping: Mapping[str, str] | None = None,
        *,
        default: str | None = None,
        **unknown: object,
    ) -> EnvVar:
        """A variable from ``name``.

        ``env.var("N", default="dev")`` reads N or uses "dev". With a mapping,
        ``env.var("N", {"prod": "...", "dev": "..."}, default="dev")`` reads N (or the
        default selector) and maps it to the runtime value.
        """
        reject_unknown(unknown, ("name", "mapping", "default"), "env.var", "env.var()")
        checked = env_name(name, "env.var")
        if default is not None:
            expect_str(default, "env.var.default", allow_empty=True)
        values: dict[str, str] | None = None
        if mapping is not None:
            raw = expect_mapping(mapping, "env.var.mapping")
            if not raw:
                raise invalid("env.var.mapping", "a non-empty mapping", mapping)
            values = {
                k: expect_str(v, join("env.var.mapping", k), allow_empty=True)
                for k, v in raw.items()
            }
            if default is not None and default not in values:
                raise invalid(
                    "env.var.default",
                    "one of the mapping's keys (" + ", ".join(sorted(values)) + ")",
                    default,
                )
        return EnvVar(checked, default, values)


env = _Env()


def normalize_env(value: object, path: str) -> dict[str, EnvValue]:
    """Check an ``env={...}`` mapping: variable-name keys, literal/secret/var values."""
    raw: Mapping[str, Any] = expect_mapping(value, path)
    result: dict[str, EnvValue] = {}
    for key, item in raw.items():
        env_name(key, join(path, key))
        if not isinstance(item, str | EnvSecret | EnvVar):
            raise invalid(join(path, key), "a string, env.secret(...) or env.var(...)", item)
        result[key] = item
    return result

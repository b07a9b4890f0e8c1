"""Task steps and directives: ``sh``, deferred ``sh``, function steps, ``agent``, ``depends_on``.

Every constructor here only records what was declared. Nothing is formatted lazily,
called, or looked up in the environment.
"""

from __future__ import annotations

import inspect
import re
import shlex
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from async_pipeline.core._validate import (
    MISSING,
    describe,
    expect_str,
    invalid,
    not_reserved,
    reject_unknown,
    repo_relative_pattern,
    require,
)
from async_pipeline.core.env import EnvVar
from async_pipeline.errors import DefinitionError

__all__ = [
    "AgentStep",
    "DeferredShell",
    "DependsOn",
    "FunctionStep",
    "Shell",
    "Step",
    "agent",
    "depends_on",
    "sh",
]


@dataclass(frozen=True, slots=True)
class Shell:
    """A shell command run from the task's working directory."""

    command: str


@dataclass(frozen=True, slots=True)
class DeferredShell:
    """``sh(lambda ctx: sh(...))``: the callback is called only when the step runs."""

    callback: Callable[..., Any]


@dataclass(frozen=True, slots=True)
class FunctionStep:
    """A Python callable ``fn(ctx)``, sync or async, run in-process by the runner."""

    function: Callable[..., Any]


@dataclass(frozen=True, slots=True)
class AgentStep:
    """Pipe ``prompt`` to the agent profile ``use``; optionally land stdout at ``stdout_to``."""

    use: str | EnvVar
    prompt: str
    stdout_to: str | None = None


@dataclass(frozen=True, slots=True)
class DependsOn:
    """The ``depends_on(...)`` directive, lifted into the task's dependencies."""

    tasks: tuple[str, ...]


Step = Shell | DeferredShell | FunctionStep | AgentStep


class _QuotingFormatter(string.Formatter):
    """Formats ``sh("cmd {x}", x=value)`` with every interpolated value shell-quoted."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return shlex.quote(super().format_field(value, format_spec))


def sh(command: str | Callable[..., Any], /, **values: str | int | Path) -> Shell | DeferredShell:
    """A shell step.

    ``sh("pnpm build")`` runs the text as written. With keyword values,
    ``sh("pnpm add {dir}", dir=path)`` interpolates each value shell-quoted (write ``{{``
    for a literal brace). ``sh(lambda ctx: sh(...))`` defers building the command until
    the step runs, for values known only then.
    """
    if callable(command):
        if values:
            raise invalid("sh", "no keyword values with a deferred callback", values)
        return DeferredShell(command)
    text = expect_str(command, "sh")
    if not values:
        return Shell(text)
    for key, value in values.items():
        if not isinstance(value, str | int | Path) or isinstance(value, bool):
            raise invalid(f"sh.{key}", "a string, integer or path", value)
    try:
        command = _QuotingFormatter().format(text, **values)
    except (KeyError, IndexError) as exc:
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_VALUE",
            f"sh: placeholder {exc} in {text!r} has no keyword value "
            "(pass it as sh(..., name=value), or write {{ and }} for literal braces)",
            path="sh",
        ) from None
    except ValueError as exc:
        raise invalid("sh", f"a valid format string ({exc})", text) from None
    except (AttributeError, TypeError) as exc:
        raise invalid("sh", f"placeholders that each name a keyword value ({exc})", text) from None
    # A value no placeholder uses is almost always a misspelt name: say so, not drop it.
    reject_unknown(values, _placeholders(text), "sh", "sh() value")
    return Shell(command)


def _placeholders(text: str) -> set[str]:
    """Names that ``{name}`` fields of a format string use (format specs included)."""
    found: set[str] = set()
    for _, field, spec, _ in string.Formatter().parse(text):
        if field is not None:
            found.add(re.split(r"[.\[]", field, maxsplit=1)[0])
        if spec and "{" in spec:
            found |= _placeholders(spec)
    return found


def agent(
    *,
    use: str | EnvVar = MISSING,
    prompt: str = MISSING,
    stdout_to: str | None = None,
    **unknown: object,
) -> AgentStep:
    """An agent step: ``prompt`` goes to the profile ``use`` (a name or ``env.var(...)``).

    ``stdout_to`` lands the agent's stdout as a file relative to the task's directory.
    """
    reject_unknown(unknown, ("use", "prompt", "stdout_to"), "agent", "agent()")
    require(use, "agent.use", "an agent profile name or env.var(...)")
    require(prompt, "agent.prompt", "the prompt text")
    if not isinstance(use, EnvVar):
        expect_str(use, "agent.use")
    expect_str(prompt, "agent.prompt")
    if stdout_to is not None:
        repo_relative_pattern(stdout_to, "agent.stdout_to")
        if stdout_to.startswith("!") or any(c in stdout_to for c in "*?["):
            raise invalid("agent.stdout_to", "a plain relative file path", stdout_to)
        not_reserved(
            stdout_to, "agent.stdout_to", "land the agent's stdout elsewhere, e.g. 'reports/x.md'"
        )
        # "." or "out/" name a directory: the runner would fail to write one, or write a
        # file where the author meant a folder.
        if stdout_to.replace("\\", "/").split("/")[-1] in ("", "."):
            raise DefinitionError(
                "ASYNC_PIPELINE_INVALID_PATH",
                f"agent.stdout_to: {stdout_to!r} names a directory, not a file; give a plain "
                "relative file path, e.g. 'reports/x.md'",
                path="agent.stdout_to",
            )
    return AgentStep(use, prompt, stdout_to)


def depends_on(*tasks: str) -> DependsOn:
    """A directive adding dependencies to the task it is listed in."""
    if not tasks:
        raise invalid("depends_on", "at least one task id", tasks)
    return DependsOn(tuple(expect_str(t, f"depends_on[{i}]") for i, t in enumerate(tasks)))


def callable_location(fn: Callable[..., Any], root: Path | None) -> str | None:
    """``file:line`` where a callable was defined, without calling it."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return None
    file = Path(code.co_filename)
    if root is not None:
        try:
            file = file.resolve().relative_to(root.resolve())
        except ValueError:
            pass
    return f"{file.as_posix()}:{code.co_firstlineno}"


def callable_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else describe(fn)


def is_async_callable(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(inspect.unwrap(fn))

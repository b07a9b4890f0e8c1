"""Small checks shared by every declaration: each names the path of what it rejects."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from async_pipeline.errors import DefinitionError

_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h)\Z")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])([A-Z])")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# Task ids name files (logs, baselines, context packs): no separators, no control characters.
_BAD_NAME_CHAR = re.compile(r"[:/\\\s\x00-\x1f\x7f-\x9f]")
TASK_NAME_RULE = (
    "a task name without ':', '/', '\\', whitespace, control characters or empty '.' parts"
)
_GLOB_CHARS = "*?["
# Directories of a repository that belong to someone else: never a task's to write.
RESERVED_DIRS = {
    ".async": "async-pipeline (its run records and caches)",
    ".git": "git (the repository itself)",
}


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


# The default of a keyword that was not given. Required helper keywords default to it too,
# so that a typo in one is reported as an unknown field (with the nearest name), not a
# TypeError about the keyword it displaced.
MISSING: Any = _Missing()


def join(path: str, key: str) -> str:
    """Extend a dotted path; the root path is the empty string."""
    return f"{path}.{key}" if path else key


def join_key(path: str, key: str) -> str:
    """``join``, except that a key holding a '.' or a control character is shown quoted,
    ``tasks['a.b']``, so it cannot be mistaken for nested keys (or garble the output)."""
    return join(path, key) if "." not in key and key.isprintable() else f"{path}[{key!r}]"


def is_task_name(name: str) -> bool:
    """Whether ``name`` may be a task name or a group name (see ``TASK_NAME_RULE``)."""
    return not _BAD_NAME_CHAR.search(name) and "" not in name.split(".")


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The valid name a typo most likely meant, if any is close enough."""
    options = sorted(candidates)
    snake = _CAMEL_BOUNDARY.sub(r"_\1", name).lower()
    if snake != name and snake in options:
        return snake
    matches = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return matches[0] if matches else None


def reject_unknown(fields: Iterable[str], known: Iterable[str], path: str, what: str) -> None:
    """Raise ASYNC_PIPELINE_UNKNOWN_FIELD for the first field not in ``known``."""
    known_set = set(known)
    for field in fields:
        if field not in known_set:
            guess = nearest(field, known_set)
            hint = f'did you mean "{guess}"?' if guess else None
            raise DefinitionError(
                "ASYNC_PIPELINE_UNKNOWN_FIELD",
                f'unknown {what} field "{join(path, field)}"; valid fields: '
                + ", ".join(sorted(known_set)),
                path=join(path, field),
                hint=hint,
            )


def require(value: object, path: str, expected: str) -> None:
    """Raise ASYNC_PIPELINE_INVALID_VALUE when a required keyword was not given."""
    if value is MISSING:
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_VALUE", f"{path} is required: {expected}", path=path
        )


def invalid(path: str, expected: str, value: object) -> DefinitionError:
    """The error for a value of the wrong type or shape."""
    return DefinitionError(
        "ASYNC_PIPELINE_INVALID_VALUE",
        f"{path or 'pipeline'}: expected {expected}, got {describe(value)}",
        path=path,
    )


def describe(value: object) -> str:
    """A short, value-safe description of what the user passed."""
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, int | float):
        return f"number {value}"
    if value is None:
        return "None"
    return type(value).__name__


def expect_str(value: object, path: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value):
        raise invalid(path, "a non-empty string" if not allow_empty else "a string", value)
    return value


def expect_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(path, "True or False", value)
    return value


def expect_int(value: object, path: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(path, f"an integer >= {minimum}", value)
    return value


def expect_str_list(value: object, path: str, *, allow_single: bool = True) -> tuple[str, ...]:
    """A string or a list/tuple of non-empty strings, as a tuple."""
    if allow_single and isinstance(value, str):
        return (expect_str(value, path),)
    if not isinstance(value, list | tuple):
        raise invalid(path, "a list of strings", value)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:  # the item's path is built only to report it
            expect_str(item, f"{path}[{i}]")
    return tuple(value)


def expect_mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid(path, "a mapping (dict)", value)
    for key in value:
        if not isinstance(key, str) or not key:
            raise invalid(path, "a mapping with non-empty string keys", key)
    return value


def expect_choice(value: object, path: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise invalid(path, "one of " + ", ".join(repr(c) for c in options), value)
    return value


def parse_duration(value: object, path: str, *, allow_zero: bool = False) -> int:
    """Milliseconds from an int or a duration such as ``500ms``, ``30s``, ``5m``, ``1h``.

    A duration must be positive; ``allow_zero`` (a delay) accepts zero as well.
    """
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        amount: float = value
        ms = value
        shown = str(value)
    elif match:
        amount = float(match.group(1))
        ms = round(amount * _UNIT_MS[match.group(2)])
        shown = describe(value)
    else:
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_DURATION",
            f"{path}: expected milliseconds or a duration like 500ms, 30s, 5m, 1h; got "
            f"{describe(value)}",
            path=path,
        )
    if ms > 0 or (allow_zero and ms == 0):
        return ms
    if allow_zero:
        problem = "a delay must be 0 or positive"
    elif amount > 0:
        problem = "a duration must be at least 1ms"
    else:
        problem = "a duration must be positive"
    raise DefinitionError(
        "ASYNC_PIPELINE_INVALID_DURATION", f"{path}: {problem}, got {shown}", path=path
    )


def repo_relative_pattern(value: object, path: str) -> str:
    """A glob or path that stays inside the repository (an optional leading ``!`` excludes)."""
    text = expect_str(value, path)
    body = text[1:] if text.startswith("!") else text
    parts = body.replace("\\", "/").split("/")
    if body.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", body) or ".." in parts:
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_PATH",
            f"{path}: {text!r} must be relative to the repository and must not contain '..'",
            path=path,
        )
    if not body:
        raise invalid(path, "a non-empty path or glob", value)
    return text


def segments(text: str) -> list[str]:
    """A relative path's segments without empty and '.' ones: ``./a//b`` is ``a/b``."""
    return [part for part in text.replace("\\", "/").split("/") if part not in ("", ".")]


def reserved_dir(text: str) -> str | None:
    """``.async`` or ``.git`` when the literal base of a path or glob starts with one.

    Case is ignored: on a case-insensitive filesystem ``.GIT`` is ``.git``.
    """
    parts = segments(text)
    if not parts or any(c in parts[0] for c in _GLOB_CHARS):
        return None
    first = parts[0].casefold()
    return first if first in RESERVED_DIRS else None


def not_reserved(text: str, path: str, fix: str) -> str:
    """Raise ASYNC_PIPELINE_INVALID_PATH when ``text`` points into ``.async/`` or ``.git/``."""
    found = reserved_dir(text)
    if found is not None:
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_PATH",
            f"{path}: {text!r} points into {found}/, which belongs to {RESERVED_DIRS[found]}; "
            + fix,
            path=path,
        )
    return text


def env_name(value: object, path: str) -> str:
    text = expect_str(value, path)
    if not ENV_NAME.match(text):
        raise invalid(path, "an environment variable name (letters, digits, _)", value)
    return text

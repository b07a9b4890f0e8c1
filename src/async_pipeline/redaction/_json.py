"""Redacting JSON-ready data (records, MCP responses) one value at a time."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias, cast

__all__ = ["JSONValue", "redact_json_value"]

JSONValue: TypeAlias = "dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None"
"""JSON data as :meth:`Redactor.redact_json` returns it."""

_MASK_TEXT = "***"


def redact_json_value(value: object, redact_text: Callable[[str], str] | None) -> JSONValue:
    """Return a redacted copy of ``value``; with no ``redact_text``, ``value`` itself.

    Raises ``TypeError`` for anything that is not JSON-ready (bytes, sets, arbitrary objects):
    passing such a value through unchanged could leak it when a serializer later stringifies it.
    """
    if redact_text is None:
        return cast("JSONValue", value)
    return _walk(value, redact_text)


def _walk(value: object, redact_text: Callable[[str], str]) -> JSONValue:
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        # A numeric secret (a PIN, an account number) is written as digits by any serializer.
        text = repr(value)
        return _MASK_TEXT if redact_text(text) != text else value
    if isinstance(value, Mapping):
        return _walk_mapping(value, redact_text)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray | memoryview):
        return [_walk(item, redact_text) for item in value]
    raise TypeError(f"redact_json takes JSON-ready data, not {type(value).__name__}")


def _walk_mapping(
    value: Mapping[object, object], redact_text: Callable[[str], str]
) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"redact_json takes string keys, not {type(key).__name__}")
        masked = redact_text(key)
        # Two keys masked to the same text must not silently overwrite each other's values.
        unique, number = masked, 2
        while unique in out:
            unique, number = f"{masked} ({number})", number + 1
        out[unique] = _walk(item, redact_text)
    return out

"""A small deterministic YAML emitter for generated workflows.

Only what a workflow needs: mappings (insertion order kept), lists, strings, booleans,
integers and ``None``. Any string YAML could read as something else (a number, a boolean,
``null``, an anchor, an expression such as ``${{ ... }}``) is written double-quoted, with
escapes for what YAML does not allow raw, and reads back unchanged. No runtime dependency.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Commented", "dump", "plain"]

# Plain (unquoted) only when nothing in YAML 1.1 or 1.2 could mistake the text for
# another type or for syntax: a letter first, then a conservative set of characters.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./@-]*\Z")
_RESERVED = frozenset(
    word
    for base in ("y", "n", "yes", "no", "on", "off", "true", "false", "null")
    for word in (base, base.upper(), base.capitalize())
)
# GitHub's own top-level key; every workflow writes it plain.
_PLAIN_KEYS = frozenset({"on"})


@dataclass(frozen=True, slots=True)
class Commented:
    """A scalar followed by a ``# comment`` on the same line (e.g. a pinned SHA's version)."""

    value: str
    comment: str


def plain(value: object) -> object:
    """``value`` with every :class:`Commented` replaced by its bare value (the JSON twin)."""
    if isinstance(value, Commented):
        return value.value
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _printable(code: int) -> bool:
    # Characters YAML allows raw in a stream (YAML 1.2, 5.1), less the ones a reader folds
    # as line breaks inside a quoted scalar (NEL, LS, PS) and the byte-order mark.
    if code in (0x85, 0x2028, 0x2029, 0xFEFF):
        return False
    return (
        0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _quoted(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _printable(code):
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Commented):
        return f"{_scalar(value.value)} # {value.comment}"
    if isinstance(value, str):
        if _PLAIN.match(value) and value not in _RESERVED:
            return value
        return _quoted(value)
    raise TypeError(f"cannot emit {type(value).__name__} as YAML")


def _key(key: str) -> str:
    return key if key in _PLAIN_KEYS else _scalar(key)


def _is_block(value: object) -> bool:
    return isinstance(value, Mapping | list | tuple) and len(value) > 0


def _empty(value: object) -> str:
    return "{}" if isinstance(value, Mapping) else "[]"


def _lines(value: object, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _is_block(item):
                lines.append(f"{pad}{_key(key)}:")
                lines.extend(_lines(item, indent + 1))
            elif isinstance(item, Mapping | list | tuple):
                lines.append(f"{pad}{_key(key)}: {_empty(item)}")
            else:
                lines.append(f"{pad}{_key(key)}: {_scalar(item)}")
        return lines
    assert isinstance(value, Sequence)
    for item in value:
        if isinstance(item, Mapping) and item:
            # The first key shares the dash's line; the rest align under it.
            nested = _lines(item, indent + 1)
            nested[0] = f"{pad}- {nested[0].lstrip()}"
            lines.extend(nested)
        elif _is_block(item):
            lines.append(f"{pad}-")
            lines.extend(_lines(item, indent + 1))
        elif isinstance(item, Mapping | list | tuple):
            lines.append(f"{pad}- {_empty(item)}")
        else:
            lines.append(f"{pad}- {_scalar(item)}")
    return lines


def dump(document: Mapping[str, object], *, header: Sequence[str] = ()) -> str:
    """Render ``document`` as block YAML, preceded by ``header`` lines as comments."""
    lines = [f"# {line}" if line else "#" for line in header]
    lines.extend(_lines(document, 0) if document else ["{}"])
    return "\n".join(lines) + "\n"

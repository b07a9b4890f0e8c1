"""Generated files on disk: what each should contain, whether it does, and writing it.

Shared by the GitHub workflow sync and task sync: each produces ``Managed`` files, and
``list``/``generate``/``check`` treat them alike.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Managed", "diff", "status", "write"]


@dataclass(frozen=True, slots=True)
class Managed:
    """One generated file: its path as shown to users, where it lives, and its content."""

    label: str
    path: Path
    expected: str


def _current(file: Managed) -> str | None:
    try:
        return file.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def status(file: Managed) -> str:
    """``current``, ``stale`` or ``missing``."""
    actual = _current(file)
    if actual is None:
        return "missing"
    return "current" if actual == file.expected else "stale"


def diff(file: Managed) -> str:
    """A unified diff from the file on disk to what it should be; empty when current."""
    actual = _current(file)
    if actual == file.expected:
        return ""
    before = [] if actual is None else actual.splitlines(keepends=True)
    lines = difflib.unified_diff(
        before,
        file.expected.splitlines(keepends=True),
        fromfile=f"a/{file.label}" if actual is not None else "/dev/null",
        tofile=f"b/{file.label}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def write(file: Managed) -> bool:
    """Write the file if it differs (temp file + rename: never half-written); True if it did."""
    if _current(file) == file.expected:
        return False
    file.path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{file.path.name}.", dir=file.path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(file.expected)
        os.replace(temporary, file.path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True

"""Generated files on disk: what each should contain, whether it does, and writing it.

Shared by the GitHub workflow sync and task sync: each produces ``Managed`` files, and
``list``/``generate``/``check`` treat them alike. A generated file is compared byte for
byte (a workflow whose line endings were converted no longer has the lock's hash).
"""

from __future__ import annotations

import difflib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from async_pipeline.errors import PipelineError

__all__ = ["Managed", "diff", "status", "write"]


@dataclass(frozen=True, slots=True)
class Managed:
    """One generated file: its path as shown to users, where it lives, and its content.

    ``root`` is the directory the file must stay inside once symlinks are followed
    (the project root); ``None`` skips that check.
    """

    label: str
    path: Path
    expected: str
    root: Path | None = None


def _path_error(file: Managed, problem: str) -> PipelineError:
    return PipelineError(
        "ASYNC_PIPELINE_INVALID_PATH",
        f"{file.label}: {problem}",
        path=file.label,
        hint="choose another path inside the repository",
    )


def _checked(file: Managed) -> Path:
    from async_pipeline.runner._files import resolves_inside

    if file.root is not None and not resolves_inside(file.path, file.root):
        raise _path_error(file, "leads out of the repository through a symbolic link")
    if file.path.is_dir():
        raise _path_error(file, "is a directory; a generated file needs a file path")
    return file.path


def _current(file: Managed) -> bytes | None:
    try:
        return _checked(file).read_bytes()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise _path_error(file, "lies under a file, where a directory should be") from None


def status(file: Managed) -> str:
    """``current``, ``stale`` or ``missing``."""
    actual = _current(file)
    if actual is None:
        return "missing"
    return "current" if actual == file.expected.encode() else "stale"


def diff(file: Managed) -> str:
    """A unified diff from the file on disk to what it should be; empty when current."""
    raw = _current(file)
    if raw == file.expected.encode():
        return ""
    actual = None if raw is None else raw.decode("utf-8", errors="replace")
    before = [] if actual is None else actual.splitlines(keepends=True)
    lines = difflib.unified_diff(
        before,
        file.expected.splitlines(keepends=True),
        fromfile=f"a/{file.label}" if actual is not None else "/dev/null",
        tofile=f"b/{file.label}",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    if actual is not None and "\r\n" in actual and actual.replace("\r\n", "\n") == file.expected:
        # The diff shows every line changed but looks empty: say what differs.
        text = f"{file.label}: line endings differ (CRLF on disk, LF generated)\n" + text
    return text


def write(file: Managed) -> bool:
    """Write the file if it differs (temp file + rename: never half-written); True if it did.

    An existing file keeps its permission bits; a new one gets ``0o666`` less the umask,
    as any other file the user creates.
    """
    data = file.expected.encode()
    if _current(file) == data:
        return False
    file.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(file.path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    temporary = file.path.with_name(f".{file.path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: never write through something planted at the temporary name. The kernel
    # applies the umask to the 0o666.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, file.path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return True

"""Landing an agent's stdout at ``stdout_to``: inside the task's directory, or not at all.

The agent ran in that directory and may have changed it (``rm -rf out; ln -s /elsewhere out``),
so nothing checked before it ran is trusted when the file is written. The path is walked one
directory at a time from a descriptor of the task's directory: each step opens the next
directory relative to the one before (``dir_fd``), missing ones are created the same way, and a
symbolic link is followed only when the directory it opens lies inside the task's directory
(checked on the open descriptor by walking ``..``, so swapping the link afterwards changes
nothing). The data goes to a new temporary file in that directory (``O_EXCL | O_NOFOLLOW``)
that is renamed over the name: readers see the old file or the new one, and a symbolic link
already at the name is replaced, never written through.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from async_pipeline.core._validate import segments

__all__ = ["LandingError", "check_destination", "land"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# '..' steps at most when proving a directory lies inside the task's: deeper trees are refused.
_MAX_DEPTH = 256


class LandingError(Exception):
    """``stdout_to`` cannot be written safely; ``message`` says what is in the way."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_destination(cwd: Path, relative: str) -> None:
    """Before the agent runs: refuse a ``stdout_to`` that the directory already rules out
    (a file or an outward symbolic link where a directory should be, a directory at the name).
    Creates nothing; :func:`land` checks again when it writes."""
    with _parent(cwd, relative, create=False) as (parent, name):
        if parent is not None:
            _check_name(parent, name, relative)


def land(cwd: Path, relative: str, data: bytes) -> None:
    """Write ``data`` at ``relative`` (a ``stdout_to`` path) under ``cwd``, atomically, never
    outside ``cwd``; raises :class:`LandingError` instead of writing anywhere else."""
    with _parent(cwd, relative, create=True) as (parent, name):
        assert parent is not None
        _check_name(parent, name, relative)
        temporary = f".{name[:64]}.{secrets.token_hex(6)}.agent"
        try:
            handle = os.open(temporary, _FILE_FLAGS, 0o666, dir_fd=parent)
            try:
                with open(handle, "wb", closefd=False) as stream:
                    stream.write(data)
            finally:
                os.close(handle)
            os.replace(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=parent)
            raise LandingError(
                f"stdout_to {relative!r} could not be written: {exc.strerror or exc}"
            ) from None


@contextlib.contextmanager
def _parent(cwd: Path, relative: str, *, create: bool) -> Iterator[tuple[int | None, str]]:
    """A descriptor of the directory that holds ``relative``'s file, and the file's name.

    Without ``create`` the descriptor is None when a directory on the way does not exist yet.
    """
    parts = segments(relative)
    if not parts or ".." in parts:
        raise LandingError(f"stdout_to {relative!r} is not a file path inside the task's directory")
    *directories, name = parts
    try:
        base = os.open(cwd, _DIR_FLAGS)
    except OSError as exc:
        raise LandingError(
            f"stdout_to {relative!r}: the task's directory cannot be opened ({exc.strerror})"
        ) from None
    current = base
    try:
        home = os.fstat(base)
        for depth, part in enumerate(directories, start=1):
            shown = "/".join(directories[:depth])
            child = _open_directory(current, part, shown, relative, home, create=create)
            if current != base:
                os.close(current)
            current = base if child is None else child
            if child is None:
                yield None, name
                return
        yield current, name
    finally:
        if current != base:
            os.close(current)
        os.close(base)


def _open_directory(
    parent: int, part: str, shown: str, relative: str, home: os.stat_result, *, create: bool
) -> int | None:
    """Open ``part`` in ``parent`` as a directory inside ``home``; None if it is missing and
    ``create`` is off. Raises :class:`LandingError` naming what is in the way."""
    try:
        return os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=parent)
    except FileNotFoundError:
        if not create:
            return None
    except OSError:
        return _open_other(parent, part, shown, relative, home)
    try:
        os.mkdir(part, 0o777, dir_fd=parent)
    except FileExistsError:
        pass  # made meanwhile: what it is decides below
    except OSError as exc:
        raise LandingError(
            f"stdout_to {relative!r}: cannot create directory {shown!r} ({exc.strerror})"
        ) from None
    try:
        return os.open(part, _DIR_FLAGS | _NOFOLLOW, dir_fd=parent)
    except OSError:
        return _open_other(parent, part, shown, relative, home)


def _open_other(parent: int, part: str, shown: str, relative: str, home: os.stat_result) -> int:
    """``part`` exists but is not a plain directory: follow a symbolic link that stays inside
    ``home``; refuse anything else."""
    try:
        found = os.stat(part, dir_fd=parent, follow_symlinks=False)
    except OSError as exc:
        raise LandingError(f"stdout_to {relative!r}: {shown!r}: {exc.strerror}") from None
    if not stat.S_ISLNK(found.st_mode):
        what = "a file" if stat.S_ISREG(found.st_mode) else "not a directory"
        raise LandingError(f"stdout_to {relative!r}: {shown!r} is {what}, not a directory")
    outward = LandingError(
        f"stdout_to {relative!r}: {shown!r} is a symbolic link that leads out of the task's "
        "directory; the artifact is not written"
    )
    try:
        opened = os.open(part, _DIR_FLAGS, dir_fd=parent)
    except OSError:
        raise outward from None
    if not _inside(opened, home):
        os.close(opened)
        raise outward
    return opened


def _inside(directory: int, home: os.stat_result) -> bool:
    """Whether the open ``directory`` is ``home`` or lies below it, following ``..`` upward."""
    current = os.dup(directory)
    try:
        for _ in range(_MAX_DEPTH):
            here = os.fstat(current)
            if (here.st_dev, here.st_ino) == (home.st_dev, home.st_ino):
                return True
            above = os.open("..", _DIR_FLAGS, dir_fd=current)
            up = os.fstat(above)
            os.close(current)
            current = above
            if (up.st_dev, up.st_ino) == (here.st_dev, here.st_ino):
                return False  # the filesystem's root: home was not on the way
        return False
    finally:
        os.close(current)


def _check_name(parent: int, name: str, relative: str) -> None:
    """Refuse a directory where the file should go (a file or a symbolic link is replaced)."""
    try:
        found = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise LandingError(f"stdout_to {relative!r}: a file is in the way") from None
        raise LandingError(f"stdout_to {relative!r}: {exc.strerror}") from None
    if stat.S_ISDIR(found.st_mode):
        raise LandingError(
            f"stdout_to {relative!r} is an existing directory; name a file, "
            f"e.g. '{relative.rstrip('/')}/output.md'"
        )

"""Atomic writes under ``.async/``: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "read_inside",
    "read_json",
    "resolves_inside",
]


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write to a temporary file beside ``path``, then rename it into place.

    ``durable`` also flushes the data to disk before the rename, so the file survives a
    power loss; derived state that can be rebuilt (the stat cache, baselines) skips it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    options = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    atomic_write_bytes(path, orjson.dumps(data, option=options), durable=durable)


def read_json(path: Path) -> Any:
    """Parse a JSON file; raises ``OSError`` or ``orjson.JSONDecodeError``."""
    return orjson.loads(path.read_bytes())


def resolves_inside(path: str | os.PathLike[str], directory: str | os.PathLike[str]) -> bool:
    """Whether ``path``, with every symlink followed as it stands now, is within ``directory``.

    The check before writing on a user's behalf (cache restores, agent artifacts): a path
    that merely looks relative can still lead out through a symlinked directory.
    """
    real, base = os.path.realpath(path), os.path.realpath(directory)
    return real == base or real.startswith(base + os.sep)


def read_inside(path: Path, directory: Path, *, tail: int | None = None) -> tuple[bytes, int]:
    """The bytes of ``path`` (only the last ``tail`` if given) and its size; ``OSError``
    unless it is a regular file that really lies inside ``directory``. What inspection
    reads from ``.async/`` comes through here: a symlink planted there leads nowhere."""
    if not resolves_inside(path, directory):
        raise OSError(errno.EACCES, "it leads out of its directory (a symbolic link)")
    # Non-blocking, so a FIFO planted there is refused instead of waited on.
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
        found = os.fstat(handle.fileno())
        if not stat.S_ISREG(found.st_mode):
            raise OSError(errno.EINVAL, "it is not a regular file")
        if tail is None:
            return handle.read(), found.st_size
        handle.seek(max(0, found.st_size - tail))
        return handle.read(tail), found.st_size

"""Atomic writes under ``.async/``: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import orjson

__all__ = ["atomic_write_bytes", "atomic_write_json", "read_json", "resolves_inside"]


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

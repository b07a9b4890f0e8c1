"""What a cache store keeps, and the protocol every store implements.

An entry is published whole or not at all. A reader verifies what it reads: a
truncated, corrupt or half-written entry is a miss (and is removed), never a hit.
Output file contents are addressed by their sha256 digest, so a store can share
identical files between entries and check every byte it hands back.

A manifest is read as untrusted data: whoever can write to a shared Redis, or to a
``.async/cache`` that CI restores, can write one. Stores accept only outputs shaped as
they write them (:func:`outputs_from_manifest`); the engine then restores an output only
if :func:`restorable_path` holds and the task declares it (see ``CacheEngine._restore``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "ENTRY_FORMAT",
    "CacheStore",
    "Entry",
    "EntryTooLargeError",
    "OutputFile",
    "StoreError",
    "digest_bytes",
    "is_digest",
    "outputs_from_manifest",
    "restorable_path",
    "valid_mode",
]

ENTRY_FORMAT = 1
# An output's mode is its permission bits, as a store records them (``st_mode & 0o777``).
MODE_BITS = 0o777

_DIGEST = re.compile(r"[0-9a-f]{64}\Z")
# Backslashes (a separator on Windows), control characters, and lone surrogates (a name
# that is not UTF-8, which no manifest can carry) are never in a restorable path.
_UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]")
_DRIVE = re.compile(r"[A-Za-z]:")
# Restoring into these would plant files git or this project runs or trusts (a hook, a
# cache entry): ``.git`` at any depth (a submodule's too), ``.async`` at the top.
_GIT = ".git"
_ASYNC = ".async"


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StoreError(Exception):
    """A store could not be reached or written; the run goes on without it."""


class EntryTooLargeError(StoreError):
    """The entry is bigger than the store's size limit; nothing was stored."""


@dataclass(frozen=True)
class OutputFile:
    """One declared output of a task: where it goes, what it holds, its permission bits."""

    path: str  # relative to the project root, '/'-separated
    digest: str  # sha256 of the content
    size: int
    mode: int  # permission bits (0o755 for executables)


@dataclass(frozen=True)
class Entry:
    """A task's stored result: everything needed to replay it without running it."""

    key: str
    task_id: str
    created_at: float  # seconds since the epoch
    result: Mapping[str, Any]  # exitCode, durationMs, metadata
    outputs: tuple[OutputFile, ...]
    inputs: Mapping[str, str]  # relative path -> sha256: the inputs that produced it
    stdout: bytes = b""  # redacted when captured
    stderr: bytes = b""
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Output contents a store keeps inside the entry itself (path -> bytes), as read back;
    # ``read_output`` still checks them against their digests.
    inline: Mapping[str, bytes] = field(default_factory=dict)

    def manifest(self) -> dict[str, Any]:
        """The JSON-ready description of the entry (everything but file contents and logs)."""
        return {
            "format": ENTRY_FORMAT,
            "key": self.key,
            "taskId": self.task_id,
            "createdAt": self.created_at,
            "result": dict(self.result),
            "outputs": [
                {"path": o.path, "digest": o.digest, "size": o.size, "mode": o.mode}
                for o in self.outputs
            ],
            "logs": {"stdout": digest_bytes(self.stdout), "stderr": digest_bytes(self.stderr)},
            "extra": dict(self.extra),
        }


def is_digest(value: object) -> bool:
    """Whether ``value`` is a sha256 hex digest as :func:`digest_bytes` gives them."""
    return isinstance(value, str) and _DIGEST.match(value) is not None


def valid_mode(mode: object) -> bool:
    """Whether ``mode`` is permission bits as a store records them: an int in 0..0o777."""
    return type(mode) is int and 0 <= mode <= MODE_BITS


def restorable_path(path: str) -> bool:
    """Whether a restore may write ``path``: relative to the project root, '/'-separated
    and normalized (no empty, '.' or '..' segment, so no leading or trailing '/'), without
    backslashes or control characters, and neither inside ``.git/`` (at any depth) nor
    ``.async/``, whatever their case (a case-insensitive filesystem treats them alike).

    Linear in the length of the path: it runs on every output of every cache hit.
    """
    if not path or _UNSAFE_CHARACTER.search(path):
        return False
    parts = path.split("/")
    if _DRIVE.match(parts[0]) or parts[0].casefold() == _ASYNC:
        return False
    for part in parts:
        if part in ("", ".", "..") or part.casefold() == _GIT:
            return False
    return True


def outputs_from_manifest(items: object) -> tuple[OutputFile, ...]:
    """A manifest's ``outputs`` as a store writes them, else ``TypeError``/``ValueError``:
    a list of objects with a str ``path`` (each path once), a sha256 hex ``digest`` (it
    names a blob: never a path), a ``size`` >= 0 and a ``mode`` in 0..0o777.

    Whether a path may be restored, and for which task, is the engine's check.
    """
    if not isinstance(items, list):
        raise TypeError("outputs is not a list")
    outputs = []
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            raise TypeError("an output is not an object")
        path, digest, size, mode = item["path"], item["digest"], item["size"], item["mode"]
        if not isinstance(path, str) or path in seen:
            raise ValueError("an output path is not a string, or is listed twice")
        if not is_digest(digest):
            raise ValueError("an output digest is not a sha256 hex digest")
        if type(size) is not int or size < 0 or not valid_mode(mode):
            raise ValueError("an output size or mode is out of range")
        seen.add(path)
        outputs.append(OutputFile(path, digest, size, mode))
    return tuple(outputs)


class CacheStore(Protocol):
    """A place entries live. Implementations: file, memory, redis."""

    kind: str

    def get(self, key: str) -> Entry | None:
        """The entry under ``key`` if it exists and verifies (manifest and logs), else None.

        Output contents are verified when read with ``read_output``.
        """
        ...

    def read_output(self, entry: Entry, output: OutputFile) -> bytes | None:
        """The output's bytes if they match its digest, else None (and the entry is dropped)."""
        ...

    def put(self, entry: Entry, files: Mapping[str, Path]) -> None:
        """Publish ``entry`` atomically; ``files`` maps each output's path to its current file.

        Raises ``StoreError`` when the store cannot be written.
        """
        ...

    def delete(self, key: str) -> None: ...

    def touch(self, key: str) -> None:
        """Record a use of the entry (for ``gc --cache-days``)."""
        ...

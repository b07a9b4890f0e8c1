"""What a cache store keeps, and the protocol every store implements.

An entry is published whole or not at all. A reader verifies what it reads: a
truncated, corrupt or half-written entry is a miss (and is removed), never a hit.
Output file contents are addressed by their sha256 digest, so a store can share
identical files between entries and check every byte it hands back.
"""

from __future__ import annotations

import hashlib
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
]

ENTRY_FORMAT = 1


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

"""The memory store: entries live as long as the process (a long-lived server, a test session).

It keeps no file contents: a hit on a task with outputs is honoured only while the files
it produced are still on disk with the same digests (the engine checks them).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from async_pipeline.runner.cache.store import Entry, OutputFile

__all__ = ["MemoryStore"]

_SPACES: dict[str, dict[str, Entry]] = {}


class MemoryStore:
    kind = "memory"

    def __init__(self, space: str, ttl_ms: int | None = None) -> None:
        self._entries = _SPACES.setdefault(space, {})
        self.ttl_ms = ttl_ms

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.ttl_ms is not None and (time.time() - entry.created_at) * 1000 > self.ttl_ms:
            self._entries.pop(key, None)
            return None
        return entry

    def read_output(self, entry: Entry, output: OutputFile) -> bytes | None:
        return None

    def put(self, entry: Entry, files: Mapping[str, Path]) -> None:
        self._entries[entry.key] = entry

    def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    def touch(self, key: str) -> None:
        return None

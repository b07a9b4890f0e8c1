"""Task output capture: redacted as it arrives, kept as a bounded tail, stored at the end.

Every byte passes through the run's redaction stream first; only the redacted form is kept
in memory, echoed or written. Memory per stream stays within the cap plus one chunk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from async_pipeline.redaction import TRUNCATION_MARKER, Redactor
from async_pipeline.runner.records import (
    DEFAULT_MAX_LOG_BYTES,
    MIN_MAX_LOG_BYTES,
    max_log_bytes,
)

__all__ = [
    "DEFAULT_MAX_LOG_BYTES",
    "MIN_MAX_LOG_BYTES",
    "StreamCapture",
    "TaskOutput",
    "log_refs",
    "max_log_bytes",
]


class StreamCapture:
    """One output stream of one task."""

    def __init__(
        self, redactor: Redactor, cap: int, echo: Callable[[bytes], None] | None = None
    ) -> None:
        self._redaction = redactor.stream()
        self._cap = cap
        self._echo = echo
        self._chunks: deque[bytes] = deque()
        self._kept = 0
        self.total_bytes = 0
        self.dropped_bytes = 0

    def feed(self, chunk: bytes) -> None:
        self.total_bytes += len(chunk)
        self._keep(self._redaction.feed(chunk))

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        if self._echo is not None:
            self._echo(data)
        self._chunks.append(data)
        self._kept += len(data)
        if self._cap:
            while self._kept - len(self._chunks[0]) >= self._cap:
                dropped = self._chunks.popleft()
                self._kept -= len(dropped)
                self.dropped_bytes += len(dropped)

    def finish(self) -> list[bytes]:
        """Flush the redactor; the stored tail as chunks, led by a marker if it was cut.

        Chunks, not one joined buffer: joining would briefly double the memory the cap bounds.
        """
        self._keep(self._redaction.flush())
        if self._cap and self._kept > self._cap:
            excess = self._kept - self._cap
            self._chunks[0] = self._chunks[0][excess:]
            self._kept -= excess
            self.dropped_bytes += excess
        if self.dropped_bytes:
            return [TRUNCATION_MARKER, *self._chunks]
        return list(self._chunks)


class TaskOutput:
    """Both streams of a task; an ``OutputSink`` for executors."""

    def __init__(
        self,
        redactor: Redactor,
        cap: int,
        echo: Callable[[str, bytes], None] | None = None,
    ) -> None:
        out_echo = (lambda data: echo("stdout", data)) if echo else None
        err_echo = (lambda data: echo("stderr", data)) if echo else None
        self.out = StreamCapture(redactor, cap, out_echo)
        self.err = StreamCapture(redactor, cap, err_echo)

    def stdout(self, chunk: bytes) -> None:
        self.out.feed(chunk)

    def stderr(self, chunk: bytes) -> None:
        self.err.feed(chunk)

    def store(self, directory: Path, task_id: str) -> dict[str, list[bytes]]:
        """Write ``<task>.stdout.log`` / ``<task>.stderr.log`` (redacted tails), skipping empty
        streams: most tasks print nothing on one of them, and creating files is what costs.
        Returns each stream's stored chunks."""
        stored: dict[str, list[bytes]] = {}
        for name, capture in (("stdout", self.out), ("stderr", self.err)):
            chunks = capture.finish()
            stored[name] = chunks
            if any(chunks):
                directory.mkdir(parents=True, exist_ok=True)
                with open(directory / f"{task_id}.{name}.log", "wb") as handle:
                    handle.writelines(chunks)
        return stored


def log_refs(task_id: str, stored: Mapping[str, list[bytes]]) -> dict[str, str | None]:
    """A task result's ``logs``: each stream's file under the run directory, None if empty."""
    return {
        name: f"logs/{task_id}.{name}.log" if any(chunks) else None
        for name, chunks in stored.items()
    }

"""The run lock: one run at a time per project, held in ``.async/run.lock``.

The lock is an exclusive ``flock`` on the file, held for the whole run. The kernel drops
it when the holder exits, however it exits, so a crashed run's lock is reclaimed by the
next run with no cleanup and no race: taking a free lock is one atomic system call.
The file also records the holder (pid, process start time, run id) so error messages
and ``doctor`` can name it; a pid alone could have been reused by an unrelated process.
The file is never deleted: unlinking a locked path would let two runs lock two inodes.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from async_pipeline.errors import PipelineError

__all__ = ["LOCK_FILE", "RunLock", "lock_holder", "process_start_time"]

LOCK_FILE = Path(".async") / "run.lock"


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def lock_holder(root: Path) -> dict[str, Any] | None:
    """Who holds the lock, if anyone does right now."""
    path = root / LOCK_FILE
    if not path.exists():
        return None
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return _parse(handle.read())
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class RunLock:
    """``with RunLock(root, run_id):`` holds the project's run lock or raises RUN_ACTIVE."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.path = root / LOCK_FILE
        self.run_id = run_id
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _parse(os.pread(fd, 65536, 0))
            os.close(fd)
            who = f"pid {holder.get('pid', '?')}, run {holder.get('runId', '?')}"
            raise PipelineError(
                "ASYNC_PIPELINE_RUN_ACTIVE",
                f"another run holds {LOCK_FILE} ({who}); wait for it to finish",
                path=str(self.path),
            ) from None
        pid = os.getpid()
        record = {"pid": pid, "startTime": process_start_time(pid), "runId": self.run_id}
        os.ftruncate(fd, 0)
        os.pwrite(fd, orjson.dumps(record), 0)
        self._fd = fd

    def release(self) -> None:
        """Clear the holder record and drop the lock; a no-op unless this object holds it."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

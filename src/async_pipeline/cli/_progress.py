"""Progress and summaries for ``run`` / ``run-task``: plain lines for pipes, a live view
for terminals. No runner imports here: a run the job stamp finds up to date reports through
these without starting the runner."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from async_pipeline.cli import Output
from async_pipeline.core.paths import RUNS_DIR

if TYPE_CHECKING:
    from async_pipeline.runner.records import RunRecord, TaskResult

TAIL_LINES = 20


class Lines:
    """Plain progress for pipes and logs: one task-prefixed line per event."""

    def __init__(self, out: Output, echo: bool, cancel: Any) -> None:
        self.out = out
        self.echo = echo
        self.cancel = cancel
        self.broken = False
        self.total = 0
        self.done = 0
        self._partial: dict[tuple[str, str], bytes] = {}

    def _emit(self, text: str) -> None:
        if self.broken:
            return
        try:
            self.out.write(text.encode())
        except BrokenPipeError:
            self.broken = True
            self.cancel()

    def task_started(self, task_id: str) -> None:
        self._emit(f"[{task_id}] started\n")

    def task_finished(self, result: TaskResult) -> None:
        self.done += 1
        for key in [k for k in self._partial if k[0] == result.id]:
            rest = self._partial.pop(key)
            if rest:
                self._emit(f"[{result.id}] {rest.decode(errors='replace')}\n")
        self._emit(f"[{result.id}] {describe(result)} ({self.done}/{self.total})\n")

    def task_output(self, task_id: str, stream: str, data: bytes) -> None:
        if not self.echo:
            return
        key = (task_id, stream)
        buffered = self._partial.get(key, b"") + data
        *lines, rest = buffered.split(b"\n")
        self._partial[key] = rest
        if lines:
            prefix = f"[{task_id}] "
            self._emit("".join(prefix + line.decode(errors="replace") + "\n" for line in lines))


class Live(Lines):
    """Live view for terminals: finished tasks scroll, a status block redraws below them."""

    def __init__(self, out: Output, echo: bool, cancel: Any) -> None:
        super().__init__(out, echo, cancel)
        self.running: dict[str, float] = {}
        self.cached = 0
        self._drawn = 0

    def _clear(self) -> str:
        return f"\x1b[{self._drawn}F\x1b[J" if self._drawn else ""

    def _emit(self, text: str) -> None:
        super()._emit(self._clear() + text + self._status())

    def _status(self) -> str:
        now = time.monotonic()
        lines = [
            f"  {task}  {now - since:.1f}s"
            for task, since in sorted(self.running.items(), key=lambda i: i[1])[:8]
        ]
        more = len(self.running) - len(lines)
        if more > 0:
            lines.append(f"  ... and {more} more")
        header = f"{self.done}/{self.total} done, {len(self.running)} running"
        if self.cached:
            header += f", {self.cached} cached"
        # Each line fits the terminal: the redraw moves up by lines, so a line that wrapped
        # would leave a stale copy of itself behind on every frame.
        width = shutil.get_terminal_size().columns - 1
        block = [_fit(line, width) for line in (header, *lines)]
        self._drawn = len(block)
        return "\n".join(block) + "\n"

    def task_started(self, task_id: str) -> None:
        self.running[task_id] = time.monotonic()
        self._emit("")

    def task_finished(self, result: TaskResult) -> None:
        self.running.pop(result.id, None)
        self.cached += 1 if result.cache_hit else 0
        super().task_finished(result)

    def refresh(self) -> None:
        self._emit("")

    def close(self) -> None:
        if not self.broken and self._drawn:
            try:
                self.out.write(self._clear().encode())
            except BrokenPipeError:
                self.broken = True
            self._drawn = 0


def _fit(line: str, width: int) -> str:
    """``line`` cut to ``width`` columns with an ellipsis (a column per character: task ids
    and the status text are plain)."""
    if width < 4 or len(line) <= width:
        return line if width >= 4 else line[: max(width, 1)]
    return line[: width - 1] + "\u2026"


def describe(result: TaskResult) -> str:
    seconds = (result.duration_ms or 0) / 1000
    retried = f" after {result.attempts} attempts" if result.attempts > 1 else ""
    if result.status == "passed":
        extra = " (cached)" if result.cache_hit else ""
        return f"passed in {seconds:.2f}s{retried}{extra}"
    if result.status == "failed":
        code = f"exit {result.exit_code}" if result.exit_code is not None else "error"
        return f"FAILED ({code}) in {seconds:.2f}s{retried}"
    return result.status


def is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def safe(out: Output, text: str, *, err: bool = False) -> None:
    try:
        if err:
            out.stderr.write(text)
            out.stderr.flush()
        else:
            out.write(text.encode())
    except (BrokenPipeError, ValueError):
        pass


def summary(out: Output, record: RunRecord, cwd: Path, invoked: Path | None = None) -> None:
    """The run's closing lines. ``cwd``: the project root the run used; ``invoked``: where
    the command was typed, which the record's path is shown relative to (absolute when the
    project lies elsewhere)."""
    counts: dict[str, int] = {}
    for task in record.tasks:
        counts[task.status] = counts.get(task.status, 0) + 1
    cached = sum(1 for t in record.tasks if t.cache_hit)
    parts = [f"{n} {status}" for status, n in counts.items()]
    if cached:
        parts.append(f"{cached} cached")
    lines = [f"{record.job_id}: {record.status.upper()} ({', '.join(parts) or 'no tasks'})"]
    run_dir = cwd / RUNS_DIR / record.id
    for task in record.tasks:
        if task.status != "failed":
            continue
        lines.append("")
        lines.append(f"{task.id}: {task.error['message'] if task.error else 'failed'}")
        for stream in ("stdout", "stderr"):
            last = tail(run_dir / "logs" / f"{task.id}.{stream}.log")
            if last:
                lines.append(f"  last {stream} lines:")
                lines.extend(f"    {line}" for line in last)
    shown = run_dir / "execution.json"
    base = invoked or cwd
    lines.append(f"record: {shown.relative_to(base) if shown.is_relative_to(base) else shown}")
    lines.extend(f"warning: {warning}" for warning in record.warnings)
    out.write(("\n".join(lines) + "\n").encode())


def tail(path: Path) -> list[str]:
    try:
        data = path.read_bytes()[-16384:]
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-TAIL_LINES:]

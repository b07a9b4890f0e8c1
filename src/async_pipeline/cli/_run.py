"""``run`` and ``run-task``: execute with live progress, signals and the spec's exit codes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio

from async_pipeline.cli import EXIT_EPIPE, EXIT_FAILED, EXIT_OK, EXIT_SIGINT, Output
from async_pipeline.errors import PipelineError
from async_pipeline.runner.api import StopReason, execute_job
from async_pipeline.runner.records import RUNS_DIR

if TYPE_CHECKING:
    import argparse

    from async_pipeline.core.model import Pipeline
    from async_pipeline.runner.records import RunRecord, TaskResult

EXIT_SIGTERM = 143
_EXIT_FOR = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM, "EPIPE": EXIT_EPIPE}
TAIL_LINES = 20


class _Lines:
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
        self._emit(f"[{result.id}] {_describe(result)} ({self.done}/{self.total})\n")

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


class _Live(_Lines):
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
        block = [header, *lines]
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


def _describe(result: TaskResult) -> str:
    seconds = (result.duration_ms or 0) / 1000
    if result.status == "passed":
        extra = " (cached)" if result.cache_hit else ""
        retried = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        return f"passed in {seconds:.2f}s{retried}{extra}"
    if result.status == "failed":
        code = f"exit {result.exit_code}" if result.exit_code is not None else "error"
        return f"FAILED ({code}) in {seconds:.2f}s"
    return result.status


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def run(args: argparse.Namespace, pipeline: Pipeline, cwd: Path, out: Output) -> int:
    # The project is where pipeline.py lives: tasks run there and .async/ is kept there,
    # whichever directory --config was given from.
    if pipeline.config_path is not None:
        cwd = Path(pipeline.config_path).parent
    stop = StopReason()
    as_json = args.format == "json"
    state: dict[str, Any] = {}

    async def main() -> None:
        async with anyio.create_task_group() as group:

            def cancel(reason: str = "EPIPE") -> None:
                stop.reason = stop.reason or reason
                group.cancel_scope.cancel()

            reporter: _Lines | None = None
            if not as_json:
                live = _is_terminal(out.stdout)
                reporter = (_Live if live else _Lines)(out, args.echo, cancel)
                reporter.total = _task_count(pipeline, args)
                if isinstance(reporter, _Live):
                    group.start_soon(_ticker, reporter)
            group.start_soon(_signals, cancel)
            state["reporter"] = reporter
            try:
                state["record"] = await execute_job(
                    pipeline,
                    id=args.job if args.command == "run" else "",
                    task=args.task if args.command == "run-task" else None,
                    concurrency=args.concurrency,
                    force=args.force,
                    echo=args.echo,
                    cwd=cwd,
                    env=args.environment,
                    reporter=reporter,
                    stop=stop,
                )
            except PipelineError as exc:
                state["error"] = exc
            finally:
                if isinstance(reporter, _Live):
                    reporter.close()
                group.cancel_scope.cancel()

    anyio.run(main)
    if "error" in state:
        raise state["error"]
    if stop.reason is not None:
        if stop.reason != "EPIPE":
            _safe(
                out,
                f"async-pipeline: run interrupted by {stop.reason}; record finalized\n",
                err=True,
            )
        return _EXIT_FOR.get(stop.reason, EXIT_FAILED)
    record: RunRecord = state["record"]
    if as_json:
        out.json(record.to_json())
    else:
        _summary(out, record, cwd)
    return EXIT_OK if record.status == "passed" else EXIT_FAILED


def _task_count(pipeline: Pipeline, args: argparse.Namespace) -> int:
    from async_pipeline.core import graph

    targets = (
        pipeline.jobs[args.job].targets
        if args.command == "run" and args.job in pipeline.jobs
        else ((args.task,) if args.command == "run-task" and args.task in pipeline.tasks else ())
    )
    return len(graph.transitive_dependencies(pipeline, targets))


async def _ticker(view: _Live) -> None:
    while True:
        await anyio.sleep(0.2)
        view.refresh()


async def _signals(cancel: Any) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # run in-process from another thread: signals stay with the host program
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
        async for signum in received:
            cancel("SIGINT" if signum == signal.SIGINT else "SIGTERM")
            return


def _safe(out: Output, text: str, *, err: bool = False) -> None:
    try:
        if err:
            out.stderr.write(text)
            out.stderr.flush()
        else:
            out.write(text.encode())
    except (BrokenPipeError, ValueError):
        pass


def _summary(out: Output, record: RunRecord, cwd: Path) -> None:
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
            tail = _tail(run_dir / "logs" / f"{task.id}.{stream}.log")
            if tail:
                lines.append(f"  last {stream} lines:")
                lines.extend(f"    {line}" for line in tail)
    lines.append(f"record: {RUNS_DIR / record.id / 'execution.json'}")
    lines.extend(f"warning: {warning}" for warning in record.warnings)
    out.write(("\n".join(lines) + "\n").encode())


def _tail(path: Path) -> list[str]:
    try:
        data = path.read_bytes()[-16384:]
    except OSError:
        return []
    return data.decode(errors="replace").splitlines()[-TAIL_LINES:]

"""``run`` and ``run-task``: execute with live progress, signals and the spec's exit codes."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from async_pipeline.cli import EXIT_EPIPE, EXIT_FAILED, EXIT_OK, EXIT_SIGINT, Output
from async_pipeline.cli._progress import Lines, Live, is_terminal, safe, summary
from async_pipeline.errors import PipelineError
from async_pipeline.runner.api import StopReason, execute_job

if TYPE_CHECKING:
    import argparse

    from async_pipeline.core.model import Pipeline
    from async_pipeline.runner.records import RunRecord
    from async_pipeline.runner.stamp import Preflight

EXIT_SIGTERM = 143
_EXIT_FOR = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM, "EPIPE": EXIT_EPIPE}


def run(
    args: argparse.Namespace,
    pipeline: Pipeline,
    cwd: Path,
    out: Output,
    preflight: Preflight | None = None,
) -> int:
    # The project is where pipeline.py lives: tasks run there and .async/ is kept there,
    # whichever directory --config was given from.
    invoked = cwd
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

            reporter: Lines | None = None
            if not as_json:
                live = is_terminal(out.stdout)
                reporter = (Live if live else Lines)(out, args.echo, cancel)
                reporter.total = _task_count(pipeline, args)
                if isinstance(reporter, Live):
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
                    preflight=preflight,
                )
            except PipelineError as exc:
                state["error"] = exc
            finally:
                if isinstance(reporter, Live):
                    reporter.close()
                group.cancel_scope.cancel()

    anyio.run(main)
    if "error" in state:
        raise state["error"]
    if stop.reason is not None:
        if stop.reason != "EPIPE":
            safe(
                out,
                f"async-pipeline: run interrupted by {stop.reason}; record finalized\n",
                err=True,
            )
            if as_json and stop.record is not None:  # the record, as --format json promises
                out.json(stop.record.to_json())
        return _EXIT_FOR.get(stop.reason, EXIT_FAILED)
    record: RunRecord = state["record"]
    if as_json:
        out.json(record.to_json())
    else:
        summary(out, record, cwd, invoked)
    return EXIT_OK if record.status == "passed" else EXIT_FAILED


def _task_count(pipeline: Pipeline, args: argparse.Namespace) -> int:
    from async_pipeline.core import graph

    targets = (
        pipeline.jobs[args.job].targets
        if args.command == "run" and args.job in pipeline.jobs
        else ((args.task,) if args.command == "run-task" and args.task in pipeline.tasks else ())
    )
    return len(graph.transitive_dependencies(pipeline, targets))


async def _ticker(view: Live) -> None:
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

"""``run`` / ``run-task`` before ``pipeline.py`` loads: the job stamp's check (runner.stamp).

When the job's stamp proves every task up to date, the run is recorded and reported here,
with the run lock held, and neither ``pipeline.py`` nor the runner is imported. Otherwise
this hands the runner a :class:`Preflight`: the run id, the lock if it was taken, and the
tasks the stamp did prove, which the runner then skips.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from async_pipeline.cli import EXIT_FAILED, EXIT_OK, Output
from async_pipeline.cli._progress import Lines, Live, is_terminal, summary
from async_pipeline.core.paths import RUNS_DIR, resolve_config
from async_pipeline.errors import PipelineError
from async_pipeline.runner.stamp import (
    Preflight,
    StampCheck,
    check_stamp,
    record_proven,
    stamp_path,
)

__all__ = ["preflight", "run_command"]


def run_command(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    """``run`` / ``run-task``: done here if the job stamp proves it, else by the runner."""
    ready = preflight(args, cwd, out)
    if isinstance(ready, int):
        return ready  # every task proven up to date; the run is recorded
    from async_pipeline.cli import _run as run
    from async_pipeline.core.reload import load_recorded

    config = getattr(args, "config", None)
    if ready is None:
        from async_pipeline.core.loader import load_pipeline

        return run.run(args, load_pipeline(config, cwd=cwd), cwd, out)
    try:
        pipeline, ready.fingerprint = load_recorded(config, cwd)
        return run.run(args, pipeline, cwd, out, ready)
    finally:
        if ready.lock is not None:
            ready.lock.release()  # a no-op once the run has released it


def preflight(args: argparse.Namespace, cwd: Path, out: Output) -> int | Preflight | None:
    """An exit code if the run is already done; else what the runner should start from
    (None when there is no pipeline file: loading it reports that properly)."""
    from async_pipeline.runner.records import check_settings, new_run_id

    try:
        config = resolve_config(getattr(args, "config", None), cwd)
    except PipelineError:
        return None
    check_settings(args.environment)  # as the runner would, before anything is recorded
    root = config.parent
    job_id = args.job if args.command == "run" else f"task:{args.task}"
    run_id = new_run_id()
    if args.force or not stamp_path(root, job_id).is_file():
        return Preflight(run_id, config, checked=True)  # nothing there to check
    from async_pipeline.runner.lock import RunLock

    lock = RunLock(root, run_id)
    lock.acquire()
    try:
        check = check_stamp(root, job_id, config, args.environment)
        logs = _stored_logs(root, check) if check is not None and check.complete else None
        if check is None or logs is None:
            return Preflight(run_id, config, lock, check, checked=True)  # the runner unlocks
        code = _record(args, root, job_id, run_id, check, logs, out, cwd)
    except BaseException:
        lock.release()
        raise
    lock.release()
    return code


def _stored_logs(root: Path, check: StampCheck) -> dict[str, tuple[bytes, bytes]] | None:
    """The stored logs of the proven tasks that have any; None if one cannot be read."""
    noted = {task_id: note for task_id, note in check.tasks.items() if any(note["logs"])}
    if not noted:
        return {}
    from async_pipeline.runner.cache.file_store import read_entry_logs

    logs: dict[str, tuple[bytes, bytes]] = {}
    for task_id, note in noted.items():
        found = read_entry_logs(root / note["entry"][0], str(note["key"]))
        if found is None:
            return None
        logs[task_id] = found
    return logs


def _record(
    args: argparse.Namespace,
    root: Path,
    job_id: str,
    run_id: str,
    check: StampCheck,
    logs: dict[str, tuple[bytes, bytes]],
    out: Output,
    invoked: Path,
) -> int:
    """Record (and report) a run whose every task the stamp proved a cache hit.

    The record is written once, complete: there is no moment at which this run has done
    something a record should already show.
    """
    from async_pipeline.runner.records import (
        RunRecord,
        TaskResult,
        default_concurrency,
        keep_runs,
        now_iso,
        prune_runs,
        run_mode,
    )

    env = args.environment
    record = RunRecord(
        id=run_id,
        pipeline_name=check.pipeline_name,
        job_id=job_id,
        cwd=str(root),
        mode=run_mode(None, check.job_mode, env),
        concurrency=args.concurrency or default_concurrency(),
        force=False,
        tasks=[TaskResult(task_id) for task_id in check.order],
    )
    reporter: Lines | None = None
    if args.format != "json":
        reporter = (Live if is_terminal(out.stdout) else Lines)(out, args.echo, _no_cancel)
        reporter.total = len(record.tasks)
    run_dir = root / RUNS_DIR / run_id
    # Stored logs were redacted when stored; they only need the cap. Imported only if used.
    redactor, cap = None, 0
    if logs:
        from async_pipeline.redaction import Redactor
        from async_pipeline.runner.records import max_log_bytes

        redactor, cap = Redactor({}), max_log_bytes(env)
    for result in record.tasks:
        record_proven(
            result,
            check.tasks[result.id],
            logs.get(result.id),
            logs_dir=run_dir / "logs",
            redactor=redactor,
            max_log_bytes=cap,
            reporter=reporter,
        )
    record.status = "passed"
    record.finished_at = now_iso()
    record.write(run_dir)
    prune_runs(root, keep_runs(env), protect=run_id)
    if isinstance(reporter, Live):
        reporter.close()
    if args.format == "json":
        out.json(record.to_json())
    else:
        summary(out, record, root, invoked)
    return EXIT_OK if record.status == "passed" else EXIT_FAILED


def _no_cancel(reason: str = "") -> None:
    """Nothing to cancel: recording a proven run is a handful of writes."""

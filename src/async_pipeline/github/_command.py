"""What ``sync ...`` and ``github ...`` do, for the CLI's thin handlers to call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from async_pipeline.core.model import Pipeline
from async_pipeline.errors import PipelineError, sole_error
from async_pipeline.github import _files
from async_pipeline.github._files import Managed

if TYPE_CHECKING:
    import argparse

    from async_pipeline.cli import Output

__all__ = ["github", "project_root", "sync"]

EXIT_OK = 0
EXIT_FAILED = 1
# A run the user or the pipe interrupted stops the whole sequence with the run's own code.
_INTERRUPTED = (130, 141, 143)


def project_root(pipeline: Pipeline, cwd: Path) -> Path:
    """Generated paths are relative to the directory holding pipeline.py."""
    return Path(pipeline.config_path).parent if pipeline.config_path else cwd


def _github_files(args: argparse.Namespace, pipeline: Pipeline, root: Path) -> list[Managed]:
    from async_pipeline.github._sync import github_files, github_settings

    settings = github_settings(
        pipeline, workflow=getattr(args, "workflow", None), lock=getattr(args, "lock", None)
    )
    return github_files(pipeline, root, settings)


def _targets(
    args: argparse.Namespace, pipeline: Pipeline, root: Path, target: str | None
) -> list[tuple[str, Managed]]:
    files: list[tuple[str, Managed]] = []
    if target == "github" or (target is None and pipeline.sync.github is not None):
        files.extend(("github", f) for f in _github_files(args, pipeline, root))
    if target == "tasks" or (target is None and pipeline.sync.tasks is not None):
        from async_pipeline.github._tasks import task_files

        files.extend(("tasks", f) for f in task_files(pipeline, root))
    return files


def _list(files: list[tuple[str, Managed]], args: argparse.Namespace, out: Output) -> int:
    rows = [{"target": t, "path": f.label, "status": _files.status(f)} for t, f in files]
    if getattr(args, "format", "text") == "json":
        out.json({"files": rows})
    elif not rows:
        out.text("nothing to sync: declare sync={'github': True} or sync={'tasks': True}")
    else:
        width = max(len(row["path"]) for row in rows)
        out.text("\n".join(f"{r['target']:<7} {r['path']:<{width}}  {r['status']}" for r in rows))
    return EXIT_OK


def _generate(files: list[tuple[str, Managed]], out: Output) -> int:
    lines = [
        f"{'wrote' if _files.write(f) else 'unchanged'} {f.label}" for _target, f in files
    ] or ["nothing to sync"]
    out.text("\n".join(lines))
    return EXIT_OK


def _check(files: list[tuple[str, Managed]], out: Output) -> int:
    stale = [f for _target, f in files if _files.status(f) != "current"]
    if not stale:
        out.text("generated files are current" if files else "nothing to sync")
        return EXIT_OK
    out.text("".join(_files.diff(f) for f in stale))
    raise PipelineError(
        "ASYNC_PIPELINE_SYNC_STALE",
        "stale or missing generated file(s): " + ", ".join(f.label for f in stale),
        hint="run `async-pipeline sync generate` (or `async-pipeline github generate`) "
        "and commit the result",
    )


def _act(
    action: str, files: list[tuple[str, Managed]], args: argparse.Namespace, out: Output
) -> int:
    if action == "list":
        return _list(files, args, out)
    if action == "generate":
        return _generate(files, out)
    return _check(files, out)


def sync(args: argparse.Namespace, pipeline: Pipeline, cwd: Path, out: Output) -> int:
    """``sync list|generate|check`` and ``sync github|tasks list|generate|check``."""
    command: str = args.sync_command
    target: str | None
    if command in ("list", "generate", "check"):
        target, action = None, command
    else:
        target, action = command, args.sync_action
    files = _targets(args, pipeline, project_root(pipeline, cwd), target)
    return _act(action, files, args, out)


def github(
    args: argparse.Namespace,
    pipeline: Pipeline,
    cwd: Path,
    out: Output,
    run_job: Callable[[str], int],
) -> int:
    """``github generate|check`` (aliases of ``sync github``) and ``github run``."""
    if args.github_command != "run":
        files = _targets(args, pipeline, project_root(pipeline, cwd), "github")
        return _act(args.github_command, files, args, out)
    from async_pipeline.github._events import read_event, select_jobs

    event = read_event(args.environment)
    selected = select_jobs(pipeline, event, args.job)
    if not selected:
        which = f"job {args.job!r} has no trigger" if args.job else "no job has a trigger"
        out.text(f"{which} matching {event.describe()}; nothing to run")
        return EXIT_OK
    failed: list[str] = []
    for job_id in selected:
        out.text(f"== {job_id} (for {event.describe()})")
        try:
            code = run_job(job_id)
        except (PipelineError, BaseExceptionGroup) as caught:
            # One job's configuration (an unset secret, say) fails that job, not the others.
            error = _pipeline_error(caught)
            if error is None:
                raise
            _report(error, out)
            code = EXIT_FAILED
        if code in _INTERRUPTED:
            return code
        if code != EXIT_OK:
            failed.append(job_id)
    if failed:
        out.text(f"failed: {', '.join(failed)} ({len(selected) - len(failed)} passed)")
        return EXIT_FAILED
    return EXIT_OK


def _pipeline_error(caught: BaseException) -> PipelineError | None:
    """The one ``PipelineError`` ``caught`` is or (as a task group's wrapping) holds."""
    found = sole_error(caught)
    return found if isinstance(found, PipelineError) else None


def _report(exc: PipelineError, out: Output) -> None:
    """``exc`` on stderr the way the CLI reports an error that ends a command."""
    from async_pipeline.cli import _report as report

    out.stdout.flush()
    report(exc, out, False)

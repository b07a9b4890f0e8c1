"""Command handlers: load the pipeline, ask the query layer, render the answer."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from async_pipeline.cli import EXIT_FAILED, EXIT_OK, Output
from async_pipeline.cli import _text as text
from async_pipeline.core.loader import load_pipeline
from async_pipeline.core.model import Pipeline
from async_pipeline.errors import PipelineError, UsageError
from async_pipeline.query import _data


def _load(args: argparse.Namespace, cwd: Path) -> Pipeline:
    return load_pipeline(getattr(args, "config", None), cwd=cwd)


def _metadata(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    data = _data.metadata(_load(args, cwd), include_sources=args.include_sources)
    if args.format == "json":
        out.json(data)
    else:
        out.text(text.metadata(data))
    return EXIT_OK


def _list(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    data = _data.list_tasks(
        _load(args, cwd), prefix=args.prefix, job=args.job, limit=args.limit, offset=args.offset
    )
    if args.format == "json":
        out.json(data)
    else:
        out.text(text.task_list(data))
        _say_if_truncated(data, "tasks", out)
    return EXIT_OK


def _graph(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    data = _data.graph(
        _load(args, cwd), job=args.job, prefix=args.prefix, limit=args.limit, offset=args.offset
    )
    if args.format == "json":
        out.json(data)
    else:
        render = {"dot": text.graph_dot, "mermaid": text.graph_mermaid, "text": text.graph_text}
        out.text(render[args.format](data))
        _say_if_truncated(data, "task nodes", out)
    return EXIT_OK


def _say_if_truncated(data: dict[str, Any], what: str, out: Output) -> None:
    """A page that is not the whole answer says so where a person sees it, not only in a
    comment of a DOT or mermaid file."""
    if data["truncated"]:
        shown = f"{data['offset'] + 1}-{data['nextOffset']}"
        out.stderr.write(
            f"async-pipeline: showing {what} {shown} of {data['total']}; pass --limit 0 for "
            f"all, or --offset {data['nextOffset']} for the next page\n"
        )


def _explain(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    if (args.task is None) == (args.run is None):
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            "explain takes a task id or --run RUN_ID (one of them)",
            hint="async-pipeline explain build, or async-pipeline explain --run <run-id>",
        )
    if args.run is not None:
        if args.diff_inputs:
            raise UsageError("ASYNC_PIPELINE_USAGE", "--diff-inputs applies to a task, not --run")
        from async_pipeline.query import _runs

        packs = _runs.context_packs(_project_root(args, cwd), args.run)
        if args.format == "json":
            out.json(packs)
        else:
            out.text(text.context_packs(packs))
        return EXIT_OK
    pipeline = _load(args, cwd)
    if args.diff_inputs:
        from async_pipeline.query import _runs

        diff = _runs.diff_inputs(pipeline, args.task)
        if args.format == "json":
            out.json(diff)
        else:
            out.text(text.input_diff(diff))
        return EXIT_OK
    data = _data.explain_task(pipeline, args.task)
    if args.format == "json":
        out.json(data)
    else:
        out.text(text.explanation(data))
    return EXIT_OK


def _project_root(args: argparse.Namespace, cwd: Path) -> Path:
    """Where ``.async/`` lives: the --config file's directory, or the working directory."""
    from async_pipeline.core.loader import project_root

    return project_root(getattr(args, "config", None), cwd)


def _runs(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    from async_pipeline.query import _runs as runs

    root = _project_root(args, cwd)
    if args.runs_command == "show":
        details = runs.read_run(root, args.run_id, max_log_bytes=args.max_log_bytes)
        if args.format == "json":
            out.json(details)
        else:
            out.text(text.run_details(details))
        return EXIT_OK
    listing = runs.list_runs(root, limit=args.limit, cursor=args.cursor)
    if args.format == "json":
        out.json(listing)
    else:
        out.text(text.run_list(listing))
    return EXIT_OK


def _run(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    from async_pipeline.cli._fast import run_command

    return run_command(args, cwd, out)


def _file_stores(args: argparse.Namespace, cwd: Path) -> tuple[Path, dict[str, Path] | None]:
    """The project root and its file stores, from the pipeline when it loads."""
    from async_pipeline.core.cache import FileCache

    root = _project_root(args, cwd)  # a pipeline file must be there, loadable or not
    try:
        pipeline = _load(args, cwd)
    except PipelineError:
        return root, None  # still clear or prune what a broken pipeline.py left behind
    root = Path(pipeline.config_path).parent if pipeline.config_path else cwd
    stores = {
        name: root / store.root
        for name, store in pipeline.cache.all_stores().items()
        if isinstance(store, FileCache)
    }
    return root, stores


def _gc(args: argparse.Namespace, cwd: Path, out: Output) -> int:

    from async_pipeline.runner.housekeeping import collect_garbage

    root, stores = _file_stores(args, cwd)
    report = collect_garbage(
        root, keep=args.keep, cache_days=args.cache_days, env=args.environment, file_stores=stores
    )
    if args.format == "json":
        out.json(report)
    else:
        out.text(
            f"removed {len(report['removedRuns'])} run record(s), "
            f"{len(report['removedCacheEntries'])} cache entr(ies) and "
            f"{len(report['removedBaselines'])} baseline(s)"
        )
    return EXIT_OK


def _cache(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    from async_pipeline.runner.housekeeping import clear_cache

    root, stores = _file_stores(args, cwd)
    report = clear_cache(root, store_dirs=(stores or {}).values())
    if args.format == "json":
        out.json(report)
    else:
        out.text("cleared " + (", ".join(report["removed"]) or "nothing (no cache yet)"))
    return EXIT_OK


def _mcp(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    if args.http is not None:
        return _mcp_http(args, cwd)
    if args.token_env is not None:
        raise UsageError(
            "ASYNC_PIPELINE_USAGE",
            "--token-env only applies to --http (stdio needs no token)",
            hint="add --http [HOST:]PORT, or drop --token-env",
        )
    # Imported here, not above: only this command may load the MCP SDK (fast start).
    from async_pipeline.mcp_server import serve

    return serve(config=getattr(args, "config", None), cwd=cwd, allow_run=args.allow_run)


def _mcp_http(args: argparse.Namespace, cwd: Path) -> int:
    from async_pipeline.mcp_server import ServerOptions
    from async_pipeline.mcp_server._http import HttpOptions, parse_address, read_token, serve_http

    host, port = parse_address(args.http)
    options = ServerOptions(cwd=cwd, config=getattr(args, "config", None), allow_run=args.allow_run)
    http = HttpOptions(port=port, host=host, token=read_token(args.token_env, args.environment))
    return serve_http(options, http)


def _doctor(args: argparse.Namespace, cwd: Path, out: Output) -> int:

    from async_pipeline.query._doctor import doctor

    report = doctor(lambda: _load(args, cwd), cwd, args.environment)
    if args.format == "json":
        out.json(report)
    else:
        out.text(text.doctor(report))
    return EXIT_OK if report["ok"] else EXIT_FAILED


def _sync(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    from async_pipeline.github import _command

    return _command.sync(args, _load(args, cwd), cwd, out)


def _github(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    from async_pipeline.github import _command

    pipeline = _load(args, cwd)

    def run_job(job_id: str) -> int:
        from async_pipeline.cli import _run as run

        job_args = argparse.Namespace(
            command="run",
            job=job_id,
            concurrency=args.concurrency,
            force=False,
            echo=False,
            format="text",
            environment=args.environment,
        )
        return run.run(job_args, pipeline, cwd, out)

    return _command.github(args, pipeline, cwd, out, run_job)


_HANDLERS: dict[str, Callable[[argparse.Namespace, Path, Output], int]] = {
    "metadata": _metadata,
    "list": _list,
    "graph": _graph,
    "explain": _explain,
    "run": _run,
    "run-task": _run,
    "gc": _gc,
    "cache": _cache,
    "runs": _runs,
    "mcp": _mcp,
    "doctor": _doctor,
    "sync": _sync,
    "github": _github,
}


def dispatch(args: argparse.Namespace, cwd: Path, out: Output) -> int:
    return _HANDLERS[args.command](args, cwd, out)

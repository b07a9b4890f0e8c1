"""The ``async-pipeline`` command line: parse, call the query layer, render.

Imports are lazy so that ``--help``, ``list`` and ``metadata`` start fast: none of them
loads the MCP SDK, httpx, anthropic or subprocess machinery.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from async_pipeline.errors import PipelineError, sole_error

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_SIGINT = 130
EXIT_EPIPE = 141


class Output:
    """Where a command writes: stdout for answers, stderr for diagnostics."""

    def __init__(self, stdout: IO[str], stderr: IO[str]) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def text(self, text: str) -> None:
        self.write(text.encode() if text.endswith("\n") else (text + "\n").encode())

    def json(self, data: Any) -> None:
        import orjson

        self.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))

    def write(self, data: bytes) -> None:
        """Write all of ``data``, looping over partial writes.

        With unbuffered stdio (``python -u``, PYTHONUNBUFFERED) a text stream hands one
        large write to the OS once and drops whatever a pipe did not take; writing the
        bytes in a loop delivers everything or raises BrokenPipeError.
        """
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is None:
            self.stdout.write(data.decode())
            return
        self.stdout.flush()
        view = memoryview(data)
        while view:
            written = buffer.write(view)
            view = view[written if written is not None else 0 :]
        buffer.flush()


def main(
    argv: list[str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the CLI and return its exit code (see the exit-code table in the README).

    ``cwd``, ``stdout``, ``stderr`` and ``env`` default to the process's own; passing them
    runs the CLI without touching (or reading) the process's working directory or env.
    """
    code = _main(argv, cwd=cwd, stdout=stdout, stderr=stderr, env=env)
    if argv is None and _outlived_threads():
        # The command is the process (the script, python -m): a step's worker thread that
        # outlived its timeout cannot be stopped, and the interpreter would wait for it at
        # exit, forever. Everything is recorded by now: leave without it.
        try:
            sys.stderr.write(
                "async-pipeline: a step's thread is still running after its timeout; "
                "exiting without waiting for it\n"
            )
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    return code


def _process_cwd() -> Path:
    try:
        return Path.cwd()
    except FileNotFoundError:
        raise PipelineError(
            "ASYNC_PIPELINE_USAGE",
            "the current directory no longer exists",
            hint="cd into the project (a directory that exists) and run the command again",
        ) from None


def _outlived_threads(grace: float = 0.5) -> bool:
    """Whether a thread the interpreter would wait for at exit is still running after
    ``grace`` seconds (idle worker threads end as soon as their event loop closed)."""
    import threading
    import time

    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return True
    return False


def _main(
    argv: list[str] | None,
    *,
    cwd: str | os.PathLike[str] | None,
    stdout: IO[str] | None,
    stderr: IO[str] | None,
    env: Mapping[str, str] | None,
) -> int:
    environment: Mapping[str, str] = os.environ if env is None else env
    out = Output(stdout or sys.stdout, stderr or sys.stderr)
    args_list = sys.argv[1:] if argv is None else argv
    json_errors = _wants_json(args_list)
    try:
        from async_pipeline import __version__
        from async_pipeline.cli._parser import build_parser

        try:
            args = build_parser(__version__).parse_args(args_list, output=out.stdout)
        except SystemExit as exc:  # --help and --version print and exit 0
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        args.environment = environment
        if args.command in ("run", "run-task"):
            # Its own route: a run the job stamp proves up to date imports nothing else.
            from async_pipeline.cli._fast import run_command as handler
        else:
            from async_pipeline.cli._commands import dispatch as handler
        try:
            code = handler(args, Path(cwd) if cwd is not None else _process_cwd(), out)
        except BaseExceptionGroup as group:
            # A task group's wrapping of one error: report that error as it is.
            raise sole_error(group) from None
        out.stdout.flush()
        return code
    except PipelineError as exc:
        _report(exc, out, json_errors)
        return EXIT_FAILED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_EPIPE
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except Exception as exc:
        if environment.get("ASYNC_PIPELINE_DEBUG"):
            raise
        internal = PipelineError(
            "ASYNC_PIPELINE_INTERNAL",
            f"unexpected {type(exc).__name__}: {exc}",
            hint="rerun with ASYNC_PIPELINE_DEBUG=1 for the traceback and report it",
        )
        _report(internal, out, json_errors)
        return EXIT_FAILED


def _wants_json(argv: list[str]) -> bool:
    return any(a == "--format=json" for a in argv) or any(
        a == "--format" and b == "json" for a, b in itertools.pairwise(argv)
    )


def _report(exc: PipelineError, out: Output, as_json: bool) -> None:
    lines = [f"async-pipeline: error[{exc.code}]: {exc.message}"]
    if exc.location:
        lines.append(f"  at {exc.location}")
    if exc.hint:
        lines.append(f"  hint: {exc.hint}")
    try:
        out.stderr.write("\n".join(lines) + "\n")
        if as_json:
            out.json({"error": exc.to_dict()})
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass

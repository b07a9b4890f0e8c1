"""``run_pipeline_cli``: the CLI in-process, for testing pipelines the way users run them.

The pipeline's command policy applies first: the call is matched as
``["async-pipeline", *args]``, so a rule can deny a command in a test or answer it with a
fixed result (``command.mock(...)``) instead of running it.
"""

from __future__ import annotations

import io
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from async_pipeline.errors import PipelineError, UsageError

__all__ = ["CliResult", "run_pipeline_cli"]


@dataclass(frozen=True)
class CliResult:
    """What a CLI invocation produced."""

    exit_code: int
    stdout: str
    stderr: str


def _config_arg(args: Sequence[str]) -> str | None:
    for index, word in enumerate(args):
        if word == "--config" and index + 1 < len(args):
            return args[index + 1]
        if word.startswith("--config="):
            return word.split("=", 1)[1]
    return None


def run_pipeline_cli(
    args: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> CliResult:
    """Run ``async-pipeline *args`` in this process and return its exit code and output.

    ``args`` is a list (or tuple) of words, as a shell would split them: ``["run",
    "verify"]``; a single string is ``ASYNC_PIPELINE_USAGE`` (it is not split for you).
    ``cwd`` and ``env`` default to the process's; passing them leaves the process's working
    directory and environment untouched. Everything the CLI prints, ``--help`` and
    ``--version`` included, is in the result. Not for use inside a running event loop.
    """
    from async_pipeline.cli import main
    from async_pipeline.core.loader import load_pipeline
    from async_pipeline.runner.api import check_cwd, check_env
    from async_pipeline.runner.policy import decide

    words = _check_args(args)
    directory = check_cwd(cwd, "run_pipeline_cli") if cwd is not None else Path.cwd()
    if env is not None:
        check_env(env, "run_pipeline_cli")
    environment = dict(os.environ if env is None else env)
    try:
        policy = load_pipeline(_config_arg(words), cwd=directory).commands
    except PipelineError:
        policy = None  # the CLI itself reports why the pipeline does not load
    decision = decide(policy, ["async-pipeline", *words], environment)
    if decision.verdict == "deny":
        return CliResult(1, "", f"async-pipeline: error[{decision.code}]: {decision.message}\n")
    if decision.mock is not None:
        return CliResult(decision.mock.code, decision.mock.stdout, decision.mock.stderr)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(words, cwd=directory, stdout=stdout, stderr=stderr, env=environment)
    return CliResult(code, stdout.getvalue(), stderr.getvalue())


def _check_args(args: object) -> list[str]:
    """``args`` as a list of words; a usage error for a bare string or anything else."""
    if isinstance(args, str | bytes):
        try:
            words = shlex.split(args) if isinstance(args, str) else None
        except ValueError:  # unbalanced quotes: no split to suggest
            words = None
        problem = f"got one {type(args).__name__}, which is not split for you"
        raise _bad_args(problem, f"pass {words!r}" if words else None)
    if not isinstance(args, Sequence):
        raise _bad_args(f"got {type(args).__name__}")
    for index, word in enumerate(args):
        if not isinstance(word, str):
            raise _bad_args(f"args[{index}] is {type(word).__name__}")
    return list(args)


def _bad_args(problem: str, hint: str | None = None) -> UsageError:
    return UsageError(
        "ASYNC_PIPELINE_USAGE",
        f"run_pipeline_cli: args must be a list of strings, one per word; {problem}",
        hint=hint or "pass a list such as ['run', 'verify']",
    )

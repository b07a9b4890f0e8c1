"""``run_pipeline_cli``: the CLI in-process, for testing pipelines the way users run them.

The pipeline's command policy applies first: the call is matched as
``["async-pipeline", *args]``, so a rule can deny a command in a test or answer it with a
fixed result (``command.mock(...)``) instead of running it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from async_pipeline.errors import PipelineError

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

    ``cwd`` and ``env`` default to the process's; passing them leaves the process's working
    directory and environment untouched. Not for use inside a running event loop.
    """
    from async_pipeline.cli import main
    from async_pipeline.core.loader import load_pipeline
    from async_pipeline.runner.policy import decide

    directory = Path(cwd) if cwd is not None else Path.cwd()
    environment = dict(os.environ if env is None else env)
    try:
        policy = load_pipeline(_config_arg(args), cwd=directory).commands
    except PipelineError:
        policy = None  # the CLI itself reports why the pipeline does not load
    decision = decide(policy, ["async-pipeline", *args], environment)
    if decision.verdict == "deny":
        return CliResult(1, "", f"async-pipeline: error[{decision.code}]: {decision.message}\n")
    if decision.mock is not None:
        return CliResult(decision.mock.code, decision.mock.stdout, decision.mock.stderr)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(args), cwd=directory, stdout=stdout, stderr=stderr, env=environment)
    return CliResult(code, stdout.getvalue(), stderr.getvalue())

"""Shared test helpers: paths to fixtures and ways to drive the CLI as a user would."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "pipelines"
EXAMPLES = REPO / "examples"
SCHEMAS = REPO / "schemas"


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(args: list[str], cwd: Path) -> CliResult:
    """The CLI in-process, with its own output streams."""
    from async_pipeline.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(args, cwd=cwd, stdout=out, stderr=err)
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli_process(
    args: list[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 60
) -> CliResult:
    """The CLI as a real process: ``python -m async_pipeline ...``."""
    done = subprocess.run(
        [sys.executable, "-m", "async_pipeline", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def write_pipeline(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a pipeline.py with the given source into a fresh directory; return the dir."""

    def write(source: str, name: str = "pipeline.py") -> Path:
        (tmp_path / name).write_text(source, encoding="utf-8")
        return tmp_path

    return write


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

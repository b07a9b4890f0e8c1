"""Helpers for the GitHub workflow tests: fixture pipelines, the CLI with its own env."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from async_pipeline.cli import main
from async_pipeline.core.loader import load_pipeline
from async_pipeline.core.model import Pipeline
from tests.conftest import REPO, CliResult

GITHUB_FIXTURES = REPO / "fixtures" / "github"
FIXTURE_NAMES = ("basic", "deploy", "edge", "tasks")


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> CliResult:
    """The CLI in-process with an explicit environment (no GitHub variables leak in)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(args, cwd=cwd, stdout=out, stderr=err, env=env if env is not None else {})
    return CliResult(code, out.getvalue(), err.getvalue())


def fixture_pipeline(name: str) -> Pipeline:
    return load_pipeline(None, cwd=GITHUB_FIXTURES / name)


def parse_yaml(text: str) -> object:
    """Read YAML back with a real YAML 1.2 parser, as plain dicts and lists."""
    return YAML(typ="safe", pure=True).load(text)


@pytest.fixture
def project(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a fixture pipeline into a fresh directory and return that directory."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(GITHUB_FIXTURES / name, target)
        return target

    return copy

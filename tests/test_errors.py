"""Every error code is documented for users, and only documented codes are raised."""

from __future__ import annotations

import re

import pytest

from async_pipeline.errors import CODES, PipelineError
from tests.conftest import REPO

DOCS = REPO / "docs" / "errors.md"


def test_every_code_is_documented_in_docs_errors_md() -> None:
    documented = set(re.findall(r"^## (ASYNC_PIPELINE_[A-Z_]+)$", DOCS.read_text(), re.MULTILINE))
    assert documented == set(CODES)


def test_every_code_used_in_the_source_is_registered() -> None:
    used: set[str] = set()
    for path in (REPO / "src").rglob("*.py"):
        used.update(re.findall(r"\"(ASYNC_PIPELINE_[A-Z_]+)\"", path.read_text()))
    env_vars = {
        "ASYNC_PIPELINE_DEBUG",
        "ASYNC_PIPELINE_KEEP_RUNS",
        "ASYNC_PIPELINE_MAX_LOG_BYTES",
        "ASYNC_PIPELINE_ENVIRONMENT",
        "ASYNC_PIPELINE_AGENT_PROFILE",
        "ASYNC_PIPELINE_AGENT_MODEL",
        "ASYNC_PIPELINE_AGENT_PROMPT_FILE",
    }
    assert used - env_vars <= set(CODES), sorted(used - env_vars - set(CODES))


def test_an_unregistered_code_cannot_be_raised() -> None:
    with pytest.raises(ValueError):
        PipelineError("ASYNC_PIPELINE_NOT_A_CODE", "x")

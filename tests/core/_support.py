"""Helpers shared by the core tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from async_pipeline import Pipeline, define_pipeline
from async_pipeline.errors import PipelineError


def error_of(declare: Callable[[], object]) -> PipelineError:
    """The PipelineError that ``declare()`` raises (the test fails if it raises nothing)."""
    with pytest.raises(PipelineError) as info:
        declare()
    return info.value


def build(**sections: object) -> Pipeline:
    """``define_pipeline`` with a fixed name, for tests that only care about other sections."""
    return define_pipeline(name="app", **sections)


def suggests(error: PipelineError, name: str) -> bool:
    """Whether the error's hint proposes ``name`` as the nearest valid one."""
    return error.hint is not None and f'"{name}"' in error.hint

"""Agent profiles: a CLI adapter or an API backend, and always a model."""

from __future__ import annotations

from typing import Any

import pytest

from async_pipeline import define_pipeline
from async_pipeline.errors import DefinitionError


@pytest.mark.parametrize(
    ("profile", "code", "path"),
    [
        (
            {"command": ["x"], "api": "anthropic", "model": "m"},
            "ASYNC_PIPELINE_INVALID_VALUE",
            "agents.p",
        ),
        ({"api": "openai", "model": "m"}, "ASYNC_PIPELINE_INVALID_VALUE", "agents.p.api"),
        (
            {"command": ["x"], "model": "m", "max_tokens": 10},
            "ASYNC_PIPELINE_INVALID_VALUE",
            "agents.p.max_tokens",
        ),
        (
            {"api": "anthropic", "model": "m", "max_tokens": 0},
            "ASYNC_PIPELINE_INVALID_VALUE",
            "agents.p.max_tokens",
        ),
        ({"api": "anthropic"}, "ASYNC_PIPELINE_INVALID_VALUE", "agents.p.model"),
        (
            {"api": "anthropic", "model": "m", "max_token": 5},
            "ASYNC_PIPELINE_UNKNOWN_FIELD",
            "agents.p.max_token",
        ),
    ],
)
def test_invalid_profiles_are_rejected_with_their_path(
    profile: dict[str, Any], code: str, path: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        define_pipeline(name="x", agents={"p": profile})
    assert caught.value.code == code
    assert caught.value.path == path


def test_an_api_profile_needs_no_command() -> None:
    pipeline = define_pipeline(
        name="x", agents={"p": {"api": "anthropic", "model": "claude-x", "max_tokens": 100}}
    )
    profile = pipeline.agents["p"]
    assert (profile.command, profile.api, profile.max_tokens) == ((), "anthropic", 100)

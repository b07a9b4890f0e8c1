"""Agent declarations that cannot work are refused when the pipeline is defined, saying why."""

from __future__ import annotations

import pytest

from async_pipeline import agent, define_pipeline
from tests.core._support import error_of


@pytest.mark.parametrize("value", [".", "./", "out/", "docs/reports/", "out/.", "out\\"])
def test_stdout_to_naming_a_directory_is_an_invalid_path(value: str) -> None:
    error = error_of(lambda: agent(use="claude", prompt="p", stdout_to=value))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "agent.stdout_to")


@pytest.mark.parametrize("value", ["out.txt", "./out.txt", "docs//x.md", "reports/.hidden"])
def test_stdout_to_naming_a_file_is_accepted(value: str) -> None:
    assert agent(use="claude", prompt="p", stdout_to=value).stdout_to == value


@pytest.mark.parametrize("profile", [{"model": "m"}, {"command": None, "model": "m"}])
def test_a_cli_profile_without_a_command_says_the_command_is_required(
    profile: dict[str, object],
) -> None:
    error = error_of(lambda: define_pipeline(name="x", agents={"p": profile}))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", "agents.p.command")
    assert "is required" in error.message

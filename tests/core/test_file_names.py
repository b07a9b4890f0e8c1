"""Declared names and paths that become files stay inside the repository and out of the way.

Task ids name files (``.async/runs/<id>/logs/<task>.stdout.log``, baselines, context packs),
outputs are restored over the working tree, ``stdout_to`` is written by an agent and a file
store's root is deleted whole by ``cache clear``: each is checked when it is declared.
"""

from __future__ import annotations

import pytest

from async_pipeline import agent, define_cache, file_cache, sh, source, task
from async_pipeline.core.cache import FileCache

from ._support import build, error_of

# --- task names -------------------------------------------------------------------------

UNSAFE_NAMES = [
    "a/b",
    "/tmp/x/escaped",
    "a\\b",
    "..\\x",
    "a\x00b",
    "a\x1bb",
    "a\x7fb",
    "a\x85b",
    "tab\there",
]


@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=repr)
def test_task_name_that_cannot_be_a_file_name_is_rejected(name: str) -> None:
    error = error_of(lambda: build(tasks={name: task()}))
    assert error.code == "ASYNC_PIPELINE_INVALID_VALUE"
    assert error.path is not None and error.path.startswith("tasks")
    assert "'/'" in error.message


@pytest.mark.parametrize("name", ["a/b", "a\\b", "x\x00"], ids=repr)
def test_group_name_that_cannot_be_a_file_name_is_rejected(name: str) -> None:
    error = error_of(lambda: build(tasks={"pkg": {name: {"default": task(), "lint": task()}}}))
    assert error.code == "ASYNC_PIPELINE_INVALID_VALUE"
    assert error.path is not None and error.path.startswith("tasks.pkg")


def test_task_name_in_a_nested_group_that_cannot_be_a_file_name_is_rejected() -> None:
    error = error_of(lambda: build(tasks={"a": {"b": {"../../x": task()}}}))
    assert error.code == "ASYNC_PIPELINE_INVALID_VALUE"
    assert error.path is not None and error.path.startswith("tasks.a.b")


def test_control_character_in_a_task_name_is_escaped_in_the_reported_path() -> None:
    error = error_of(lambda: build(tasks={"a\nb": task()}))
    assert error.path == "tasks['a\\nb']"
    assert "\n" not in error.message


@pytest.mark.parametrize("ref", ["lib:a/b", "lib:../x", "lib:a\x00", "lib:a:b", "lib:"], ids=repr)
def test_source_task_reference_with_an_unsafe_task_name_is_rejected(ref: str) -> None:
    error = error_of(
        lambda: build(
            sources={"lib": source.path(path="../lib")},
            tasks={"a": task(depends_on=[ref])},
        )
    )
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", "tasks.a.depends_on[0]")


def test_source_task_reference_with_a_dotted_task_name_is_accepted() -> None:
    pipeline = build(
        sources={"lib": source.path(path="../lib")},
        tasks={"a": task(depends_on=["lib:claims.report"])},
    )
    assert pipeline.tasks["a"].depends_on == ("lib:claims.report",)


@pytest.mark.parametrize("name", ["build", "claims-report", "e2e_test", "ünïcode", "a+b", "v1"])
def test_ordinary_task_names_are_accepted(name: str) -> None:
    assert list(build(tasks={name: task()}).tasks) == [name]


# --- outputs and stdout_to outside .async/ and .git/ ------------------------------------

RESERVED_PATTERNS = [
    ".async/**",
    ".async",
    ".async/runs/x/execution.json",
    "./.async/cache/**",
    ".async//runs",
    ".async\\runs\\**",
    ".git/**",
    ".git",
    ".git/hooks/pre-commit",
    "./.git/config",
    ".GIT/hooks/*",
]


@pytest.mark.parametrize("value", RESERVED_PATTERNS)
def test_output_inside_async_or_git_is_an_invalid_path(value: str) -> None:
    error = error_of(lambda: build(tasks={"a": task(outputs=["dist/**", value])}))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "tasks.a.outputs[1]")
    assert "belongs to" in error.message


def test_output_inside_async_from_task_defaults_is_an_invalid_path() -> None:
    error = error_of(lambda: build(task_defaults={"t": {"outputs": [".async/**"]}}))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "task_defaults.t.outputs[0]")


@pytest.mark.parametrize(
    "value",
    [".asyncfoo/**", ".gitignore", ".github/workflows/*.yml", "docs/.git-notes", "!.async/**"],
)
def test_outputs_merely_resembling_async_or_git_are_accepted(value: str) -> None:
    assert build(tasks={"a": task(outputs=["dist/**", value])}).tasks["a"].outputs[1] == value


@pytest.mark.parametrize(
    "value", [".git/hooks/pre-commit", ".async/runs/x.json", "./.git/config", ".async"]
)
def test_stdout_to_inside_async_or_git_is_an_invalid_path(value: str) -> None:
    error = error_of(lambda: agent(use="claude", prompt="p", stdout_to=value))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "agent.stdout_to")
    assert "belongs to" in error.message


# --- file store roots -------------------------------------------------------------------

PROJECT_ROOTS = [".", "./", "", ".//.", "./."]
GIT_ROOTS = [".git", ".git/cache", "./.git/x", ".GIT"]
RECORD_ROOTS = [".async", ".async/runs", "./.async/sources"]


@pytest.mark.parametrize("root", [*PROJECT_ROOTS, *GIT_ROOTS, *RECORD_ROOTS])
def test_file_cache_root_that_is_not_a_directory_of_its_own_is_an_invalid_path(
    root: str,
) -> None:
    error = error_of(lambda: file_cache(root=root))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "file_cache.root")
    assert "'.async/cache/tasks'" in error.message


@pytest.mark.parametrize("root", ["a/..", "../cache", "/var/cache"])
def test_file_cache_root_leaving_the_repository_stays_an_invalid_path(root: str) -> None:
    error = error_of(lambda: file_cache(root=root))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "file_cache.root")


@pytest.mark.parametrize("root", [".async/cache/tasks", ".async/cache/shared", ".cache", "build/c"])
def test_file_cache_root_of_its_own_is_accepted(root: str) -> None:
    assert file_cache(root=root).root == root


@pytest.mark.parametrize("root", [".", ".git/x", ".async/runs"])
def test_file_store_built_directly_is_checked_by_define_cache(root: str) -> None:
    error = error_of(lambda: define_cache(stores={"local": FileCache(root=root)}))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "cache.stores.local.root")


def test_a_task_id_too_long_to_name_its_files_is_rejected() -> None:
    group = "g" * 120
    fits = {group: {"t" * 79: task(sh("true"))}}  # 120 + 1 + 79 = 200 bytes
    assert f"{group}.{'t' * 79}" in build(tasks=fits).tasks
    error = error_of(lambda: build(tasks={group: {"t" * 80: task(sh("true"))}}))
    assert error.code == "ASYNC_PIPELINE_INVALID_VALUE"
    assert "at most 200 bytes" in error.message
    wide = error_of(lambda: build(tasks={"\u00e9" * 101: task(sh("true"))}))  # 202 bytes
    assert wide.code == "ASYNC_PIPELINE_INVALID_VALUE"

"""The GitHub sync target: the workflow and lock files a pipeline asks to keep current."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson

from async_pipeline.core.model import Pipeline, SyncGithub
from async_pipeline.github._files import Managed
from async_pipeline.github._workflow import render

__all__ = ["github_files", "github_settings"]


def github_settings(
    pipeline: Pipeline, *, workflow: str | None = None, lock: str | None = None
) -> SyncGithub:
    """``sync.github`` (or its defaults when the pipeline does not declare it) plus overrides.

    The command-line paths are checked as ``sync.github``'s own are (core/_sections.py): a
    plain file path inside the repository, outside ``.git/`` and ``.async/``, and the lock
    not the workflow's own file.
    """
    from async_pipeline.core._sections import distinct_files, generated_file

    settings = pipeline.sync.github or SyncGithub()
    if workflow is not None:
        settings = replace(settings, workflow=generated_file(workflow, "--workflow"))
    if lock is not None:
        settings = replace(settings, lock=generated_file(lock, "--lock"))
    if workflow is not None or lock is not None:
        where = "--lock" if lock is not None else "--workflow"
        distinct_files(settings.workflow, settings.lock, where)
    return settings


def lock_text(lock: dict[str, object]) -> str:
    """The lock file's bytes: sorted keys, two-space indent, one trailing newline."""
    return orjson.dumps(lock, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def github_files(pipeline: Pipeline, root: Path, settings: SyncGithub) -> list[Managed]:
    """The workflow and its lock, rendered; paths relative to the project ``root``."""
    from async_pipeline import __version__

    rendered = render(pipeline, settings, __version__)
    return [
        Managed(settings.workflow, root / settings.workflow, rendered.workflow_text, root),
        Managed(settings.lock, root / settings.lock, lock_text(rendered.lock), root),
    ]

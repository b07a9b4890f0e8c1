"""A pipeline rendered as a GitHub Actions workflow document (plain data) and its lock.

The document is built as nested dicts first — the "JSON twin" tests assert on — and only
then emitted as YAML, so the structure and its text cannot disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import cast

from async_pipeline.core.model import Job, Pipeline, SyncGithub
from async_pipeline.errors import DefinitionError
from async_pipeline.github import _yaml
from async_pipeline.github._actions import CACHE, CHECKOUT, SETUP_PYTHON, PinnedAction
from async_pipeline.github._env import literal, render_env
from async_pipeline.github._triggers import job_condition, on_block

__all__ = ["Rendered", "render", "workflow_job_ids"]

DEFAULT_RUNNER = "ubuntu-latest"
CACHE_PATH = ".async/cache"
_JOB_ID_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


@dataclass(frozen=True, slots=True)
class Rendered:
    """Both generated files: the workflow (as data and as text) and the lock JSON data."""

    document: dict[str, object]
    workflow_text: str
    lock: dict[str, object]


def workflow_job_ids(job_ids: Sequence[str], every_id: Iterable[str]) -> dict[str, str]:
    """The workflow job id of each pipeline job in ``job_ids``, distinct from one another.

    GitHub job ids must start with a letter or ``_``, so ``1x`` becomes ``job_1x``; and
    GitHub compares them ignoring case. A job keeps its own id when it can; one that would
    take another's (``1x`` beside a job named ``job_1x``, or ``Build`` beside ``build``)
    gets the first free ``_2``, ``_3`` ... suffix. ``every_id`` (all the pipeline's job ids)
    is reserved, so the ids do not shift when another job gains or loses a trigger.
    """
    reserved = {job_id.casefold() for job_id in every_id}
    used: set[str] = set()
    ids: dict[str, str] = {}
    for job_id in job_ids:
        base = job_id if job_id[0] in _JOB_ID_START else f"job_{job_id}"
        candidate, n = base, 1
        while candidate.casefold() in used or (
            candidate != job_id and candidate.casefold() in reserved
        ):
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate.casefold())
        ids[job_id] = candidate
    return ids


def _runs_on(pipeline: Pipeline, job: Job) -> str | list[str]:
    labels: tuple[str, ...] = ()
    if job.github is not None and job.github.runs_on:
        labels = job.github.runs_on
    elif job.execution is not None:
        profile = pipeline.execution[job.execution]
        if profile.kind == "github":
            labels = profile.runs_on
    if not labels:
        return DEFAULT_RUNNER
    return labels[0] if len(labels) == 1 else list(labels)


def _permissions(job: Job) -> dict[str, object]:
    # Each grant carries a comment saying where it comes from, so a reviewer of the
    # generated file can tell a declared grant from one the generator adds.
    declared: Mapping[str, str] = job.github.permissions if job.github is not None else {}
    granted: dict[str, object] = {
        key.replace("_", "-"): _yaml.Commented(level, f"github.permissions.{key}")
        for key, level in declared.items()
    }
    if job.provenance:
        granted["id-token"] = _yaml.Commented("write", "requires.provenance")
    if not granted:
        return {}
    # Job-level permissions replace the workflow's, so contents: read is restated.
    restated = _yaml.Commented("read", "restated: job permissions replace the workflow's")
    permissions = {"contents": granted.pop("contents", restated)}
    permissions.update(sorted(granted.items()))
    return permissions


def _steps(pipeline: Pipeline, job: Job, settings: SyncGithub, version: str) -> list[object]:
    steps: list[object] = [
        {
            "name": "Check out the repository",
            "uses": CHECKOUT.uses,
            # The job never pushes; keeping the token out of .git/config means later steps
            # (and anything they upload) cannot read it.
            "with": {"persist-credentials": False},
        },
        {
            "name": "Set up Python",
            "uses": SETUP_PYTHON.uses,
            "with": {"python-version": settings.python_version},
        },
        {
            "name": "Install async-pipeline",
            "run": f"python -m pip install async-pipeline=={version}",
        },
    ]
    if settings.cache:
        prefix = f"async-pipeline-${{{{ runner.os }}}}-{job.id}-"
        steps.append(
            {
                "name": "Restore the task cache",
                "uses": CACHE.uses,
                "with": {
                    "path": CACHE_PATH,
                    "key": prefix + "${{ github.sha }}",
                    "restore-keys": prefix,
                },
            }
        )
    steps.append(
        {
            "name": "Run pipeline job",
            "run": f"async-pipeline github run --job {job.id}",
            "env": render_env(pipeline, job),
        }
    )
    return steps


def _job(pipeline: Pipeline, job: Job, settings: SyncGithub, version: str) -> dict[str, object]:
    body: dict[str, object] = {
        # A description is text, not an expression: `${{` in it must not reach GitHub's parser.
        "name": literal(job.description or job.id),
        "if": job_condition(pipeline, job),
        "runs-on": _runs_on(pipeline, job),
    }
    if job.environment is not None:
        environment = job.environment
        # Portable metadata means the same locally and in CI, where nothing evaluates it.
        name = literal(environment.name)
        body["environment"] = (
            name if environment.url is None else {"name": name, "url": literal(environment.url)}
        )
    permissions = _permissions(job)
    if permissions:
        body["permissions"] = permissions
    if job.github is not None and job.github.timeout_minutes is not None:
        body["timeout-minutes"] = job.github.timeout_minutes
    if job.github is not None and job.github.concurrency is not None:
        body["concurrency"] = job.github.concurrency
    body["steps"] = _steps(pipeline, job, settings, version)
    return body


def _header(pipeline: Pipeline, version: str) -> list[str]:
    config = PurePosixPath(pipeline.config_path or "pipeline.py").name
    return [
        f"Generated by async-pipeline {version} from {config}. Do not edit by hand:",
        "regenerate with `async-pipeline sync github generate`;",
        "`async-pipeline sync github check` fails while this file is stale.",
    ]


def render(pipeline: Pipeline, settings: SyncGithub, version: str) -> Rendered:
    """Render the workflow and lock for ``pipeline`` (jobs without triggers are left out)."""
    jobs = [job for job in pipeline.jobs.values() if job.triggers]
    if not jobs:
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_VALUE",
            "no job has a trigger, so there is no workflow to generate",
            path="jobs",
            hint="attach one with job(..., trigger=['push']) and declare it under triggers=",
        )
    ids = workflow_job_ids([job.id for job in jobs], pipeline.jobs)
    document: dict[str, object] = {
        "name": "async-pipeline",
        "on": on_block(pipeline, jobs),
        "permissions": {
            "contents": _yaml.Commented("read", "least privilege; jobs that need more say so")
        },
        "jobs": {ids[job.id]: _job(pipeline, job, settings, version) for job in jobs},
    }
    text = _yaml.dump(document, header=_header(pipeline, version))
    document = cast(dict[str, object], _yaml.plain(document))
    actions: list[PinnedAction] = [CHECKOUT, SETUP_PYTHON, *([CACHE] if settings.cache else [])]
    lock: dict[str, object] = {
        "schemaVersion": 1,
        "generator": {"name": "async-pipeline", "version": version},
        "workflow": settings.workflow,
        "lock": settings.lock,
        "runtime": {"python": settings.python_version, "package": f"async-pipeline=={version}"},
        "cache": settings.cache,
        "actions": {action.repository: action.to_json() for action in actions},
        "workflowSha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    return Rendered(document, text, lock)

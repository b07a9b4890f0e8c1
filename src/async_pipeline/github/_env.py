"""A job's declared env rendered for a workflow step: names of secrets and vars, never values.

``env.secret("N")`` becomes ``${{ secrets.N }}`` and ``env.var("N", ...)`` ``${{ vars.N }}``
under the destination key. Defaults and mappings are not rendered: the runner applies them
at run time, reading the source name first and the destination key second, so local runs and
CI share one code path (see ``runner/env.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from async_pipeline.core import graph
from async_pipeline.core.cache import RedisCache
from async_pipeline.core.env import EnvSecret, EnvValue
from async_pipeline.core.model import Job, Pipeline
from async_pipeline.errors import DefinitionError

__all__ = ["literal", "render_env"]

_GITHUB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def _check_name(name: str, where: str) -> str:
    # GitHub refuses secret and variable names outside this shape, and reserves GITHUB_*.
    if not _GITHUB_NAME.match(name) or name.upper().startswith("GITHUB_"):
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_VALUE",
            f"{where}: {name!r} cannot be a GitHub secret or variable name "
            "(letters, digits and _, not starting with a digit or GITHUB_)",
            path=where,
        )
    return name


def literal(text: str) -> str:
    """``text`` as a workflow value GitHub does not evaluate.

    GitHub evaluates ``${{ ... }}`` anywhere in most values; a literal that contains it is
    written as an expression string literal, so it stays the text it was declared as.
    """
    if "${{" not in text:
        return text
    return "${{ '" + text.replace("'", "''") + "' }}"


def _render(value: EnvValue, where: str) -> str:
    if isinstance(value, str):
        return literal(value)
    kind = "secrets" if isinstance(value, EnvSecret) else "vars"
    return "${{ " + kind + "." + _check_name(value.name, where) + " }}"


def render_env(pipeline: Pipeline, job: Job) -> dict[str, str]:
    """The run step's env: ``CI``, then pipeline env, job env, its tasks' secrets and vars,
    and the secret or var a cache store its tasks use is configured from.

    Task-level literals are left to the runner. A task's secret or var whose destination key
    is already taken by a different value is delivered under its source name instead, which
    the runner reads first.
    """
    rendered: dict[str, str] = {"CI": "true"}
    declared: Mapping[str, EnvValue] = {**pipeline.env, **job.env}
    for key, value in declared.items():
        where = f"jobs.{job.id}.env.{key}" if key in job.env else f"env.{key}"
        rendered[key] = _render(value, where)
    stores: list[str] = []
    for task_id in graph.transitive_dependencies(pipeline, job.targets):
        task = pipeline.tasks.get(task_id)
        if task is None:
            continue
        if task.cache is not None:
            store = task.cache.ref.split(":", 1)[0]
            if store not in stores:
                stores.append(store)
        for key, value in task.env.items():
            if isinstance(value, str):
                continue
            text = _render(value, f"tasks.{task_id}.env.{key}")
            for slot in (key, value.name):
                if rendered.setdefault(slot, text) == text:
                    break
    _store_env(pipeline, stores, rendered)
    return rendered


def _store_env(pipeline: Pipeline, stores: list[str], rendered: dict[str, str]) -> None:
    # The runner opens a store with the variable's own name (runner/cache/engine.py), so it
    # is delivered under that name; a job or pipeline env that already sets it wins.
    declared = pipeline.cache.all_stores()
    for name in stores:
        store = declared.get(name)
        if isinstance(store, RedisCache) and not isinstance(store.url, str):
            where = f"cache.stores.{name}.url"
            rendered.setdefault(store.url.name, _render(store.url, where))

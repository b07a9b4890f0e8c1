"""The query functions check their arguments: a wrong type is a usage error naming it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import define_pipeline, job, query, sh, task
from async_pipeline.errors import PipelineError

PIPELINE = define_pipeline(
    name="p", tasks={"build": task(sh("make"))}, jobs={"ship": job(target="build")}
)

CALLS: list[tuple[str, str, Callable[[Path], Any]]] = [
    ("metadata(None)", "pipeline", lambda _: query.metadata(None)),  # type: ignore[arg-type]
    (
        "metadata include_sources",
        "include_sources",
        lambda _: query.metadata(PIPELINE, include_sources="yes"),  # type: ignore[arg-type]
    ),
    ("list_tasks(None)", "pipeline", lambda _: query.list_tasks(None)),  # type: ignore[arg-type]
    ("list_tasks prefix", "prefix", lambda _: query.list_tasks(PIPELINE, prefix=1)),  # type: ignore[arg-type]
    ("list_tasks job", "job", lambda _: query.list_tasks(PIPELINE, job=["ship"])),  # type: ignore[arg-type]
    ("list_tasks limit", "limit", lambda _: query.list_tasks(PIPELINE, limit="5")),  # type: ignore[arg-type]
    ("list_tasks offset", "offset", lambda _: query.list_tasks(PIPELINE, offset=1.5)),  # type: ignore[arg-type]
    ("graph prefix", "prefix", lambda _: query.graph(PIPELINE, prefix=1)),  # type: ignore[arg-type]
    ("graph limit", "limit", lambda _: query.graph(PIPELINE, limit=True)),
    ("explain_task(pl, 5)", "task_id", lambda _: query.explain_task(PIPELINE, 5)),  # type: ignore[arg-type]
    ("explain_task(None)", "pipeline", lambda _: query.explain_task(None, "build")),  # type: ignore[arg-type]
    ("diff_inputs(pl, None)", "task_id", lambda _: query.diff_inputs(PIPELINE, None)),  # type: ignore[arg-type]
    ("list_runs root", "root", lambda _: query.list_runs(None)),  # type: ignore[arg-type]
    ("list_runs limit", "limit", lambda p: query.list_runs(p, limit="5")),  # type: ignore[arg-type]
    ("list_runs cursor", "cursor", lambda p: query.list_runs(p, cursor=5)),  # type: ignore[arg-type]
    ("read_run run_id", "run_id", lambda p: query.read_run(p, 5)),  # type: ignore[arg-type]
    (
        "read_run max_log_bytes",
        "max_log_bytes",
        lambda p: query.read_run(p, "x", max_log_bytes="1"),  # type: ignore[arg-type]
    ),
]


@pytest.mark.parametrize(("label", "named", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_a_query_argument_of_the_wrong_type_is_a_usage_error_naming_it(
    tmp_path: Path, label: str, named: str, call: Callable[[Path], Any]
) -> None:
    with pytest.raises(PipelineError) as raised:
        call(tmp_path)
    assert raised.value.code == "ASYNC_PIPELINE_USAGE"
    assert named in raised.value.message


def test_run_queries_take_the_root_as_a_string_too(tmp_path: Path) -> None:
    assert query.list_runs(str(tmp_path)).total == 0

"""The query layer's data and its pydantic models describe exactly the same answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from async_pipeline import define_pipeline, job, query, sh, task
from async_pipeline.core.loader import load_pipeline
from async_pipeline.errors import QueryError
from async_pipeline.query import _data
from tests.conftest import EXAMPLES, FIXTURES

PIPELINE_DIRS = [FIXTURES / "full", FIXTURES / "minimal", EXAMPLES / "quickstart"]


@pytest.mark.parametrize("directory", PIPELINE_DIRS, ids=lambda p: p.name)
def test_every_answer_round_trips_through_its_model(directory: Path) -> None:
    pipeline = load_pipeline(cwd=directory)
    pairs = [
        (_data.metadata(pipeline), query.metadata(pipeline)),
        (
            _data.metadata(pipeline, include_sources=True),
            query.metadata(pipeline, include_sources=True),
        ),
        (_data.list_tasks(pipeline), query.list_tasks(pipeline)),
        (_data.graph(pipeline), query.graph(pipeline)),
    ]
    pairs += [
        (_data.explain_task(pipeline, t), query.explain_task(pipeline, t)) for t in pipeline.tasks
    ]
    for data, model in pairs:
        assert model.model_dump(mode="json", by_alias=True) == data


def test_unknown_task_and_job_queries_raise_query_errors() -> None:
    pipeline = define_pipeline(
        name="p", tasks={"build": task(sh("make"))}, jobs={"ship": job(target="build")}
    )
    with pytest.raises(QueryError) as unknown_task:
        query.explain_task(pipeline, "biuld")
    assert unknown_task.value.code == "ASYNC_PIPELINE_UNKNOWN_TASK"
    assert unknown_task.value.hint is not None and "build" in unknown_task.value.hint
    with pytest.raises(QueryError) as unknown_job:
        query.graph(pipeline, job="shp")
    assert unknown_job.value.code == "ASYNC_PIPELINE_UNKNOWN_JOB"
    assert unknown_job.value.hint == 'did you mean "ship"?'
    with pytest.raises(QueryError) as far_off:
        query.graph(pipeline, job="zzzzzz")
    assert far_off.value.hint and "(jobs: ship)" in far_off.value.message
    with pytest.raises(QueryError) as none:
        query.graph(define_pipeline(name="p", tasks={"build": task(sh("make"))}), job="ship")
    assert none.value.hint and "jobs=" in none.value.hint


def test_credentials_in_urls_are_masked_in_metadata() -> None:
    from async_pipeline import define_cache, redis_cache, source

    pipeline = define_pipeline(
        name="p",
        cache=define_cache(stores={"redis": redis_cache(url="redis://user:hunter22@cache:6379/0")}),
        sources={"app": source.git(url="https://bot:tok3n@example.com/app.git")},
    )
    text = str(_data.metadata(pipeline))
    assert "hunter22" not in text
    assert "tok3n" not in text
    assert "redis://***@cache:6379/0" in text


def test_an_in_memory_pipeline_has_no_root_or_config_path() -> None:
    data = query.metadata(define_pipeline(name="p"))
    assert data.root is None
    assert data.config_path is None
    assert data.tasks == []

"""Pure graph questions over a normalized pipeline."""

from __future__ import annotations

import pytest

from async_pipeline import Pipeline, job, source, task
from async_pipeline.core.graph import (
    dependents,
    job_tasks,
    jobs_reaching,
    topological,
    transitive_dependencies,
)

from ._support import build


@pytest.fixture
def pipeline() -> Pipeline:
    #   lint <- build <- test <- e2e          docs (alone)
    #            ^------ package <-'
    #   e2e also needs the source task lib:test
    return build(
        sources={"lib": source.path(path="../lib")},
        tasks={
            "docs": task(),
            "e2e": task(depends_on=["test", "package", "lib:test"]),
            "test": task(depends_on=["build"]),
            "package": task(depends_on=["build"]),
            "build": task(depends_on=["lint"]),
            "lint": task(),
        },
        jobs={
            "verify": job(target="test"),
            "release": job(target=["e2e", "docs"]),
            "docs": job(target="docs"),
        },
    )


def _before(order: list[str], first: str, then: str) -> bool:
    return order.index(first) < order.index(then)


def test_transitive_dependencies_put_dependencies_first_and_include_the_roots(
    pipeline: Pipeline,
) -> None:
    assert transitive_dependencies(pipeline, ["test"]) == ["lint", "build", "test"]


def test_transitive_dependencies_visit_a_shared_dependency_once(pipeline: Pipeline) -> None:
    order = transitive_dependencies(pipeline, ["e2e"])
    assert sorted(order) == sorted(["lint", "build", "test", "package", "lib:test", "e2e"])
    assert len(order) == len(set(order))
    for first, then in [
        ("lint", "build"),
        ("build", "test"),
        ("build", "package"),
        ("test", "e2e"),
    ]:
        assert _before(order, first, then)
    assert order[-1] == "e2e"


def test_transitive_dependencies_of_several_roots_do_not_repeat(pipeline: Pipeline) -> None:
    assert transitive_dependencies(pipeline, ["test", "package", "test"]) == [
        "lint",
        "build",
        "test",
        "package",
    ]


def test_transitive_dependencies_of_a_leaf_is_the_leaf(pipeline: Pipeline) -> None:
    assert transitive_dependencies(pipeline, ["lint"]) == ["lint"]
    assert transitive_dependencies(pipeline, []) == []


def test_job_tasks_is_the_targets_closure(pipeline: Pipeline) -> None:
    assert job_tasks(pipeline, "verify") == ["lint", "build", "test"]
    assert set(job_tasks(pipeline, "release")) == {
        "lint",
        "build",
        "test",
        "package",
        "lib:test",
        "e2e",
        "docs",
    }
    assert job_tasks(pipeline, "docs") == ["docs"]


@pytest.mark.parametrize(
    ("task_id", "direct", "transitive"),
    [
        ("lint", ["build"], ["e2e", "test", "package", "build"]),
        ("build", ["test", "package"], ["e2e", "test", "package"]),
        ("test", ["e2e"], ["e2e"]),
        ("e2e", [], []),
        ("docs", [], []),
        ("lib:test", ["e2e"], ["e2e"]),
    ],
)
def test_dependents_are_listed_in_declaration_order(
    pipeline: Pipeline, task_id: str, direct: list[str], transitive: list[str]
) -> None:
    assert dependents(pipeline, task_id) == direct
    assert dependents(pipeline, task_id, transitive=True) == transitive


@pytest.mark.parametrize(
    ("task_id", "jobs"),
    [
        ("lint", ["verify", "release"]),
        ("package", ["release"]),
        ("docs", ["release", "docs"]),
        ("e2e", ["release"]),
    ],
)
def test_jobs_reaching_a_task_are_those_whose_run_includes_it(
    pipeline: Pipeline, task_id: str, jobs: list[str]
) -> None:
    assert jobs_reaching(pipeline, task_id) == jobs


def test_topological_order_lists_every_task_once_dependencies_first(pipeline: Pipeline) -> None:
    order = topological(pipeline)
    assert sorted(order) == sorted(pipeline.tasks)
    for task_id, item in pipeline.tasks.items():
        for dep in item.depends_on:
            if dep in pipeline.tasks:
                assert _before(order, dep, task_id)


def test_topological_order_leaves_out_source_tasks(pipeline: Pipeline) -> None:
    assert "lib:test" not in topological(pipeline)


def test_topological_order_keeps_declaration_order_of_independent_tasks() -> None:
    pipeline = build(tasks={"c": task(), "a": task(), "b": task()})
    assert topological(pipeline) == ["c", "a", "b"]


def test_topological_order_is_deterministic() -> None:
    def make() -> Pipeline:
        return build(
            tasks={
                "z": task(depends_on=["y", "x"]),
                "y": task(depends_on=["x"]),
                "x": task(),
                "w": task(depends_on=["z"]),
            }
        )

    assert topological(make()) == topological(make()) == ["x", "y", "z", "w"]


def test_graph_functions_handle_deep_chains_without_recursion_limits() -> None:
    depth = 5000
    tasks = {f"t{i}": task(depends_on=[f"t{i + 1}"]) for i in range(depth)}
    tasks[f"t{depth}"] = task()
    pipeline = build(tasks=tasks, jobs={"all": job(target="t0")})
    assert job_tasks(pipeline, "all")[0] == f"t{depth}"
    assert len(dependents(pipeline, f"t{depth}", transitive=True)) == depth
    assert topological(pipeline)[-1] == "t0"

"""An unknown field anywhere in a pipeline is rejected with its full path and nearest name."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from async_pipeline import define_pipeline, job, sh, task

from ._support import build, error_of, suggests

Declare = Callable[[], object]


def _job(**fields: object) -> Declare:
    return lambda: build(tasks={"build": task()}, jobs={"verify": job(target="build", **fields)})


def _github(**config: object) -> Declare:
    return _job(github=config)


UNKNOWN_FIELDS: list[tuple[str, Declare, str, str | None]] = [
    ("pipeline", lambda: define_pipeline(name="app", taks={}), "taks", "tasks"),
    (
        "pipeline camelCase",
        lambda: define_pipeline(name="app", namedInputs={}),
        "namedInputs",
        "named_inputs",
    ),
    (
        "pipeline camelCase task defaults",
        lambda: define_pipeline(name="app", taskDefaults={}),
        "taskDefaults",
        "task_defaults",
    ),
    ("task()", lambda: build(tasks={"build": task(timout="5m")}), "tasks.build.timout", "timeout"),
    ("raw task", lambda: build(tasks={"build": {"timout": "5m"}}), "tasks.build.timout", "timeout"),
    (
        "raw task in group",
        lambda: build(tasks={"claims": {"report": {"timout": "5m"}}}),
        "tasks.claims.report.timout",
        "timeout",
    ),
    (
        "task() in group",
        lambda: build(tasks={"claims": {"report": task(timout="5m")}}),
        "tasks.claims.report.timout",
        "timeout",
    ),
    (
        "task() in nested groups",
        lambda: build(tasks={"a": {"b": {"c": task(ouputs=["x"])}}}),
        "tasks.a.b.c.ouputs",
        "outputs",
    ),
    (
        "task camelCase",
        lambda: build(tasks={"build": task(dependsOn=["x"])}),
        "tasks.build.dependsOn",
        "depends_on",
    ),
    (
        "raw task camelCase",
        lambda: build(tasks={"build": {"dependsOn": ["x"]}}),
        "tasks.build.dependsOn",
        "depends_on",
    ),
    (
        "task_defaults",
        lambda: build(task_defaults={"test": {"timout": "1m"}}),
        "task_defaults.test.timout",
        "timeout",
    ),
    (
        "task_defaults non-defaultable field",
        lambda: build(task_defaults={"test": {"run": sh("x")}}),
        "task_defaults.test.run",
        None,
    ),
    (
        "task_defaults nested retry",
        lambda: build(task_defaults={"test": {"retry": {"attemps": 2}}}),
        "task_defaults.test.retry.attemps",
        "attempts",
    ),
    ("job()", _job(tagret="x"), "jobs.verify.tagret", "target"),
    (
        "raw job",
        lambda: build(tasks={"build": task()}, jobs={"verify": {"target": "build", "trigers": []}}),
        "jobs.verify.trigers",
        "trigger",
    ),
    ("job github", _github(runsOn="ubuntu-latest"), "jobs.verify.github.runsOn", "runs_on"),
    ("job github typo", _github(permisions={}), "jobs.verify.github.permisions", "permissions"),
    (
        "github permission",
        _github(permissions={"pull_request": "write"}),
        "jobs.verify.github.permissions.pull_request",
        "pull_requests",
    ),
    (
        "github permission camelCase id token",
        _github(permissions={"idToken": "write"}),
        "jobs.verify.github.permissions.idToken",
        "id_token",
    ),
    (
        "github permission camelCase pull requests",
        _github(permissions={"pullRequests": "read"}),
        "jobs.verify.github.permissions.pullRequests",
        "pull_requests",
    ),
    (
        "github permission unrelated",
        _github(permissions={"actions": "read"}),
        "jobs.verify.github.permissions.actions",
        None,
    ),
    (
        "job requires",
        _job(requires={"provenence": True}),
        "jobs.verify.requires.provenence",
        "provenance",
    ),
    (
        "job environment",
        _job(environment={"nmae": "prod"}),
        "jobs.verify.environment.nmae",
        "name",
    ),
    (
        "agent profile",
        lambda: build(agents={"claude": {"command": ["claude"], "modle": "m"}}),
        "agents.claude.modle",
        "model",
    ),
    (
        "retry options",
        lambda: build(tasks={"build": task(retry={"attemps": 2})}),
        "tasks.build.retry.attemps",
        "attempts",
    ),
    (
        "retry options camelCase",
        lambda: build(tasks={"build": task(retry={"attempts": 2, "delayMs": 500})}),
        "tasks.build.retry.delayMs",
        "delay_ms",
    ),
    (
        "requires options",
        lambda: build(tasks={"build": task(requires={"tool": ["node"]})}),
        "tasks.build.requires.tool",
        "tools",
    ),
    (
        "cache options",
        lambda: build(tasks={"build": task(cache={"stor": "file:local"})}),
        "tasks.build.cache.stor",
        "store",
    ),
    (
        "cache options camelCase",
        lambda: build(tasks={"build": task(cache={"ttlMs": 5})}),
        "tasks.build.cache.ttlMs",
        "ttl_ms",
    ),
    ("sync", lambda: build(sync={"githb": True}), "sync.githb", "github"),
    (
        "sync.github",
        lambda: build(sync={"github": {"workflw": "x.yml"}}),
        "sync.github.workflw",
        "workflow",
    ),
    (
        "sync.tasks",
        lambda: build(sync={"tasks": {"prefx": "p"}}),
        "sync.tasks.prefx",
        "prefix",
    ),
    (
        "sync.tasks target",
        lambda: build(sync={"tasks": {"targets": [{"packge": "@acme/app"}]}}),
        "sync.tasks.targets[0].packge",
        "package",
    ),
]


@pytest.mark.parametrize(
    ("declare", "path", "nearest"),
    [case[1:] for case in UNKNOWN_FIELDS],
    ids=[case[0] for case in UNKNOWN_FIELDS],
)
def test_unknown_field_is_rejected_with_its_path_and_nearest_name(
    declare: Declare, path: str, nearest: str | None
) -> None:
    error = error_of(declare)
    assert error.code == "ASYNC_PIPELINE_UNKNOWN_FIELD"
    assert error.path == path
    assert path in error.message
    if nearest is None:
        assert error.hint is None
    else:
        assert suggests(error, nearest)


@pytest.mark.parametrize("field", ["contents", "id_token", "issues", "packages", "pull_requests"])
def test_every_documented_github_permission_is_accepted(field: str) -> None:
    pipeline = _github(permissions={field: "write"})()
    assert pipeline.jobs["verify"].github.permissions == {field: "write"}

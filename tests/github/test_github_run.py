"""`github run`: the event a workflow run started with picks the jobs, and they really run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from async_pipeline import define_pipeline, job, sh, task, trigger
from async_pipeline.errors import PipelineError
from async_pipeline.github import Event, branch_matches, read_event, select_jobs
from tests.github.conftest import cli

PIPELINE = """
from async_pipeline import define_pipeline, job, sh, task, trigger

def record(name):
    return task(sh("echo {name} >> ran.txt", name=name))

pipeline = define_pipeline(
    name="events",
    triggers={
        "main": trigger.github(events=["push"], branches=["main"]),
        "review": trigger.github(events=["pull_request"], branches=["main"]),
        "features": trigger.github(events=["push"], branches=["feature/**"]),
        "nightly": trigger.cron("0 3 * * *"),
        "weekly": trigger.cron("0 9 * * 1"),
        "manual": trigger.manual(),
    },
    tasks={
        "on-main": record("on-main"),
        "on-pr": record("on-pr"),
        "on-feature": record("on-feature"),
        "nightly": record("nightly"),
        "weekly": record("weekly"),
        "by-hand": record("by-hand"),
        "broken": task(sh("exit 3")),
    },
    jobs={
        "on-main": job(target="on-main", trigger=["main"]),
        "on-pr": job(target="on-pr", trigger=["review"]),
        "on-feature": job(target="on-feature", trigger=["features", "manual"]),
        "nightly": job(target="nightly", trigger=["nightly"]),
        "weekly": job(target="weekly", trigger=["weekly"]),
        "by-hand": job(target="by-hand", trigger=["manual"]),
        "broken": job(target="broken", trigger=["review"]),
        "untriggered": job(target="by-hand"),
    },
)
"""


def _github_run(root: Path, event: str, payload: object, *args: str) -> tuple[int, list[str], str]:
    path = root / "event.json"
    path.write_text(json.dumps(payload))
    env = {"PATH": os.environ["PATH"], "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(path)}
    done = cli(["github", "run", *args], root, env)
    ran = root / "ran.txt"
    lines = ran.read_text().split() if ran.exists() else []
    ran.unlink(missing_ok=True)
    return done.code, lines, done.stdout + done.stderr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    return tmp_path


def test_a_push_to_main_runs_the_main_job_and_nothing_else(root: Path) -> None:
    code, ran, output = _github_run(root, "push", {"ref": "refs/heads/main"})
    assert (code, ran) == (0, ["on-main"]), output


def test_a_push_to_another_branch_runs_only_jobs_whose_branch_filter_matches(root: Path) -> None:
    code, ran, _ = _github_run(root, "push", {"ref": "refs/heads/feature/deep/x"})
    assert (code, ran) == (0, ["on-feature"])
    code, ran, output = _github_run(root, "push", {"ref": "refs/heads/other"})
    assert (code, ran) == (0, [])
    assert "nothing to run" in output


def test_a_tag_push_matches_no_branch_filter(root: Path) -> None:
    assert _github_run(root, "push", {"ref": "refs/tags/v1.0.0"})[:2] == (0, [])


def test_a_pull_request_matches_on_its_base_branch_and_a_failure_fails_the_run(
    root: Path,
) -> None:
    payload = {"pull_request": {"base": {"ref": "main"}, "head": {"ref": "topic"}}}
    code, ran, output = _github_run(root, "pull_request", payload)
    assert (code, ran) == (1, ["on-pr"])
    assert "failed: broken (1 passed)" in output


def test_a_schedule_runs_only_the_jobs_with_that_cron(root: Path) -> None:
    code, ran, _ = _github_run(root, "schedule", {"schedule": "0 9 * * 1"})
    assert (code, ran) == (0, ["weekly"])


def test_workflow_dispatch_runs_only_jobs_with_a_manual_trigger(root: Path) -> None:
    code, ran, _ = _github_run(root, "workflow_dispatch", {"ref": "refs/heads/main"})
    assert (code, sorted(ran)) == (0, ["by-hand", "on-feature"])


def test_workflow_dispatch_with_job_runs_that_job_even_without_a_manual_trigger(
    root: Path,
) -> None:
    code, ran, _ = _github_run(root, "workflow_dispatch", {}, "--job", "nightly")
    assert (code, ran) == (0, ["nightly"])


def test_job_narrows_other_events_to_that_job_when_its_triggers_match(root: Path) -> None:
    assert _github_run(root, "push", {"ref": "refs/heads/main"}, "--job", "on-main")[:2] == (
        0,
        ["on-main"],
    )
    assert _github_run(root, "push", {"ref": "refs/heads/main"}, "--job", "nightly")[:2] == (
        0,
        [],
    )


def test_an_unknown_job_is_an_error_with_its_code(root: Path) -> None:
    code, _, output = _github_run(root, "workflow_dispatch", {}, "--job", "nope")
    assert code == 1 and "ASYNC_PIPELINE_UNKNOWN_JOB" in output


@pytest.mark.parametrize(
    ("env", "content"),
    [
        ({}, None),
        ({"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": "/nonexistent/event.json"}, None),
        ({"GITHUB_EVENT_NAME": "push"}, "{not json"),
        ({"GITHUB_EVENT_NAME": "push"}, "[1, 2]"),
    ],
    ids=["no-event-name", "missing-file", "invalid-json", "not-an-object"],
)
def test_a_missing_or_invalid_event_is_a_clear_error(
    tmp_path: Path, env: dict[str, str], content: str | None
) -> None:
    if content is not None:
        (tmp_path / "event.json").write_text(content)
        env = {**env, "GITHUB_EVENT_PATH": str(tmp_path / "event.json")}
    with pytest.raises(PipelineError) as caught:
        read_event(env)
    assert caught.value.code == "ASYNC_PIPELINE_GITHUB_EVENT"


def test_refs_come_from_github_ref_when_there_is_no_payload() -> None:
    assert read_event({"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"}) == Event(
        "push", "main"
    )
    pull = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "main"}
    assert read_event(pull).branch == "main"


@pytest.mark.parametrize(
    ("patterns", "branch", "expected"),
    [
        (["main"], "main", True),
        (["main"], "mainline", False),
        (["release/*"], "release/1.0", True),
        (["release/*"], "release/1.0/hotfix", False),
        (["release/**"], "release/1.0/hotfix", True),
        (["feature/**", "!feature/skip"], "feature/skip", False),
        (["feature/**", "!feature/skip"], "feature/keep", True),
        (["v[12].x"], "v2.x", True),
        (["v[12].x"], "v3.x", False),
        (["ma?in"], "min", True),
        (["!main"], "other", True),
    ],
)
def test_branch_filters_follow_github_glob_rules(
    patterns: list[str], branch: str, expected: bool
) -> None:
    assert branch_matches(patterns, branch) is expected


def test_jobs_are_selected_in_declaration_order() -> None:
    pipeline = define_pipeline(
        name="p",
        triggers={"manual": trigger.manual()},
        tasks={"t": task(sh("true"))},
        jobs={name: job(target="t", trigger=["manual"]) for name in ("z", "a", "m")},
    )
    assert select_jobs(pipeline, Event("workflow_dispatch")) == ["z", "a", "m"]


def test_job_on_an_event_its_triggers_do_not_match_says_it_has_no_such_trigger(
    root: Path,
) -> None:
    code, ran, output = _github_run(root, "push", {"ref": "refs/heads/main"}, "--job", "nightly")
    assert (code, ran) == (0, [])
    assert "job 'nightly' has no trigger matching push on main; nothing to run" in output


CONFIG_ERROR_PIPELINE = """
from async_pipeline import define_pipeline, env, job, sh, task, trigger

pipeline = define_pipeline(
    name="config",
    triggers={"nightly": trigger.cron("0 3 * * *")},
    tasks={
        "first": task(sh("echo first >> ran.txt")),
        "needs-secret": task(sh("echo secret >> ran.txt"), env={"TOK": env.secret("MY_TOKEN")}),
        "last": task(sh("echo last >> ran.txt")),
    },
    jobs={
        "first": job(target="first", trigger=["nightly"]),
        "needs-secret": job(target="needs-secret", trigger=["nightly"]),
        "last": job(target="last", trigger=["nightly"]),
    },
)
"""


def test_a_job_configuration_error_fails_that_job_and_the_others_still_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "pipeline.py").write_text(CONFIG_ERROR_PIPELINE)
    code, ran, output = _github_run(tmp_path, "schedule", {"schedule": "0 3 * * *"})
    assert (code, ran) == (1, ["first", "last"]), output
    assert "error[ASYNC_PIPELINE_ENV_MISSING]" in output
    assert "failed: needs-secret (2 passed)" in output

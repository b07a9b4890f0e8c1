"""Trigger declarations: event names and cron expressions are checked where they are declared."""

from __future__ import annotations

import pytest

from async_pipeline import define_pipeline, job, sh, task, trigger
from async_pipeline.core.triggers import GITHUB_EVENTS, CronTrigger, GithubTrigger

from ._support import error_of, suggests


def test_a_misspelled_event_is_rejected_with_its_path_and_the_nearest_event() -> None:
    error = error_of(lambda: trigger.github(events=["push", "pull_requst"]))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", "trigger.github.events[1]")
    assert suggests(error, "pull_request")


def test_an_unknown_event_fails_the_pipeline_that_declares_it() -> None:
    error = error_of(
        lambda: define_pipeline(
            name="p",
            triggers={"weird": trigger.github(events=["pushh"])},
            tasks={"t": task(sh("true"))},
            jobs={"j": job(target="t", trigger=["weird"])},
        )
    )
    assert error.code == "ASYNC_PIPELINE_INVALID_VALUE"


def test_schedule_is_not_a_plain_event_and_the_error_points_to_trigger_cron() -> None:
    error = error_of(lambda: trigger.github(events=["schedule"]))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", "trigger.github.events[0]")
    assert "trigger.cron" in error.message


def test_workflow_run_is_rejected_because_it_needs_a_workflows_filter() -> None:
    error = error_of(lambda: trigger.github(events=["workflow_run"]))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", "trigger.github.events[0]")


@pytest.mark.parametrize("event", sorted(GITHUB_EVENTS))
def test_every_github_actions_event_is_accepted(event: str) -> None:
    assert trigger.github(events=[event]) == GithubTrigger((event,))


def test_an_exclusion_needs_a_pattern_after_the_bang() -> None:
    error = error_of(lambda: trigger.github(events=["push"], branches=["main", "!"]))
    assert (error.code, error.path) == (
        "ASYNC_PIPELINE_INVALID_VALUE",
        "trigger.github.branches[1]",
    )


@pytest.mark.parametrize(
    "expression",
    [
        "0 9 * * 1",
        "*/15 * * * *",
        "0,30 8-18/2 * * MON-FRI",
        "5 4 1-31/2 jan,jul sun",
        "59 23 31 12 6",
        "0 0 1 * 0-6",
        "10/5 * * * *",
        " 0 3 * * * ",
    ],
)
def test_cron_expressions_github_accepts_are_kept_as_written(expression: str) -> None:
    assert trigger.cron(expression) == CronTrigger(expression.strip())


@pytest.mark.parametrize(
    "expression",
    [
        "x y z w v",
        "99 25 * * 8",
        "60 * * * *",
        "0 24 * * *",
        "0 0 0 * *",
        "0 0 32 * *",
        "0 0 * 0 *",
        "0 0 * 13 *",
        "0 0 * * 7",
        "5-1 * * * *",
        "*/0 * * * *",
        "*/x * * * *",
        "1-/5 * * * *",
        "1,,2 * * * *",
        "0 0 ? * *",
        "0 0 L * *",
        "0 0 * * 1#2",
        "0 0 * * funday",
        "@daily",
        "0 9 * * 1 2024",
        "٣ * * * *",
    ],
)
@pytest.mark.parametrize("helper", ["cron", "schedule"])
def test_cron_expressions_github_would_refuse_are_invalid_values(
    expression: str, helper: str
) -> None:
    declare = getattr(trigger, helper)
    error = error_of(lambda: declare(expression))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", f"trigger.{helper}")

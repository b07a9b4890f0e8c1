"""Triggers lowered to a workflow's ``on:`` block and to each workflow job's ``if:``.

``on:`` is the union over every triggered job; the job-level ``if:`` keeps a job from
starting for events that are not its own (a dispatch must not start push-only jobs). Branch
filters with glob characters are left to ``github run``, which matches them at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

from async_pipeline.core.model import Job, Pipeline
from async_pipeline.core.triggers import CronTrigger, GithubTrigger, ManualTrigger, Trigger

__all__ = ["BRANCH_EVENTS", "job_condition", "job_triggers", "on_block"]

# Events whose workflow filters accept ``branches`` (pull requests filter the base branch).
BRANCH_EVENTS = ("push", "pull_request", "pull_request_target")
_GLOB = frozenset("*?+[]!")


def job_triggers(pipeline: Pipeline, job: Job) -> list[Trigger]:
    """The trigger declarations a job lists, in its order."""
    return [pipeline.triggers[name] for name in job.triggers]


def on_block(pipeline: Pipeline, jobs: Sequence[Job]) -> dict[str, object]:
    """The ``on:`` mapping: events in first-seen order, then ``schedule``, then dispatch."""
    events: dict[str, list[str] | None] = {}
    crons: list[str] = []
    manual = False
    for job in jobs:
        for declared in job_triggers(pipeline, job):
            if isinstance(declared, ManualTrigger):
                manual = True
            elif isinstance(declared, CronTrigger):
                if declared.cron not in crons:
                    crons.append(declared.cron)
            else:
                for event in declared.events:
                    _add_event(events, event, declared)
    block: dict[str, object] = {}
    for event, branches in events.items():
        block[event] = {"branches": branches} if branches else {}
    if crons:
        block["schedule"] = [{"cron": cron} for cron in crons]
    if manual:
        block["workflow_dispatch"] = {}
    return block


def _add_event(events: dict[str, list[str] | None], event: str, declared: GithubTrigger) -> None:
    # ``None`` means "every branch": one unfiltered trigger widens the event for all jobs.
    if event not in BRANCH_EVENTS or not declared.branches:
        events[event] = None
        return
    if event in events and events[event] is None:
        return
    known = events.setdefault(event, [])
    assert known is not None
    known.extend(b for b in declared.branches if b not in known)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _branch_clause(event: str, branches: Sequence[str]) -> str:
    name = f"github.event_name == {_quote(event)}"
    if not branches or event not in BRANCH_EVENTS or any(_GLOB & set(b) for b in branches):
        return name
    if event == "push":
        refs = [f"github.ref == {_quote('refs/heads/' + b)}" for b in branches]
    else:
        refs = [f"github.base_ref == {_quote(b)}" for b in branches]
    return f"({name} && ({' || '.join(refs)}))"


def job_condition(pipeline: Pipeline, job: Job) -> str:
    """An ``if:`` expression true exactly for the events (and plain branches) the job has."""
    clauses: list[str] = []
    for declared in job_triggers(pipeline, job):
        if isinstance(declared, ManualTrigger):
            clause = "github.event_name == 'workflow_dispatch'"
        elif isinstance(declared, CronTrigger):
            clause = (
                "(github.event_name == 'schedule' && "
                f"github.event.schedule == {_quote(declared.cron)})"
            )
        else:
            for event in declared.events:
                branch = _branch_clause(event, declared.branches)
                if branch not in clauses:
                    clauses.append(branch)
            continue
        if clause not in clauses:
            clauses.append(clause)
    condition = " || ".join(clauses)
    custom = job.github.condition if job.github is not None else None
    if custom:
        custom = custom.strip()
        if custom.startswith("${{") and custom.endswith("}}"):
            custom = custom[3:-2].strip()
        condition = f"({condition}) && ({custom})"
    return condition

"""Triggers lowered to a workflow's ``on:`` block and to each workflow job's ``if:``.

``on:`` admits every event some triggered job wants (when branch filters with exclusions
cannot be merged into one list, a superset); the job-level ``if:`` keeps a job from starting
for events that are not its own (a dispatch must not start push-only jobs). Branch filters
with glob characters are left to ``github run``, which matches them at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

from async_pipeline.core.model import Job, Pipeline
from async_pipeline.core.triggers import CronTrigger, ManualTrigger, Trigger

__all__ = ["BRANCH_EVENTS", "branch_filter", "job_condition", "job_triggers", "on_block"]

# Events whose workflow filters accept ``branches`` (pull requests filter the base branch).
BRANCH_EVENTS = ("push", "pull_request", "pull_request_target")
_GLOB = frozenset("*?+[]!")


def job_triggers(pipeline: Pipeline, job: Job) -> list[Trigger]:
    """The trigger declarations a job lists, in its order."""
    return [pipeline.triggers[name] for name in job.triggers]


def on_block(pipeline: Pipeline, jobs: Sequence[Job]) -> dict[str, object]:
    """The ``on:`` mapping: events in first-seen order, then ``schedule``, then dispatch."""
    events: dict[str, list[tuple[str, ...]]] = {}
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
                    filters = events.setdefault(event, [])
                    branches = declared.branches if event in BRANCH_EVENTS else ()
                    if branches not in filters:
                        filters.append(branches)
    block: dict[str, object] = {event: branch_filter(lists) for event, lists in events.items()}
    if crons:
        block["schedule"] = [{"cron": cron} for cron in crons]
    if manual:
        block["workflow_dispatch"] = {}
    return block


def branch_filter(lists: Sequence[tuple[str, ...]]) -> dict[str, list[str]]:
    """An event's workflow-level filter, admitting every branch one of ``lists`` admits.

    Each list is a trigger's own filter (``()``: every branch and tag). GitHub reads one
    list in order, so a union of lists with exclusions cannot be written as one list
    (``[main]`` + ``["**", "!main"]`` would exclude main again); then the filter widens to
    every branch, and each job's ``if:`` and ``github run`` select as the triggers say.
    """
    if not lists or () in lists:
        return {}
    if len(lists) == 1:
        return _one_filter(lists[0])
    if any(pattern.startswith("!") for branches in lists for pattern in branches):
        return {"branches": ["**"]}
    union: list[str] = []
    for branches in lists:
        union.extend(pattern for pattern in branches if pattern not in union)
    return {"branches": union}


def _one_filter(branches: tuple[str, ...]) -> dict[str, list[str]]:
    if all(pattern.startswith("!") for pattern in branches):
        # GitHub refuses a branches list of exclusions only; this is the same set.
        return {"branches-ignore": [pattern[1:] for pattern in branches]}
    if branches[0].startswith("!"):
        # A list that starts by excluding starts from every branch (as github run reads it);
        # GitHub starts from none, so the implicit "every branch" is written out.
        return {"branches": ["**", *branches]}
    return {"branches": list(branches)}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _runtime_only(branch: str) -> bool:
    # Globs are matched by github run; so is a name GitHub would read as the start of an
    # expression inside `if:`, even quoted.
    return bool(_GLOB & set(branch)) or "${{" in branch


def _branch_clause(event: str, branches: Sequence[str]) -> str:
    name = f"github.event_name == {_quote(event)}"
    if not branches or event not in BRANCH_EVENTS or any(_runtime_only(b) for b in branches):
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

"""Trigger declarations: when jobs should run. Declaring one starts nothing.

Event names and cron expressions are checked here, when they are declared, so a typo
fails in ``pipeline.py`` instead of producing a workflow GitHub refuses or never starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from async_pipeline.core._validate import (
    MISSING,
    expect_str,
    expect_str_list,
    invalid,
    nearest,
    reject_unknown,
    require,
)
from async_pipeline.errors import DefinitionError

__all__ = ["GITHUB_EVENTS", "CronTrigger", "GithubTrigger", "ManualTrigger", "Trigger", "trigger"]

# The webhook events a GitHub Actions workflow can be started by (``on:`` keys), less
# ``schedule`` (trigger.cron) and ``workflow_run`` (needs a ``workflows`` filter that
# trigger.github cannot declare).
GITHUB_EVENTS = frozenset(
    {
        "branch_protection_rule",
        "check_run",
        "check_suite",
        "create",
        "delete",
        "deployment",
        "deployment_status",
        "discussion",
        "discussion_comment",
        "fork",
        "gollum",
        "issue_comment",
        "issues",
        "label",
        "merge_group",
        "milestone",
        "page_build",
        "project",
        "project_card",
        "project_column",
        "public",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_target",
        "push",
        "registry_package",
        "release",
        "repository_dispatch",
        "status",
        "watch",
        "workflow_call",
        "workflow_dispatch",
    }
)
_EVENT_INSTEAD = {
    "schedule": "use trigger.cron('<cron expression>') for a schedule",
    "workflow_run": (
        "workflow_run needs a `workflows` filter, which trigger.github does not declare"
    ),
}


@dataclass(frozen=True, slots=True)
class ManualTrigger:
    """Run on request (GitHub: ``workflow_dispatch``)."""


@dataclass(frozen=True, slots=True)
class GithubTrigger:
    """Run on repository events such as ``push`` or ``pull_request``, optionally per branch.

    ``branches`` is a GitHub filter list: globs, and ``!pattern`` to exclude again. A list
    that starts with an exclusion starts from every branch (``["!main"]``: all but main).
    """

    events: tuple[str, ...]
    branches: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CronTrigger:
    """Run on a five-field cron schedule (UTC)."""

    cron: str


Trigger = ManualTrigger | GithubTrigger | CronTrigger


# --- cron ------------------------------------------------------------------------------

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] means low + i

    def value(self, text: str) -> int | None:
        if text.isdigit() and text.isascii():
            number = int(text)
            return number if self.low <= number <= self.high else None
        folded = text.casefold()
        return self.low + self.names.index(folded) if folded in self.names else None

    def describe(self) -> str:
        shown = f"{self.low}-{self.high}"
        if self.names:
            shown += f" or {self.names[0].upper()}-{self.names[-1].upper()}"
        return f"{self.name} ({shown})"


# GitHub's schedule syntax (POSIX cron): numbers, names for months and weekdays, '*',
# ranges 'a-b', steps '/n' after '*', a range or a number, and ','-separated lists.
_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 6, _DAYS),
)
_STEP = re.compile(r"[0-9]+\Z")


def _cron_item(item: str, field: _Field) -> str | None:
    """What is wrong with one ','-separated item of a field, or None."""
    base, slash, step = item.partition("/")
    if slash and (not _STEP.match(step) or int(step) == 0):
        return f"the step in {item!r} must be a positive number"
    if base == "*":
        return None
    start, dash, end = base.partition("-")
    first = field.value(start)
    last = field.value(end) if dash else first
    if first is None or last is None:
        return f"{item!r} is not a value, range or step for the {field.describe()}"
    if first > last:
        return f"the range {base!r} runs backwards"
    return None


def _cron_problem(text: str) -> str | None:
    fields = text.split()
    if len(fields) != 5:
        return f"a cron expression has five fields, this has {len(fields)}"
    for part, field in zip(fields, _FIELDS, strict=True):
        for item in part.split(","):
            problem = _cron_item(item, field)
            if problem is not None:
                return f"{field.name} field: {problem}"
    return None


def _cron(expression: object, path: str) -> CronTrigger:
    text = expect_str(expression, path).strip()
    problem = _cron_problem(text)
    if problem is not None:
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_VALUE",
            f"{path}: {text!r} is not a cron expression GitHub accepts: {problem}",
            path=path,
            hint="five fields, minute hour day-of-month month day-of-week, in UTC, "
            "such as '0 9 * * 1' (09:00 on Mondays)",
        )
    return CronTrigger(text)


# --- github events and branches ----------------------------------------------------------


def _event(name: str, path: str) -> str:
    if name in GITHUB_EVENTS:
        return name
    if name in _EVENT_INSTEAD:
        reason = _EVENT_INSTEAD[name]
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_VALUE",
            f"{path}: {name!r} cannot be a trigger.github event: {reason}",
            path=path,
        )
    guess = nearest(name, GITHUB_EVENTS)
    raise DefinitionError(
        "ASYNC_PIPELINE_INVALID_VALUE",
        f"{path}: {name!r} is not a GitHub Actions event",
        path=path,
        hint=f'did you mean "{guess}"?'
        if guess
        else "see the events that trigger workflows in GitHub's documentation",
    )


def _branches(value: object, path: str) -> tuple[str, ...]:
    patterns = expect_str_list(value, path)
    for i, pattern in enumerate(patterns):
        if pattern == "!":
            raise invalid(f"{path}[{i}]", "a branch pattern after '!'", pattern)
    return patterns


class _Trigger:
    """The ``trigger`` helper namespace."""

    def manual(self) -> ManualTrigger:
        return ManualTrigger()

    def github(
        self,
        *,
        events: list[str] | tuple[str, ...] | str = MISSING,
        branches: list[str] | tuple[str, ...] | str = (),
        **unknown: object,
    ) -> GithubTrigger:
        reject_unknown(unknown, ("events", "branches"), "trigger.github", "trigger.github()")
        require(events, "trigger.github.events", "event names such as ['push']")
        names = expect_str_list(events, "trigger.github.events")
        if not names:
            raise invalid("trigger.github.events", "at least one event name", events)
        checked = tuple(_event(name, f"trigger.github.events[{i}]") for i, name in enumerate(names))
        return GithubTrigger(checked, _branches(branches, "trigger.github.branches"))

    def cron(self, expression: str) -> CronTrigger:
        return _cron(expression, "trigger.cron")

    def schedule(self, expression: str) -> CronTrigger:
        """The older name for :meth:`cron`."""
        return _cron(expression, "trigger.schedule")


trigger = _Trigger()

"""Trigger declarations: when jobs should run. Declaring one starts nothing."""

from __future__ import annotations

from dataclasses import dataclass

from async_pipeline.core._validate import (
    MISSING,
    expect_str,
    expect_str_list,
    invalid,
    reject_unknown,
    require,
)

__all__ = ["CronTrigger", "GithubTrigger", "ManualTrigger", "Trigger", "trigger"]


@dataclass(frozen=True, slots=True)
class ManualTrigger:
    """Run on request (GitHub: ``workflow_dispatch``)."""


@dataclass(frozen=True, slots=True)
class GithubTrigger:
    """Run on repository events such as ``push`` or ``pull_request``, optionally per branch."""

    events: tuple[str, ...]
    branches: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CronTrigger:
    """Run on a five-field cron schedule (UTC)."""

    cron: str


Trigger = ManualTrigger | GithubTrigger | CronTrigger


def _cron(expression: object, path: str) -> CronTrigger:
    text = expect_str(expression, path).strip()
    if len(text.split()) != 5:
        raise invalid(path, "a five-field cron expression such as '0 9 * * 1'", expression)
    return CronTrigger(text)


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
        return GithubTrigger(names, expect_str_list(branches, "trigger.github.branches"))

    def cron(self, expression: str) -> CronTrigger:
        return _cron(expression, "trigger.cron")

    def schedule(self, expression: str) -> CronTrigger:
        """The older name for :meth:`cron`."""
        return _cron(expression, "trigger.schedule")


trigger = _Trigger()

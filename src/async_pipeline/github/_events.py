"""The GitHub event a workflow run was started by, and the jobs whose triggers it matches."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import orjson

from async_pipeline.core.model import Pipeline
from async_pipeline.core.triggers import CronTrigger, ManualTrigger, Trigger
from async_pipeline.errors import PipelineError
from async_pipeline.github._triggers import BRANCH_EVENTS, job_triggers

__all__ = ["Event", "branch_matches", "read_event", "select_jobs"]

_PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


@dataclass(frozen=True, slots=True)
class Event:
    """What ``github run`` matches triggers against.

    ``branch`` is the branch a filter applies to: the pushed branch, or a pull request's
    base branch (as GitHub's own ``branches`` filter does); ``None`` for tags and the like.
    """

    name: str
    branch: str | None = None
    schedule: str | None = None

    def describe(self) -> str:
        where = f" on {self.branch}" if self.branch else ""
        return f"{self.name}{where}" + (f" ({self.schedule})" if self.schedule else "")


def _event_error(message: str, hint: str | None = None) -> PipelineError:
    return PipelineError("ASYNC_PIPELINE_GITHUB_EVENT", message, hint=hint)


def _payload(env: Mapping[str, str]) -> dict[str, object]:
    location = env.get("GITHUB_EVENT_PATH", "")
    if not location:
        return {}  # run by hand with only GITHUB_EVENT_NAME: refs come from GITHUB_REF
    try:
        data = orjson.loads(Path(location).read_bytes())
    except FileNotFoundError:
        raise _event_error(f"the event file GITHUB_EVENT_PATH={location} does not exist") from None
    except OSError as exc:
        raise _event_error(f"cannot read the event file {location}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise _event_error(f"the event file {location} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _event_error(f"the event file {location} holds JSON that is not an object")
    return data


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def read_event(env: Mapping[str, str]) -> Event:
    """The event from ``GITHUB_EVENT_NAME`` and the payload at ``GITHUB_EVENT_PATH``."""
    name = env.get("GITHUB_EVENT_NAME", "").strip()
    if not name:
        raise _event_error(
            "GITHUB_EVENT_NAME is not set, so there is no event to match jobs against",
            hint="github run is meant for GitHub Actions; locally use `async-pipeline run <job>`",
        )
    payload = _payload(env)
    if name in _PULL_REQUEST_EVENTS:
        pull = payload.get("pull_request")
        base = pull.get("base") if isinstance(pull, dict) else None
        ref = _text(base.get("ref") if isinstance(base, dict) else None)
        ref = ref or _text(env.get("GITHUB_BASE_REF"))
    else:
        ref = _text(payload.get("ref")) or _text(env.get("GITHUB_REF"))
    branch = ref
    if ref is not None and ref.startswith("refs/"):
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    return Event(name, branch, _text(payload.get("schedule")))


@lru_cache(maxsize=256)
def _pattern(glob: str) -> re.Pattern[str]:
    # GitHub's filter globs: ** crosses '/', * does not, ? and + quantify the character
    # before them, [...] is a class. Everything else is literal.
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char in "?+" and out:
            out.append(char)
        elif char == "[" and "]" in glob[i + 1 :]:
            end = glob.index("]", i + 1)
            out.append("[" + glob[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def branch_matches(patterns: Sequence[str], branch: str) -> bool:
    """Whether ``branch`` passes a filter list; a later ``!pattern`` excludes again."""
    matched = bool(patterns) and patterns[0].startswith("!")
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _pattern(pattern[1:] if negated else pattern).fullmatch(branch):
            matched = not negated
    return matched


def _matches(declared: Trigger, event: Event) -> bool:
    if isinstance(declared, ManualTrigger):
        return event.name == "workflow_dispatch"
    if isinstance(declared, CronTrigger):
        return event.name == "schedule" and event.schedule in (None, declared.cron)
    if event.name not in declared.events:
        return False
    if not declared.branches or event.name not in BRANCH_EVENTS:
        return True
    return event.branch is not None and branch_matches(declared.branches, event.branch)


def select_jobs(pipeline: Pipeline, event: Event, only: str | None = None) -> list[str]:
    """Job ids to run for ``event``, in declaration order.

    On ``workflow_dispatch`` a job named by ``only`` runs even without a manual trigger;
    for every other event ``only`` narrows the selection to that job if it matches.
    """
    if only is not None and only not in pipeline.jobs:
        from async_pipeline.query._data import check_job

        check_job(pipeline, only)
    candidates = [only] if only is not None else list(pipeline.jobs)
    selected: list[str] = []
    for job_id in candidates:
        job = pipeline.jobs[job_id]
        explicit = only is not None and event.name == "workflow_dispatch"
        if explicit or any(_matches(t, event) for t in job_triggers(pipeline, job)):
            selected.append(job_id)
    return selected

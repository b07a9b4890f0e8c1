"""Execution records and task logs: complete, atomic, redacted, bounded."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import define_pipeline, env, job, sh, task
from async_pipeline.errors import PipelineError
from async_pipeline.redaction import TRUNCATION_MARKER
from async_pipeline.runner import run_job
from async_pipeline.runner.logs import max_log_bytes
from async_pipeline.runner.records import RUNS_DIR, run_ids
from async_pipeline.testing import canary_samples, new_canary, scan_for_canary

BASE_ENV = {"PATH": os.environ["PATH"]}


def _record_file(root: Path, run_id: str) -> dict[str, Any]:
    return json.loads((root / RUNS_DIR / run_id / "execution.json").read_text())


def test_the_record_has_every_documented_field(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="app", tasks={"a": task(sh("echo hi"))}, jobs={"verify": job(target="a")}
    )
    record = run_job(pipeline, id="verify", cwd=tmp_path, env=BASE_ENV)
    data = _record_file(tmp_path, record.id)
    assert data == record.model_dump(mode="json", by_alias=True)
    assert data["schemaVersion"] == 1
    assert data["pid"] == os.getpid()
    assert (data["pipelineName"], data["jobId"], data["status"]) == ("app", "verify", "passed")
    assert data["cwd"] == str(tmp_path)
    assert data["startedAt"] <= data["finishedAt"]
    result = data["tasks"][0]
    assert set(result) >= {
        "id",
        "status",
        "attempts",
        "cacheKey",
        "cacheHit",
        "startedAt",
        "finishedAt",
        "durationMs",
        "exitCode",
        "error",
        "metadata",
    }
    assert result["cacheHit"] is False and result["attempts"] == 1
    logs = tmp_path / RUNS_DIR / record.id / result["logs"]["stdout"]
    assert logs.read_text() == "hi\n"


def test_a_record_is_written_when_the_run_starts(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def peek(ctx: Any) -> None:
        seen.update(_record_file(ctx.root.dir, ctx.run_id))

    pipeline = define_pipeline(name="p", tasks={"a": task(peek)}, jobs={"j": job(target="a")})
    run_job(pipeline, id="j", cwd=tmp_path, env=BASE_ENV)
    assert seen["status"] == "running"
    assert seen["finishedAt"] is None
    assert seen["tasks"][0]["status"] == "pending"


def test_mode_is_ci_when_ci_is_set(tmp_path: Path) -> None:
    pipeline = define_pipeline(name="p", tasks={"a": task(sh("true"))}, jobs={"j": job(target="a")})
    assert run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "CI": "true"}).mode == "ci"
    assert run_job(pipeline, id="j", cwd=tmp_path, env=BASE_ENV).mode == "manual"
    assert run_job(pipeline, id="j", cwd=tmp_path, env=BASE_ENV, mode="ci").mode == "ci"


def test_secrets_never_reach_logs_records_or_errors_in_any_encoding(tmp_path: Path) -> None:
    canary = new_canary("secret")
    planted = canary_samples(canary)
    script = tmp_path / "leak.py"
    script.write_text(
        "import sys\n"
        f"samples = {list(planted.values())!r}\n"
        "for s in samples:\n"
        "    sys.stdout.buffer.write(b'value: ' + s + b'\\n')\n"
        "    sys.stderr.buffer.write(s)\n"
        "sys.exit(3)\n"
    )

    def fail_with_secret(ctx: Any) -> None:
        raise RuntimeError(f"bad token {ctx.env['TOKEN']}")

    pipeline = define_pipeline(
        name="p",
        env={"TOKEN": env.secret("API_TOKEN")},
        tasks={
            "print": task(sh(f"{sys.executable} leak.py")),
            "raise": task(fail_with_secret),
        },
        jobs={"j": job(target=["print", "raise"])},
    )
    record = run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "API_TOKEN": canary})
    assert record.status == "failed"
    assert {t.status for t in record.tasks} == {"failed"}
    dumped = record.model_dump_json()
    assert scan_for_canary(canary, trees=[tmp_path / ".async"], captured=[dumped]) == []
    log = (tmp_path / RUNS_DIR / record.id / "logs" / "print.stdout.log").read_text()
    assert log.count("value: ") == len(planted)


def test_a_missing_secret_fails_the_run_up_front_naming_key_and_source(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"a": task(sh("touch ran"))},
        jobs={"j": job(target="a", env={"NODE_AUTH_TOKEN": env.secret("NPM_TOKEN")})},
    )
    with pytest.raises(PipelineError) as caught:
        run_job(pipeline, id="j", cwd=tmp_path, env=BASE_ENV)
    assert caught.value.code == "ASYNC_PIPELINE_ENV_MISSING"
    assert "NODE_AUTH_TOKEN" in caught.value.message and "NPM_TOKEN" in caught.value.message
    assert not (tmp_path / "ran").exists()
    for accepted in ("NPM_TOKEN", "NODE_AUTH_TOKEN"):
        assert (
            run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, accepted: "tok-12345"}).status
            == "passed"
        )


@pytest.mark.parametrize(
    ("source", "expected"),
    [({}, "http://localhost:3000"), ({"NODE_ENV": "prod"}, "https://api.example.com")],
)
def test_vars_default_and_map_to_runtime_values(
    tmp_path: Path, source: dict[str, str], expected: str
) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"a": task(sh('printf %s "$API_URL" > url'))},
        jobs={
            "j": job(
                target="a",
                env={
                    "API_URL": env.var(
                        "NODE_ENV",
                        {"prod": "https://api.example.com", "dev": "http://localhost:3000"},
                        default="dev",
                    )
                },
            )
        },
    )
    run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, **source})
    assert (tmp_path / "url").read_text() == expected


def test_an_unmapped_var_value_fails_up_front_without_printing_it(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        env={"API_URL": env.var("NODE_ENV", {"prod": "a", "dev": "b"})},
        tasks={"a": task(sh("true"))},
        jobs={"j": job(target="a")},
    )
    with pytest.raises(PipelineError) as caught:
        run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "NODE_ENV": "staging-xyz"})
    assert caught.value.code == "ASYNC_PIPELINE_ENV_UNMAPPED"
    assert "staging-xyz" not in str(caught.value)
    assert "NODE_ENV" in (caught.value.hint or "")
    with pytest.raises(PipelineError) as missing:
        run_job(pipeline, id="j", cwd=tmp_path, env=BASE_ENV)
    assert missing.value.code == "ASYNC_PIPELINE_ENV_MISSING"
    assert "export NODE_ENV" in (missing.value.hint or "")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", 8 * 1024 * 1024), (" ", 8 * 1024 * 1024), ("0", 0), ("100", 4096), ("65536", 65536)],
)
def test_max_log_bytes_setting(raw: str, expected: int) -> None:
    assert max_log_bytes({"ASYNC_PIPELINE_MAX_LOG_BYTES": raw}) == expected


@pytest.mark.parametrize("name", ["ASYNC_PIPELINE_MAX_LOG_BYTES", "ASYNC_PIPELINE_KEEP_RUNS"])
@pytest.mark.parametrize("raw", ["junk", "-3", "1.5", "\u0663", "1e9"])
def test_a_setting_that_is_no_whole_number_fails_the_run_before_it_starts(
    tmp_path: Path, name: str, raw: str
) -> None:
    pipeline = define_pipeline(
        name="p", tasks={"a": task(sh("touch ran"))}, jobs={"j": job(target="a")}
    )
    with pytest.raises(PipelineError) as caught:
        run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, name: raw})
    assert caught.value.code == "ASYNC_PIPELINE_USAGE"
    assert name in caught.value.message
    assert list(tmp_path.iterdir()) == []  # nothing ran, nothing was recorded


def test_stored_logs_keep_the_tail_with_a_truncation_marker(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"a": task(sh("seq 1 100000"))},
        jobs={"j": job(target="a")},
    )
    record = run_job(
        pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "ASYNC_PIPELINE_MAX_LOG_BYTES": "4096"}
    )
    log = (tmp_path / RUNS_DIR / record.id / "logs" / "a.stdout.log").read_bytes()
    assert log.startswith(TRUNCATION_MARKER)
    assert len(log) == 4096 + len(TRUNCATION_MARKER)
    assert log.endswith(b"99999\n100000\n")


def test_binary_output_keeps_records_valid_utf8_json(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        tasks={"a": task(sh("printf '\\377\\376\\000\\200'; printf '\\377' >&2; exit 1"))},
        jobs={"j": job(target="a")},
    )
    record = run_job(pipeline, id="j", cwd=tmp_path, env=BASE_ENV)
    raw = (tmp_path / RUNS_DIR / record.id / "execution.json").read_bytes()
    raw.decode("utf-8")
    assert json.loads(raw)["tasks"][0]["exitCode"] == 1
    log = (tmp_path / RUNS_DIR / record.id / "logs" / "a.stdout.log").read_bytes()
    assert log == b"\xff\xfe\x00\x80"


def test_runs_are_pruned_to_keep_runs_after_each_run(tmp_path: Path) -> None:
    pipeline = define_pipeline(name="p", tasks={"a": task(sh("true"))}, jobs={"j": job(target="a")})
    ids = [
        run_job(
            pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "ASYNC_PIPELINE_KEEP_RUNS": "3"}
        ).id
        for _ in range(5)
    ]
    assert run_ids(tmp_path) == ids[-3:]
    run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "ASYNC_PIPELINE_KEEP_RUNS": "0"})
    assert len(run_ids(tmp_path)) == 4


def test_a_task_printing_a_gibibyte_stays_within_the_memory_cap(tmp_path: Path) -> None:
    """The runner's peak RSS grows by at most the cap plus a small constant."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os, resource, sys\n"
        "from async_pipeline import define_pipeline, job, sh, task\n"
        "from async_pipeline.runner import run_job\n"
        "pipeline = define_pipeline(name='big', tasks={'big': task(sh("
        "'head -c 1073741824 /dev/zero'))}, jobs={'j': job(target='big')})\n"
        "small = define_pipeline(name='small', tasks={'s': task(sh('echo warm'))}, "
        "jobs={'j': job(target='s')})\n"
        "env = {'PATH': os.environ['PATH'], 'ASYNC_PIPELINE_MAX_LOG_BYTES': str(8 * 2**20)}\n"
        "run_job(small, id='j', cwd=sys.argv[2], env=env)  # imports and warms everything\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "record = run_job(pipeline, id='j', cwd=sys.argv[1], env=env)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(record.status, before, after)\n"
    )
    work, warm = tmp_path / "work", tmp_path / "warm"
    work.mkdir()
    warm.mkdir()
    import subprocess

    done = subprocess.run(
        [sys.executable, str(probe), str(work), str(warm)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    status, before_kib, after_kib = done.stdout.split()
    assert status == "passed"
    growth_mib = (int(after_kib) - int(before_kib)) / 1024
    assert growth_mib < 8 + 4, growth_mib  # the 8 MiB cap plus a small constant
    log = work / RUNS_DIR / run_ids(work)[0] / "logs" / "big.stdout.log"
    assert log.stat().st_size == 8 * 2**20 + len(TRUNCATION_MARKER)


def test_a_secret_too_short_to_mask_is_warned_about_without_its_value(tmp_path: Path) -> None:
    pipeline = define_pipeline(
        name="p",
        env={"PIN": env.secret("SHORT_PIN")},
        tasks={"a": task(sh("true"))},
        jobs={"j": job(target="a")},
    )
    record = run_job(pipeline, id="j", cwd=tmp_path, env={**BASE_ENV, "SHORT_PIN": "q7z"})
    assert record.status == "passed"
    assert len(record.warnings) == 1
    assert "PIN" in record.warnings[0] and "not masked" in record.warnings[0]
    assert "q7z" not in record.model_dump_json()

"""What a pipeline's triggers and jobs render to, asserted on the workflow's JSON twin."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from async_pipeline import __version__, define_pipeline, env, job, sh, task, trigger
from async_pipeline.core.model import SyncGithub
from async_pipeline.errors import PipelineError
from async_pipeline.github import render
from async_pipeline.github._actions import CACHE, CHECKOUT, SETUP_PYTHON
from async_pipeline.github._sync import github_settings
from tests.github.conftest import FIXTURE_NAMES, fixture_pipeline, parse_yaml


def _rendered(name: str) -> Any:
    pipeline = fixture_pipeline(name)
    return render(pipeline, github_settings(pipeline), __version__)


def _job(name: str, job_id: str) -> Any:
    return _rendered(name).document["jobs"][job_id]


def _run_step(name: str, job_id: str) -> Any:
    return _job(name, job_id)["steps"][-1]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_the_emitted_yaml_parses_to_exactly_the_json_twin(name: str) -> None:
    rendered = _rendered(name)
    assert parse_yaml(rendered.workflow_text) == rendered.document


def test_triggers_become_push_pull_request_schedule_and_workflow_dispatch() -> None:
    assert _rendered("basic").document["on"] == {
        "push": {"branches": ["main"]},
        "pull_request": {"branches": ["main", "release/*"]},
        "schedule": [{"cron": "0 3 * * *"}, {"cron": "0 9 * * 1"}],
        "workflow_dispatch": {},
    }


def test_an_unfiltered_trigger_widens_its_event_and_other_events_take_no_branches() -> None:
    assert _rendered("edge").document["on"] == {
        "push": {},
        "workflow_call": {},
        "workflow_dispatch": {},
    }
    assert _rendered("deploy").document["on"]["release"] == {}


def test_only_jobs_with_triggers_become_workflow_jobs() -> None:
    assert list(_rendered("basic").document["jobs"]) == ["verify", "nightly"]


def test_each_job_starts_only_for_its_own_events_and_plain_branches() -> None:
    assert _job("basic", "verify")["if"] == (
        "(github.event_name == 'push' && (github.ref == 'refs/heads/main')) "
        "|| github.event_name == 'pull_request' || github.event_name == 'workflow_dispatch'"
    )
    assert _job("basic", "nightly")["if"] == (
        "(github.event_name == 'schedule' && github.event.schedule == '0 3 * * *') "
        "|| (github.event_name == 'schedule' && github.event.schedule == '0 9 * * 1')"
    )


def test_a_github_if_is_combined_with_the_trigger_condition() -> None:
    assert _job("deploy", "comment")["if"] == (
        "((github.event_name == 'push' && (github.ref == 'refs/heads/main'))) "
        "&& (github.repository_owner == 'acme')"
    )


def test_steps_pin_checkout_python_and_cache_by_sha_then_run_the_job() -> None:
    steps = _job("basic", "verify")["steps"]
    assert [step.get("uses") for step in steps] == [
        f"actions/checkout@{CHECKOUT.sha}",
        f"actions/setup-python@{SETUP_PYTHON.sha}",
        None,
        f"actions/cache@{CACHE.sha}",
        None,
    ]
    assert all(len(action.sha) == 40 for action in (CHECKOUT, SETUP_PYTHON, CACHE))
    assert steps[0]["with"] == {"persist-credentials": False}
    assert steps[1]["with"] == {"python-version": "3.11"}
    assert steps[2]["run"] == f"python -m pip install async-pipeline=={__version__}"
    assert steps[3]["with"] == {
        "path": ".async/cache",
        "key": "async-pipeline-${{ runner.os }}-verify-${{ github.sha }}",
        "restore-keys": "async-pipeline-${{ runner.os }}-verify-",
    }
    assert steps[4]["run"] == "async-pipeline github run --job verify"


def test_sync_github_object_form_sets_python_version_and_turns_the_cache_off() -> None:
    steps = _job("deploy", "publish")["steps"]
    assert steps[1]["with"] == {"python-version": "3.12"}
    assert not any("actions/cache@" in str(step.get("uses")) for step in steps)


def test_env_renders_secrets_and_vars_by_name_and_literals_as_written() -> None:
    assert _run_step("deploy", "publish")["env"] == {
        "CI": "true",
        "NODE_ENV": "${{ vars.NODE_ENV }}",
        "LOG_LEVEL": "info",
        "PYPI_TOKEN": "${{ secrets.PYPI_TOKEN }}",
        "API_URL": "${{ vars.DEPLOY_TARGET }}",
        "BUILD_TOKEN": "${{ secrets.BUILD_TOKEN }}",
    }


def test_a_literal_that_looks_like_an_expression_stays_literal() -> None:
    env_block = _run_step("edge", "job_2fast")["env"]
    assert env_block["EXPRESSION"] == "${{ '${{ github.token }} isn''t expanded' }}"
    assert env_block["NUMBER"] == "3.10" and env_block["YES"] == "yes"


def test_environment_is_a_name_or_a_name_and_url() -> None:
    assert _job("deploy", "publish")["environment"] == {
        "name": "pypi",
        "url": "https://pypi.org/project/async-pipeline",
    }
    assert _job("deploy", "comment")["environment"] == "staging"


def test_provenance_grants_id_token_write_and_restates_contents_read() -> None:
    assert _job("deploy", "publish")["permissions"] == {"contents": "read", "id-token": "write"}


def test_github_permissions_use_dashed_names_and_keep_an_explicit_contents() -> None:
    assert _job("deploy", "comment")["permissions"] == {
        "contents": "read",
        "issues": "write",
        "pull-requests": "write",
    }
    assert _job("deploy", "pinned")["permissions"] == {"contents": "write"}


def test_the_workflow_defaults_to_read_only_contents_and_jobs_without_grants_add_none() -> None:
    assert _rendered("basic").document["permissions"] == {"contents": "read"}
    assert "permissions" not in _job("basic", "verify")


def test_runners_come_from_github_runs_on_then_the_execution_profile_then_ubuntu() -> None:
    assert _job("deploy", "pinned")["runs-on"] == "ubuntu-22.04"
    assert _job("deploy", "publish")["runs-on"] == "ubuntu-24.04"
    assert _job("deploy", "comment")["runs-on"] == ["self-hosted", "macos", "arm64"]
    assert _job("basic", "verify")["runs-on"] == "ubuntu-latest"


def test_timeout_and_concurrency_come_from_the_github_escape_hatch() -> None:
    publish = _job("deploy", "publish")
    assert (publish["timeout-minutes"], publish["concurrency"]) == (30, "publish")


def test_a_job_id_starting_with_a_digit_gets_a_valid_workflow_job_id() -> None:
    jobs = _rendered("edge").document["jobs"]
    assert list(jobs) == ["job_2fast", "wide"]
    assert jobs["job_2fast"]["steps"][-1]["run"] == "async-pipeline github run --job 2fast"


def test_golden_yaml_for_a_provenance_job_header_and_permissions() -> None:
    text = _rendered("deploy").workflow_text
    assert text.startswith(
        f"# Generated by async-pipeline {__version__} from pipeline.py. Do not edit by hand:\n"
        "# regenerate with `async-pipeline sync github generate`;\n"
    )
    assert (
        "    permissions:\n"
        "      contents: read # restated: job permissions replace the workflow's\n"
        "      id-token: write # requires.provenance\n"
    ) in text
    assert (
        f"        uses: actions/checkout@{CHECKOUT.sha} # {CHECKOUT.version}\n"
        "        with:\n"
        "          persist-credentials: false\n"
    ) in text
    assert '          PYPI_TOKEN: "${{ secrets.PYPI_TOKEN }}"\n' in text


def test_the_lock_records_versions_paths_pins_and_the_workflow_hash() -> None:
    rendered = _rendered("deploy")
    assert rendered.lock == {
        "schemaVersion": 1,
        "generator": {"name": "async-pipeline", "version": __version__},
        "workflow": ".github/workflows/deploy.yml",
        "lock": ".github/deploy.lock.json",
        "runtime": {"python": "3.12", "package": f"async-pipeline=={__version__}"},
        "cache": False,
        "actions": {
            "actions/checkout": {"sha": CHECKOUT.sha, "version": CHECKOUT.version},
            "actions/setup-python": {"sha": SETUP_PYTHON.sha, "version": SETUP_PYTHON.version},
        },
        "workflowSha256": hashlib.sha256(rendered.workflow_text.encode()).hexdigest(),
    }


def _pipeline(**job_fields: Any) -> Any:
    return define_pipeline(
        name="p",
        triggers={"push": trigger.github(events=["push"])},
        tasks={"t": task(sh("true"))},
        jobs={"j": job(target="t", trigger=["push"], **job_fields)},
    )


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "github_x"])
def test_secret_names_github_reserves_are_rejected(name: str) -> None:
    pipeline = _pipeline(env={"TOKEN": env.secret(name)})
    with pytest.raises(PipelineError) as caught:
        render(pipeline, SyncGithub(), __version__)
    assert caught.value.code == "ASYNC_PIPELINE_INVALID_VALUE"
    assert caught.value.path == "jobs.j.env.TOKEN"


def test_a_pipeline_without_triggered_jobs_has_no_workflow_to_generate() -> None:
    pipeline = define_pipeline(name="p", tasks={"t": task(sh("true"))}, jobs={"j": job(target="t")})
    with pytest.raises(PipelineError) as caught:
        render(pipeline, SyncGithub(), __version__)
    assert caught.value.code == "ASYNC_PIPELINE_INVALID_VALUE"


def test_rendering_is_deterministic() -> None:
    assert _rendered("deploy").workflow_text == _rendered("deploy").workflow_text

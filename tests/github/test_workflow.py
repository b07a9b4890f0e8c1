"""What a pipeline's triggers and jobs render to, asserted on the workflow's JSON twin."""

from __future__ import annotations

import hashlib
from typing import Any

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
from async_pipeline.core.model import SyncGithub
from async_pipeline.errors import PipelineError
from async_pipeline.github import Event, branch_matches, render, select_jobs
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


def _document(**sections: Any) -> Any:
    sections.setdefault("tasks", {"t": task(sh("true"))})
    return render(define_pipeline(name="p", **sections), SyncGithub(), __version__).document


def test_job_ids_that_collide_after_the_prefix_each_keep_a_workflow_job() -> None:
    document = _document(
        triggers={"push": trigger.github(events=["push"]), "manual": trigger.manual()},
        jobs={
            "1x": job(target="t", trigger=["push"]),
            "job_1x": job(target="t", trigger=["manual"]),
            "2y": job(target="t", trigger=["push"]),
            "JOB_2Y": job(target="t", trigger=["push"]),
            "job_2y_2": job(target="t"),  # untriggered, but its id stays reserved
        },
    )
    runs = {key: body["steps"][-1]["run"] for key, body in document["jobs"].items()}
    assert runs == {
        "job_1x_2": "async-pipeline github run --job 1x",
        "job_1x": "async-pipeline github run --job job_1x",
        "job_2y_3": "async-pipeline github run --job 2y",
        "JOB_2Y": "async-pipeline github run --job JOB_2Y",
    }


def test_job_ids_that_differ_only_in_case_get_distinct_workflow_jobs() -> None:
    # GitHub compares job ids ignoring case.
    document = _document(
        triggers={"push": trigger.github(events=["push"])},
        jobs={
            "Build": job(target="t", trigger=["push"]),
            "build": job(target="t", trigger=["push"]),
        },
    )
    assert list(document["jobs"]) == ["Build", "build_2"]


def _on_push(*filters: tuple[str, ...]) -> Any:
    triggers = {
        f"t{i}": trigger.github(events=["push", "pull_request"], branches=list(branches))
        for i, branches in enumerate(filters)
    }
    jobs = {f"j{i}": job(target="t", trigger=[f"t{i}"]) for i in range(len(filters))}
    on = _document(triggers=triggers, jobs=jobs)["on"]
    assert on["push"] == on["pull_request"]
    return on["push"]


def _github_admits(block: dict[str, list[str]], branch: str) -> bool:
    """How GitHub reads a workflow-level filter: ``branches`` in order from nothing matched,
    ``branches-ignore`` as every branch but these."""
    if "branches-ignore" in block:
        return not any(branch_matches([p], branch) for p in block["branches-ignore"])
    if "branches" in block:
        patterns = block["branches"]
        assert any(not p.startswith("!") for p in patterns), "GitHub refuses exclusions only"
        matched = False
        for pattern in patterns:
            if branch_matches([pattern.removeprefix("!")], branch):
                matched = not pattern.startswith("!")
        return matched
    return True


FILTER_CASES: list[tuple[tuple[str, ...], ...]] = [
    (("main",), ("**", "!main")),
    (("main",), ("release/*",)),
    (("!main",),),
    (("!main", "!wip/**"),),
    (("!wip/**", "wip/keep"),),
    (("feature/**", "!feature/skip"),),
    (("feature/**", "!feature/skip"), ("feature/skip",)),
    (("!main",), ("main",)),
    (("main",), ()),
]
BRANCHES = [
    "main",
    "dev",
    "release/1",
    "release/1/x",
    "feature/a",
    "feature/skip",
    "wip/x",
    "wip/keep",
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=str)
def test_the_workflow_filter_admits_every_branch_some_trigger_wants(
    filters: tuple[tuple[str, ...], ...],
) -> None:
    block = _on_push(*filters)
    for branch in BRANCHES:
        wanted = any(not f or branch_matches(f, branch) for f in filters)
        if wanted:
            assert _github_admits(block, branch), (branch, block)
        if len(filters) == 1 or all(not p.startswith("!") for f in filters for p in f):
            assert _github_admits(block, branch) is wanted, (branch, block)  # exact


def test_merged_filters_with_exclusions_widen_to_every_branch_and_jobs_still_select() -> None:
    # trigger A: main only (deploy); trigger B: every branch but main. Listing both as one
    # filter ([main, "**", "!main"]) would make GitHub never start the workflow for main.
    document = _document(
        triggers={
            "main": trigger.github(events=["push"], branches=["main"]),
            "others": trigger.github(events=["push"], branches=["**", "!main"]),
        },
        jobs={
            "deploy": job(target="t", trigger=["main"]),
            "test_others": job(target="t", trigger=["others"]),
        },
    )
    assert document["on"] == {"push": {"branches": ["**"]}}
    assert document["jobs"]["deploy"]["if"] == (
        "(github.event_name == 'push' && (github.ref == 'refs/heads/main'))"
    )
    assert select_jobs(
        define_pipeline(
            name="p",
            triggers={
                "main": trigger.github(events=["push"], branches=["main"]),
                "others": trigger.github(events=["push"], branches=["**", "!main"]),
            },
            tasks={"t": task(sh("true"))},
            jobs={
                "deploy": job(target="t", trigger=["main"]),
                "test_others": job(target="t", trigger=["others"]),
            },
        ),
        Event("push", "main"),
    ) == ["deploy"]


def test_positive_filters_merge_into_one_list_and_exclusions_only_become_branches_ignore() -> None:
    assert _on_push(("main",), ("release/*", "main")) == {"branches": ["main", "release/*"]}
    assert _on_push(("!main", "!wip/**")) == {"branches-ignore": ["main", "wip/**"]}
    assert _on_push(("!wip/**", "wip/keep")) == {"branches": ["**", "!wip/**", "wip/keep"]}


def test_a_branch_name_holding_an_expression_is_left_to_github_run() -> None:
    document = _document(
        triggers={"odd": trigger.github(events=["push"], branches=["a${{b"])},
        jobs={"j": job(target="t", trigger=["odd"])},
    )
    assert document["jobs"]["j"]["if"] == "github.event_name == 'push'"


@pytest.mark.parametrize(
    ("description", "name"),
    [
        ("${{ github.actor }}", "${{ '${{ github.actor }}' }}"),
        ("${{", "${{ '${{' }}"),
        ("it's ${{ x", "${{ 'it''s ${{ x' }}"),
        ("}} plain", "}} plain"),
        ("Deploy: it", "Deploy: it"),
    ],
)
def test_a_job_description_is_a_literal_name_even_when_it_looks_like_an_expression(
    description: str, name: str
) -> None:
    document = _document(
        triggers={"m": trigger.manual()},
        jobs={"j": job(target="t", trigger=["m"], description=description)},
    )
    assert document["jobs"]["j"]["name"] == name


def test_environment_name_and_url_are_literals() -> None:
    document = _document(
        triggers={"m": trigger.manual()},
        jobs={
            "j": job(
                target="t",
                trigger=["m"],
                environment={"name": "prod ${{ x }}", "url": "https://x.example/?b=${{ y }}"},
            )
        },
    )
    assert document["jobs"]["j"]["environment"] == {
        "name": "${{ 'prod ${{ x }}' }}",
        "url": "${{ 'https://x.example/?b=${{ y }}' }}",
    }


def _store_env(store: Any, **job_fields: Any) -> Any:
    document = _document(
        cache=define_cache(default="redis:shared", stores={"redis": store}),
        triggers={"push": trigger.github(events=["push"])},
        tasks={
            "cached": task(sh("true"), cache=True),
            "uncached": task(sh("true")),
        },
        jobs={
            "cached": job(target="cached", trigger=["push"], **job_fields),
            "uncached": job(target="uncached", trigger=["push"]),
        },
    )
    return {key: body["steps"][-1]["env"] for key, body in document["jobs"].items()}


def test_a_cache_store_url_from_a_var_or_secret_reaches_ci_by_name_never_by_value() -> None:
    by_var = _store_env(redis_cache(url=env.var("REDIS_URL")))
    assert by_var["cached"] == {"CI": "true", "REDIS_URL": "${{ vars.REDIS_URL }}"}
    assert by_var["uncached"] == {"CI": "true"}  # its tasks use no store
    by_secret = _store_env(redis_cache(url=env.secret("CACHE_URL")))
    assert by_secret["cached"]["CACHE_URL"] == "${{ secrets.CACHE_URL }}"
    literal_url = _store_env(redis_cache(url="redis://localhost:6379/0"))
    assert literal_url["cached"] == {"CI": "true"}


def test_a_job_env_that_sets_the_store_variable_itself_wins() -> None:
    rendered = _store_env(
        redis_cache(url=env.var("REDIS_URL")), env={"REDIS_URL": env.secret("REDIS_SECRET")}
    )
    assert rendered["cached"]["REDIS_URL"] == "${{ secrets.REDIS_SECRET }}"


def test_a_store_variable_github_reserves_is_rejected_with_the_store_path() -> None:
    with pytest.raises(PipelineError) as caught:
        _store_env(redis_cache(url=env.var("GITHUB_CACHE")))
    assert caught.value.code == "ASYNC_PIPELINE_INVALID_VALUE"
    assert caught.value.path == "cache.stores.redis.url"

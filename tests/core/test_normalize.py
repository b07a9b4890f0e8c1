"""define_pipeline normalizes declarations into the graph the runner and queries read."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from async_pipeline import (
    Pipeline,
    agent,
    cache,
    define_cache,
    depends_on,
    env,
    job,
    memory_cache,
    redis_cache,
    sh,
    source,
    task,
    trigger,
)
from async_pipeline.core.env import EnvSecret, EnvVar
from async_pipeline.core.model import Environment, Requires, Retry, Task, TaskCache
from async_pipeline.core.steps import DeferredShell, FunctionStep, Shell

from ._support import build, error_of

# --- flattening -------------------------------------------------------------------------


def test_nested_groups_flatten_to_dotted_ids_in_declaration_order() -> None:
    pipeline = build(
        tasks={
            "lint": task(),
            "claims": {
                "report": task(),
                "default": task(),
                "deep": {"er": {"est": task()}},
            },
            "raw": {},
        }
    )
    assert list(pipeline.tasks) == ["lint", "claims.report", "claims", "claims.deep.er.est", "raw"]
    assert pipeline.tasks["claims.deep.er.est"].group == "claims.deep.er"
    assert pipeline.tasks["claims.deep.er.est"].name == "est"


@pytest.mark.parametrize("alias", ["default", "index"])
def test_group_default_child_takes_the_group_id(alias: str) -> None:
    pipeline = build(tasks={"claims": {alias: task(description="all claims"), "report": task()}})
    assert pipeline.tasks["claims"].description == "all claims"
    assert pipeline.tasks["claims"].declared_at == f"tasks.claims.{alias}"


def test_default_child_of_a_nested_group_takes_the_nested_group_id() -> None:
    pipeline = build(tasks={"a": {"b": {"default": task()}}})
    assert list(pipeline.tasks) == ["a.b"]


def test_top_level_task_named_default_is_an_ordinary_task() -> None:
    assert list(build(tasks={"default": task(), "index": task()}).tasks) == ["default", "index"]


def test_raw_dict_tasks_and_branded_tasks_normalize_alike() -> None:
    raw = build(tasks={"g": {"t": {"description": "d", "timeout": "1m", "run": sh("x")}}})
    branded = build(tasks={"g": {"t": task(description="d", timeout="1m", run=sh("x"))}})
    assert raw.tasks == branded.tasks


def test_each_task_records_where_it_was_declared() -> None:
    pipeline = build(tasks={"a": task(), "g": {"b": {"run": sh("x")}}})
    assert [t.declared_at for t in pipeline.tasks.values()] == ["tasks.a", "tasks.g.b"]


# --- dependency resolution --------------------------------------------------------------


def _deps(tasks: Mapping[str, object], task_id: str, **sections: object) -> tuple[str, ...]:
    return build(tasks=tasks, **sections).tasks[task_id].depends_on


def test_dependency_in_a_group_resolves_to_the_group_local_task_first() -> None:
    tasks = {"report": task(), "claims": {"report": task(), "check": task(depends_on=["report"])}}
    assert _deps(tasks, "claims.check") == ("claims.report",)


def test_dependency_in_a_group_falls_back_to_the_root() -> None:
    tasks = {"build": task(), "claims": {"check": task(depends_on=["build"])}}
    assert _deps(tasks, "claims.check") == ("build",)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ({"root", "a", "a.b", "a.b.c"}, "a.b.c.lint"),
        ({"root", "a", "a.b"}, "a.b.lint"),
        ({"root", "a"}, "a.lint"),
        ({"root", "a.b.c"}, "a.b.c.lint"),
        ({"root"}, "lint"),
    ],
    ids=["same group", "one up", "two up", "skips nothing", "root"],
)
def test_dependency_resolves_outward_through_nested_groups(levels: set[str], expected: str) -> None:
    inner: dict[str, object] = {"x": task(depends_on=["lint"])}
    middle: dict[str, object] = {"c": inner}
    outer: dict[str, object] = {"b": middle}
    tasks: dict[str, object] = {"a": outer}
    for level, group in (("root", tasks), ("a", outer), ("a.b", middle), ("a.b.c", inner)):
        if level in levels:
            group["lint"] = task()
    assert _deps(tasks, "a.b.c.x") == (expected,)


def test_dependency_on_a_missing_name_in_every_scope_is_unknown() -> None:
    error = error_of(lambda: build(tasks={"a": {"b": {"x": task(depends_on=["lint"])}}}))
    assert error.code == "ASYNC_PIPELINE_UNKNOWN_TASK"


def test_dotted_dependency_resolves_relative_to_enclosing_groups() -> None:
    tasks = {
        "pkg": {"claims": {"report": task()}, "ci": {"check": task(depends_on=["claims.report"])}},
        "claims": {"report": task()},
    }
    assert _deps(tasks, "pkg.ci.check") == ("pkg.claims.report",)


def test_group_default_resolves_dependencies_inside_its_own_group() -> None:
    tasks = {"report": task(), "claims": {"default": task(depends_on=["report"]), "report": task()}}
    assert _deps(tasks, "claims") == ("claims.report",)


def test_source_refs_stay_source_refs() -> None:
    sources = {
        "storefront": source.git(url="https://github.com/acme/storefront.git"),
        "admin": source.path(path="../admin"),
    }
    tasks = {"g": {"test": task(depends_on=["storefront:test", "admin:claims.report"])}}
    assert _deps(tasks, "g.test", sources=sources) == ("storefront:test", "admin:claims.report")


def test_repeated_dependencies_are_kept_once_in_first_order() -> None:
    tasks = {"a": task(), "b": task(), "t": task(depends_on("b"), depends_on("a", "b"), sh("x"))}
    assert _deps(tasks, "t") == ("b", "a")


# --- directives and steps ---------------------------------------------------------------


def test_directives_are_lifted_and_positional_steps_keep_their_order() -> None:
    def check(ctx: object) -> None:
        raise AssertionError("never called")

    later = sh(lambda ctx: sh("pnpm add {d}", d=ctx))
    pipeline = build(
        tasks={
            "build": task(),
            "lint": task(),
            "test": task(
                sh("one"),
                depends_on("build"),
                check,
                cache.use("memory:session"),
                later,
                depends_on("lint"),
                "three",
            ),
        }
    )
    test = pipeline.tasks["test"]
    assert test.steps == (Shell("one"), FunctionStep(check), later, Shell("three"))
    assert isinstance(later, DeferredShell)
    assert test.depends_on == ("build", "lint")
    assert test.cache == TaskCache("memory:session")


def test_directives_inside_run_and_steps_lists_are_lifted() -> None:
    for key in ("run", "steps"):
        fields = {key: [depends_on("a"), cache.use("file:x"), sh("go")]}
        pipeline = build(tasks={"a": task(), "t": fields})
        assert pipeline.tasks["t"].depends_on == ("a",)
        assert pipeline.tasks["t"].cache == TaskCache("file:x")
        assert pipeline.tasks["t"].steps == (Shell("go"),)


def test_single_run_step_becomes_a_one_step_task() -> None:
    def step(ctx: object) -> None:
        raise AssertionError("never called")

    assert build(tasks={"a": task(run=sh("x"))}).tasks["a"].steps == (Shell("x"),)
    assert build(tasks={"a": task(run=step)}).tasks["a"].steps == (FunctionStep(step),)


def test_directive_dependencies_follow_declared_dependencies() -> None:
    tasks = {"a": task(), "b": task(), "t": task(depends_on("b"), depends_on=["a"])}
    assert _deps(tasks, "t") == ("a", "b")


def test_task_without_steps_is_valid() -> None:
    assert build(tasks={"noop": task()}).tasks["noop"].steps == ()


# --- task_defaults ----------------------------------------------------------------------


def test_task_defaults_apply_by_name_segment_and_exact_id_with_own_fields_first() -> None:
    pipeline = build(
        task_defaults={
            "test": {"timeout": "1m", "retry": 3, "outputs": ["reports/**"], "inputs": ["src/**"]},
            "claims.test": {"timeout": "2m", "inputs": ["claims/**"]},
        },
        tasks={
            "test": task(),
            "claims": {"test": task(retry=2), "report": task()},
        },
    )
    grouped = pipeline.tasks["claims.test"]
    assert grouped.timeout_ms == 120_000  # exact id beats the segment
    assert grouped.retry == Retry(2)  # the task's own field beats both
    assert grouped.outputs == ("reports/**",)  # from the segment default
    assert grouped.inputs == ("claims/**",)
    assert grouped.defaults_applied == ("test", "claims.test")
    root = pipeline.tasks["test"]
    assert (root.timeout_ms, root.retry, root.defaults_applied) == (60_000, Retry(3), ("test",))
    assert pipeline.tasks["claims.report"].defaults_applied == ()


def test_task_defaults_do_not_apply_to_partial_name_matches() -> None:
    pipeline = build(
        task_defaults={"test": {"timeout": "1m"}}, tasks={"tests": task(), "e2e-test": task()}
    )
    assert all(t.timeout_ms is None and t.defaults_applied == () for t in pipeline.tasks.values())


def test_task_default_dependencies_resolve_in_the_receiving_task_group() -> None:
    pipeline = build(
        task_defaults={"test": {"depends_on": ["build"]}},
        tasks={"build": task(), "pkg": {"build": task(), "test": task()}, "test": task()},
    )
    assert pipeline.tasks["pkg.test"].depends_on == ("pkg.build",)
    assert pipeline.tasks["test"].depends_on == ("build",)


def test_task_default_cache_can_be_turned_off_by_the_task() -> None:
    pipeline = build(task_defaults={"test": {"cache": True}}, tasks={"test": task(cache=False)})
    assert pipeline.tasks["test"].cache is None


def test_task_defaults_are_kept_normalized_on_the_pipeline() -> None:
    pipeline = build(task_defaults={"test": {"timeout": "30s", "retry": {"attempts": 2}}})
    assert pipeline.task_defaults == {"test": {"timeout": 30_000, "retry": Retry(2)}}


# --- named inputs -----------------------------------------------------------------------


def test_named_inputs_expand_recursively_while_inputs_keep_declared_names() -> None:
    pipeline = build(
        named_inputs={
            "src": ["src/**/*.py", "config"],
            "config": ["pyproject.toml", "base"],
            "base": ["setup.cfg", "pyproject.toml"],
        },
        tasks={"test": task(inputs=["src", "tests/**", "base"])},
    )
    test = pipeline.tasks["test"]
    assert test.inputs == ("src", "tests/**", "base")
    assert test.resolved_inputs == ("src/**/*.py", "pyproject.toml", "setup.cfg", "tests/**")


def test_named_inputs_given_by_task_defaults_expand_too() -> None:
    pipeline = build(
        named_inputs={"py": ["**/*.py"]},
        task_defaults={"lint": {"inputs": ["py"]}},
        tasks={"lint": task()},
    )
    assert pipeline.tasks["lint"].resolved_inputs == ("**/*.py",)


def test_named_input_cycle_is_shown_as_a_chain() -> None:
    error = error_of(lambda: build(named_inputs={"a": ["b"], "b": ["c"], "c": ["a"]}))
    assert error.code == "ASYNC_PIPELINE_INVALID_VALUE"
    assert "a -> b -> c -> a" in error.message


# --- durations, retry, cache ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("5m", 300_000),
        ("1h", 3_600_000),
        ("1.5s", 1_500),
        ("0.5m", 30_000),
        (" 2m ", 120_000),
        (250, 250),
        (1, 1),
    ],
)
def test_good_durations_normalize_to_milliseconds(value: str | int, ms: int) -> None:
    assert build(tasks={"a": task(timeout=value)}).tasks["a"].timeout_ms == ms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Retry(1, 0)),
        (1, Retry(1, 0)),
        (2, Retry(2, 0)),
        ({"attempts": 3, "delay_ms": 500}, Retry(3, 500)),
        ({"attempts": 2, "delay_ms": "1.5s"}, Retry(2, 1_500)),
        ({"attempts": 2}, Retry(2, 0)),
        ({"delay_ms": 0}, Retry(1, 0)),
        ({"attempts": 2, "delay_ms": "0s"}, Retry(2, 0)),
    ],
    ids=[
        "omitted",
        "one",
        "two",
        "options",
        "delay duration",
        "no delay",
        "only delay",
        "zero delay duration",
    ],
)
def test_retry_counts_total_attempts(value: object, expected: Retry) -> None:
    declared = task() if value is None else task(retry=value)
    assert build(tasks={"a": declared}).tasks["a"].retry == expected


def test_retry_two_means_one_retry() -> None:
    assert build(tasks={"a": task(retry=2)}).tasks["a"].retry.attempts - 1 == 1


@pytest.mark.parametrize(
    ("registry", "value", "expected"),
    [
        (None, True, TaskCache("file:local")),
        (define_cache(default="memory:session"), True, TaskCache("memory:session")),
        ("memory:ci", True, TaskCache("memory:ci")),
        (None, False, None),
        (None, None, None),
        (None, "file:local", TaskCache("file:local")),
        (None, "memory", TaskCache("memory")),
        (None, {"store": "memory:x", "ttl_ms": 60_000}, TaskCache("memory:x", 60_000)),
        (define_cache(default="memory:m"), {"ttl_ms": 5}, TaskCache("memory:m", 5)),
        (
            define_cache(stores={"shared": redis_cache(url=env.var("REDIS_URL"))}),
            "shared:tasks",
            TaskCache("shared:tasks"),
        ),
        (define_cache(stores={"file": memory_cache()}), "file:x", TaskCache("file:x")),
    ],
    ids=[
        "true uses builtin default",
        "true uses registry default",
        "true uses pipeline ref",
        "false is off",
        "none is off",
        "builtin file without registry",
        "builtin memory without namespace",
        "options",
        "options default store",
        "declared store",
        "declared store overriding builtin",
    ],
)
def test_task_cache_setting_normalizes_to_a_ref(
    registry: object, value: object, expected: TaskCache | None
) -> None:
    declared = task() if value is None else task(cache=value)
    sections = {} if registry is None else {"cache": registry}
    assert build(tasks={"a": declared}, **sections).tasks["a"].cache == expected


def test_task_without_cache_is_uncached() -> None:
    assert build(tasks={"a": task()}).tasks["a"].cache is None


# --- env, requires, jobs, sections ------------------------------------------------------


def test_env_values_keep_literals_secrets_and_vars() -> None:
    values = {
        "LITERAL": "x",
        "TOKEN": env.secret("NPM_TOKEN"),
        "MODE": env.var("NODE_ENV", default="dev"),
    }
    pipeline = build(env=values, tasks={"a": task(env=values)})
    assert pipeline.env == {
        "LITERAL": "x",
        "TOKEN": EnvSecret("NPM_TOKEN"),
        "MODE": EnvVar("NODE_ENV", "dev"),
    }
    assert pipeline.tasks["a"].env == pipeline.env


def test_requires_normalizes_single_tool_and_runtime() -> None:
    pipeline = build(
        tasks={"a": task(requires={"tools": "uv", "secrets": ["T"], "runtime": {"python": "3.11"}})}
    )
    assert pipeline.tasks["a"].requires == Requires(("uv",), ("T",), {"python": "3.11"})


def test_jobs_normalize_targets_triggers_and_github_config() -> None:
    pipeline = build(
        triggers={"push": trigger.github(events=["push"]), "manual": trigger.manual()},
        tasks={"build": task(), "claims": {"default": task()}},
        jobs={
            "verify": job(target="build", trigger="push"),
            "publish": job(
                target=["build", "claims"],
                trigger=["manual"],
                environment={"name": "npm", "url": "https://npmjs.com"},
                requires={"provenance": True},
                env={"NODE_AUTH_TOKEN": env.secret("NPM_TOKEN")},
                github={
                    "permissions": {"packages": "write"},
                    "runs_on": "ubuntu-latest",
                    "timeout_minutes": 10,
                },
                mode="ci",
            ),
            "raw": {"target": "build", "environment": "staging"},
        },
    )
    verify, publish, raw = pipeline.jobs["verify"], pipeline.jobs["publish"], pipeline.jobs["raw"]
    assert (verify.targets, verify.triggers) == (("build",), ("push",))
    assert publish.targets == ("build", "claims")
    assert publish.environment == Environment("npm", "https://npmjs.com")
    assert publish.provenance is True
    assert publish.github is not None
    assert publish.github.permissions == {"packages": "write"}
    assert publish.github.runs_on == ("ubuntu-latest",)
    assert publish.mode == "ci"
    assert raw.environment == Environment("staging")


def test_sync_true_uses_default_paths_and_object_form_overrides_them() -> None:
    defaults = build(sync={"github": True, "tasks": True}).sync
    assert defaults.github is not None and defaults.tasks is not None
    assert defaults.github.workflow == ".github/workflows/async-pipeline.yml"
    custom = build(
        sync={"github": {"workflow": ".tmp/w.yml", "python_version": "3.12", "cache": False}}
    ).sync
    assert custom.github is not None
    assert (custom.github.workflow, custom.github.python_version, custom.github.cache) == (
        ".tmp/w.yml",
        "3.12",
        False,
    )
    assert build().sync.github is None


def test_agents_profiles_keep_command_and_model() -> None:
    model = env.var("AGENT_MODEL", default="claude-sonnet-4-6")
    pipeline = build(
        agents={
            "claude": {"command": ["claude", "-p"], "model": model},
            "mock": {"command": ["python", "m.py"], "model": "mock"},
        },
        tasks={
            "docs": task(
                agent(use="mock", prompt="p", stdout_to="docs/x.md"), outputs=["docs/x.md"]
            )
        },
    )
    assert pipeline.agents["claude"].command == ("claude", "-p")
    assert pipeline.agents["claude"].model == model
    assert pipeline.tasks["docs"].outputs == ("docs/x.md",)


def test_normalized_pipeline_is_frozen() -> None:
    pipeline = build(tasks={"a": task()})
    with pytest.raises(AttributeError):
        pipeline.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        pipeline.tasks["a"].id = "b"  # type: ignore[misc]


def test_empty_pipeline_is_valid() -> None:
    pipeline = build()
    assert isinstance(pipeline, Pipeline)
    assert (pipeline.tasks, pipeline.jobs) == ({}, {})


def test_unchanged_declarations_normalize_to_equal_pipelines() -> None:
    def make() -> Pipeline:
        return build(tasks={"a": task(sh("x"), retry=2), "g": {"b": task(depends_on=["a"])}})

    assert make() == make()


def test_task_model_defaults_describe_a_plain_task() -> None:
    assert build(tasks={"a": task()}).tasks["a"] == Task(id="a", declared_at="tasks.a")


def test_a_group_task_depending_on_its_own_name_means_the_outer_task() -> None:
    from async_pipeline import define_pipeline, sh, task

    pipeline = define_pipeline(
        name="p", tasks={"test": task(sh("a")), "pkg": {"test": task(depends_on=["test"])}}
    )
    assert pipeline.tasks["pkg.test"].depends_on == ("test",)


def test_loading_does_not_keep_the_pipeline_module_registered(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sys

    from async_pipeline.core.loader import load_pipeline

    (tmp_path / "pipeline.py").write_text(
        "from async_pipeline import define_pipeline\npipeline = define_pipeline(name='p')\n"
    )
    before = {m for m in sys.modules if m.startswith("async_pipeline_user_config_")}
    for _ in range(3):
        load_pipeline(cwd=tmp_path)
    after = {m for m in sys.modules if m.startswith("async_pipeline_user_config_")}
    assert after == before

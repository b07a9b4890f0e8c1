"""define_pipeline rejects what does not validate, with a stable code and the path at fault."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from async_pipeline import (
    agent,
    cache,
    define_cache,
    define_pipeline,
    depends_on,
    env,
    execution,
    job,
    redis_cache,
    sandbox,
    sh,
    source,
    task,
    trigger,
)

from ._support import build, error_of, suggests

Declare = Callable[[], object]
CLAUDE = {"claude": {"command": ["claude", "-p"], "model": "claude-sonnet-4-6"}}


def _job(**fields: object) -> Declare:
    return lambda: build(tasks={"build": task()}, jobs={"verify": job(target="build", **fields)})


def _github(**config: object) -> Declare:
    return _job(github=config)


# --- task argument conflicts ------------------------------------------------------------


@pytest.mark.parametrize(
    "declare",
    [
        lambda: task(sh("x"), run=sh("y")),
        lambda: task(sh("x"), steps=[sh("y")]),
        lambda: task(depends_on("b"), run=sh("y")),
        lambda: build(tasks={"build": {"run": sh("x"), "steps": [sh("y")]}}),
        lambda: build(tasks={"build": task(run=sh("x"), steps=[sh("y")])}),
    ],
    ids=["run and positional", "steps and positional", "directive and run", "raw dict", "task()"],
)
def test_run_together_with_other_steps_is_an_argument_conflict(declare: Declare) -> None:
    assert error_of(declare).code == "ASYNC_PIPELINE_TASK_ARGUMENT_CONFLICT"


def test_raw_dict_argument_conflict_names_the_task() -> None:
    error = error_of(lambda: build(tasks={"g": {"build": {"run": sh("x"), "steps": []}}}))
    assert error.path == "tasks.g.build"


# --- wrong types and values -------------------------------------------------------------

INVALID_VALUES: list[tuple[str, Declare, str]] = [
    ("depends_on number", lambda: build(tasks={"a": task(depends_on=3)}), "tasks.a.depends_on"),
    (
        "depends_on item",
        lambda: build(tasks={"a": task(depends_on=["b", 3])}),
        "tasks.a.depends_on[1]",
    ),
    ("inputs item", lambda: build(tasks={"a": task(inputs=[1])}), "tasks.a.inputs[0]"),
    ("outputs number", lambda: build(tasks={"a": task(outputs=5)}), "tasks.a.outputs"),
    ("description", lambda: build(tasks={"a": task(description=3)}), "tasks.a.description"),
    ("retry zero", lambda: build(tasks={"a": task(retry=0)}), "tasks.a.retry"),
    ("retry negative", lambda: build(tasks={"a": task(retry=-1)}), "tasks.a.retry"),
    ("retry boolean", lambda: build(tasks={"a": task(retry=True)}), "tasks.a.retry"),
    ("retry string", lambda: build(tasks={"a": task(retry="2")}), "tasks.a.retry"),
    (
        "retry attempts zero",
        lambda: build(tasks={"a": task(retry={"attempts": 0})}),
        "tasks.a.retry.attempts",
    ),
    (
        "retry attempts boolean",
        lambda: build(tasks={"a": task(retry={"attempts": True})}),
        "tasks.a.retry.attempts",
    ),
    ("cache number", lambda: build(tasks={"a": task(cache=3)}), "tasks.a.cache"),
    ("cache malformed ref", lambda: build(tasks={"a": task(cache="file:a b")}), "tasks.a.cache"),
    (
        "cache ttl zero",
        lambda: build(tasks={"a": task(cache={"ttl_ms": 0})}),
        "tasks.a.cache.ttl_ms",
    ),
    (
        "requires tools",
        lambda: build(tasks={"a": task(requires={"tools": 3})}),
        "tasks.a.requires.tools",
    ),
    ("task env value", lambda: build(tasks={"a": task(env={"A": 1})}), "tasks.a.env.A"),
    ("task env name dash", lambda: build(tasks={"a": task(env={"A-B": "x"})}), "tasks.a.env.A-B"),
    ("task env name digit", lambda: build(tasks={"a": task(env={"1A": "x"})}), "tasks.a.env.1A"),
    (
        "task env name newline",
        lambda: build(tasks={"a": task(env={"A\n": "x"})}),
        "tasks.a.env.A\n",
    ),
    ("cache ref newline", lambda: build(tasks={"a": task(cache="file\n")}), "tasks.a.cache"),
    ("pipeline env value", lambda: build(env={"A": 1}), "env.A"),
    ("pipeline env value None", lambda: build(env={"A": None}), "env.A"),
    ("pipeline env name", lambda: build(env={"A B": "x"}), "env.A B"),
    ("job env value", _job(env={"TOKEN": 3}), "jobs.verify.env.TOKEN"),
    ("job without target", lambda: build(tasks={"a": task()}, jobs={"j": job()}), "jobs.j.target"),
    (
        "job empty target list",
        lambda: build(tasks={"a": task()}, jobs={"j": job(target=[])}),
        "jobs.j.target",
    ),
    (
        "job target number",
        lambda: build(tasks={"a": task()}, jobs={"j": job(target=3)}),
        "jobs.j.target",
    ),
    ("job mode", _job(mode="auto"), "jobs.verify.mode"),
    (
        "job permission value",
        _github(permissions={"contents": "admin"}),
        "jobs.verify.github.permissions.contents",
    ),
    (
        "job permission boolean",
        _github(permissions={"issues": True}),
        "jobs.verify.github.permissions.issues",
    ),
    ("job github timeout", _github(timeout_minutes=0), "jobs.verify.github.timeout_minutes"),
    ("job provenance", _job(requires={"provenance": "yes"}), "jobs.verify.requires.provenance"),
    (
        "job environment name",
        _job(environment={"url": "https://x"}),
        "jobs.verify.environment.name",
    ),
    ("job name", lambda: build(tasks={"a": task()}, jobs={"a b": job(target="a")}), "jobs.a b"),
    ("pipeline without name", lambda: define_pipeline(tasks={}), "name"),
    ("pipeline name number", lambda: define_pipeline(name=3), "name"),
    ("tasks not a mapping", lambda: build(tasks=[task()]), "tasks"),
    ("task value", lambda: build(tasks={"a": 3}), "tasks.a"),
    ("task key with colon", lambda: build(tasks={"a:b": task()}), "tasks.a:b"),
    ("task key with space", lambda: build(tasks={"a b": task()}), "tasks.a b"),
    ("task key empty segment", lambda: build(tasks={"a.": task()}), "tasks['a.']"),
    ("task key leading dot", lambda: build(tasks={"g": {".a": task()}}), "tasks.g['.a']"),
    ("task key with slash", lambda: build(tasks={"a/b": task()}), "tasks.a/b"),
    ("task key with backslash", lambda: build(tasks={"a\\b": task()}), "tasks.a\\b"),
    ("task key with NUL", lambda: build(tasks={"a\x00": task()}), "tasks['a\\x00']"),
    ("group key with slash", lambda: build(tasks={"g/h": {"a": task()}}), "tasks.g/h"),
    ("steps not a list", lambda: build(tasks={"a": {"steps": sh("x")}}), "tasks.a.steps"),
    ("step value", lambda: build(tasks={"a": task(steps=[sh("x"), 3])}), "tasks.a.steps[1]"),
    ("run value", lambda: build(tasks={"a": task(run=None)}), "tasks.a.run[0]"),
    ("positional step value", lambda: build(tasks={"a": task({"run": "x"})}), "tasks.a.steps[0]"),
    (
        "two cache directives",
        lambda: build(tasks={"a": task(cache.use("file:a"), cache.use("file:b"))}),
        "tasks.a.steps[1]",
    ),
    (
        "cache field and directive",
        lambda: build(tasks={"a": task(cache.use("file:a"), cache="file:b")}),
        "tasks.a.cache",
    ),
    (
        "agent profile command empty",
        lambda: build(agents={"c": {"command": [], "model": "m"}}),
        "agents.c.command",
    ),
    (
        "agent profile command string",
        lambda: build(agents={"c": {"command": "claude -p", "model": "m"}}),
        "agents.c.command",
    ),
    (
        "agent profile without model",
        lambda: build(agents={"c": {"command": ["c"]}}),
        "agents.c.model",
    ),
    (
        "agent profile model number",
        lambda: build(agents={"c": {"command": ["c"], "model": 4}}),
        "agents.c.model",
    ),
    ("trigger value", lambda: build(triggers={"push": "push"}), "triggers.push"),
    ("source value", lambda: build(sources={"lib": "../lib"}), "sources.lib"),
    ("sandbox value", lambda: build(sandboxes={"d": "docker"}), "sandboxes.d"),
    ("execution value", lambda: build(execution={"ci": "github"}), "execution.ci"),
    ("commands value", lambda: build(commands={"rules": []}), "commands"),
    ("pipeline cache value", lambda: build(cache=True), "cache"),
    ("named input item", lambda: build(named_inputs={"src": ["a", 1]}), "named_inputs.src[1]"),
    ("named input cycle", lambda: build(named_inputs={"a": ["b"], "b": ["a"]}), "named_inputs.b"),
    ("named input self cycle", lambda: build(named_inputs={"a": ["x", "a"]}), "named_inputs.a"),
    (
        "sync.github python version float",
        lambda: build(sync={"github": {"python_version": 3.10}}),
        "sync.github.python_version",
    ),
    (
        "sync.github python version None",
        lambda: build(sync={"github": {"python_version": None}}),
        "sync.github.python_version",
    ),
    ("sync.github cache", lambda: build(sync={"github": {"cache": "yes"}}), "sync.github.cache"),
    (
        "sync.tasks runner",
        lambda: build(sync={"tasks": {"runners": ["npm"]}}),
        "sync.tasks.runners[0]",
    ),
    (
        "sync.tasks target kinds",
        lambda: build(sync={"tasks": {"targets": [{"package": "a", "path": "package.json"}]}}),
        "sync.tasks.targets[0]",
    ),
    (
        "sync.tasks target file",
        lambda: build(sync={"tasks": {"targets": [{"path": "tools/x.json"}]}}),
        "sync.tasks.targets[0].path",
    ),
    ("task_defaults entry", lambda: build(task_defaults={"test": 3}), "task_defaults.test"),
    (
        "task_defaults env",
        lambda: build(task_defaults={"test": {"env": {"A": 1}}}),
        "task_defaults.test.env.A",
    ),
]


@pytest.mark.parametrize(
    ("declare", "path"),
    [case[1:] for case in INVALID_VALUES],
    ids=[case[0] for case in INVALID_VALUES],
)
def test_wrong_type_or_value_is_rejected_with_its_path(declare: Declare, path: str) -> None:
    error = error_of(declare)
    assert error.code == "ASYNC_PIPELINE_INVALID_VALUE"
    assert error.path == path


# --- durations --------------------------------------------------------------------------

BAD_DURATIONS = [
    "5 minutes",
    "-1s",
    0,
    -5,
    "5",
    True,
    False,
    "1.5",
    "ms",
    "",
    "0s",
    "0.0001s",
    1.5,
    None,
    "5d",
]


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=repr)
def test_bad_timeout_is_an_invalid_duration_naming_the_path(value: object) -> None:
    error = error_of(lambda: build(tasks={"build": task(timeout=value)}))
    assert error.code == "ASYNC_PIPELINE_INVALID_DURATION"
    assert error.path == "tasks.build.timeout"


@pytest.mark.parametrize("value", ["0s", "0ms", "0.0h", "-1s", " -5m ", 0, -1], ids=repr)
def test_zero_or_negative_timeout_is_said_to_need_a_positive_duration(value: object) -> None:
    error = error_of(lambda: build(tasks={"build": task(timeout=value)}))
    assert error.code == "ASYNC_PIPELINE_INVALID_DURATION"
    assert "must be positive" in error.message


def test_timeout_rounding_to_zero_milliseconds_is_said_to_need_at_least_one() -> None:
    error = error_of(lambda: build(tasks={"build": task(timeout="0.0001s")}))
    assert error.code == "ASYNC_PIPELINE_INVALID_DURATION"
    assert "at least 1ms" in error.message


@pytest.mark.parametrize("value", ["-1s", -1])
def test_negative_retry_delay_is_said_to_need_zero_or_more(value: object) -> None:
    error = error_of(lambda: build(tasks={"a": task(retry={"attempts": 2, "delay_ms": value})}))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_DURATION", "tasks.a.retry.delay_ms")
    assert "0 or positive" in error.message


@pytest.mark.parametrize(
    ("declare", "path"),
    [
        (
            lambda: build(tasks={"a": task(retry={"attempts": 2, "delay_ms": "soon"})}),
            "tasks.a.retry.delay_ms",
        ),
        (
            lambda: build(tasks={"a": task(retry={"attempts": 2, "delay_ms": -1})}),
            "tasks.a.retry.delay_ms",
        ),
        (
            lambda: build(tasks={"a": task(retry={"attempts": 2, "delay_ms": False})}),
            "tasks.a.retry.delay_ms",
        ),
        (
            lambda: build(task_defaults={"test": {"timeout": "5 minutes"}}),
            "task_defaults.test.timeout",
        ),
        (lambda: build(tasks={"g": {"a": {"timeout": "1 h"}}}), "tasks.g.a.timeout"),
    ],
    ids=[
        "retry delay word",
        "retry delay negative",
        "retry delay boolean",
        "task_defaults",
        "raw task in group",
    ],
)
def test_bad_duration_elsewhere_names_its_path(declare: Declare, path: str) -> None:
    error = error_of(declare)
    assert error.code == "ASYNC_PIPELINE_INVALID_DURATION"
    assert error.path == path


# --- retry ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2", True, False, 1.5, None, [2]], ids=repr)
def test_retry_of_the_wrong_type_says_a_count_or_a_mapping_is_expected(value: object) -> None:
    error = error_of(lambda: build(tasks={"a": task(retry=value)}))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", "tasks.a.retry")
    assert "number of attempts" in error.message
    assert "'attempts'" in error.message and "'delay_ms'" in error.message


def test_retry_of_the_wrong_type_in_task_defaults_says_the_same() -> None:
    error = error_of(lambda: build(task_defaults={"test": {"retry": "3"}}))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", "task_defaults.test.retry")
    assert "number of attempts" in error.message


# --- references to things that do not exist ---------------------------------------------


def test_dependency_on_an_unknown_task_names_both_tasks_and_the_nearest() -> None:
    error = error_of(lambda: build(tasks={"build": task(), "test": task(depends_on=["bild"])}))
    assert error.code == "ASYNC_PIPELINE_UNKNOWN_TASK"
    assert error.path == "tasks.test.depends_on[0]"
    assert "'test'" in error.message
    assert "'bild'" in error.message
    assert suggests(error, "build")


def test_directive_dependency_on_an_unknown_task_is_rejected() -> None:
    error = error_of(lambda: build(tasks={"test": task(depends_on("nope"), sh("x"))}))
    assert error.code == "ASYNC_PIPELINE_UNKNOWN_TASK"
    assert "nope" in error.message


def test_dependency_in_a_group_on_an_unknown_task_names_the_grouped_task() -> None:
    error = error_of(lambda: build(tasks={"claims": {"report": task(depends_on="nope")}}))
    assert error.code == "ASYNC_PIPELINE_UNKNOWN_TASK"
    assert error.path == "tasks.claims.report.depends_on[0]"
    assert "claims.report" in error.message


UNKNOWN_REFERENCES: list[tuple[str, Declare, str, str, str | None]] = [
    (
        "job target",
        lambda: build(tasks={"build": task()}, jobs={"verify": job(target=["build", "tset"])}),
        "ASYNC_PIPELINE_UNKNOWN_TASK",
        "jobs.verify.target[1]",
        None,
    ),
    (
        "job target near miss",
        lambda: build(tasks={"build": task()}, jobs={"verify": job(target="buidl")}),
        "ASYNC_PIPELINE_UNKNOWN_TASK",
        "jobs.verify.target[0]",
        "build",
    ),
    (
        "sync.tasks task",
        lambda: build(tasks={"build": task()}, sync={"tasks": {"tasks": ["buid"]}}),
        "ASYNC_PIPELINE_UNKNOWN_TASK",
        "sync.tasks.tasks[0]",
        "build",
    ),
    (
        "sync.tasks job",
        lambda: build(
            tasks={"a": task()},
            jobs={"verify": job(target="a")},
            sync={"tasks": {"jobs": ["verfy"]}},
        ),
        "ASYNC_PIPELINE_UNKNOWN_JOB",
        "sync.tasks.jobs[0]",
        "verify",
    ),
    (
        "trigger",
        lambda: build(
            tasks={"a": task()},
            triggers={"push": trigger.github(events=["push"])},
            jobs={"verify": job(target="a", trigger=["psh"])},
        ),
        "ASYNC_PIPELINE_UNKNOWN_TRIGGER",
        "jobs.verify.trigger[0]",
        "push",
    ),
    (
        "source",
        lambda: build(
            sources={"storefront": source.git(url="https://example.com/s.git")},
            tasks={"a": task(depends_on=["storefrnt:test"])},
        ),
        "ASYNC_PIPELINE_UNKNOWN_SOURCE",
        "tasks.a.depends_on[0]",
        "storefront",
    ),
    (
        "source without any declared",
        lambda: build(tasks={"a": task(depends_on=["admin:test"])}),
        "ASYNC_PIPELINE_UNKNOWN_SOURCE",
        "tasks.a.depends_on[0]",
        None,
    ),
    (
        "sandbox",
        lambda: build(
            sandboxes={"docker": sandbox.docker(image="python:3.12")},
            execution={"local": execution.local(sandbox="dokcer")},
        ),
        "ASYNC_PIPELINE_UNKNOWN_SANDBOX",
        "execution.local.sandbox",
        "docker",
    ),
    (
        "execution",
        lambda: build(
            execution={"linux": execution.github()},
            tasks={"a": task()},
            jobs={"verify": job(target="a", execution="linx")},
        ),
        "ASYNC_PIPELINE_UNKNOWN_EXECUTION",
        "jobs.verify.execution",
        "linux",
    ),
    (
        "task cache store",
        lambda: build(tasks={"a": task(cache="redis:tasks")}),
        "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
        "tasks.a.cache",
        None,
    ),
    (
        "task cache store near miss",
        lambda: build(tasks={"a": task(cache="fiel:local")}),
        "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
        "tasks.a.cache",
        "file",
    ),
    (
        "cache option store",
        lambda: build(tasks={"a": task(cache={"store": "redis"})}),
        "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
        "tasks.a.cache.store",
        None,
    ),
    (
        "cache directive store",
        lambda: build(tasks={"a": task(cache.use("redis:x"), sh("x"))}),
        "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
        "tasks.a.steps[0]",
        None,
    ),
    (
        "pipeline default ref",
        lambda: build(cache="redis:tasks"),
        "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
        "cache",
        None,
    ),
    (
        "define_cache default",
        lambda: define_cache(default="shared:tasks"),
        "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
        "cache.default",
        None,
    ),
    (
        "task_defaults cache",
        lambda: build(task_defaults={"test": {"cache": "remote:x"}}),
        "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
        "task_defaults.test.cache",
        None,
    ),
    (
        "store declared in another registry",
        lambda: build(
            cache=define_cache(stores={}),
            tasks={"a": task(cache="shared:x")},
        ),
        "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
        "tasks.a.cache",
        None,
    ),
    (
        "agent literal",
        lambda: build(agents=CLAUDE, tasks={"a": task(agent(use="claud", prompt="p"))}),
        "ASYNC_PIPELINE_AGENT_UNKNOWN",
        "tasks.a.steps[0]",
        "claude",
    ),
    (
        "agent without profiles",
        lambda: build(tasks={"a": task(run=agent(use="claude", prompt="p"))}),
        "ASYNC_PIPELINE_AGENT_UNKNOWN",
        "tasks.a.run[0]",
        None,
    ),
    (
        "agent env.var default",
        lambda: build(
            agents=CLAUDE,
            tasks={"a": task(run=agent(use=env.var("AGENT", default="codex"), prompt="p"))},
        ),
        "ASYNC_PIPELINE_AGENT_UNKNOWN",
        "tasks.a.run[0]",
        None,
    ),
    (
        "agent env.var mapping value",
        lambda: build(
            agents=CLAUDE,
            tasks={
                "a": task(
                    steps=[
                        sh("x"),
                        agent(
                            use=env.var("AGENT", {"prod": "claude", "dev": "mock"}, default="prod"),
                            prompt="p",
                        ),
                    ]
                )
            },
        ),
        "ASYNC_PIPELINE_AGENT_UNKNOWN",
        "tasks.a.steps[1]",
        None,
    ),
    (
        "agent in group raw task",
        lambda: build(
            agents=CLAUDE, tasks={"docs": {"guide": {"run": [agent(use="x", prompt="p")]}}}
        ),
        "ASYNC_PIPELINE_AGENT_UNKNOWN",
        "tasks.docs.guide.run[0]",
        None,
    ),
]


@pytest.mark.parametrize(
    ("declare", "code", "path", "nearest"),
    [case[1:] for case in UNKNOWN_REFERENCES],
    ids=[case[0] for case in UNKNOWN_REFERENCES],
)
def test_reference_to_something_undeclared_is_rejected_with_its_code_and_path(
    declare: Declare, code: str, path: str, nearest: str | None
) -> None:
    error = error_of(declare)
    assert (error.code, error.path) == (code, path)
    if nearest is not None:
        assert suggests(error, nearest)


def test_agent_selected_only_at_run_time_is_not_checked_statically() -> None:
    pipeline = build(agents=CLAUDE, tasks={"a": task(agent(use=env.var("AGENT"), prompt="p"))})
    assert "a" in pipeline.tasks


def test_agent_mapping_selector_default_need_not_be_a_profile_name() -> None:
    use = env.var("AGENT", {"prod": "claude"}, default="prod")
    pipeline = build(agents=CLAUDE, tasks={"a": task(agent(use=use, prompt="p"))})
    assert "a" in pipeline.tasks


def test_declared_redis_store_is_a_valid_cache_ref() -> None:
    registry = define_cache(
        default="redis:tasks", stores={"redis": redis_cache(url=env.var("REDIS_URL"))}
    )
    pipeline = build(cache=registry, tasks={"a": task(cache=True), "b": task(cache="redis:other")})
    assert pipeline.tasks["a"].cache is not None
    assert pipeline.tasks["a"].cache.ref == "redis:tasks"


# --- cycles -----------------------------------------------------------------------------

CYCLES: list[tuple[str, dict[str, object], str, str]] = [
    (
        "two tasks",
        {"a": task(depends_on=["b"]), "b": task(depends_on=["a"])},
        "a -> b -> a",
        "tasks.a.depends_on",
    ),
    (
        "three tasks",
        {"a": task(depends_on=["b"]), "b": task(depends_on=["c"]), "c": task(depends_on=["a"])},
        "a -> b -> c -> a",
        "tasks.a.depends_on",
    ),
    (
        "cycle behind a tail",
        {
            "entry": task(depends_on=["x"]),
            "x": task(depends_on=["y"]),
            "y": task(depends_on=["z"]),
            "z": task(depends_on=["x"]),
        },
        "x -> y -> z -> x",
        "tasks.x.depends_on",
    ),
    ("self dependency", {"a": task(depends_on=["a"])}, "a -> a", "tasks.a.depends_on"),
    (
        "directive",
        {"a": task(depends_on("b"), sh("x")), "b": task(depends_on("a"), sh("y"))},
        "a -> b -> a",
        "tasks.a.depends_on",
    ),
    (
        "through a group default",
        {"claims": {"default": task(depends_on=["report"]), "report": task(depends_on=["claims"])}},
        "claims -> claims.report -> claims",
        "tasks.claims.default.depends_on",
    ),
]


@pytest.mark.parametrize(
    ("tasks", "shown", "path"),
    [case[1:] for case in CYCLES],
    ids=[case[0] for case in CYCLES],
)
def test_dependency_cycle_is_named_as_a_chain(
    tasks: dict[str, object], shown: str, path: str
) -> None:
    error = error_of(lambda: build(tasks=tasks))
    assert error.code == "ASYNC_PIPELINE_DEPENDENCY_CYCLE"
    assert shown in error.message
    assert error.path == path


def test_cycle_message_leaves_out_tasks_outside_the_cycle() -> None:
    tasks = {
        "entry": task(depends_on=["a"]),
        "a": task(depends_on=["b"]),
        "b": task(depends_on=["a"]),
    }
    error = error_of(lambda: build(tasks=tasks))
    assert "a -> b -> a" in error.message
    assert "entry" not in error.message


def test_long_acyclic_chain_is_not_a_cycle() -> None:
    tasks = {f"t{i}": task(depends_on=[f"t{i + 1}"]) for i in range(2000)}
    tasks["t2000"] = task()
    assert len(build(tasks=tasks).tasks) == 2001


def test_diamond_is_not_a_cycle() -> None:
    tasks = {
        "top": task(depends_on=["left", "right"]),
        "left": task(depends_on=["base"]),
        "right": task(depends_on=["base"]),
        "base": task(),
    }
    assert set(build(tasks=tasks).tasks) == {"top", "left", "right", "base"}


# --- duplicates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "path"),
    [
        ({"claims.report": task(), "claims": {"report": task()}}, "tasks.claims.report"),
        ({"claims": {"default": task(), "index": task()}}, "tasks.claims.index"),
        ({"claims": task(), "x": {}, "g": {"h": task()}, "g.h": task()}, "tasks['g.h']"),
        ({"a": {"b": {"default": task()}}, "a.b": {"default": task()}}, "tasks['a.b'].default"),
    ],
    ids=[
        "dotted key and group",
        "default and index",
        "group then dotted key",
        "two group defaults",
    ],
)
def test_two_declarations_with_the_same_id_after_flattening_are_duplicates(
    tasks: dict[str, object], path: str
) -> None:
    error = error_of(lambda: build(tasks=tasks))
    assert error.code == "ASYNC_PIPELINE_DUPLICATE_TASK"
    assert error.path == path


@pytest.mark.parametrize(
    ("tasks", "first", "second"),
    [
        ({"a.b": task(), "a": {"b": task()}}, "tasks['a.b']", "tasks.a.b"),
        ({"a": {"b": task()}, "a.b": task()}, "tasks.a.b", "tasks['a.b']"),
        ({"a": {"b.c": task()}, "a.b": {"c": task()}}, "tasks.a['b.c']", "tasks['a.b'].c"),
    ],
    ids=["dotted key first", "group first", "dotted keys at two levels"],
)
def test_duplicate_message_tells_a_dotted_key_from_a_group(
    tasks: dict[str, object], first: str, second: str
) -> None:
    error = error_of(lambda: build(tasks=tasks))
    assert error.code == "ASYNC_PIPELINE_DUPLICATE_TASK"
    assert f"at {first} and at {second}" in error.message


# --- paths ------------------------------------------------------------------------------

BAD_PATHS = [
    "/etc/passwd",
    "../outside",
    "a/../../b",
    "src/..",
    "~/x",
    "C:/x",
    "\\\\server\\x",
    "!/abs",
    "!../x",
]


@pytest.mark.parametrize("value", BAD_PATHS)
@pytest.mark.parametrize("field", ["inputs", "outputs"])
def test_absolute_or_climbing_task_path_is_rejected(field: str, value: str) -> None:
    error = error_of(lambda: build(tasks={"a": task(**{field: ["ok/**", value]})}))
    assert error.code == "ASYNC_PIPELINE_INVALID_PATH"
    assert error.path == f"tasks.a.{field}[1]"


@pytest.mark.parametrize("value", ["/tmp/report.md", "../report.md", "docs/../../x.md"])
def test_absolute_or_climbing_stdout_to_is_rejected(value: str) -> None:
    error = error_of(lambda: agent(use="claude", prompt="p", stdout_to=value))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "agent.stdout_to")


@pytest.mark.parametrize(
    ("declare", "path"),
    [
        (lambda: build(named_inputs={"src": ["/src/**"]}), "named_inputs.src[0]"),
        (
            lambda: build(task_defaults={"t": {"outputs": ["../dist"]}}),
            "task_defaults.t.outputs[0]",
        ),
        (lambda: build(sync={"github": {"workflow": "/x.yml"}}), "sync.github.workflow"),
        (lambda: build(sync={"github": {"lock": "../x.json"}}), "sync.github.lock"),
        (
            lambda: build(sync={"tasks": {"targets": [{"path": "../package.json"}]}}),
            "sync.tasks.targets[0].path",
        ),
    ],
    ids=["named input", "task default", "sync workflow", "sync lock", "sync target"],
)
def test_absolute_or_climbing_path_in_other_sections_is_rejected(
    declare: Declare, path: str
) -> None:
    error = error_of(declare)
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", path)


@pytest.mark.parametrize(
    "value", ["dist/**", "!dist/cache/**", "a/..b/c", "..hidden", "./src", "docs/upgrade.md"]
)
def test_relative_paths_staying_inside_the_repository_are_accepted(value: str) -> None:
    pipeline = build(tasks={"a": task(outputs=[value])})
    assert pipeline.tasks["a"].outputs == (value,)

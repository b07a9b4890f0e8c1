"""Declaration helpers: each validates its own keywords and values and only records them."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from async_pipeline import (
    agent,
    cache,
    command,
    define_cache,
    depends_on,
    env,
    execution,
    file_cache,
    memory_cache,
    redis_cache,
    sandbox,
    sh,
    source,
    trigger,
)
from async_pipeline.core.cache import CacheUse, FileCache, MemoryCache, RedisCache
from async_pipeline.core.commands import Allow, Deny, Mock, RequireEnvironment
from async_pipeline.core.env import EnvSecret, EnvVar
from async_pipeline.core.sandboxes import ContainerSandbox, ExecutionProfile, Volume
from async_pipeline.core.sources import PathSource
from async_pipeline.core.steps import AgentStep, DeferredShell, DependsOn, FunctionStep, Shell
from async_pipeline.core.triggers import CronTrigger, GithubTrigger, ManualTrigger

from ._support import error_of, suggests

Declare = Callable[[], object]
RULE_ACTION = command.allow()

# Every helper taking keywords: a typo (of an optional or a required keyword) is an unknown
# field named by its full path, with the nearest valid keyword as the hint.
UNKNOWN_KEYWORDS: list[tuple[str, Declare, str, str | None]] = [
    (
        "trigger.github",
        lambda: trigger.github(events=["push"], branchs=["main"]),
        "trigger.github.branchs",
        "branches",
    ),
    (
        "trigger.github required",
        lambda: trigger.github(event=["push"]),
        "trigger.github.event",
        "events",
    ),
    (
        "source.path",
        lambda: source.path(path="../lib", writeable=True),
        "source.path.writeable",
        "writable",
    ),
    ("source.path required", lambda: source.path(pth="../lib"), "source.path.pth", "path"),
    (
        "source.git",
        lambda: source.git(url="https://x/y.git", reff="main"),
        "source.git.reff",
        "ref",
    ),
    ("source.git required", lambda: source.git(ulr="https://x/y.git"), "source.git.ulr", "url"),
    ("sandbox.lima", lambda: sandbox.lima(vm="dev", cpus=4), "sandbox.lima.cpus", None),
    ("sandbox.lima required", lambda: sandbox.lima(vmm="dev"), "sandbox.lima.vmm", "vm"),
    (
        "sandbox.docker",
        lambda: sandbox.docker(image="python:3.12", cdw="/w"),
        "sandbox.docker.cdw",
        "cwd",
    ),
    (
        "sandbox.docker required",
        lambda: sandbox.docker(imag="python:3.12"),
        "sandbox.docker.imag",
        "image",
    ),
    (
        "sandbox.container",
        lambda: sandbox.container(image="python:3.12", work_dir="/w"),
        "sandbox.container.work_dir",
        "workdir",
    ),
    (
        "sandbox.container required",
        lambda: sandbox.container(img="python:3.12"),
        "sandbox.container.img",
        "image",
    ),
    (
        "sandbox.container volume",
        lambda: sandbox.container(image="python:3.12", volumes=[{"source": ".", "taget": "/w"}]),
        "sandbox.container.volumes[0].taget",
        "target",
    ),
    (
        "execution.local",
        lambda: execution.local(providr="docker"),
        "execution.local.providr",
        "provider",
    ),
    (
        "execution.github",
        lambda: execution.github(runsOn="ubuntu-latest"),
        "execution.github.runsOn",
        "runs_on",
    ),
    ("command.mock", lambda: command.mock(stdot="ok"), "command.mock.stdot", "stdout"),
    (
        "command.rule",
        lambda: command.rule(action=RULE_ACTION, prefx=["npm"]),
        "command.rule.prefx",
        "prefix",
    ),
    (
        "command.rule required",
        lambda: command.rule(actoin=RULE_ACTION, prefix=["npm"]),
        "command.rule.actoin",
        "action",
    ),
    (
        "command.policy",
        lambda: command.policy(fallbak=command.deny()),
        "commands.fallbak",
        "fallback",
    ),
    (
        "command.policy output",
        lambda: command.policy(output={"maxBytes": 10}),
        "commands.output.maxBytes",
        "max_bytes",
    ),
    ("file_cache", lambda: file_cache(rot=".cache"), "file_cache.rot", "root"),
    ("file_cache camelCase", lambda: file_cache(ttlMs=5), "file_cache.ttlMs", "ttl_ms"),
    ("memory_cache", lambda: memory_cache(ttl=5), "memory_cache.ttl", "ttl_ms"),
    ("redis_cache", lambda: redis_cache(url="redis://h", prefx="p"), "redis_cache.prefx", "prefix"),
    (
        "redis_cache camelCase",
        lambda: redis_cache(url="redis://h", maxEntryBytes=1),
        "redis_cache.maxEntryBytes",
        "max_entry_bytes",
    ),
    ("redis_cache required", lambda: redis_cache(ulr="redis://h"), "redis_cache.ulr", "url"),
    (
        "redis_cache url mapping",
        lambda: redis_cache(url={"evn": "REDIS_URL"}),
        "redis_cache.url.evn",
        "env",
    ),
    ("define_cache", lambda: define_cache(defualt="file:x"), "cache.defualt", "default"),
    (
        "agent",
        lambda: agent(use="claude", prompt="p", stdoutTo="x.md"),
        "agent.stdoutTo",
        "stdout_to",
    ),
    ("agent required use", lambda: agent(us="claude", prompt="p"), "agent.us", "use"),
    ("agent required prompt", lambda: agent(use="claude", promt="p"), "agent.promt", "prompt"),
    ("env.var", lambda: env.var("MODE", defualt="dev"), "env.var.defualt", "default"),
    ("sh value nobody uses", lambda: sh("pnpm add {dir}", dir="a", dri="b"), "sh.dri", "dir"),
]


@pytest.mark.parametrize(
    ("declare", "path", "nearest"),
    [case[1:] for case in UNKNOWN_KEYWORDS],
    ids=[case[0] for case in UNKNOWN_KEYWORDS],
)
def test_unknown_helper_keyword_is_rejected_with_its_path_and_nearest_name(
    declare: Declare, path: str, nearest: str | None
) -> None:
    error = error_of(declare)
    assert error.code == "ASYNC_PIPELINE_UNKNOWN_FIELD"
    assert error.path == path
    assert path in error.message
    if nearest is None:
        assert error.hint is None
    else:
        assert suggests(error, nearest)


# A required keyword left out entirely is a PipelineError naming it, not a bare TypeError.
MISSING_REQUIRED: list[tuple[str, Declare, str]] = [
    ("trigger.github", lambda: trigger.github(), "trigger.github.events"),
    ("source.path", lambda: source.path(), "source.path.path"),
    ("source.git", lambda: source.git(), "source.git.url"),
    ("sandbox.lima", lambda: sandbox.lima(), "sandbox.lima.vm"),
    ("sandbox.docker", lambda: sandbox.docker(), "sandbox.docker.image"),
    ("sandbox.container", lambda: sandbox.container(), "sandbox.container.image"),
    ("command.rule", lambda: command.rule(prefix=["npm"]), "command.rule.action"),
    ("redis_cache", lambda: redis_cache(), "redis_cache.url"),
    ("agent use", lambda: agent(prompt="p"), "agent.use"),
    ("agent prompt", lambda: agent(use="claude"), "agent.prompt"),
]


@pytest.mark.parametrize(
    ("declare", "path"),
    [case[1:] for case in MISSING_REQUIRED],
    ids=[case[0] for case in MISSING_REQUIRED],
)
def test_missing_required_helper_keyword_names_its_path(declare: Declare, path: str) -> None:
    error = error_of(declare)
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", path)


INVALID_HELPER_VALUES: list[tuple[str, Declare, str]] = [
    ("trigger.github no events", lambda: trigger.github(events=[]), "trigger.github.events"),
    ("trigger.github event type", lambda: trigger.github(events=[1]), "trigger.github.events[0]"),
    ("trigger.cron fields", lambda: trigger.cron("0 9 * *"), "trigger.cron"),
    ("trigger.schedule fields", lambda: trigger.schedule("daily"), "trigger.schedule"),
    (
        "source.path writable type",
        lambda: source.path(path="../a", writable="yes"),
        "source.path.writable",
    ),
    (
        "source.path prepare not a list",
        lambda: source.path(path="../a", writable=True, prepare=sh("x")),
        "source.path.prepare",
    ),
    (
        "source.path prepare item",
        lambda: source.path(path="../a", writable=True, prepare=[3]),
        "source.path.prepare[0]",
    ),
    (
        "source.path prepare needs writable",
        lambda: source.path(path="../a", prepare=[sh("pnpm install")]),
        "source.path.writable",
    ),
    ("source.git empty url", lambda: source.git(url=""), "source.git.url"),
    (
        "sandbox.container volumes",
        lambda: sandbox.container(image="i", volumes="./:/w"),
        "sandbox.container.volumes",
    ),
    (
        "sandbox.container volume target",
        lambda: sandbox.container(image="i", volumes=[{"source": "."}]),
        "sandbox.container.volumes[0].target",
    ),
    ("execution provider", lambda: execution.local(provider="podman"), "execution.local.provider"),
    ("execution runs_on", lambda: execution.github(runs_on=[1]), "execution.github.runs_on[0]"),
    ("command.mock code", lambda: command.mock(code=-1), "command.mock.code"),
    (
        "command.rule both",
        lambda: command.rule(action=RULE_ACTION, prefix=["a"], exact=["a"]),
        "command.rule",
    ),
    ("command.rule neither", lambda: command.rule(action=RULE_ACTION), "command.rule"),
    (
        "command.rule empty argv",
        lambda: command.rule(action=RULE_ACTION, exact=[]),
        "command.rule.exact",
    ),
    (
        "command.rule argv string",
        lambda: command.rule(action=RULE_ACTION, prefix="npm publish"),
        "command.rule.prefix",
    ),
    (
        "command.rule action",
        lambda: command.rule(action="deny", prefix=["npm"]),
        "command.rule.action",
    ),
    ("command.policy rules", lambda: command.policy(rules=[command.deny()]), "commands.rules[0]"),
    ("command.policy fallback", lambda: command.policy(fallback="allow"), "commands.fallback"),
    (
        "command.policy max bytes",
        lambda: command.policy(output={"max_bytes": 0}),
        "commands.output.max_bytes",
    ),
    (
        "command.require_environment",
        lambda: command.require_environment(),
        "command.require_environment",
    ),
    ("file_cache ttl", lambda: file_cache(ttl_ms=0), "file_cache.ttl_ms"),
    ("memory_cache ttl", lambda: memory_cache(ttl_ms=True), "memory_cache.ttl_ms"),
    ("redis_cache url", lambda: redis_cache(url=3), "redis_cache.url"),
    ("redis_cache url env", lambda: redis_cache(url={"env": ""}), "redis_cache.url.env"),
    (
        "redis_cache max entry",
        lambda: redis_cache(url="redis://h", max_entry_bytes=0),
        "redis_cache.max_entry_bytes",
    ),
    (
        "define_cache store",
        lambda: define_cache(stores={"shared": "redis://h"}),
        "cache.stores.shared",
    ),
    (
        "define_cache store name",
        lambda: define_cache(stores={"a b": memory_cache()}),
        "cache.stores.a b",
    ),
    ("define_cache ref", lambda: define_cache(default="file local"), "cache.default"),
    ("cache.use ref", lambda: cache.use("file local"), "cache.use"),
    ("cache.use empty", lambda: cache.use(""), "cache.use"),
    ("depends_on nothing", lambda: depends_on(), "depends_on"),
    ("depends_on type", lambda: depends_on("a", 3), "depends_on[1]"),
    ("agent use", lambda: agent(use=3, prompt="p"), "agent.use"),
    ("agent prompt", lambda: agent(use="c", prompt=""), "agent.prompt"),
    (
        "agent stdout_to glob",
        lambda: agent(use="c", prompt="p", stdout_to="docs/*.md"),
        "agent.stdout_to",
    ),
    (
        "agent stdout_to exclusion",
        lambda: agent(use="c", prompt="p", stdout_to="!x.md"),
        "agent.stdout_to",
    ),
    ("env.secret name", lambda: env.secret("NPM-TOKEN"), "env.secret"),
    ("env.var name", lambda: env.var(""), "env.var"),
    ("env.var default type", lambda: env.var("MODE", default=3), "env.var.default"),
    (
        "env.var default not mapped",
        lambda: env.var("MODE", {"prod": "a", "dev": "b"}, default="test"),
        "env.var.default",
    ),
    ("env.var empty mapping", lambda: env.var("MODE", {}), "env.var.mapping"),
    ("env.var mapping value", lambda: env.var("MODE", {"prod": 1}), "env.var.mapping.prod"),
    ("env.var mapping type", lambda: env.var("MODE", ["prod"]), "env.var.mapping"),
    ("sh empty", lambda: sh(""), "sh"),
    ("sh number", lambda: sh(3), "sh"),
    ("sh value type", lambda: sh("echo {x}", x=1.5), "sh.x"),
    ("sh value boolean", lambda: sh("echo {x}", x=True), "sh.x"),
    ("sh missing placeholder", lambda: sh("pnpm add {dir}", other="x"), "sh"),
    ("sh positional placeholder", lambda: sh("echo {}", x="y"), "sh"),
    ("sh attribute placeholder", lambda: sh("echo {x.nope}", x="y"), "sh"),
    ("sh unbalanced brace", lambda: sh("echo {x", x="y"), "sh"),
    ("sh deferred with values", lambda: sh(lambda ctx: sh("x"), x="y"), "sh"),
]


@pytest.mark.parametrize(
    ("declare", "path"),
    [case[1:] for case in INVALID_HELPER_VALUES],
    ids=[case[0] for case in INVALID_HELPER_VALUES],
)
def test_wrong_helper_value_is_rejected_with_its_path(declare: Declare, path: str) -> None:
    error = error_of(declare)
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_VALUE", path)


@pytest.mark.parametrize("root", ["/var/cache", "../cache"])
def test_file_cache_root_outside_the_repository_is_an_invalid_path(root: str) -> None:
    error = error_of(lambda: file_cache(root=root))
    assert (error.code, error.path) == ("ASYNC_PIPELINE_INVALID_PATH", "file_cache.root")


# --- sh ---------------------------------------------------------------------------------


def test_sh_keyword_values_are_shell_quoted() -> None:
    step = sh("pnpm add {dir}", dir="a b; rm -rf /")
    assert step == Shell("pnpm add 'a b; rm -rf /'")
    assert shlex.split(step.command) == ["pnpm", "add", "a b; rm -rf /"]


@pytest.mark.parametrize(
    ("value", "word"),
    [
        ("plain", "plain"),
        (42, "42"),
        (Path("a dir/x"), "a dir/x"),
        ("$(whoami)", "$(whoami)"),
        ("", ""),
    ],
)
def test_sh_interpolates_each_value_as_one_shell_word(value: str | int | Path, word: str) -> None:
    step = sh("tool --flag {value} end", value=value)
    assert isinstance(step, Shell)
    assert shlex.split(step.command) == ["tool", "--flag", word, "end"]


@pytest.mark.parametrize(
    ("text", "values", "words"),
    [
        ("printf {x:>{width}}", {"x": "a", "width": 3}, ["printf", "  a"]),
        ("echo {x!r}", {"x": "a"}, ["echo", "'a'"]),
        ("cp {src} {dst} {src}", {"src": "a", "dst": "b"}, ["cp", "a", "b", "a"]),
    ],
    ids=["nested format spec", "conversion", "value used twice"],
)
def test_sh_counts_every_placeholder_as_a_use(
    text: str, values: dict[str, str | int], words: list[str]
) -> None:
    step = sh(text, **values)
    assert isinstance(step, Shell)
    assert shlex.split(step.command) == words


def test_sh_doubled_braces_stay_literal_when_values_are_given() -> None:
    step = sh("echo {{literal}} {x}", x="y")
    assert step == Shell("echo {literal} y")


@pytest.mark.parametrize(
    "text", ["echo ${HOME}", "find . -exec rm {} +", "echo {a,b}", "pnpm build"]
)
def test_sh_without_keywords_runs_the_text_as_written(text: str) -> None:
    assert sh(text) == Shell(text)


def test_sh_with_a_callback_is_deferred_and_not_called() -> None:
    calls: list[object] = []

    def later(ctx: object) -> Shell:
        calls.append(ctx)
        raise AssertionError("a deferred sh callback must not be called when declared")

    step = sh(later)
    assert step == DeferredShell(later)
    assert calls == []


# --- env --------------------------------------------------------------------------------


def test_env_var_records_name_default_and_mapping() -> None:
    value = env.var("NODE_ENV", {"prod": "https://api", "dev": "http://localhost"}, default="dev")
    assert value == EnvVar("NODE_ENV", "dev", {"prod": "https://api", "dev": "http://localhost"})


def test_env_var_mapping_may_be_given_by_keyword() -> None:
    assert env.var("MODE", mapping={"a": "1"}) == EnvVar("MODE", None, {"a": "1"})


def test_env_var_default_may_be_empty() -> None:
    assert env.var("MODE", default="") == EnvVar("MODE", "", None)


def test_env_secret_records_only_the_name() -> None:
    assert env.secret("NPM_TOKEN") == EnvSecret("NPM_TOKEN")


# --- cache ------------------------------------------------------------------------------


def test_define_cache_keeps_declared_stores_and_default() -> None:
    registry = define_cache(
        default="memory:session",
        stores={
            "memory": memory_cache(),
            "file": file_cache(root=".async/cache/tasks", ttl_ms=1000),
            "redis": redis_cache(url={"env": "REDIS_URL"}),
        },
    )
    assert registry.default == "memory:session"
    assert registry.stores["file"] == FileCache(".async/cache/tasks", 1000)
    assert registry.stores["redis"] == RedisCache(EnvVar("REDIS_URL"))
    assert set(registry.all_stores()) == {"file", "memory", "redis"}


def test_builtin_stores_are_available_without_declaring_them() -> None:
    registry = define_cache(default="memory")
    assert registry.all_stores() == {"file": FileCache(), "memory": MemoryCache()}


@pytest.mark.parametrize(
    "url", [env.var("REDIS_URL"), env.secret("REDIS_URL"), "redis://localhost:6379"]
)
def test_redis_cache_accepts_a_variable_a_secret_or_a_literal_url(url: object) -> None:
    assert redis_cache(url=url).url == url


def test_cache_use_is_a_directive_recording_the_ref() -> None:
    assert cache.use("file:local") == CacheUse("file:local")


# --- triggers, sources, sandboxes, execution, commands ----------------------------------


def test_triggers_record_what_they_declare() -> None:
    assert trigger.manual() == ManualTrigger()
    assert trigger.github(events="push", branches="main") == GithubTrigger(("push",), ("main",))
    assert trigger.cron(" 0 9 * * 1 ") == CronTrigger("0 9 * * 1")
    assert trigger.schedule("0 9 * * 1") == trigger.cron("0 9 * * 1")


def test_path_source_with_prepare_must_be_writable() -> None:
    prepare = sh("pnpm install --frozen-lockfile")
    declared = source.path(path="../admin", writable=True, prepare=[prepare])
    assert declared == PathSource("../admin", True, (prepare,), None)


def test_source_prepare_functions_become_function_steps_without_being_called() -> None:
    def install(ctx: object) -> None:
        raise AssertionError("prepare must not run when declared")

    declared = source.git(url="https://example.com/s.git", prepare=[install])
    assert declared.prepare == (FunctionStep(install),)


def test_sandboxes_and_execution_profiles_record_their_fields() -> None:
    container = sandbox.container(
        image="python:3.12", workdir="/w", volumes=[{"source": ".", "target": "/w"}]
    )
    assert container == ContainerSandbox("python:3.12", "/w", (Volume(".", "/w"),))
    profile = execution.github(sandbox="py", provider="docker", runs_on=["self-hosted", "linux"])
    assert profile == ExecutionProfile("github", "py", "docker", ("self-hosted", "linux"))
    assert execution.local() == ExecutionProfile("local")


def test_command_policy_records_rules_fallback_and_output() -> None:
    policy = command.policy(
        rules=[
            command.rule(prefix=["npm", "publish"], action=command.deny()),
            command.rule(exact=["git", "push"], action=command.mock(code=0, stdout="ok\n")),
            command.rule(prefix=["deploy"], action=command.require_environment("prod")),
        ],
        fallback=command.allow(),
        record=True,
        output={"max_bytes": 20_000, "redact_secrets": True},
    )
    assert [(r.match, r.argv) for r in policy.rules] == [
        ("prefix", ("npm", "publish")),
        ("exact", ("git", "push")),
        ("prefix", ("deploy",)),
    ]
    assert [type(r.action) for r in policy.rules] == [Deny, Mock, RequireEnvironment]
    assert policy.fallback == Allow()
    assert (policy.record, policy.max_output_bytes, policy.redact_secrets) == (True, 20_000, True)


# --- agent and depends_on ---------------------------------------------------------------


def test_agent_records_profile_prompt_and_stdout_target() -> None:
    use = env.var("ASYNC_AGENT", default="claude")
    assert agent(use=use, prompt="Write it.", stdout_to="docs/upgrade.md") == AgentStep(
        use, "Write it.", "docs/upgrade.md"
    )


def test_depends_on_directive_records_task_ids_in_order() -> None:
    assert depends_on("lint", "storefront:test") == DependsOn(("lint", "storefront:test"))

"""Declarations are inert: defining, loading and inspecting a pipeline runs none of it.

Loading ``pipeline.py``, ``define_pipeline``, normalization and every metadata read never call
a function step or a deferred ``sh`` callback, spawn a process, open a cache, read
``os.environ`` or the clock, or touch the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from async_pipeline import (
    agent,
    cache,
    define_cache,
    define_pipeline,
    depends_on,
    env,
    job,
    redis_cache,
    sh,
    source,
    task,
)
from async_pipeline import query as q
from async_pipeline.core import graph as g
from async_pipeline.query import _data

REPO = Path(__file__).resolve().parents[2]

# A pipeline declaring every kind of callable the API accepts, each of which reports (through
# a custom audit event) and fails if anything calls it, plus every section of the API.
TRAPPED_PIPELINE = """\
import sys

from async_pipeline import (
    agent, cache, command, define_cache, define_pipeline, depends_on, env, execution,
    file_cache, job, memory_cache, redis_cache, sandbox, sh, source, task, trigger,
)


def trap(name):
    def callback(*args, **kwargs):
        sys.audit("async_pipeline_test.called", name)
        raise AssertionError(name + " was called")

    callback.__qualname__ = name
    return callback


async def async_step(ctx):
    sys.audit("async_pipeline_test.called", "async_step")


class CallableStep:
    def __call__(self, ctx):
        sys.audit("async_pipeline_test.called", "CallableStep")


pipeline = define_pipeline(
    name="inert",
    env={"MODE": env.var("MODE", default="dev"), "TOKEN": env.secret("TOKEN"), "X": "1"},
    cache=define_cache(
        default="file:local",
        stores={
            "redis": redis_cache(url=env.var("REDIS_URL")),
            "file": file_cache(ttl_ms=1000),
            "memory": memory_cache(),
        },
    ),
    named_inputs={"py": ["src/**/*.py"], "all": ["py", "docs/**"]},
    task_defaults={"test": {"timeout": "1m", "retry": 2}, "check": {"cache": True}},
    triggers={"push": trigger.github(events=["push"]), "nightly": trigger.cron("0 3 * * *")},
    sync={"github": True, "tasks": True},
    sources={
        "lib": source.path(
            path="lib", writable=True, prepare=[trap("lib_prepare"), sh(trap("lib_deferred"))]
        ),
        "remote": source.git(url="https://example.invalid/r.git", prepare=[trap("git_prepare")]),
    },
    sandboxes={"py": sandbox.container(image="python:3.12"), "vm": sandbox.lima(vm="dev")},
    execution={"ci": execution.github(sandbox="py"), "local": execution.local()},
    agents={
        "claude": {"command": ["claude", "-p"], "model": env.var("MODEL", default="m")},
        "mock": {"command": ["python3", "mock.py"], "model": "mock"},
    },
    commands=command.policy(rules=[command.rule(prefix=["npm"], action=command.deny())]),
    tasks={
        "build": task(
            trap("build_step"),
            sh(trap("build_deferred")),
            cache.use("redis:tasks"),
            inputs=["all"],
            outputs=["dist/**"],
        ),
        "test": task(
            depends_on("build"),
            async_step,
            CallableStep(),
            sh("pytest {x}", x="a b"),
            inputs=["py"],
            cache=True,
            env={"SECRET": env.secret("S")},
        ),
        "docs": {
            "default": task(
                agent(use=env.var("AGENT", default="claude"), prompt="p", stdout_to="docs/x.md"),
                depends_on=["check"],
                outputs=["docs/x.md"],
            ),
            "check": {"run": [trap("docs_check")], "depends_on": ["lib:test", "remote:x"]},
        },
    },
    jobs={
        "verify": job(target=["test", "docs"], trigger="push", execution="ci"),
        "night": {"target": "build", "trigger": ["nightly"], "env": {"A": env.secret("B")}},
    },
)
"""

SOURCE_PIPELINE = """\
import sys

from async_pipeline import define_pipeline, sh, task


def never(ctx):
    sys.audit("async_pipeline_test.called", "lib_step")


pipeline = define_pipeline(name="lib", tasks={"test": task(never, sh(never))})
"""

# Runs in a fresh interpreter so the traps cannot leak into other tests. Everything the code
# needs is imported first; then every forbidden effect is trapped; then the pipeline is
# loaded and every question the query layer answers is asked.
PROBE = r"""
import collections.abc
import datetime
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # bytecode caching is Python's business (ADR 0001), not ours

import async_pipeline
import async_pipeline.query.models
from async_pipeline import query
from async_pipeline.core import graph, loader
from async_pipeline.query import _data

violations = []


class Trapped(BaseException):
    # Not an Exception, so no `except Exception` in the code under test can swallow it.
    pass


def trap(what):
    violations.append(what)
    raise Trapped(what)


EVENTS = {
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "os.forkpty", "os.kill", "os.putenv", "os.unsetenv", "socket.connect", "socket.bind",
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex",
    "socket.gethostbyaddr", "socket.sendto", "os.mkdir", "os.rename", "os.remove",
    "os.rmdir", "os.symlink", "os.truncate", "shutil.rmtree", "shutil.copyfile",
    "async_pipeline_test.called",
}
CLIENTS = {"redis", "anthropic", "httpx", "httpcore", "requests", "urllib3", "mcp", "git"}
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def hook(event, args):
    if event in EVENTS:
        trap(f"{event}{args!r}")
    elif event == "open":
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if mode else bool((flags or 0) & WRITE)
        if writes:
            trap(f"open for writing {path!r}")
    elif event == "import" and args[0].partition(".")[0] in CLIENTS:
        trap(f"import {args[0]}")


class Environ(collections.abc.MutableMapping):
    def __getitem__(self, key):
        trap(f"os.environ[{key!r}]")

    def __setitem__(self, key, value):
        trap(f"os.environ[{key!r}] = ...")

    def __delitem__(self, key):
        trap(f"del os.environ[{key!r}]")

    def __iter__(self):
        trap("iter(os.environ)")

    def __len__(self):
        trap("len(os.environ)")


def clock(name):
    def stub(*args, **kwargs):
        trap(name)

    return stub


class TrappedDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        trap("datetime.now")

    @classmethod
    def utcnow(cls):
        trap("datetime.utcnow")

    @classmethod
    def today(cls):
        trap("datetime.today")


class TrappedDate(datetime.date):
    @classmethod
    def today(cls):
        trap("date.today")


os.chdir(sys.argv[1])
replacements = {
    id(os.environ): Environ(),
    id(os.environb): Environ(),
    id(datetime.datetime): TrappedDatetime,
    id(datetime.date): TrappedDate,
}
CLOCKS = ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
          "process_time", "localtime", "gmtime", "ctime")
for name in CLOCKS:
    replacements[id(getattr(time, name))] = clock(f"time.{name}")
# The trapped objects replace the originals wherever our code holds them ("from time import
# time" included), and in their home modules.
homes = [os, time, datetime] + [
    m for n, m in list(sys.modules.items()) if n.partition(".")[0] == "async_pipeline"
]
for module in homes:
    for attr, value in list(vars(module).items()):
        if id(value) in replacements:
            setattr(module, attr, replacements[id(value)])
sys.addaudithook(hook)

try:
    pipeline = loader.load_pipeline()
    answers = [
        query.metadata(pipeline),
        query.metadata(pipeline, include_sources=True),
        query.list_tasks(pipeline),
        query.graph(pipeline),
        *[query.explain_task(pipeline, t) for t in pipeline.tasks],
        *[query.list_tasks(pipeline, job=j) for j in pipeline.jobs],
        *[query.graph(pipeline, job=j) for j in pipeline.jobs],
    ]
    dumped = [a.model_dump_json(by_alias=True) for a in answers]
    data = [
        _data.metadata(pipeline, include_sources=True),
        _data.list_tasks(pipeline, prefix=next(iter(pipeline.tasks))),
        _data.graph(pipeline),
        *[_data.explain_task(pipeline, t) for t in pipeline.tasks],
    ]
    for task_id in pipeline.tasks:
        _data.check_task(pipeline, task_id)
        graph.dependents(pipeline, task_id, transitive=True)
        graph.jobs_reaching(pipeline, task_id)
    graph.topological(pipeline)
    nested = data[0]["sourcePipelines"]
    outcome = {
        "tasks": list(pipeline.tasks),
        "sources": {k: v["available"] for k, v in nested.items()},
        "answers": len(dumped),
    }
except BaseException as exc:
    outcome = {"error": f"{type(exc).__name__}: {exc}"}

sys.stdout.write(json.dumps({"violations": violations, **outcome}) + "\n")
sys.stdout.flush()
os._exit(0)  # no interpreter shutdown under the traps
"""


def _probe(directory: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(directory)],
        cwd=directory,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_loading_and_inspecting_a_pipeline_has_no_side_effects(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(TRAPPED_PIPELINE, encoding="utf-8")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "pipeline.py").write_text(SOURCE_PIPELINE, encoding="utf-8")
    result = _probe(tmp_path)
    assert result["violations"] == []
    assert "error" not in result
    assert result["tasks"] == ["build", "test", "docs", "docs.check"]
    assert result["sources"] == {"lib": True, "remote": False}
    assert not (tmp_path / ".async").exists()


def test_the_full_fixture_pipeline_is_inert(tmp_path: Path) -> None:
    fixtures = REPO / "fixtures" / "pipelines"
    shutil.copytree(fixtures / "full", tmp_path / "full")
    shutil.copytree(fixtures / "sources", tmp_path / "sources")
    result = _probe(tmp_path / "full")
    assert result["violations"] == []
    assert "error" not in result


# In-process: the callables handed to declarations are recorded if anything calls them.


class Recorder:
    """Callables that note (and fail) when called."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def callback(self, name: str):  # type: ignore[no-untyped-def]
        def called(*args: object, **kwargs: object) -> None:
            self.calls.append(name)
            raise AssertionError(f"{name} was called")

        called.__qualname__ = name
        return called


def test_defining_and_querying_never_calls_steps_or_callbacks() -> None:
    record = Recorder()

    async def async_step(ctx: object) -> None:
        record.calls.append("async_step")

    pipeline = define_pipeline(
        name="inert",
        cache=define_cache(stores={"redis": redis_cache(url=env.var("REDIS_URL"))}),
        sources={
            "lib": source.git(
                url="https://example.invalid/lib.git",
                prepare=[record.callback("prepare"), sh(record.callback("prepare_sh"))],
            )
        },
        agents={"mock": {"command": ["mock"], "model": "m"}},
        tasks={
            "build": task(
                record.callback("build"),
                sh(record.callback("deferred")),
                async_step,
                cache.use("redis:x"),
            ),
            "test": task(run=[depends_on("build"), record.callback("test"), sh("pytest")]),
            "docs": {"default": {"run": agent(use="mock", prompt="p"), "depends_on": ["lib:t"]}},
        },
        jobs={"all": job(target=["test", "docs"])},
    )
    answers: list[object] = [
        q.metadata(pipeline, include_sources=True),
        q.list_tasks(pipeline),
        q.graph(pipeline),
        *[q.explain_task(pipeline, t) for t in pipeline.tasks],
        _data.graph(pipeline, job="all"),
        g.topological(pipeline),
    ]
    assert len(answers) == 8
    assert record.calls == []


@pytest.mark.parametrize("variable", ["HOME", "PATH", "ASYNC_PIPELINE_TEST_VARIABLE"])
def test_normalized_env_values_do_not_depend_on_the_process_environment(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def declare() -> object:
        return define_pipeline(name="p", env={"V": env.var(variable, default="fallback")})

    monkeypatch.setenv(variable, "one")
    first = declare()
    monkeypatch.setenv(variable, "two")
    assert declare() == first


def test_declaring_a_file_cache_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    define_pipeline(name="p", tasks={"a": task(cache="file:local", outputs=["dist/**"])})
    assert list(tmp_path.iterdir()) == []


def test_probe_catches_a_declaration_that_reads_the_environment(tmp_path: Path) -> None:
    # The trap itself works: a pipeline file that reads os.environ is reported.
    (tmp_path / "pipeline.py").write_text(
        textwrap.dedent(
            """\
            import os
            from async_pipeline import define_pipeline

            pipeline = define_pipeline(name=os.environ.get("NAME", "x"))
            """
        ),
        encoding="utf-8",
    )
    result = _probe(tmp_path)
    assert result["violations"] == ["os.environ['NAME']"]


@pytest.mark.parametrize(
    ("statement", "reported"),
    [
        ("import time; time.time()", "time.time"),
        ("import datetime; datetime.datetime.now()", "datetime.now"),
        ("import subprocess; subprocess.run(['true'])", "subprocess.Popen"),
        ("import socket; socket.getaddrinfo('example.invalid', 80)", "socket.getaddrinfo"),
        ("open('written.txt', 'w')", "open for writing"),
    ],
    ids=["clock", "datetime", "process", "network", "write"],
)
def test_probe_catches_each_kind_of_side_effect(
    tmp_path: Path, statement: str, reported: str
) -> None:
    declare = "from async_pipeline import define_pipeline\npipeline = define_pipeline(name='x')\n"
    source = f"{statement}\n{declare}"
    (tmp_path / "pipeline.py").write_text(source, encoding="utf-8")
    result = _probe(tmp_path)
    violations = result["violations"]
    assert isinstance(violations, list) and len(violations) == 1
    assert str(violations[0]).startswith(reported)

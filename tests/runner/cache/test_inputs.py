"""Input resolution and the stat cache: the right files, hashed once, never trusted blindly."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import orjson
import pytest

from async_pipeline.runner.cache import inputs as inputs_module
from async_pipeline.runner.cache.inputs import RACY_NS, Globs, StatCache, Walker, digest_file


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


FILES = [
    "package.json",
    "src/a.py",
    "src/b.txt",
    "src/deep/c.py",
    "src/deep/deeper/d.py",
    "docs/readme.md",
    "dist/out.js",
    ".git/config",
    ".async/runs/x",
    "node_modules/lib/index.js",
    "src/node_modules/x.js",
]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["src/**/*.py"], ["src/a.py", "src/deep/c.py", "src/deep/deeper/d.py"]),
        (["src/*.py"], ["src/a.py"]),
        (["src"], ["src/a.py", "src/b.txt", "src/deep/c.py", "src/deep/deeper/d.py"]),
        (["src/**", "!src/deep/**"], ["src/a.py", "src/b.txt"]),
        (["**/*.md", "package.json"], ["docs/readme.md", "package.json"]),
        (["src/?.py"], ["src/a.py"]),
        (["src/[ab].*"], ["src/a.py", "src/b.txt"]),
        (["missing/**", "nope.txt"], []),
    ],
)
def test_globs_select_the_expected_files(
    tmp_path: Path, patterns: list[str], expected: list[str]
) -> None:
    _tree(tmp_path, FILES)
    assert Globs(patterns).match(Walker(tmp_path)) == expected


def test_files_the_outputs_exclude_with_a_bang_stay_inputs(tmp_path: Path) -> None:
    _tree(tmp_path, FILES)
    outputs = Globs(["src/**", "!src/deep/**"])
    assert Globs(["src/**"]).match(Walker(tmp_path), minus=[outputs]) == [
        "src/deep/c.py",
        "src/deep/deeper/d.py",
    ]
    # Each set of outputs keeps its own excludes: another's "src/deep/**" still takes it.
    both = [outputs, Globs(["src/deep/**"])]
    assert Globs(["src/**"]).match(Walker(tmp_path), minus=both) == []


def test_everything_excludes_git_async_node_modules_and_the_tasks_outputs(tmp_path: Path) -> None:
    _tree(tmp_path, FILES)
    found = Globs(["**"]).match(Walker(tmp_path), minus=[Globs(["dist/**"])])
    assert found == [
        "docs/readme.md",
        "package.json",
        "src/a.py",
        "src/b.txt",
        "src/deep/c.py",
        "src/deep/deeper/d.py",
    ]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["src/**"], ["src/a.py", "src/deep/c.py"]),
        (["src/**", "!src/deep/**"], ["src/a.py"]),
        (["src/deep"], ["src/deep/c.py"]),
        (["*.py"], ["pipeline.py"]),
        (["**"], ["pipeline.py", "src/a.py", "src/deep/c.py"]),
        (["dist/**"], []),
    ],
)
def test_globs_pick_out_the_given_paths_they_match(
    patterns: list[str], expected: list[str]
) -> None:
    paths = ["pipeline.py", "src/a.py", "src/deep/c.py"]
    assert sorted(Globs(patterns).select(paths)) == expected


def _hash_later(
    cache: StatCache, names: list[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Hash as if well after the files were written (ctime cannot be set back in a test)."""
    later = time.time_ns() + 10 * RACY_NS
    with monkeypatch.context() as patch:
        patch.setattr(inputs_module.time, "time_ns", lambda: later)
        return cache.digests(names)


def test_unchanged_files_are_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path, ["a.txt", "b.txt"])
    first = StatCache(tmp_path)
    digests = _hash_later(first, ["a.txt", "b.txt"], monkeypatch)
    first.save()
    reads: list[str] = []
    real = inputs_module.digest_file
    monkeypatch.setattr(
        inputs_module, "digest_file", lambda p, size=None: reads.append(p) or real(p, size)
    )
    assert StatCache(tmp_path).digests(["a.txt", "b.txt"]) == digests
    assert reads == []
    (tmp_path / "b.txt").write_text("changed")
    assert StatCache(tmp_path).digest("b.txt") == digest_file(tmp_path / "b.txt")
    assert reads == [str(tmp_path / "b.txt")]


def _forge(root: Path, name: str, stale_digest: str) -> None:
    """Make the stat cache claim the file's current stat belongs to its old content."""
    for cache_path in (root / ".async" / "cache" / "stat").glob("*.json"):
        data = orjson.loads(cache_path.read_bytes())
        if name in data["entries"]:
            break
    else:
        raise AssertionError(f"{name} is in no stat cache shard")
    st = (root / name).stat()
    hashed_at = data["entries"][name][5]
    data["entries"][name] = [
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
        st.st_ctime_ns,
        stale_digest,
        hashed_at,
    ]
    cache_path.write_bytes(orjson.dumps(data))


def test_a_file_changed_in_the_same_tick_as_its_hashing_is_rehashed(tmp_path: Path) -> None:
    path = tmp_path / "racy.txt"
    path.write_text("before")
    cache = StatCache(tmp_path)
    stale = cache.digest("racy.txt")
    assert stale is not None
    cache.save()
    path.write_text("after!")  # same size; timestamps within the racy window of the save
    _forge(tmp_path, "racy.txt", stale)
    assert StatCache(tmp_path).digest("racy.txt") == digest_file(path) != stale


def test_the_racy_check_trusts_files_older_than_the_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.txt"
    path.write_text("content")
    cache = StatCache(tmp_path)
    _hash_later(cache, ["old.txt"], monkeypatch)
    cache.save()
    _forge(tmp_path, "old.txt", "f" * 64)
    assert StatCache(tmp_path).digest("old.txt") == "f" * 64  # the cached answer is used


def test_a_corrupt_stat_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    cache = StatCache(tmp_path)
    first = cache.digest("a.txt")
    cache.save()
    shards = list((tmp_path / ".async" / "cache" / "stat").glob("*.json"))
    assert first is not None and len(shards) == 1
    shards[0].write_bytes(b"{not json")
    assert StatCache(tmp_path).digest("a.txt") == digest_file(tmp_path / "a.txt")


@pytest.mark.parametrize("size", [0, 1, 4095, 2**20 - 1, 2**20, 2**20 + 1, 3 * 2**20 + 7])
def test_a_file_digest_is_the_sha256_of_all_of_its_bytes(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    (tmp_path / "f.bin").write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert digest_file(tmp_path / "f.bin") == expected
    # With a size from an earlier stat: the one it has, or one it had before it grew or
    # shrank; every byte it holds now is read all the same.
    for told in {size, max(size - 1, 0), size + 1, size // 2, size + 2**20}:
        assert digest_file(tmp_path / "f.bin", told) == expected, told


def test_a_run_that_looks_at_one_directory_rewrites_only_its_shard(tmp_path: Path) -> None:
    _tree(tmp_path, [f"d{i}/f.txt" for i in range(40)])
    cache = StatCache(tmp_path)
    cache.digests([f"d{i}/f.txt" for i in range(40)])
    cache.save()
    shards = {p.name: p.stat().st_mtime_ns for p in (tmp_path / ".async/cache/stat").iterdir()}
    assert len(shards) > 1  # forty directories spread over several files
    (tmp_path / "d7" / "f.txt").write_text("changed")
    again = StatCache(tmp_path)
    assert again.digest("d7/f.txt") == digest_file(tmp_path / "d7" / "f.txt")
    again.save()
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / ".async/cache/stat").iterdir()}
    assert sum(after[name] != shards[name] for name in shards) == 1

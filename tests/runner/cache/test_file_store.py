"""The file store: whole entries or none, every byte verified on the way out."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from async_pipeline.runner.cache.file_store import INLINE_MAX, FileStore, referenced_blobs
from async_pipeline.runner.cache.store import Entry, OutputFile, digest_bytes


def _entry(
    tmp_path: Path, key: str = "c" * 64, payload: bytes = b"built output\n"
) -> tuple[Entry, dict[str, Path]]:
    source = tmp_path / "work" / "dist" / "out.bin"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(payload)
    output = OutputFile("dist/out.bin", digest_bytes(payload), len(payload), 0o644)
    entry = Entry(
        key=key,
        task_id="build",
        created_at=time.time(),
        result={"exitCode": 0, "durationMs": 5, "metadata": {"x": 1}},
        outputs=(output,),
        inputs={"src/a.py": "a" * 64},
        stdout=b"log line\n",
        stderr=b"",
    )
    return entry, {"dist/out.bin": source}


@pytest.mark.parametrize("inline_max", [0, INLINE_MAX])
def test_an_entry_round_trips_with_outputs_inputs_and_logs(tmp_path: Path, inline_max: int) -> None:
    store = FileStore(tmp_path / "cache", inline_max=inline_max)
    entry, files = _entry(tmp_path)
    store.put(entry, files)
    loaded = store.get(entry.key)
    assert loaded is not None
    assert (loaded.inputs, loaded.stdout, loaded.result) == (
        entry.inputs,
        entry.stdout,
        entry.result,
    )
    assert store.read_output(loaded, loaded.outputs[0]) == b"built output\n"
    layout = sorted(
        p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*")
    )
    if inline_max:  # a small output lives in the entry file itself: one file in all
        assert layout == [f"{entry.key}.entry"]
    else:
        assert layout == ["blobs", f"blobs/{entry.outputs[0].digest}", f"{entry.key}.entry"]


def test_outputs_above_the_inline_limit_become_shared_blobs(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cache", inline_max=8)
    small, large = b"tiny\n", b"larger than eight bytes\n"
    outputs, files = [], {}
    for name, data in (("small.txt", small), ("large.txt", large)):
        (tmp_path / name).write_bytes(data)
        outputs.append(OutputFile(name, digest_bytes(data), len(data), 0o644))
        files[name] = tmp_path / name
    entry = Entry("e" * 64, "t", time.time(), {}, tuple(outputs), {}, b"", b"")
    store.put(entry, files)
    assert sorted(p.name for p in (tmp_path / "cache" / "blobs").iterdir()) == [digest_bytes(large)]
    loaded = store.get(entry.key)
    assert loaded is not None and set(loaded.inline) == {"small.txt"}
    assert [store.read_output(loaded, o) for o in loaded.outputs] == [small, large]
    assert referenced_blobs(tmp_path / "cache") == {digest_bytes(large)}


def test_a_thousand_random_bit_flips_in_inline_outputs_are_all_detected(tmp_path: Path) -> None:
    rng = random.Random(4321)
    payload = bytes(rng.randrange(256) for _ in range(4096))
    store = FileStore(tmp_path / "cache")
    entry, files = _entry(tmp_path, payload=payload)
    path = tmp_path / "cache" / f"{entry.key}.entry"
    store.put(entry, files)
    original = path.read_bytes()
    start = original.index(payload)  # the inline section holds the output's bytes as they are
    for _ in range(1000):
        data = bytearray(original)
        bit = rng.randrange(len(payload) * 8)
        data[start + bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(data))
        assert store.get(entry.key) is None
        assert not path.exists()


def test_every_byte_of_an_entry_is_checked(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cache")
    entry, files = _entry(tmp_path)
    store.put(entry, files)
    path = tmp_path / "cache" / f"{entry.key}.entry"
    original = path.read_bytes()
    for index in range(len(original)):
        damaged = bytearray(original)
        damaged[index] ^= 0x01
        path.write_bytes(bytes(damaged))
        assert store.get(entry.key) is None, index
        assert not path.exists()
    for cut in (0, 10, len(original) // 2, len(original) - 1):
        path.write_bytes(original[:cut])
        assert store.get(entry.key) is None
    path.write_bytes(original + b"extra")
    assert store.get(entry.key) is None


def test_a_missing_blob_is_a_miss(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cache", inline_max=0)
    entry, files = _entry(tmp_path)
    store.put(entry, files)
    (tmp_path / "cache" / "blobs" / entry.outputs[0].digest).unlink()
    loaded = store.get(entry.key)
    assert loaded is not None
    assert store.read_output(loaded, loaded.outputs[0]) is None
    assert store.get(entry.key) is None


def test_a_thousand_random_bit_flips_in_outputs_are_all_detected(tmp_path: Path) -> None:
    rng = random.Random(1234)
    payload = bytes(rng.randrange(256) for _ in range(4096))
    store = FileStore(tmp_path / "cache", inline_max=0)
    entry, files = _entry(tmp_path, payload=payload)
    blob = tmp_path / "cache" / "blobs" / entry.outputs[0].digest
    for _ in range(1000):
        store.put(entry, files)
        loaded = store.get(entry.key)
        assert loaded is not None
        data = bytearray(blob.read_bytes())
        bit = rng.randrange(len(data) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
        blob.write_bytes(bytes(data))
        assert store.read_output(loaded, loaded.outputs[0]) is None
        assert not blob.exists()


def test_a_truncated_output_is_detected(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "cache", inline_max=0)
    entry, files = _entry(tmp_path)
    store.put(entry, files)
    blob = tmp_path / "cache" / "blobs" / entry.outputs[0].digest
    blob.write_bytes(blob.read_bytes()[:3])
    loaded = store.get(entry.key)
    assert loaded is not None
    assert store.read_output(loaded, loaded.outputs[0]) is None


def test_entries_older_than_the_ttl_are_misses(tmp_path: Path) -> None:
    entry, files = _entry(tmp_path)
    old = Entry(**{**entry.__dict__, "created_at": time.time() - 10})
    store = FileStore(tmp_path / "cache", ttl_ms=5000)
    store.put(old, files)
    assert store.get(old.key) is None
    fresh_store = FileStore(tmp_path / "cache2", ttl_ms=60_000)
    fresh_store.put(entry, files)
    assert fresh_store.get(entry.key) is not None


CRASH = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    from async_pipeline.runner.cache import file_store
    from async_pipeline.runner.cache.store import Entry, OutputFile, digest_bytes

    root = Path(sys.argv[1]); crash_at = int(sys.argv[2]); inline_max = int(sys.argv[3])
    calls = {"n": 0}
    def hook():
        calls["n"] += 1
        if calls["n"] == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
    file_store.crash_hook = hook
    outputs, files = [], {}
    for i in range(3):
        data = f"output {i}\\n".encode() * 1000
        path = root / "work" / f"out{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        outputs.append(OutputFile(f"out{i}.txt", digest_bytes(data), len(data), 0o644))
        files[f"out{i}.txt"] = path
    entry = Entry("c" * 64, "t", time.time(), {}, tuple(outputs), {}, b"", b"")
    file_store.FileStore(root / "cache", inline_max=inline_max).put(entry, files)
    """
)


@pytest.mark.parametrize(
    ("crash_at", "inline_max"),
    [*((n, 0) for n in range(1, 8)), (1, INLINE_MAX)],  # blobs first, or all in one file
)
def test_a_writer_killed_mid_write_never_leaves_a_served_entry(
    tmp_path: Path, crash_at: int, inline_max: int
) -> None:
    argv = [sys.executable, "-c", CRASH, str(tmp_path), str(crash_at), str(inline_max)]
    done = subprocess.run(argv, check=False)
    assert done.returncode == -9
    store = FileStore(tmp_path / "cache")
    assert store.get("c" * 64) is None
    assert not (tmp_path / "cache" / ("c" * 64 + ".entry")).exists()
    leftovers = [p.name for p in (tmp_path / "cache").rglob(".tmp-*")]
    assert len(leftovers) <= 1  # at most the file being written when the process died
    for blob in (tmp_path / "cache" / "blobs").glob("[0-9a-f]*"):
        assert digest_bytes(blob.read_bytes()) == blob.name  # published blobs are whole


@pytest.mark.parametrize("key", ["../../victim", "../victim", "VICTIM", "a" * 63, "x\0y"])
def test_a_key_that_is_no_cache_key_names_no_file_to_read_touch_or_remove(
    tmp_path: Path, key: str
) -> None:
    # A baseline names the entry a restore compares against; a forged one must not reach
    # past the store's directory, whoever asks.
    store_dir = tmp_path / "repo" / ".async" / "cache" / "tasks"
    store_dir.mkdir(parents=True)
    victim = tmp_path / "repo" / "victim.entry"
    victim.write_text("not an entry")
    outside = tmp_path / "victim.entry"
    outside.write_text("not an entry")
    store = FileStore(store_dir)
    assert store.get(key) is None
    store.touch(key)
    store.delete(key)
    assert victim.read_text() == outside.read_text() == "not an entry"

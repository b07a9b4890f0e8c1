"""The Redis cache store against a real redis-server (started by ``conftest.py``)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from async_pipeline.runner.cache.redis_store import (
    EntryTooLargeError,
    RedisStore,
    _translated,
    _vendor_errors,
)
from async_pipeline.runner.cache.store import Entry, OutputFile, StoreError, digest_bytes
from tests.runner.cache.conftest import RedisServer, redis_command

KEY = "a" * 64
PREFIX = "t"


def make_entry(
    folder: Path,
    outputs: dict[str, bytes] | None = None,
    *,
    key: str = KEY,
    stdout: bytes = b"built\n",
    stderr: bytes = b"warning: none\n",
    created_at: float | None = None,
) -> tuple[Entry, dict[str, Path]]:
    """An entry whose outputs are real files under ``folder``, and the files mapping for put."""
    outputs = (
        {"dist/app.js": b"console.log(1)\n", "bin/tool": b"#!/bin/sh\n"}
        if outputs is None
        else outputs
    )
    files: dict[str, Path] = {}
    described: list[OutputFile] = []
    for path, data in outputs.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        files[path] = target
        described.append(OutputFile(path, digest_bytes(data), len(data), 0o644))
    entry = Entry(
        key=key,
        task_id="build",
        created_at=time.time() if created_at is None else created_at,
        result={"exitCode": 0, "durationMs": 12, "metadata": {"n": 1}},
        outputs=tuple(described),
        inputs={"src/app.ts": "b" * 64},
        stdout=stdout,
        stderr=stderr,
        extra={"note": "x"},
    )
    return entry, files


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the same database, to inspect and damage what the store wrote."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    """A store without ttl or size limit on the emptied test database."""
    with RedisStore(redis_url, prefix=PREFIX) as opened:
        yield opened


def entry_key(key: str = KEY) -> str:
    """Where the store keeps the manifest of ``key``."""
    return f"{PREFIX}:entry:{key}"


def blob_key(data: bytes) -> str:
    """Where the store keeps ``data``."""
    return f"{PREFIX}:blob:{digest_bytes(data)}"


def closed_port() -> int:
    """A local port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# round trip ---------------------------------------------------------------------------------


def test_an_entry_round_trips_with_its_outputs_and_logs(store: RedisStore, tmp_path: Path) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)

    got = store.get(KEY)

    assert got == entry
    assert got is not None
    assert [store.read_output(got, o) for o in got.outputs] == [
        b"console.log(1)\n",
        b"#!/bin/sh\n",
    ]


def test_an_entry_without_outputs_or_logs_round_trips(store: RedisStore, tmp_path: Path) -> None:
    entry, files = make_entry(tmp_path, {}, stdout=b"", stderr=b"")
    store.put(entry, files)

    assert store.get(KEY) == entry


def test_an_unknown_key_is_a_miss(store: RedisStore) -> None:
    assert store.get(KEY) is None


def test_the_manifest_lives_under_entry_and_contents_under_blob_by_digest(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)

    contents = [b"console.log(1)\n", b"#!/bin/sh\n", entry.stdout, entry.stderr]
    assert set(raw.keys("*")) == {entry_key().encode(), *(blob_key(c).encode() for c in contents)}
    manifest = orjson.loads(raw.get(entry_key()) or b"")
    assert manifest == {**entry.manifest(), "inputs": {"src/app.ts": "b" * 64}}
    assert all(raw.get(blob_key(c)) == c for c in contents)


def test_stores_with_different_prefixes_do_not_see_each_other(
    redis_url: str, store: RedisStore, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)

    with RedisStore(redis_url, prefix="other") as other:
        assert other.get(KEY) is None


def test_a_later_put_of_the_same_key_replaces_the_entry(store: RedisStore, tmp_path: Path) -> None:
    first, files = make_entry(tmp_path / "1", stdout=b"first\n")
    second, more = make_entry(tmp_path / "2", {"dist/app.js": b"v2\n"}, stdout=b"second\n")
    store.put(first, files)
    store.put(second, more)

    assert store.get(KEY) == second


def test_delete_removes_the_entry(store: RedisStore, tmp_path: Path) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)

    store.delete(KEY)
    store.delete(KEY)  # deleting what is gone is not an error

    assert store.get(KEY) is None


def test_touch_keeps_the_entry_and_does_not_extend_its_expiry(
    redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    with RedisStore(redis_url, prefix=PREFIX, ttl_ms=60_000) as store:
        entry, files = make_entry(tmp_path)
        store.put(entry, files)
        before = raw.pttl(entry_key())

        store.touch(KEY)
        store.touch("b" * 64)  # touching a missing entry is not an error

        assert 0 < raw.pttl(entry_key()) <= before
        assert store.get(KEY) == entry


# verification on read -----------------------------------------------------------------------


def test_a_corrupted_output_blob_is_a_miss_and_removes_the_entry_and_the_blob(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    got = store.get(KEY)
    assert got is not None
    damaged = blob_key(b"console.log(1)\n")
    raw.set(damaged, b"console.log(2)\n")

    assert store.read_output(got, got.outputs[0]) is None
    assert not raw.exists(entry_key())
    assert not raw.exists(damaged)
    assert store.get(KEY) is None


def test_a_truncated_output_blob_is_a_miss(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    raw.set(blob_key(b"#!/bin/sh\n"), b"#!/bin")

    assert store.read_output(entry, entry.outputs[1]) is None
    assert not raw.exists(entry_key())


def test_an_output_blob_gone_before_get_makes_get_a_miss_and_removes_the_entry(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    raw.delete(blob_key(b"#!/bin/sh\n"))

    assert store.get(KEY) is None
    assert not raw.exists(entry_key())


def test_an_output_blob_gone_after_get_makes_read_output_a_miss(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    got = store.get(KEY)
    assert got is not None
    raw.delete(blob_key(b"console.log(1)\n"))

    assert store.read_output(got, got.outputs[0]) is None
    assert not raw.exists(entry_key())


@pytest.mark.parametrize("log", ["stdout", "stderr"])
def test_a_corrupted_log_blob_is_a_miss_and_removes_the_entry_and_the_blob(
    store: RedisStore, raw: redis.Redis, tmp_path: Path, log: str
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    damaged = blob_key(getattr(entry, log))
    raw.set(damaged, b"someone else's log\n")

    assert store.get(KEY) is None
    assert not raw.exists(entry_key())
    assert not raw.exists(damaged)


@pytest.mark.parametrize("log", ["stdout", "stderr"])
def test_a_missing_log_blob_is_a_miss_and_removes_the_entry(
    store: RedisStore, raw: redis.Redis, tmp_path: Path, log: str
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    raw.delete(blob_key(getattr(entry, log)))

    assert store.get(KEY) is None
    assert not raw.exists(entry_key())


def _manifest(entry: Entry) -> dict[str, Any]:
    return {**entry.manifest(), "inputs": dict(entry.inputs)}


GARBAGE: dict[str, bytes | Callable[[dict[str, Any]], object]] = {
    "not JSON": b"\x00\xffnot json",
    "a JSON list": b"[1, 2]",
    "an empty object": b"{}",
    "another format": lambda m: {**m, "format": 99},
    "another key": lambda m: {**m, "key": "c" * 64},
    "no outputs": lambda m: {k: v for k, v in m.items() if k != "outputs"},
    "a size that is a string": lambda m: {
        **m,
        "outputs": [{**m["outputs"][0], "size": "15"}, m["outputs"][1]],
    },
    "a size that is a bool": lambda m: {
        **m,
        "outputs": [{**m["outputs"][0], "size": True}, m["outputs"][1]],
    },
    "a digest that is not sha256": lambda m: {
        **m,
        "outputs": [{**m["outputs"][0], "digest": "../../etc"}, m["outputs"][1]],
    },
    "logs that are not digests": lambda m: {**m, "logs": {"stdout": 1, "stderr": 2}},
    "inputs that are not a mapping": lambda m: {**m, "inputs": ["src/app.ts"]},
    "a createdAt that is text": lambda m: {**m, "createdAt": "yesterday"},
    "a mode beyond permission bits": lambda m: {
        **m,
        "outputs": [{**m["outputs"][0], "mode": 2**40}, m["outputs"][1]],
    },
    "a negative mode": lambda m: {**m, "outputs": [{**m["outputs"][0], "mode": -1}]},
    "a setuid mode": lambda m: {**m, "outputs": [{**m["outputs"][0], "mode": 0o4755}]},
    "a negative size": lambda m: {**m, "outputs": [{**m["outputs"][0], "size": -1}]},
    "a path that is not a string": lambda m: {**m, "outputs": [{**m["outputs"][0], "path": 7}]},
    "an output listed twice": lambda m: {**m, "outputs": [m["outputs"][0], m["outputs"][0]]},
}


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_damaged_manifest_is_a_miss_and_is_removed(
    store: RedisStore,
    raw: redis.Redis,
    tmp_path: Path,
    garbage: bytes | Callable[[dict[str, Any]], object],
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    value = garbage if isinstance(garbage, bytes) else orjson.dumps(garbage(_manifest(entry)))
    raw.set(entry_key(), value)

    assert store.get(KEY) is None
    assert not raw.exists(entry_key())


def test_a_reader_removes_a_damaged_value_only_while_it_is_still_the_one_it_read(
    store: RedisStore, raw: redis.Redis
) -> None:
    # What a reader judged damaged may meanwhile have been republished whole by another machine.
    raw.set(entry_key(), b"republished")
    store._delete_if_unchanged(entry_key(), b"damaged")
    assert raw.get(entry_key()) == b"republished"

    store._delete_if_unchanged(entry_key(), b"republished")
    assert not raw.exists(entry_key())


# keys of another type ------------------------------------------------------------------------
#
# Anyone who can write to the server can put a list (say) where a string belongs. That is a
# fault of one key (the server answers WRONGTYPE), not of the store: a miss, not a StoreError
# that would drop the store for the run, and the next publication replaces it.


def test_an_entry_key_of_another_type_is_a_miss_not_a_store_error(
    store: RedisStore, raw: redis.Redis
) -> None:
    raw.rpush(entry_key(), "not a manifest")

    assert store.get(KEY) is None
    assert raw.type(entry_key()) == b"list"  # left for the next put to replace


@pytest.mark.parametrize("log", ["stdout", "stderr"])
def test_a_log_blob_of_another_type_is_a_miss(
    store: RedisStore, raw: redis.Redis, tmp_path: Path, log: str
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    raw.delete(blob_key(getattr(entry, log)))
    raw.rpush(blob_key(getattr(entry, log)), "not a log")

    assert store.get(KEY) is None
    assert not raw.exists(entry_key())


def test_an_output_blob_of_another_type_makes_read_output_a_miss(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)
    got = store.get(KEY)
    assert got is not None
    raw.delete(blob_key(b"console.log(1)\n"))
    raw.sadd(blob_key(b"console.log(1)\n"), "not an output")

    assert store.read_output(got, got.outputs[0]) is None
    assert not raw.exists(entry_key())


def test_a_damaged_entry_replaced_by_another_type_meanwhile_is_left_alone(
    store: RedisStore, raw: redis.Redis
) -> None:
    raw.rpush(entry_key(), "published by someone else")

    store._delete_if_unchanged(entry_key(), b"the damaged value read before")

    assert raw.type(entry_key()) == b"list"


def test_put_replaces_keys_of_another_type(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    raw.rpush(entry_key(), "x")
    raw.hset(blob_key(b"console.log(1)\n"), "field", "x")
    raw.sadd(blob_key(entry.stdout), "x")

    store.put(entry, files)

    got = store.get(KEY)
    assert got == entry
    assert store.read_output(got, got.outputs[0]) == b"console.log(1)\n"


def test_a_server_refusing_a_read_is_still_a_store_error(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    # Not a fault of one key: every read would fail the same way, so the store is dropped.
    raw.acl_setuser(
        "limited", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-get"]
    )
    try:
        url = f"redis://limited:pw@127.0.0.1:{redis_server.port}/0"
        with RedisStore(url, prefix=PREFIX) as limited, pytest.raises(StoreError):
            limited.get(KEY)
    finally:
        raw.acl_deluser("limited")


# expiry -------------------------------------------------------------------------------------


def test_an_entry_older_than_the_ttl_is_a_miss_even_while_redis_holds_it(
    redis_url: str, store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path, created_at=time.time() - 5)
    store.put(entry, files)  # a store without a ttl: Redis keeps it for good

    with RedisStore(redis_url, prefix=PREFIX, ttl_ms=4_000) as short:
        assert short.get(KEY) is None
    with RedisStore(redis_url, prefix=PREFIX, ttl_ms=60_000) as long:
        assert long.get(KEY) == entry
    assert raw.exists(entry_key())


def test_redis_expires_the_entry_when_it_reaches_the_ttl_age_and_blobs_a_ttl_after_writing(
    redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path, created_at=time.time() - 10)
    with RedisStore(redis_url, prefix=PREFIX, ttl_ms=60_000) as store:
        store.put(entry, files)

    assert 45_000 < raw.pttl(entry_key()) <= 50_000
    for content in [b"console.log(1)\n", entry.stdout, entry.stderr]:
        assert 55_000 < raw.pttl(blob_key(content)) <= 60_000


def test_an_entry_from_a_clock_running_ahead_expires_no_later_than_its_blobs(
    redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path, created_at=time.time() + 30)
    with RedisStore(redis_url, prefix=PREFIX, ttl_ms=60_000) as store:
        store.put(entry, files)

    blob_ttl = raw.pttl(blob_key(entry.stdout))  # read first: both count down together
    assert 0 < raw.pttl(entry_key()) <= blob_ttl


def test_without_a_ttl_nothing_expires(store: RedisStore, raw: redis.Redis, tmp_path: Path) -> None:
    entry, files = make_entry(tmp_path)
    store.put(entry, files)

    assert {raw.pttl(key) for key in raw.keys("*")} == {-1}


def test_an_entry_already_older_than_the_ttl_is_not_stored(
    redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path, created_at=time.time() - 5)
    with RedisStore(redis_url, prefix=PREFIX, ttl_ms=1_000) as store:
        store.put(entry, files)

    assert not raw.exists(entry_key())


# size limit ---------------------------------------------------------------------------------


def _entry_bytes(entry: Entry) -> int:
    contents = sum(o.size for o in entry.outputs)
    return len(orjson.dumps(_manifest(entry))) + contents + len(entry.stdout) + len(entry.stderr)


def test_an_entry_over_max_entry_bytes_is_refused_and_nothing_is_stored(
    redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    with RedisStore(redis_url, prefix=PREFIX, max_entry_bytes=_entry_bytes(entry) - 1) as store:
        with pytest.raises(EntryTooLargeError) as caught:
            store.put(entry, files)

    assert isinstance(caught.value, StoreError)
    assert raw.dbsize() == 0


def test_an_entry_of_exactly_max_entry_bytes_is_stored(redis_url: str, tmp_path: Path) -> None:
    entry, files = make_entry(tmp_path)
    with RedisStore(redis_url, prefix=PREFIX, max_entry_bytes=_entry_bytes(entry)) as store:
        store.put(entry, files)

        assert store.get(KEY) == entry


def test_an_output_that_changed_since_it_was_hashed_is_refused(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    files["bin/tool"].write_bytes(b"#!/bin/bash\n")

    with pytest.raises(StoreError):
        store.put(entry, files)
    assert raw.dbsize() == 0


def test_an_output_without_a_file_is_refused(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path)
    del files["bin/tool"]

    with pytest.raises(StoreError):
        store.put(entry, files)
    assert raw.dbsize() == 0


# concurrency --------------------------------------------------------------------------------


def test_concurrent_writers_of_one_key_never_expose_a_torn_entry(
    redis_url: str, tmp_path: Path
) -> None:
    # Every write shares one output (one blob rewritten by all) and has one of its own.
    writers, writes_each = 4, 40
    published: dict[bytes, tuple[Entry, dict[str, bytes], dict[str, Path]]] = {}
    for w in range(writers):
        for i in range(writes_each):
            contents = {"shared.txt": b"same for all\n", "own.txt": f"{w}/{i}\n".encode() * 50}
            entry, files = make_entry(
                tmp_path / f"{w}-{i}", contents, stdout=f"w{w} i{i}\n".encode()
            )
            published[entry.stdout] = (entry, contents, files)
    done = threading.Event()

    def write(w: int) -> None:
        with RedisStore(redis_url, prefix=PREFIX) as store:
            for i in range(writes_each):
                entry, _, files = published[f"w{w} i{i}\n".encode()]
                store.put(entry, files)

    def read() -> int:
        hits = 0
        with RedisStore(redis_url, prefix=PREFIX) as store:
            while not done.is_set() or hits == 0:
                got = store.get(KEY)
                if got is None:
                    continue
                entry, contents, _ = published[got.stdout]
                assert got == entry
                for output in got.outputs:
                    assert store.read_output(got, output) == contents[output.path]
                hits += 1
        return hits

    with ThreadPoolExecutor(max_workers=writers + 3) as pool:
        readers = [pool.submit(read) for _ in range(3)]
        for future in [pool.submit(write, w) for w in range(writers)]:
            future.result(timeout=30)
        done.set()
        hits = [future.result(timeout=30) for future in readers]

    assert all(hits)
    with RedisStore(redis_url, prefix=PREFIX) as store:
        final = store.get(KEY)
    assert final is not None
    assert final == published[final.stdout][0]


# failures -----------------------------------------------------------------------------------


def _every_operation(store: RedisStore, entry: Entry, files: dict[str, Path]) -> None:
    """Run each store operation, asserting that each raises StoreError."""
    for operation in [
        lambda: store.get(KEY),
        lambda: store.read_output(entry, entry.outputs[0]),
        lambda: store.put(entry, files),
        lambda: store.delete(KEY),
        lambda: store.touch(KEY),
    ]:
        with pytest.raises(StoreError):
            operation()


def test_an_unreachable_server_is_a_store_error_at_once(tmp_path: Path) -> None:
    entry, files = make_entry(tmp_path)
    started = time.monotonic()

    with RedisStore(f"redis://127.0.0.1:{closed_port()}/0", prefix=PREFIX) as store:
        _every_operation(store, entry, files)

    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_is_a_store_error_after_the_timeout() -> None:
    with socket.socket() as silent:
        # Connections complete in the kernel's backlog, but nothing ever replies.
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        started = time.monotonic()

        with RedisStore(url, prefix=PREFIX, timeout_ms=100) as store, pytest.raises(StoreError):
            store.get(KEY)

        assert time.monotonic() - started < 3


def test_a_server_error_during_put_is_a_store_error_and_stores_nothing(
    redis_server: RedisServer, redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    entry, files = make_entry(tmp_path, stdout=b"private build output\n")
    # A server out of memory refuses writes; the transaction must leave nothing behind.
    assert redis_command(redis_server.port, "CONFIG", "SET", "maxmemory", "1") == b"+OK"
    try:
        with RedisStore(redis_url, prefix=PREFIX) as store, pytest.raises(StoreError) as caught:
            store.put(entry, files)
    finally:
        assert redis_command(redis_server.port, "CONFIG", "SET", "maxmemory", "0") == b"+OK"
    assert raw.dbsize() == 0
    # The client quotes failed commands in its errors; the contents they carry stay out.
    assert "private" not in str(caught.value)


def test_every_redis_exception_is_translated_to_a_store_error() -> None:
    from redis import exceptions

    classes = [
        value
        for value in vars(exceptions).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert len(classes) > 20  # the whole module, not an empty match
    for cls in [*classes, ConnectionRefusedError, TimeoutError]:
        # Cluster redirections parse their message as "<slot> <host:port>".
        error = cls("3999 127.0.0.1:6381") if issubclass(cls, exceptions.AskError) else cls("x")
        with pytest.raises(StoreError) as caught, _translated(_vendor_errors()):
            raise error
        assert caught.value.__cause__ is error, cls


def test_errors_that_are_not_from_redis_pass_through_the_boundary() -> None:
    with pytest.raises(KeyError), _translated(_vendor_errors()):
        raise KeyError("a bug is not a store failure")


def test_a_missing_redis_package_is_a_store_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)

    with pytest.raises(StoreError) as caught:
        RedisStore("redis://127.0.0.1:6379/0")

    assert "pip install 'async-pipeline[redis]'" in str(caught.value)


def test_a_malformed_url_is_a_store_error_that_does_not_repeat_the_url() -> None:
    with pytest.raises(StoreError) as caught:
        RedisStore("http://user:hunter2@cache.example:6379/0")

    assert "hunter2" not in str(caught.value)


def test_a_url_asking_for_decoded_replies_is_refused(redis_url: str) -> None:
    with pytest.raises(StoreError):
        RedisStore(f"{redis_url}?decode_responses=true")


def test_a_damaged_log_misses_only_the_entries_that_refer_to_it(
    store: RedisStore, raw: redis.Redis, tmp_path: Path
) -> None:
    # Two entries sharing every blob but their stdout: damaging one's log leaves the other whole.
    first, files = make_entry(tmp_path, key="1" * 64, stdout=b"one\n")
    second = replace(first, key="2" * 64, stdout=b"two\n")
    store.put(first, files)
    store.put(second, files)
    raw.set(blob_key(b"one\n"), b"uno\n")

    assert store.get("1" * 64) is None
    assert store.get("2" * 64) == second

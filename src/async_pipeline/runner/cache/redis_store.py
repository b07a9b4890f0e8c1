"""The Redis store: one task cache shared by every machine and CI runner that can reach it.

Keys, all under ``prefix``::

    {prefix}:entry:{key}     the manifest: ``Entry.manifest()`` plus ``inputs``, as JSON
    {prefix}:blob:{sha256}   the bytes of one output file or log, addressed by their digest

Publication is one MULTI/EXEC transaction that sets every blob of the entry and then its
manifest. Redis runs a transaction without interleaving other clients' commands, so a
reader sees the new entry together with all its blobs, or the old state. Blobs are
immutable (the key is the digest of the value), so writing one that exists is harmless;
it is rewritten rather than skipped so that a damaged blob is repaired and its expiry
extended in the same step. Concurrent writers of one key each publish a whole entry and
the last one wins.

Expiry: ``ttl_ms`` is an age since the entry was created (its ``createdAt``), as for the
other stores. An older entry is a miss even if Redis still holds it, and Redis is told to
drop it when it reaches that age. Reads and ``touch`` do not extend it, because a later
read would treat the entry as expired anyway; ``touch`` only refreshes Redis' idle time so
that an LRU ``maxmemory-policy`` keeps entries in use. Blobs live ``ttl_ms`` from their
last write, which is at least as long as any entry written with the same ``ttl_ms`` that
refers to them. Without ``ttl_ms`` nothing expires, and a server should be given a
``maxmemory`` with an ``allkeys-lru`` policy: a blob that is evicted makes its entries
misses, never wrong hits.

A reader verifies everything it hands back: the manifest, both logs and every output
against their digests. Anything damaged or missing is a miss, and the entry (and a
damaged blob) is removed. A key holding another type than a string (the server answers
WRONGTYPE) is a fault of that key, not of the server: reading it is a miss, and the next
publication's SET replaces it whatever its type. Every other error from the Redis client
is translated to ``StoreError`` at one boundary, ``_translated``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import orjson

from async_pipeline.runner.cache.store import (
    ENTRY_FORMAT,
    Entry,
    EntryTooLargeError,
    OutputFile,
    StoreError,
    digest_bytes,
    is_digest,
    outputs_from_manifest,
)

__all__ = ["EntryTooLargeError", "RedisStore"]

_T = TypeVar("_T")

_INSTALL_HINT = "the redis cache store needs the redis client: pip install 'async-pipeline[redis]'"
# How redis-py prefixes a failed pipeline command: "Command # 2 (SET key <value>) of pipeline
# caused error: <the server's message>". Greedy up to the last marker, as a value may hold one.
_PIPELINE_COMMAND = re.compile(r"^Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)
_MAX_MESSAGE = 300

# Deletes a key only if it still holds the value the caller judged damaged, so a reader
# that found an old entry broken cannot remove a whole one another machine just published.
_DELETE_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Pipeline(Protocol):
    """The part of ``redis.client.Pipeline`` this store uses."""

    def get(self, name: str) -> object: ...

    def set(self, name: str, value: bytes, *, px: int | None = None) -> object: ...

    def exists(self, *names: str) -> object: ...

    def execute(self, raise_on_error: bool = True) -> list[object]: ...

    def reset(self) -> None: ...


class _Client(Protocol):
    """The part of ``redis.Redis`` this store uses; replies are checked where they are read."""

    def get(self, name: str) -> object: ...

    def delete(self, *names: str) -> object: ...

    def touch(self, *args: str) -> object: ...

    def eval(self, script: str, numkeys: int, *keys_and_args: str | bytes) -> object: ...

    def pipeline(self, transaction: bool = True) -> _Pipeline: ...

    def close(self) -> None: ...


def _vendor_errors() -> tuple[type[BaseException], ...]:
    """Every exception the Redis client defines, plus the socket errors it may let through."""
    from redis import exceptions

    defined = (
        value
        for value in vars(exceptions).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    )
    return (*defined, OSError)


@contextmanager
def _translated(errors: tuple[type[BaseException], ...]) -> Iterator[None]:
    """The one place Redis client errors become ``StoreError``."""
    try:
        yield
    except errors as exc:
        raise StoreError(f"redis cache store: {type(exc).__name__}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """The error's message without the command arguments redis-py quotes into some of them.

    Those arguments are blob contents: bytes of task outputs, which have no place in a
    warning. The client's own messages name the host and port, never the URL's password.
    """
    text = _PIPELINE_COMMAND.sub("", str(exc))
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


class RedisStore:
    """A ``CacheStore`` on a Redis server; see the module docstring for keys and expiry.

    ``timeout_ms`` bounds connecting and every reply, so an unreachable or stuck server
    costs the run a moment, not a hang: the caller then carries on without the store.
    """

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "async-pipeline",
        ttl_ms: int | None = None,
        max_entry_bytes: int | None = None,
        timeout_ms: int = 2000,
    ) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:
            raise StoreError(_INSTALL_HINT) from exc
        if ttl_ms is not None and ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")
        if max_entry_bytes is not None and max_entry_bytes <= 0:
            raise ValueError(f"max_entry_bytes must be positive, got {max_entry_bytes}")
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self.max_entry_bytes = max_entry_bytes
        self._errors = _vendor_errors()
        timeout = timeout_ms / 1000
        try:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                # One immediate retry recovers a pooled connection the server has closed;
                # the client's default backoff would turn a dead server into seconds of waiting.
                retry=Retry(NoBackoff(), 1),
            )
        except ValueError as exc:
            # Not echoing the URL: it may carry a password.
            raise StoreError(
                "redis cache store: the URL is not a redis://, rediss:// or unix:// URL"
            ) from exc
        if client.get_connection_kwargs().get("decode_responses"):
            # Text replies would break every digest (and binary blobs would not decode).
            raise StoreError("redis cache store: remove decode_responses from the URL")
        # Typed as the small Protocol (which mypy checks ``redis.Redis`` against): redis-py
        # annotates replies as unions, so every reply is checked where it is read.
        self._client: _Client = client
        self._response_error: type[Exception] = redis.exceptions.ResponseError

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections to the server."""
        with _translated(self._errors):
            self._client.close()

    def _entry_key(self, key: str) -> str:
        return f"{self.prefix}:entry:{key}"

    def _blob_key(self, digest: str) -> str:
        return f"{self.prefix}:blob:{digest}"

    # reading ------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The entry if its manifest parses and both logs match their digests, else None.

        Also checks that every output blob still exists, so an evicted output is a miss
        here rather than a failed restore; their contents are checked by ``read_output``.
        """
        entry_key = self._entry_key(key)
        with _translated(self._errors):
            raw = self._get_string(entry_key)
            if raw is None:
                return None
            parsed = _parse_manifest(raw, key)
            if parsed is None:
                self._delete_if_unchanged(entry_key, raw)
                return None
            entry, stdout_digest, stderr_digest = parsed
            if self._expired(entry):
                # Not deleted: rerunning the task publishes a fresh entry over it.
                return None
            output_keys = sorted({self._blob_key(o.digest) for o in entry.outputs})
            pipe = self._client.pipeline(transaction=False)
            pipe.get(self._blob_key(stdout_digest))
            pipe.get(self._blob_key(stderr_digest))
            if output_keys:
                pipe.exists(*output_keys)
            replies = pipe.execute(raise_on_error=False)
            stdout = self._string_reply(replies[0])
            stderr = self._string_reply(replies[1])
            outputs_present = not output_keys or _unless_error(replies[2]) == len(output_keys)
            damaged = False
            for digest, data in ((stdout_digest, stdout), (stderr_digest, stderr)):
                if data is not None and digest_bytes(data) != digest:
                    self._delete_if_unchanged(self._blob_key(digest), data)
                    damaged = True
            if stdout is None or stderr is None or damaged or not outputs_present:
                self._delete_if_unchanged(entry_key, raw)
                return None
        return replace(entry, stdout=stdout, stderr=stderr)

    def read_output(self, entry: Entry, output: OutputFile) -> bytes | None:
        """The output's bytes if they match its digest and size, else None (entry dropped)."""
        blob_key = self._blob_key(output.digest)
        with _translated(self._errors):
            data = self._get_string(blob_key)
            if (
                data is not None
                and len(data) == output.size
                and digest_bytes(data) == output.digest
            ):
                return data
            if data is not None and digest_bytes(data) != output.digest:
                self._delete_if_unchanged(blob_key, data)
            # Unconditional, unlike in ``get``: the manifest read then is not at hand. A
            # racing republication of the same key loses at most one hit.
            self._client.delete(self._entry_key(entry.key))
        return None

    def _expired(self, entry: Entry) -> bool:
        return self.ttl_ms is not None and (time.time() - entry.created_at) * 1000 > self.ttl_ms

    def _delete_if_unchanged(self, name: str, value: bytes) -> None:
        try:
            self._client.eval(_DELETE_IF_UNCHANGED, 1, name, value)
        except self._response_error as exc:
            if not self._wrong_type(exc):
                raise
            # Another type there now: not the value judged damaged, so nothing to remove.

    # per-key faults -----------------------------------------------------------------------

    def _wrong_type(self, error: object) -> bool:
        """Whether ``error`` is the server refusing a command on a key of another type."""
        return isinstance(error, self._response_error) and _describe(error).startswith("WRONGTYPE")

    def _get_string(self, name: str) -> bytes | None:
        """The string at ``name``; None if there is none or the key holds another type."""
        try:
            reply = self._client.get(name)
        except self._response_error as exc:
            if self._wrong_type(exc):
                return None
            raise
        return _reply_bytes(reply)

    def _string_reply(self, reply: object) -> bytes | None:
        """A GET's reply from such a pipeline: None also for a key of another type."""
        if self._wrong_type(reply):
            return None
        return _reply_bytes(_unless_error(reply))

    # writing ------------------------------------------------------------------------------

    def put(self, entry: Entry, files: Mapping[str, Path]) -> None:
        """Publish the entry and its blobs in one transaction.

        Raises ``EntryTooLargeError`` (storing nothing) when outputs, logs and manifest
        together exceed ``max_entry_bytes``, and ``StoreError`` when an output cannot be
        read, no longer matches its digest, or the server fails.
        """
        try:
            manifest = orjson.dumps({**entry.manifest(), "inputs": dict(entry.inputs)})
        except orjson.JSONEncodeError as exc:
            raise StoreError(f"cache entry {entry.key[:12]} is not JSON: {exc}") from exc
        fixed_bytes = len(manifest) + len(entry.stdout) + len(entry.stderr)
        self._check_size(
            entry, fixed_bytes + sum(_file_size(entry, o, files) for o in entry.outputs)
        )
        blobs = {digest_bytes(entry.stdout): entry.stdout, digest_bytes(entry.stderr): entry.stderr}
        total = fixed_bytes
        for output in entry.outputs:
            data = _read_output_file(entry, output, files)
            total += len(data)
            blobs[output.digest] = data
        # Checked again on the bytes read: a file may have grown since it was measured.
        self._check_size(entry, total)

        entry_px = None
        if self.ttl_ms is not None:
            # Capped at the blobs' ttl so they outlive the entry even when ``created_at``
            # comes from a clock that runs ahead of this one.
            age_ms = int((time.time() - entry.created_at) * 1000)
            entry_px = min(self.ttl_ms, self.ttl_ms - age_ms)
            if entry_px <= 0:
                return  # already older than the ttl: every read would be a miss
        with _translated(self._errors):
            pipe = self._client.pipeline(transaction=True)
            try:
                for digest, data in blobs.items():
                    pipe.set(self._blob_key(digest), data, px=self.ttl_ms)
                pipe.set(self._entry_key(entry.key), manifest, px=entry_px)
                pipe.execute()
            finally:
                pipe.reset()

    def _check_size(self, entry: Entry, size: int) -> None:
        if self.max_entry_bytes is not None and size > self.max_entry_bytes:
            raise EntryTooLargeError(
                f"cache entry for {entry.task_id} is {size} bytes, over the redis store's "
                f"max_entry_bytes limit of {self.max_entry_bytes}; not stored"
            )

    # housekeeping -------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        """Remove the entry; its blobs may be shared with other entries and expire on their own."""
        with _translated(self._errors):
            self._client.delete(self._entry_key(key))

    def touch(self, key: str) -> None:
        """Mark the entry as recently used for LRU eviction; its expiry is left as it is."""
        with _translated(self._errors):
            self._client.touch(self._entry_key(key))


def _unless_error(reply: object) -> object:
    """A reply from ``execute(raise_on_error=False)``, raising the error it may stand for."""
    if isinstance(reply, BaseException):
        raise reply
    return reply


def _reply_bytes(reply: object) -> bytes | None:
    if reply is None or isinstance(reply, bytes):
        return reply
    raise StoreError(
        f"redis cache store: expected bytes from the server, got {type(reply).__name__}"
    )


def _file_size(entry: Entry, output: OutputFile, files: Mapping[str, Path]) -> int:
    path = _output_path(entry, output, files)
    try:
        return path.stat().st_size
    except OSError as exc:
        raise StoreError(f"cannot read output {output.path} of {entry.task_id}: {exc}") from exc


def _read_output_file(entry: Entry, output: OutputFile, files: Mapping[str, Path]) -> bytes:
    path = _output_path(entry, output, files)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read output {output.path} of {entry.task_id}: {exc}") from exc
    if digest_bytes(data) != output.digest:
        # Storing it under the recorded digest would publish an entry no reader can verify.
        raise StoreError(f"output {output.path} of {entry.task_id} changed since it was hashed")
    return data


def _output_path(entry: Entry, output: OutputFile, files: Mapping[str, Path]) -> Path:
    try:
        return files[output.path]
    except KeyError:
        raise StoreError(f"no file given for output {output.path} of {entry.task_id}") from None


def _parse_manifest(raw: bytes, key: str) -> tuple[Entry, str, str] | None:
    """The entry (without logs) and its two log digests, or None if the manifest is damaged."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    try:
        return _entry_from(data, key)
    except (KeyError, TypeError, ValueError):
        return None


def _entry_from(data: Any, key: str) -> tuple[Entry, str, str] | None:
    if not isinstance(data, dict) or data.get("format") != ENTRY_FORMAT or data["key"] != key:
        return None
    logs = data["logs"]
    outputs = outputs_from_manifest(data["outputs"])
    inputs = _typed(data["inputs"], dict)
    entry = Entry(
        key=key,
        task_id=_typed(data["taskId"], str),
        created_at=_number(data["createdAt"]),
        result=_typed(data["result"], dict),
        outputs=outputs,
        inputs={_typed(k, str): _typed(v, str) for k, v in inputs.items()},
        extra=_typed(data["extra"], dict),
    )
    return entry, _digest(logs["stdout"]), _digest(logs["stderr"])


def _typed(value: object, kind: type[_T]) -> _T:
    # bool is an int to isinstance, and never what a manifest field should hold.
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _digest(value: Any) -> str:
    if not is_digest(value):
        raise ValueError("not a sha256 hex digest")
    return str(value)

"""Cache declarations: stores, the registry, and the ``cache.use(...)`` directive.

A declaration never opens a store. Refs read ``<store>:<namespace>`` (``file:local``);
the built-in ``file`` and ``memory`` stores are always available, others are declared
with ``define_cache(stores={...})``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from async_pipeline.core._validate import (
    MISSING,
    RESERVED_DIRS,
    expect_int,
    expect_mapping,
    expect_str,
    invalid,
    join,
    nearest,
    reject_unknown,
    repo_relative_pattern,
    require,
    segments,
)
from async_pipeline.core.env import EnvSecret, EnvVar
from async_pipeline.core.paths import CACHE_DIR, CACHE_TASKS_DIR
from async_pipeline.errors import DefinitionError

__all__ = [
    "DEFAULT_CACHE_REF",
    "CacheRegistry",
    "CacheUse",
    "FileCache",
    "MemoryCache",
    "RedisCache",
    "Store",
    "cache",
    "define_cache",
    "file_cache",
    "memory_cache",
    "redis_cache",
]

DEFAULT_CACHE_REF = "file:local"
DEFAULT_FILE_ROOT = CACHE_TASKS_DIR.as_posix()
_REF = re.compile(r"^[A-Za-z0-9_-]+(:[A-Za-z0-9_.-]+)?\Z")


@dataclass(frozen=True, slots=True)
class FileCache:
    """Persistent local store under ``root`` (default ``.async/cache/tasks``)."""

    root: str = DEFAULT_FILE_ROOT
    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class MemoryCache:
    """Process-local store."""

    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RedisCache:
    """A shared remote store; the URL comes from a variable so credentials stay out of files."""

    url: str | EnvVar | EnvSecret
    ttl_ms: int | None = None
    max_entry_bytes: int | None = None
    prefix: str = "async-pipeline"


Store = FileCache | MemoryCache | RedisCache
BUILTIN_STORES: dict[str, Store] = {"file": FileCache(), "memory": MemoryCache()}


@dataclass(frozen=True, slots=True)
class CacheRegistry:
    """``define_cache(default=..., stores={...})``."""

    default: str = DEFAULT_CACHE_REF
    stores: Mapping[str, Store] = field(default_factory=dict)

    def all_stores(self) -> dict[str, Store]:
        """Declared stores over the always-available built-ins."""
        return {**BUILTIN_STORES, **self.stores}


@dataclass(frozen=True, slots=True)
class CacheUse:
    """The ``cache.use(ref)`` directive, lifted into the task's cache setting."""

    ref: str


def _ttl(value: int | None, path: str) -> int | None:
    return None if value is None else expect_int(value, path, minimum=1)


def _store_root(value: object, path: str) -> str:
    """A file store's root: a directory of its own inside the repository.

    Its entry files, blobs and temporaries would sit among whatever else is there, so it
    may not be the project itself, nor lie in ``.git/``, nor in ``.async/`` outside
    ``.async/cache/`` (run records, checkouts). ``cache clear`` and ``gc`` delete only the
    files the store wrote.
    """
    fix = f"give the store a directory of its own, such as {DEFAULT_FILE_ROOT!r} (the default)"
    if isinstance(value, str) and not value.startswith(("/", "\\")) and not segments(value):
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_PATH",
            f"{path}: {value!r} is the project root, where cache entries would lie among "
            f"the project's own files; {fix}",
            path=path,
        )
    text = repo_relative_pattern(value, path)
    parts = [part.casefold() for part in segments(text)]
    cache_dir = [part.casefold() for part in CACHE_DIR.parts]
    if parts[0] in RESERVED_DIRS and parts[: len(cache_dir)] != cache_dir:
        inside = "" if parts[0] == ".git" else f" outside {CACHE_DIR.as_posix()}/"
        raise DefinitionError(
            "ASYNC_PIPELINE_INVALID_PATH",
            f"{path}: {text!r} points into {parts[0]}/{inside}, which belongs to "
            f"{RESERVED_DIRS[parts[0]]}; {fix}",
            path=path,
        )
    return text


def file_cache(
    *, root: str = DEFAULT_FILE_ROOT, ttl_ms: int | None = None, **unknown: object
) -> FileCache:
    """A persistent file store (entries expire after ``ttl_ms`` when set).

    ``root`` is the store's own directory; ``cache clear`` removes the files the store
    wrote there, and the directory once it is empty.
    """
    reject_unknown(unknown, ("root", "ttl_ms"), "file_cache", "file_cache()")
    return FileCache(_store_root(root, "file_cache.root"), _ttl(ttl_ms, "file_cache.ttl_ms"))


def memory_cache(*, ttl_ms: int | None = None, **unknown: object) -> MemoryCache:
    """A process-local store."""
    reject_unknown(unknown, ("ttl_ms",), "memory_cache", "memory_cache()")
    return MemoryCache(_ttl(ttl_ms, "memory_cache.ttl_ms"))


def redis_cache(
    *,
    url: str | EnvVar | EnvSecret | Mapping[str, str] = MISSING,
    ttl_ms: int | None = None,
    max_entry_bytes: int | None = None,
    prefix: str = "async-pipeline",
    **unknown: object,
) -> RedisCache:
    """A Redis store (needs the ``redis`` extra at run time).

    ``url`` is ``env.var("REDIS_URL")``, ``env.secret(...)``, ``{"env": "REDIS_URL"}`` or a
    literal URL.
    """
    reject_unknown(
        unknown, ("url", "ttl_ms", "max_entry_bytes", "prefix"), "redis_cache", "redis_cache()"
    )
    require(url, "redis_cache.url", "env.var('REDIS_URL'), env.secret(...) or a URL")
    resolved: str | EnvVar | EnvSecret
    if isinstance(url, Mapping):
        reject_unknown(url, ("env",), "redis_cache.url", "redis_cache url")
        resolved = EnvVar(expect_str(url.get("env"), "redis_cache.url.env"))
    elif isinstance(url, EnvVar | EnvSecret):
        resolved = url
    else:
        resolved = expect_str(url, "redis_cache.url")
    size = (
        None
        if max_entry_bytes is None
        else expect_int(max_entry_bytes, "redis_cache.max_entry_bytes", minimum=1)
    )
    return RedisCache(
        resolved, _ttl(ttl_ms, "redis_cache.ttl_ms"), size, expect_str(prefix, "redis_cache.prefix")
    )


def define_cache(
    *,
    default: str = DEFAULT_CACHE_REF,
    stores: Mapping[str, Store] | None = None,
    **unknown: object,
) -> CacheRegistry:
    """A cache registry: named stores and the ref that ``cache=True`` means."""
    reject_unknown(unknown, ("default", "stores"), "cache", "define_cache()")
    declared: dict[str, Store] = {}
    for name, store in expect_mapping(stores or {}, "cache.stores").items():
        if not isinstance(store, FileCache | MemoryCache | RedisCache):
            raise invalid(
                join("cache.stores", name), "file_cache(), memory_cache() or redis_cache()", store
            )
        if not _REF.match(name) or ":" in name:
            raise invalid(
                join("cache.stores", name), "a store name of letters, digits, - and _", name
            )
        if isinstance(store, FileCache):  # built directly rather than by file_cache()
            _store_root(store.root, join(join("cache.stores", name), "root"))
        declared[name] = store
    registry = CacheRegistry(default, declared)
    check_ref(default, registry, "cache.default")
    return registry


def check_ref(ref: object, registry: CacheRegistry, path: str) -> str:
    """A ``<store>[:<namespace>]`` ref naming a store the registry knows."""
    text = expect_str(ref, path)
    if not _REF.match(text):
        raise invalid(path, "a cache ref such as 'file:local'", text)
    store = text.split(":", 1)[0]
    stores = registry.all_stores()
    if store not in stores:
        guess = nearest(store, stores)
        raise DefinitionError(
            "ASYNC_PIPELINE_UNKNOWN_CACHE_STORE",
            f"{path}: cache ref {text!r} names store {store!r}, which is not declared; "
            "declared stores: " + ", ".join(sorted(stores)),
            path=path,
            hint=f'did you mean "{guess}"?' if guess else "declare it in define_cache(stores=...)",
        )
    return text


class _Cache:
    """The ``cache`` helper namespace."""

    def use(self, ref: str) -> CacheUse:
        """A directive selecting the cache ref for the task it is listed in."""
        text = expect_str(ref, "cache.use")
        if not _REF.match(text):
            raise invalid("cache.use", "a cache ref such as 'file:local'", text)
        return CacheUse(text)


cache = _Cache()

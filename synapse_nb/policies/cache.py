"""The response cache: a plugin's validated results, served again for the same input until their TTL passes.

Key: the plugin's identity (name and publisher), the digest of its files, the endpoint and the canonical JSON
(sorted keys, no spaces) of the validated input, hashed with SHA-256. TTL: the handler's own for that response
(``return self.respond(result, cache_ttl="60s")``), else ``spec.cache.ttl``; 0 means not cached. Errors are
never cached. Two levels: this process's time-aware LRU (cachetools, bounded in entries and bytes, shared by
every plugin), and, when the state store is a shared server (Redis, Memcached), that server, so that two
kernels share their hits (as JSON text: nothing but JSON is ever read from a shared store). A store that cannot
be reached makes the cache miss, never a call fail.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..state.base import StateStoreError

if TYPE_CHECKING:
    from cachetools import TLRUCache

    from ..state.base import KeyValue

__all__ = ["CacheHit", "ResponseCache", "canonical_json", "local_cache"]


_canonical = json.JSONEncoder(sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def canonical_json(value: Any) -> bytes:
    """The canonical JSON of a (JSON-compatible) value: sorted keys, no spaces, UTF-8."""
    return _canonical(value).encode()


@dataclass(slots=True)  # not frozen: a frozen dataclass pays object.__setattr__ per field, and hits are hot
class _Entry:
    # The result, pickled by this process from a validated JSON value (each hit unpickles its own copy, so that
    # callers may change what they get; unpickling a small dict is faster than parsing its JSON).
    data: bytes
    expires: float  # time.monotonic()


@dataclass(slots=True)
class CacheHit:
    result: Any
    ttl_ms: int  # what is left of its TTL


class _Local:
    """The process-wide level: one TLRU cache for every plugin, bounded in bytes and entries."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        from cachetools import TLRUCache

        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._cache: TLRUCache[str, _Entry] = TLRUCache(
            maxsize=max_bytes, ttu=lambda _key, entry, _now: entry.expires, timer=time.monotonic,
            getsizeof=lambda entry: len(entry.data) + 200,
        )  # fmt: skip

    def get(self, key: str) -> _Entry | None:
        with self._lock:
            try:
                return self._cache[key]
            except KeyError:
                return None

    def put(self, key: str, entry: _Entry) -> None:
        size = len(entry.data) + 200
        if size > self.max_bytes // 8:
            return  # one result may not push most of the others out
        with self._lock:
            if len(self._cache) >= self.max_entries and key not in self._cache:
                self._cache.expire()
                if len(self._cache) >= self.max_entries:
                    self._cache.popitem()
            self._cache[key] = entry

    def drop(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k.startswith(prefix)]:
                self._cache.pop(key, None)


_local: _Local | None = None
_local_lock = threading.Lock()


def local_cache(max_entries: int = 10_000, max_bytes: int = 64 << 20) -> _Local:
    """This process's level (created by the first plugin that caches, with its host's bounds)."""
    global _local
    with _local_lock:
        if _local is None:
            _local = _Local(max_entries, max_bytes)
        return _local


class ResponseCache:
    """One plugin's view of the cache: keys, lookups, stores and its hit rate."""

    def __init__(
        self, identity: str, default_ttl_ms: int | None, *, shared: KeyValue | None = None, local: _Local | None = None,
        max_entries: int = 10_000, max_bytes: int = 64 << 20,
    ) -> None:  # fmt: skip
        self.identity = identity  # name@publisher and the digest of the files
        self.default_ttl_ms = default_ttl_ms
        self.shared = shared
        self._local = local
        self.max_entries, self.max_bytes = max_entries, max_bytes  # the process level's bounds, if it creates it
        # On with spec.cache; without it, from the first response whose handler set a TTL (in this process).
        self.enabled = default_ttl_ms is not None
        self.hits = 0
        self.misses = 0
        self.last_error: str | None = None

    @property
    def local(self) -> _Local:
        """This process's level (cachetools is imported only by plugins that cache)."""
        if self._local is None:
            self._local = local_cache(self.max_entries, self.max_bytes)
        return self._local

    @property
    def hit_rate(self) -> float | None:
        looked = self.hits + self.misses
        return self.hits / looked if looked else None

    def key(self, endpoint: str | None, canonical: bytes) -> str:
        digest = hashlib.sha256(canonical)
        digest.update(b"\0" + (endpoint or "").encode())
        return f"cache:{self.identity}:{digest.hexdigest()}"

    def get(self, key: str) -> CacheHit | None:
        """The cached result of ``key`` (counted as a hit), or None (a miss)."""
        entry = self.local.get(key)
        if entry is None and self.shared is not None:
            entry = self._shared_get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        left = int((entry.expires - time.monotonic()) * 1000)
        return CacheHit(pickle.loads(entry.data), left if left > 0 else 0)

    def _shared_get(self, key: str) -> _Entry | None:
        try:
            raw = self.shared.kv_get(key) if self.shared is not None else None
        except StateStoreError as exc:
            self.last_error = str(exc)
            return None
        if raw is None:
            return None
        head, _, data = raw.partition(":")
        left_ms = int(head) - int(time.time() * 1000) if head.isdigit() else 0
        if left_ms <= 0:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return None
        entry = _Entry(pickle.dumps(value, pickle.HIGHEST_PROTOCOL), time.monotonic() + left_ms / 1000)
        self.local.put(key, entry)
        return entry

    def ttl_for(self, handler_ttl_ms: int | None) -> int:
        """The TTL of a response: the handler's own, else ``spec.cache.ttl``, else 0 (not cached)."""
        if handler_ttl_ms is not None:
            return handler_ttl_ms
        return self.default_ttl_ms or 0

    def put(self, key: str, result: Any, ttl_ms: int) -> None:
        """Keep ``result`` for ``ttl_ms`` (nothing when 0)."""
        if ttl_ms <= 0:
            return
        self.local.put(key, _Entry(pickle.dumps(result, pickle.HIGHEST_PROTOCOL), time.monotonic() + ttl_ms / 1000))
        if self.shared is not None:
            data = json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            try:
                self.shared.kv_set(key, f"{int(time.time() * 1000) + ttl_ms}:{data}", ttl_ms)
            except StateStoreError as exc:
                self.last_error = str(exc)

"""Policy records of one process: the :class:`~.base.KeyValue` used when a plugin handle has no state store."""

from __future__ import annotations

import threading
import time

__all__ = ["MemoryKV"]

MAX_ENTRIES = 100_000


class MemoryKV:
    """A dict with expiry times behind a lock; bounded (the oldest-expiring entries go first when full)."""

    shared = False

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._data: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[key]
            return None
        return entry[0]

    def _put(self, key: str, value: str, ttl_ms: int, now: float) -> None:
        if key not in self._data and len(self._data) >= self.max_entries:
            expired = [k for k, (_v, at) in self._data.items() if at <= now]
            for k in expired or sorted(self._data, key=lambda k: self._data[k][1])[: self.max_entries // 10 + 1]:
                del self._data[k]
        self._data[key] = (value, now + ttl_ms / 1000)

    def kv_get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key, time.monotonic())

    def kv_set(self, key: str, value: str, ttl_ms: int) -> None:
        with self._lock:
            self._put(key, value, ttl_ms, time.monotonic())

    def kv_add(self, key: str, value: str, ttl_ms: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) is not None:
                return False
            self._put(key, value, ttl_ms, now)
            return True

    def kv_cas(self, key: str, expected: str | None, value: str, ttl_ms: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._live(key, now) != expected:
                return False
            self._put(key, value, ttl_ms, now)
            return True

    def kv_delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

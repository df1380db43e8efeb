"""Memcached-backed state, sessions and policy records (``state: memcached://host:11211``), with pymemcache.

The spec's "externalize session data via Redis/Memcached". Memcached is a cache: under memory pressure it may
evict anything, state included, so it suits sessions and stateless plugins best (Redis or SQLite keep state
for good). Values over the server's item size (1 MiB by default; ``memcached -I 16m`` raises it) are refused
with a clear error.

Keys: ``synapse:state:<plugin>``, ``synapse:version:<plugin>``, ``synapse:session:<namespace>:<key>`` and
``synapse:kv:<key>`` (a SHA-256 digest instead when a key is too long for memcached or holds spaces or control
characters). Each value is stored as ``EXPIRES_MS:TEXT`` (0: no expiry), so that expiry is exact to the
millisecond (memcached's own is in whole seconds, and is set too, rounded up, to free the memory).

Quotas: each session namespace keeps an index ``synapse:sessidx:<namespace>`` (a JSON object of key digest ->
[size, expiry]) that every write updates with compare-and-swap (``gets``/``cas``), checking the quota in the same
step; so several processes sharing one memcached can never exceed it together, as with SQLite and Redis.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any
from urllib.parse import urlsplit

from ..semver import SemVer
from .base import SessionQuota, StateStoreError, encode_value, quota_error

__all__ = ["MemcachedStore"]

DEFAULT_PORT = 11211
MAX_KEY = 240  # memcached's limit is 250 bytes
CAS_ATTEMPTS = 200


def _safe(text: str) -> bool:
    return text.isascii() and all(33 <= ord(c) < 127 for c in text)


def _digest(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


class MemcachedStore:
    """State, sessions and policy records in memcached (thread-safe: a pool of connections)."""

    shared = True  # cached responses and circuit states are shared by every kernel using this memcached

    def __init__(self, url: str, *, prefix: str = "synapse") -> None:
        try:
            from pymemcache import exceptions
            from pymemcache.client.base import PooledClient
        except ImportError as exc:
            raise StateStoreError(
                "state: memcached:// needs the pymemcache client: pip install 'synapse-nb[memcached]'"
            ) from exc
        parts = urlsplit(url)
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise StateStoreError(f"state store {url!r}: the port is not a number") from None
        if parts.scheme != "memcached" or not parts.hostname or parts.path not in ("", "/"):
            raise StateStoreError(f"unsupported memcached URL {url!r}: use memcached://HOST:PORT")
        self.url = f"memcached://{parts.hostname}:{port}"
        self.prefix = prefix
        self._errors = (exceptions.MemcacheError, OSError)
        self._client = PooledClient(
            (parts.hostname, port), connect_timeout=2, timeout=5, no_delay=True, default_noreply=False,
            max_pool_size=16,
        )  # fmt: skip

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _key(self, kind: str, *parts: str) -> str:
        joined = ":".join(parts)
        key = f"{self.prefix}:{kind}:{joined}"
        if len(key) > MAX_KEY or not _safe(key):
            key = f"{self.prefix}:{kind}:#{_digest(joined, 64)}"
        return key

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            text = str(exc) or type(exc).__name__
            if "too large" in text:
                text += " (values over the server's item size are refused: start memcached with -I 16m)"
            raise StateStoreError(f"state store {self.url} unavailable while {what}: {text}") from exc

    @staticmethod
    def _pack(text: str, expires_ms: int) -> bytes:
        return f"{expires_ms}:{text}".encode()

    @staticmethod
    def _unpack(raw: Any, now_ms: int) -> str | None:
        if raw is None:
            return None
        head, _, text = bytes(raw).decode("utf-8").partition(":")
        expires = int(head) if head.isdigit() else 0
        return None if expires and expires <= now_ms else text

    @staticmethod
    def _expire_s(ttl_ms: int | None) -> int:
        """memcached's expiry (whole seconds, 0: none) of a value that expires after ``ttl_ms``."""
        return 0 if not ttl_ms else max(1, math.ceil(ttl_ms / 1000))

    def _read(self, key: str, what: str) -> str | None:
        return self._unpack(self._call(what, self._client.get, key), int(time.time() * 1000))

    def _write(self, key: str, text: str, ttl_ms: int | None, what: str) -> None:
        expires = int(time.time() * 1000) + ttl_ms if ttl_ms else 0
        if not self._call(what, self._client.set, key, self._pack(text, expires), expire=self._expire_s(ttl_ms)):
            raise StateStoreError(f"state store {self.url} refused to store {what}")

    def _update(self, key: str, change: Any, what: str) -> Any:
        """Compare-and-swap ``key``: ``change(current_text_or_None)`` -> (new text, its TTL in ms, verdict), or
        None to leave it; retried while another writer got in between. Returns the verdict."""
        for _ in range(CAS_ATTEMPTS):
            raw, token = self._call(what, self._client.gets, key)
            current = self._unpack(raw, int(time.time() * 1000))
            decided = change(current)
            if decided is None:
                return False
            text, ttl_ms, verdict = decided
            packed = self._pack(text, int(time.time() * 1000) + ttl_ms if ttl_ms else 0)
            expire = self._expire_s(ttl_ms)
            if raw is None:
                done = self._call(what, self._client.add, key, packed, expire=expire, noreply=False)
            else:
                done = self._call(what, self._client.cas, key, packed, token, expire=expire, noreply=False)
            if done:
                return verdict
        raise StateStoreError(f"state store {self.url}: {what}: too many concurrent writers, gave up")

    # -- state and versions ------------------------------------------------------------------------------------
    def load_state(self, plugin: str) -> dict[str, Any] | None:
        text = self._read(self._key("state", plugin), "loading state")
        if text is None:
            return None
        state = json.loads(text)
        return state if isinstance(state, dict) else None

    def save_state(self, plugin: str, version: str, state: dict[str, Any]) -> None:
        self._write(self._key("state", plugin), encode_value(state, f"state of {plugin!r}"), None, "saving state")

    def highest_version(self, plugin: str) -> str | None:
        return self._read(self._key("version", plugin), "reading versions")

    def note_version(self, plugin: str, version: str) -> None:
        def change(current: str | None) -> tuple[str, int, bool] | None:
            if current is not None and SemVer.parse(current) >= SemVer.parse(version):
                return None
            return version, 0, True

        self._update(self._key("version", plugin), change, "writing versions")

    # -- sessions ----------------------------------------------------------------------------------------------
    def session_get(self, namespace: str, key: str) -> Any:
        text = self._read(self._key("session", namespace, key), "reading the session")
        return None if text is None else json.loads(text)

    def session_set(
        self, namespace: str, key: str, value: Any, ttl: float | None = None, *, quota: SessionQuota | None = None
    ) -> None:
        text = encode_value(value, f"session value {key!r}")
        if ttl is None and quota is not None:
            ttl = quota.default_ttl_s
        ttl_ms = max(1, int(ttl * 1000)) if ttl else None
        digest = _digest(key)

        def change(current: str | None) -> tuple[str, int, bool]:
            now_ms = int(time.time() * 1000)
            index: dict[str, list[int]] = json.loads(current) if current else {}
            index = {d: entry for d, entry in index.items() if not entry[1] or entry[1] > now_ms}
            if quota is not None:
                others = {d: entry for d, entry in index.items() if d != digest}
                size = sum(entry[0] for entry in others.values()) + len(text)
                error = quota_error(namespace, quota, keys=len(others) + 1, size=size)
                if error is not None:
                    raise error
            index[digest] = [len(text), now_ms + ttl_ms if ttl_ms else 0]
            return json.dumps(index, separators=(",", ":")), 0, True

        self._update(self._key("sessidx", namespace), change, "writing the session")
        self._write(self._key("session", namespace, key), text, ttl_ms, "writing the session")

    def session_delete(self, namespace: str, key: str) -> None:
        digest = _digest(key)

        def change(current: str | None) -> tuple[str, int, bool] | None:
            index: dict[str, list[int]] = json.loads(current) if current else {}
            if digest not in index:
                return None
            del index[digest]
            return json.dumps(index, separators=(",", ":")), 0, True

        self._call("writing the session", self._client.delete, self._key("session", namespace, key), noreply=False)
        self._update(self._key("sessidx", namespace), change, "writing the session")

    # -- policy records (KeyValue) -----------------------------------------------------------------------------
    def kv_get(self, key: str) -> str | None:
        return self._read(self._key("kv", key), "reading a policy record")

    def kv_set(self, key: str, value: str, ttl_ms: int) -> None:
        self._write(self._key("kv", key), value, max(1, ttl_ms), "writing a policy record")

    def kv_add(self, key: str, value: str, ttl_ms: int) -> bool:
        def change(current: str | None) -> tuple[str, int, bool] | None:
            return None if current is not None else (value, max(1, ttl_ms), True)

        return bool(self._update(self._key("kv", key), change, "writing a policy record"))

    def kv_cas(self, key: str, expected: str | None, value: str, ttl_ms: int) -> bool:
        def change(current: str | None) -> tuple[str, int, bool] | None:
            return None if current != expected else (value, max(1, ttl_ms), True)

        return bool(self._update(self._key("kv", key), change, "writing a policy record"))

    def kv_delete(self, key: str) -> None:
        self._call("deleting a policy record", self._client.delete, self._key("kv", key), noreply=False)

    def close(self) -> None:
        self._client.close()

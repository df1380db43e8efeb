"""Redis-backed state and sessions (``state: redis://host:6379/0``), with the ``redis`` client.

Keys: ``synapse:state:<plugin>`` (a JSON object), ``synapse:version:<plugin>`` (the highest version run) and
``synapse:session:<namespace>:<key>`` (JSON, with the TTL as Redis expiry). Each namespace keeps an index for its
quota, ``synapse:sessidx:<namespace>`` (a sorted set of keys by expiry time) and ``synapse:sessize:<namespace>``
(a hash of key -> value size); a Lua script checks the quota and writes atomically, so several processes sharing
one Redis can never exceed it together. Connection problems become :class:`StateStoreError` naming the URL, so
a caller can keep a checkpoint pending and retry once Redis is back.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..semver import SemVer
from .base import SessionQuota, StateStoreError, encode_value, quota_error

# KEYS: value key, index zset, size hash. ARGV: key, value, ttl ms (0: none), now ms, max keys, max bytes.
# Returns {0} when written, else {1, keys} or {2, bytes} (the quota that would be exceeded).
_SET_WITH_QUOTA = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
for _, k in ipairs(expired) do redis.call('HDEL', KEYS[3], k) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local count = redis.call('ZCARD', KEYS[2])
local exists = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not exists then count = count + 1 end
if count > tonumber(ARGV[5]) then return {1, count} end
local total = 0
for _, v in ipairs(redis.call('HVALS', KEYS[3])) do total = total + tonumber(v) end
local old = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
total = total - old + string.len(ARGV[2])
if total > tonumber(ARGV[6]) then return {2, total} end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + ttl, ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], '+inf', ARGV[1])
end
redis.call('HSET', KEYS[3], ARGV[1], string.len(ARGV[2]))
return {0, 0}
"""

__all__ = ["RedisStore"]


def _redact(url: str) -> str:
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


class RedisStore:
    """State and session data in Redis."""

    def __init__(self, url: str, *, prefix: str = "synapse") -> None:
        try:
            import redis
        except ImportError as exc:
            raise StateStoreError("state: redis:// needs the redis client: pip install 'synapse-nb[redis]'") from exc
        self.url = _redact(url)
        self.prefix = prefix
        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
        self._script = self._client.register_script(_SET_WITH_QUOTA)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise StateStoreError(f"state store {self.url} unavailable while {what}: {exc}") from exc

    def load_state(self, plugin: str) -> dict[str, Any] | None:
        raw = self._call("loading state", self._client.get, f"{self.prefix}:state:{plugin}")
        if raw is None:
            return None
        state = json.loads(raw)
        return state if isinstance(state, dict) else None

    def save_state(self, plugin: str, version: str, state: dict[str, Any]) -> None:
        text = encode_value(state, f"state of {plugin!r}")
        self._call("saving state", self._client.set, f"{self.prefix}:state:{plugin}", text)

    def highest_version(self, plugin: str) -> str | None:
        raw = self._call("reading versions", self._client.get, f"{self.prefix}:version:{plugin}")
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    def note_version(self, plugin: str, version: str) -> None:
        current = self.highest_version(plugin)
        if current is not None and SemVer.parse(current) >= SemVer.parse(version):
            return
        self._call("writing versions", self._client.set, f"{self.prefix}:version:{plugin}", version)

    def session_get(self, namespace: str, key: str) -> Any:
        raw = self._call("reading the session", self._client.get, f"{self.prefix}:session:{namespace}:{key}")
        return None if raw is None else json.loads(raw)

    def session_set(
        self, namespace: str, key: str, value: Any, ttl: float | None = None, *, quota: SessionQuota | None = None
    ) -> None:
        text = encode_value(value, f"session value {key!r}")
        quota = quota or SessionQuota(max_keys=1 << 62, max_bytes=1 << 62, default_ttl_s=0)
        if ttl is None and quota.default_ttl_s:
            ttl = quota.default_ttl_s
        px = max(1, int(ttl * 1000)) if ttl is not None else 0
        keys = [
            f"{self.prefix}:session:{namespace}:{key}",
            f"{self.prefix}:sessidx:{namespace}",
            f"{self.prefix}:sessize:{namespace}",
        ]
        now_ms = int(time.time() * 1000)
        argv = [key, text, px, now_ms, quota.max_keys, quota.max_bytes]
        verdict = self._call("writing the session", self._script, keys=keys, args=argv)
        if verdict and int(verdict[0]) != 0:
            count = int(verdict[1])
            error = quota_error(
                namespace, quota, keys=count if int(verdict[0]) == 1 else 0, size=count if int(verdict[0]) == 2 else 0
            )
            if error is not None:
                raise error

    def session_delete(self, namespace: str, key: str) -> None:
        pipe = self._client.pipeline()
        pipe.delete(f"{self.prefix}:session:{namespace}:{key}")
        pipe.zrem(f"{self.prefix}:sessidx:{namespace}", key)
        pipe.hdel(f"{self.prefix}:sessize:{namespace}", key)
        self._call("writing the session", pipe.execute)

    def close(self) -> None:
        self._client.close()

"""Redis-backed state and sessions (``state: redis://host:6379/0``), with the ``redis`` client.

Keys: ``synapse:state:<plugin>`` (a JSON object) and ``synapse:session:<namespace>:<key>`` (JSON, with the
TTL as Redis expiry). Connection problems become :class:`StateStoreError` naming the URL, so a caller can keep
a checkpoint pending and retry once Redis is back.
"""

from __future__ import annotations

import json
from typing import Any

from .base import StateStoreError, encode_value

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

    def session_get(self, namespace: str, key: str) -> Any:
        raw = self._call("reading the session", self._client.get, f"{self.prefix}:session:{namespace}:{key}")
        return None if raw is None else json.loads(raw)

    def session_set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        text = encode_value(value, f"session value {key!r}")
        px = max(1, int(ttl * 1000)) if ttl is not None else None
        self._call("writing the session", self._client.set, f"{self.prefix}:session:{namespace}:{key}", text, px=px)

    def session_delete(self, namespace: str, key: str) -> None:
        self._call("writing the session", self._client.delete, f"{self.prefix}:session:{namespace}:{key}")

    def close(self) -> None:
        self._client.close()

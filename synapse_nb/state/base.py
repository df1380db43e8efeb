"""The state store interface and its error."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..errors import RegistryError, ResourceLimitExceeded

__all__ = [
    "MAX_VALUE_BYTES",
    "SessionNamespace",
    "SessionQuota",
    "StateStore",
    "StateStoreError",
    "encode_value",
    "quota_error",
]

MAX_VALUE_BYTES = 8 << 20


class StateStoreError(RegistryError):
    """The state store cannot be reached or refused an operation (exit 9: network or storage failure)."""


def encode_value(value: Any, what: str) -> str:
    """``value`` as compact JSON for any store; :class:`StateStoreError` names ``what`` if it cannot be stored."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StateStoreError(f"{what} is not JSON-serialisable: {exc}") from None
    if len(text) > MAX_VALUE_BYTES:
        raise StateStoreError(f"{what} is {len(text)} bytes, over the {MAX_VALUE_BYTES} byte limit")
    return text


class SessionQuota:
    """How much one namespace may hold: keys, bytes of values, and the TTL of a value set without one."""

    __slots__ = ("default_ttl_s", "max_bytes", "max_keys")

    def __init__(self, max_keys: int = 10_000, max_bytes: int = 64 << 20, default_ttl_s: float = 24 * 3600.0) -> None:
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self.default_ttl_s = default_ttl_s


def quota_error(namespace: str, quota: SessionQuota, *, keys: int, size: int) -> ResourceLimitExceeded | None:
    """The error when ``keys`` keys holding ``size`` bytes would exceed ``quota`` (None when within it)."""
    plugin = namespace.split("@", 1)[0]
    if keys > quota.max_keys:
        return ResourceLimitExceeded(
            f"context.session is full: {keys} keys would exceed sessions.max_keys={quota.max_keys}",
            plugin=plugin, limit="sessions.max_keys", value=quota.max_keys,
        )  # fmt: skip
    if size > quota.max_bytes:
        return ResourceLimitExceeded(
            f"context.session is full: {size} bytes of values would exceed sessions.max_bytes={quota.max_bytes}",
            plugin=plugin, limit="sessions.max_bytes", value=quota.max_bytes,
        )  # fmt: skip
    return None


class StateStore(Protocol):
    """Persistent plugin state, session data and the highest version run, keyed by ``name@publisher``."""

    url: str

    def load_state(self, plugin: str) -> dict[str, Any] | None:
        """The last saved ``self.state`` of ``plugin``, or None if there is none."""
        ...

    def save_state(self, plugin: str, version: str, state: dict[str, Any]) -> None:
        """Replace the saved state of ``plugin`` (and remember ``version`` if it is the highest run yet)."""
        ...

    def highest_version(self, plugin: str) -> str | None:
        """The highest version of ``plugin`` whose state was saved here (for refusing downgrades)."""
        ...

    def note_version(self, plugin: str, version: str) -> None:
        """Remember that ``version`` of ``plugin`` ran (kept only if it is the highest)."""
        ...

    def session_get(self, namespace: str, key: str) -> Any:
        """A session value (None when missing or expired)."""
        ...

    def session_set(
        self, namespace: str, key: str, value: Any, ttl: float | None = None, *, quota: SessionQuota | None = None
    ) -> None:
        """Set a session value; ``ttl`` in seconds (None: the quota's default TTL, or no expiry without one).
        :class:`ResourceLimitExceeded` (exit 6) when the namespace would exceed ``quota``."""
        ...

    def session_delete(self, namespace: str, key: str) -> None:
        """Remove a session value."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SessionNamespace:
    """``context.session`` on the host side: one plugin's (one publisher's) view of the session store."""

    def __init__(self, store: StateStore, namespace: str, quota: SessionQuota | None = None) -> None:
        self.store = store
        self.namespace = namespace
        self.quota = quota or SessionQuota()

    def get(self, key: str, default: Any = None) -> Any:
        value = self.store.session_get(self.namespace, key)
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError("a session TTL must be positive (seconds)")
        self.store.session_set(self.namespace, key, value, ttl, quota=self.quota)

    def delete(self, key: str) -> None:
        self.store.session_delete(self.namespace, key)

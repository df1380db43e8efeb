"""The state store interface and its error."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..errors import RegistryError

__all__ = ["MAX_VALUE_BYTES", "SessionNamespace", "StateStore", "StateStoreError", "encode_value"]

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


class StateStore(Protocol):
    """Persistent plugin state and session data."""

    url: str

    def load_state(self, plugin: str) -> dict[str, Any] | None:
        """The last saved ``self.state`` of ``plugin``, or None if there is none."""
        ...

    def save_state(self, plugin: str, version: str, state: dict[str, Any]) -> None:
        """Replace the saved state of ``plugin``."""
        ...

    def session_get(self, namespace: str, key: str) -> Any:
        """A session value (None when missing or expired)."""
        ...

    def session_set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        """Set a session value; ``ttl`` in seconds (None: no expiry)."""
        ...

    def session_delete(self, namespace: str, key: str) -> None:
        """Remove a session value."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class SessionNamespace:
    """``context.session`` on the host side: one plugin's view of the session store."""

    def __init__(self, store: StateStore, namespace: str) -> None:
        self.store = store
        self.namespace = namespace

    def get(self, key: str, default: Any = None) -> Any:
        value = self.store.session_get(self.namespace, key)
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self.store.session_set(self.namespace, key, value, ttl)

    def delete(self, key: str) -> None:
        self.store.session_delete(self.namespace, key)

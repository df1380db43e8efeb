"""Session data shared across calls and workers: the store a handler sees as ``context.session``."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["SessionStore"]


class SessionStore(Protocol):
    """Key-value session data with an optional TTL (seconds), shared across calls and workers."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    def delete(self, key: str) -> None: ...

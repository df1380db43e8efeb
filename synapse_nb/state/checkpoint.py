"""Saving a plugin's state checkpoints without ever dropping one silently."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .base import StateStore, StateStoreError

__all__ = ["Checkpointer"]


class Checkpointer:
    """Writes each new state of one plugin to the store; keeps it pending (and says so) while that fails.

    A failed write leaves the newest state pending in memory and calls ``on_error``; the next write (or
    :meth:`flush`) retries with the newest state, so a store that comes back receives the latest state and
    nothing is silently lost. :meth:`flush` raises :class:`StateStoreError` if it still cannot save.
    """

    def __init__(
        self,
        store: StateStore,
        plugin: str,
        version: str,
        on_error: Callable[[StateStoreError], None] | None = None,
    ) -> None:
        self.store = store
        self.plugin = plugin
        self.version = version
        self.on_error = on_error
        # The state the store holds from us (or held when the plugin started): an unchanged state is not written
        # again, so that a process that only read it (a replayed idempotency key, a cache hit) cannot overwrite
        # what another process saved meanwhile.
        self.last: dict[str, Any] | None = None
        self.pending: dict[str, Any] | None = None
        self.last_error: StateStoreError | None = None
        self._lock = threading.Lock()

    @property
    def saved(self) -> bool:
        """True when the newest state is in the store."""
        return self.pending is None

    def save(self, state: dict[str, Any]) -> bool:
        with self._lock:
            if self.pending is None and self.last is not None and state == self.last:
                return True
            try:
                self.store.save_state(self.plugin, self.version, state)
            except StateStoreError as exc:
                self.pending = dict(state)
                self.last_error = exc
                if self.on_error is not None:
                    self.on_error(exc)
                return False
            self.pending = None
            self.last_error = None
            self.last = dict(state)
            return True

    def flush(self) -> None:
        """Write a pending state now; raise if the store is still unavailable (the state stays pending)."""
        pending = self.pending
        if pending is not None and not self.save(pending) and self.last_error is not None:
            raise StateStoreError(
                f"state of {self.plugin!r} not saved: {self.last_error} (it is kept in memory: plugin.state)",
                plugin=self.plugin,
            )

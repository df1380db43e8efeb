"""Where plugin state and session data live: SQLite under ``SYNAPSE_HOME`` by default, Redis or Memcached when
configured.

``self.state`` of a handler is saved at teardown, checkpointed after every call that changed it, and restored
at the next activation, keyed by plugin name. ``context.session`` is a key-value store with TTLs on the same
backend, namespaced per plugin. Configure with ``state: redis://host:6379/0`` (or ``sqlite:///path``) in the
config file (or ``memcached://host:11211``); the spec's "externalize session data via Redis/Memcached". The same
store keeps the execution policies' records (:class:`~.base.KeyValue`): idempotency keys, and with Redis or
Memcached the shared response cache and circuit breakers.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config, expand_env
from ..paths import synapse_home
from .base import KeyValue, StateStore, StateStoreError
from .sqlite import SQLiteStore

__all__ = ["KeyValue", "StateStore", "StateStoreError", "open_store"]


def open_store(url: str | None = None, *, config: Config | None = None) -> StateStore:
    """The store named by ``url`` (or config ``state``); SQLite at ``SYNAPSE_HOME/state.db`` by default."""
    if url is None and config is not None:
        configured = config.data.get("state")
        url = expand_env(configured, where="config: state") if isinstance(configured, str) else None
    if url is None or url in ("sqlite", "sqlite://"):
        return SQLiteStore(synapse_home() / "state.db")
    if url.startswith("sqlite:///"):
        return SQLiteStore(Path(url.removeprefix("sqlite://")))
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore

        return RedisStore(url)
    if url.startswith("memcached://"):
        from .memcached import MemcachedStore

        return MemcachedStore(url)
    raise StateStoreError(
        f"unsupported state store {url!r}: use sqlite:///PATH, redis://HOST:PORT/DB or memcached://HOST:PORT"
    )

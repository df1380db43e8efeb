"""The default store: one SQLite database under SYNAPSE_HOME, safe to share between processes (WAL).

Session writes check the namespace's quota and write in one ``BEGIN IMMEDIATE`` transaction, so two processes
cannot both squeeze under the limit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from ..semver import SemVer
from .base import SessionQuota, StateStoreError, encode_value, quota_error

__all__ = ["SQLiteStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS plugin_state (
    plugin  TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    state   TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS session (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    expires   REAL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS plugin_versions (
    plugin  TEXT PRIMARY KEY,
    highest TEXT NOT NULL
);
"""


class SQLiteStore:
    """State and session data in ``path`` (created on first use; several processes may share it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite://{path}"
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StateStoreError(f"cannot open the state store {self.url}: {exc}") from exc

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StateStoreError(f"state store {self.url}: {exc}") from exc

    def load_state(self, plugin: str) -> dict[str, Any] | None:
        rows = self._run("SELECT state FROM plugin_state WHERE plugin = ?", (plugin,))
        if not rows:
            return None
        state = json.loads(rows[0][0])
        return state if isinstance(state, dict) else None

    def save_state(self, plugin: str, version: str, state: dict[str, Any]) -> None:
        text = encode_value(state, f"state of {plugin!r}")
        self._run(
            "INSERT INTO plugin_state (plugin, version, state, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(plugin) DO UPDATE SET version = excluded.version, state = excluded.state, "
            "updated = excluded.updated",
            (plugin, version, text, time.time()),
        )

    def highest_version(self, plugin: str) -> str | None:
        rows = self._run("SELECT highest FROM plugin_versions WHERE plugin = ?", (plugin,))
        return str(rows[0][0]) if rows else None

    def note_version(self, plugin: str, version: str) -> None:
        current = self.highest_version(plugin)
        if current is not None and SemVer.parse(current) >= SemVer.parse(version):
            return
        self._run(
            "INSERT INTO plugin_versions (plugin, highest) VALUES (?, ?) "
            "ON CONFLICT(plugin) DO UPDATE SET highest = excluded.highest",
            (plugin, version),
        )

    def session_get(self, namespace: str, key: str) -> Any:
        rows = self._run(
            "SELECT value FROM session WHERE namespace = ? AND key = ? AND (expires IS NULL OR expires > ?)",
            (namespace, key, time.time()),
        )
        return json.loads(rows[0][0]) if rows else None

    def session_set(
        self, namespace: str, key: str, value: Any, ttl: float | None = None, *, quota: SessionQuota | None = None
    ) -> None:
        text = encode_value(value, f"session value {key!r}")
        if ttl is None and quota is not None:
            ttl = quota.default_ttl_s
        now = time.time()
        expires = now + ttl if ttl is not None else None
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    # expired rows are dropped lazily, a few at a time
                    self._db.execute(
                        "DELETE FROM session WHERE rowid IN (SELECT rowid FROM session WHERE expires <= ? LIMIT 100)",
                        (now,),
                    )
                    if quota is not None:
                        keys, size = self._db.execute(
                            "SELECT count(*), coalesce(sum(length(value)), 0) FROM session "
                            "WHERE namespace = ? AND key != ? AND (expires IS NULL OR expires > ?)",
                            (namespace, key, now),
                        ).fetchone()
                        error = quota_error(namespace, quota, keys=keys + 1, size=size + len(text))
                        if error is not None:
                            raise error
                    self._db.execute(
                        "INSERT INTO session (namespace, key, value, expires) VALUES (?, ?, ?, ?) ON CONFLICT"
                        "(namespace, key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
                        (namespace, key, text, expires),
                    )
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateStoreError(f"state store {self.url}: {exc}") from exc

    def session_delete(self, namespace: str, key: str) -> None:
        self._run("DELETE FROM session WHERE namespace = ? AND key = ?", (namespace, key))

    def close(self) -> None:
        with self._lock:
            self._db.close()

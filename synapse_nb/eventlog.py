"""The event log: what every PluginManager did, in ``$SYNAPSE_HOME/events.db``, readable by any process.

Each process that runs plugins (a kernel, the CLI, the Jupyter server) appends to one SQLite file in WAL mode,
so the Jupyter server can tail it and show a plugin going ACTIVE in the sidebar when a cell in any kernel
activates it, and so call and benchmark history outlive the kernel::

    kernel A --+                         +--> EventLog.since(cursor)     (the server's tail, the sidebar)
    kernel B --+--> events.db (WAL) -----+--> EventLog.history(plugin, version)   (recent calls, benchmarks)
    CLI -------+

Rows are ``lifecycle`` (a stage change), ``call`` (one call: ms, error code), ``calls`` (calls summarised when
more arrived in one flush than are kept one by one) and ``bench`` (a benchmark sweep of one version).

Appending never slows a call down: :func:`attach` gives a manager a recorder; lifecycle transitions
and call summaries go to one background writer thread per process through bounded in-memory queues (a full
queue drops the oldest call summaries and counts them). Lifecycle rows are written at once (the sidebar must
see them within half a second), call summaries in batches. The file is bounded: the newest ``max_rows`` rows
younger than ``max_days`` are kept; pruning runs every few hundred appends and costs one indexed range delete.

This module is core: it imports nothing from IPython, Jupyter or tornado.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import synapse_home

__all__ = [
    "EVENTS_FILE",
    "Event",
    "EventLog",
    "EventSettings",
    "attach",
    "flush",
    "record_benchmark",
]

EVENTS_FILE = "events.db"
KINDS = ("lifecycle", "call", "calls", "bench")
PRUNE_EVERY = 512  # appends between two prunes (per process and file)
FLUSH_INTERVAL_S = 0.25  # how long call summaries may wait to be written in one batch
MAX_PENDING_CALLS = 20_000  # call summaries waiting for the writer; beyond, the oldest are dropped (and counted)
CALL_ROWS_PER_FLUSH = 256  # kept one by one per flush; the rest become one ``calls`` summary row per version
BUSY_TIMEOUT_MS = 2_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    plugin TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    stage TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_by_plugin ON events (plugin, version, kind, id);
"""


@dataclass(frozen=True)
class EventSettings:
    """Config section ``events``: ``enabled``, ``max_rows`` (newest rows kept) and ``max_days`` (oldest kept)."""

    enabled: bool = True
    max_rows: int = 50_000
    max_days: float = 30.0

    @classmethod
    def from_config(cls, config: Any) -> EventSettings:
        """The ``events`` section of a :class:`~synapse_nb.config.Config` (absent keys keep their defaults)."""
        data = getattr(config, "data", None) or {}
        return cls(**data.get("events", {}))


@dataclass(frozen=True)
class Event:
    """One row of the log. ``id`` is the cursor: ids only grow, even across pruning."""

    id: int
    ts: float
    kind: str
    plugin: str
    version: str = ""
    stage: str = ""
    pid: int = 0
    source: str = ""
    path: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "plugin": self.plugin,
            "version": self.version,
            "stage": self.stage,
            "pid": self.pid,
            "source": self.source,
            "path": self.path,
            "data": self.data,
        }


@dataclass(frozen=True)
class _Row:
    """A row waiting to be written (no id yet)."""

    ts: float
    kind: str
    plugin: str
    version: str = ""
    stage: str = ""
    path: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _process_source() -> str:
    """What kind of process writes: ``kernel``, ``server``, ``cli`` or ``python`` (shown in the sidebar)."""
    if "ipykernel" in sys.modules:
        return "kernel"
    if "jupyter_server" in sys.modules:
        return "server"
    if os.path.basename(sys.argv[0] if sys.argv else "").startswith("synapse-cli"):
        return "cli"
    return "python"


class EventLog:
    """The SQLite file of events. Safe to use from several threads; every process opens its own."""

    def __init__(self, path: str | Path | None = None, *, max_rows: int = 50_000, max_days: float = 30.0) -> None:
        self.path = Path(path) if path is not None else synapse_home() / EVENTS_FILE
        if max_rows < 1 or max_days <= 0:
            raise ValueError(f"max_rows must be >= 1 and max_days > 0, got {max_rows} and {max_days}")
        self.max_rows = max_rows
        self.max_days = max_days
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._since_prune = PRUNE_EVERY  # prune at the first write of this process
        self._pid = os.getpid()
        self.source = _process_source()

    # -- connection ------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # The log names plugins and their errors: readable by this user only, like the rest of SYNAPSE_HOME.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across crashes of the process
                conn.executescript(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                # Switching to WAL and creating the table take locks that SQLite's busy timeout does not wait
                # for when another process is doing the same at the same moment: retry, bounded.
                conn.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self._conn = conn
        return conn

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connect()

    # -- writing ---------------------------------------------------------------------------------------------
    def append(
        self,
        kind: str,
        plugin: str,
        *,
        version: str = "",
        stage: str = "",
        path: str = "",
        data: dict[str, Any] | None = None,
        ts: float | None = None,
    ) -> int:
        """Write one row now and return its id (the writer thread uses :meth:`append_many`)."""
        row = _Row(ts if ts is not None else time.time(), kind, plugin, version, stage, path, data or {})
        return self.append_many([row])

    def append_many(self, rows: Iterable[_Row]) -> int:
        """Write rows in one transaction; returns the id of the last one (0 when there were none)."""
        values = [
            (r.ts, r.kind, r.plugin, r.version, r.stage, self._pid, self.source, r.path, _dumps(r.data))
            for r in rows
            if r.kind in KINDS
        ]
        if not values:
            return 0
        with self._cursor() as conn, conn:
            cur = conn.executemany(
                "INSERT INTO events (ts, kind, plugin, version, stage, pid, source, path, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            del cur
            last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
            self._since_prune += len(values)
            if self._since_prune >= PRUNE_EVERY:
                self._since_prune = 0
                self._prune(conn)
        return last

    def _prune(self, conn: sqlite3.Connection) -> int:
        """Drop rows beyond the newest ``max_rows`` and those older than ``max_days`` (two range deletes)."""
        removed = conn.execute(
            "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?", (self.max_rows,)
        ).rowcount
        cutoff = time.time() - self.max_days * 86_400
        # Rows are appended in time order, so the old ones are a prefix of the id range: find where it ends by
        # scanning from the oldest id (cheap: after a prune only the few rows that aged since are old).
        removed += conn.execute(
            "DELETE FROM events WHERE id < coalesce("
            "(SELECT id FROM events WHERE ts >= ? ORDER BY id LIMIT 1), (SELECT max(id) + 1 FROM events))",
            (cutoff,),
        ).rowcount
        return int(removed)

    def prune(self) -> int:
        """Apply the bounds now; returns how many rows were removed."""
        with self._cursor() as conn, conn:
            return self._prune(conn)

    # -- reading ---------------------------------------------------------------------------------------------
    def since(self, cursor: int = 0, limit: int = 500, *, kinds: Iterable[str] | None = None) -> list[Event]:
        """Rows with an id greater than ``cursor``, oldest first (at most ``limit``)."""
        query = "SELECT * FROM events WHERE id > ?"
        args: list[Any] = [int(cursor)]
        if kinds is not None:
            wanted = [k for k in kinds if k in KINDS]
            query += f" AND kind IN ({', '.join('?' * len(wanted))})"
            args.extend(wanted)
        query += " ORDER BY id LIMIT ?"
        args.append(max(0, int(limit)))
        return self._select(query, args)

    def latest(self) -> int:
        """The newest id (the cursor of a reader that wants only what comes next)."""
        with self._cursor() as conn:
            value = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        return int(value)

    def history(
        self, plugin: str, version: str | None = None, *, kinds: Iterable[str] = ("call", "calls"), limit: int = 100
    ) -> list[Event]:
        """The newest rows of ``plugin`` (one ``version`` or all), newest first: calls by default."""
        wanted = [k for k in kinds if k in KINDS]
        query = f"SELECT * FROM events WHERE plugin = ? AND kind IN ({', '.join('?' * len(wanted))})"
        args: list[Any] = [plugin, *wanted]
        if version is not None:
            query += " AND version = ?"
            args.append(version)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(max(0, int(limit)))
        return self._select(query, args)

    def benchmarks(self, plugin: str, *, limit: int = 20) -> list[Event]:
        """The newest benchmark sweep of each version of ``plugin``, oldest version first."""
        rows = self.history(plugin, kinds=("bench",), limit=limit * 4)
        newest: dict[str, Event] = {}
        for row in rows:  # newest first: keep the first seen per version
            newest.setdefault(row.version, row)
        return sorted(newest.values(), key=lambda e: e.id)[-limit:]

    def _select(self, query: str, args: list[Any]) -> list[Event]:
        with self._cursor() as conn:
            found = conn.execute(query, args).fetchall()
        return [_event(row) for row in found]

    def count(self) -> int:
        with self._cursor() as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _event(row: tuple[Any, ...]) -> Event:
    ident, ts, kind, plugin, version, stage, pid, source, path, data = row
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = {}
    return Event(int(ident), float(ts), kind, plugin, version, stage, int(pid), source, path,
                 parsed if isinstance(parsed, dict) else {})  # fmt: skip


# -- the background writer ---------------------------------------------------------------------------------------
class _Writer:
    """One thread per process: writes lifecycle rows at once and call summaries in batches, never raising."""

    def __init__(self) -> None:
        self._urgent: collections.deque[tuple[EventLog, _Row]] = collections.deque()
        # Calls stay raw tuples until the writer thread turns them into rows: the caller pays one append.
        self._calls: collections.deque[_RawCall] = collections.deque(maxlen=MAX_PENDING_CALLS)
        self._wake = threading.Event()
        self._now = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.synchronous = False  # set at interpreter exit: then rows are written by the caller
        self.dropped = 0
        self.failures = 0
        self.last_failure = ""

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="synapse-eventlog", daemon=True)
                self._thread.start()

    def urgent(self, log: EventLog, row: _Row) -> None:
        if self.synchronous:
            self._write([(log, row)])
            return
        self._urgent.append((log, row))
        self._now.set()
        self._wake.set()
        self._ensure_thread()

    def call(self, raw: _RawCall) -> None:
        calls = self._calls
        if len(calls) == MAX_PENDING_CALLS:
            self.dropped += 1
        was_empty = not calls
        calls.append(raw)
        if was_empty:
            self._wake.set()
            self._ensure_thread()

    def _loop(self) -> None:
        while True:
            # Idle: wake at least every few seconds, so a row appended in a race with the drain is not stranded.
            self._wake.wait(5.0)
            if not self._now.is_set() and self._calls:
                self._now.wait(FLUSH_INTERVAL_S)  # batch call summaries unless a lifecycle row arrives
            with self._idle:
                self._busy = True
            self._wake.clear()
            self._now.clear()
            try:
                self._drain()
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()

    def _drain(self) -> None:
        pending: list[tuple[EventLog, _Row]] = []
        while True:
            try:
                pending.append(self._urgent.popleft())
            except IndexError:
                break
        while True:
            try:
                pending.append(_call_row(self._calls.popleft()))
            except IndexError:
                break
        if pending:
            self._write(_summarise(pending))

    def _write(self, pending: list[tuple[EventLog, _Row]]) -> None:
        by_log: dict[int, tuple[EventLog, list[_Row]]] = {}
        for log, row in pending:
            by_log.setdefault(id(log), (log, []))[1].append(row)
        for log, rows in by_log.values():
            try:
                log.append_many(sorted(rows, key=lambda r: r.ts))
            except (sqlite3.Error, OSError, ValueError) as exc:  # never let the log break a plugin call
                self.failures += 1
                self.last_failure = f"{log.path}: {exc}"

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything appended so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        if self._thread is None:
            return True
        self._now.set()
        self._wake.set()
        with self._idle:
            while self._busy or self._urgent or self._calls:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._now.set()
                self._wake.set()
                self._idle.wait(min(remaining, 0.05))
        return True


# (log, plugin, version, path, unix time, ms, handler ms or None, error or None): one call, as recorded.
_RawCall = tuple[EventLog, str, str, str, float, float, "float | None", Any]


def _call_row(raw: _RawCall) -> tuple[EventLog, _Row]:
    log, plugin, version, path, ts, ms, handler_ms, error = raw
    data: dict[str, Any] = {"ms": round(ms, 3)}
    if handler_ms is not None:
        data["handler_ms"] = round(handler_ms, 3)
    if error is not None:
        data["error"] = getattr(error, "code", "internal")
        data["message"] = str(error)[:500]
    return log, _Row(ts, "call", plugin, version, path=path, data=data)


def _summarise(pending: list[tuple[EventLog, _Row]]) -> list[tuple[EventLog, _Row]]:
    """Keep the newest call rows one by one; summarise the older ones per (log, plugin, version)."""
    calls = [item for item in pending if item[1].kind == "call"]
    if len(calls) <= CALL_ROWS_PER_FLUSH:
        return pending
    older = {id(item) for item in calls[:-CALL_ROWS_PER_FLUSH]}
    kept = [item for item in pending if id(item) not in older]
    groups: dict[tuple[int, str, str], list[tuple[EventLog, _Row]]] = {}
    for item in calls[:-CALL_ROWS_PER_FLUSH]:
        groups.setdefault((id(item[0]), item[1].plugin, item[1].version), []).append(item)
    for items in groups.values():
        log, first = items[0]
        ms = sorted(float(row.data.get("ms", 0.0)) for _log, row in items)
        errors = collections.Counter(str(row.data["error"]) for _log, row in items if row.data.get("error"))
        summary = {
            "count": len(items),
            "errors": sum(errors.values()),
            "error_codes": dict(errors),
            "ms_p50": round(ms[(len(ms) - 1) // 2], 3),
            "ms_max": round(ms[-1], 3),
            "from_ts": items[0][1].ts,
            "to_ts": items[-1][1].ts,
        }
        kept.append((log, _Row(items[-1][1].ts, "calls", first.plugin, first.version, path=first.path, data=summary)))
    return kept


_writer = _Writer()
_logs: dict[tuple[Path, int, float], EventLog] = {}
_logs_lock = threading.Lock()


def _log_for(settings: EventSettings) -> EventLog:
    """The process-wide :class:`EventLog` of the current ``SYNAPSE_HOME`` (one connection per file)."""
    path = synapse_home() / EVENTS_FILE
    key = (path, settings.max_rows, settings.max_days)
    with _logs_lock:
        log = _logs.get(key)
        if log is None:
            if len(_logs) >= 16:  # tests switch SYNAPSE_HOME often: keep only a few connections open
                _logs.pop(next(iter(_logs))).close()
            log = _logs[key] = EventLog(path, max_rows=settings.max_rows, max_days=settings.max_days)
        return log


def flush(timeout: float = 5.0) -> bool:
    """Wait until every event this process appended is in the file (tests and shutdown use it)."""
    return _writer.flush(timeout)


@atexit.register
def _flush_at_exit() -> None:
    # Managers tear their plugins down in their own atexit handler, which runs after this one: from now on
    # rows are written by the caller, so the final TEARING_DOWN and STOPPED rows are not lost.
    _writer.flush(2.0)
    _writer.synchronous = True


class _Recorder:
    """Turns one manager's lifecycle events and its plugins' calls into rows."""

    def __init__(self, manager: Any, log: EventLog) -> None:
        self.manager = manager
        self.log = log
        self._listening: set[int] = set()

    def on_event(self, event: Any) -> None:
        if event.stage is event.previous and event.activity:
            return  # ACTIVE idle <-> executing around every call: not a transition
        try:
            self._record(event)
        except Exception as exc:  # an observer must never break the manager's state machine
            _writer.failures += 1
            _writer.last_failure = f"recording {event.plugin} {event.stage.value}: {type(exc).__name__}: {exc}"

    def _record(self, event: Any) -> None:
        record = self.manager.plugins.get(event.plugin)
        plugin = getattr(record, "plugin", None)
        data: dict[str, Any] = {
            "previous": event.previous.value if event.previous is not None else None,
            "duration_ms": round(event.duration_ms, 3),
            "detail": event.detail,
        }
        if record is not None:
            verification = record.verification
            data["signer"] = verification.signer_subject if verification is not None else ""
            if record.error is not None and event.stage.value == "FAILED":
                data["error"] = {"code": record.error.code, "message": str(record.error)}
            if plugin is not None:
                data["isolation"] = plugin.isolation
            if record.activation_ms is not None and event.stage.value == "ACTIVE":
                data["activation_ms"] = round(record.activation_ms, 3)
        row = _Row(
            event.timestamp,
            "lifecycle",
            event.plugin,
            version=getattr(record, "version", ""),
            stage=event.stage.value,
            path=str(Path(record.path).resolve()) if record is not None else "",
            data=data,
        )
        _writer.urgent(self.log, row)
        if plugin is not None and event.stage.value == "ACTIVE" and id(plugin) not in self._listening:
            self._listening.add(id(plugin))
            plugin.listeners.append(self._make_call_listener(row.version, row.path))

    def _make_call_listener(self, version: str, path: str) -> Any:
        log = self.log

        def on_call(event: Any) -> None:  # a synapse_nb.invocation.CallEvent, after every call of the plugin
            _writer.call((log, event.plugin, event.version or version, path, time.time(), event.ms,
                          event.handler_ms if event.ok else None, event.error))  # fmt: skip

        return on_call


def attach(manager: Any) -> Callable[[Any], None] | None:
    """The recorder of ``manager``'s lifecycle events and its plugins' calls (None when config ``events`` is off).

    The manager calls it with every LifecycleEvent. It is deliberately not a ``subscribe`` observer: a manager
    with observers emits ACTIVE idle/executing events around every call, which the log does not keep anyway.
    """
    settings = EventSettings.from_config(manager.config)
    if not settings.enabled:
        return None
    return _Recorder(manager, _log_for(settings)).on_event


def record_benchmark(
    plugin: str, version: str, rows: list[dict[str, Any]], *, isolation: str = "", path: str = "", config: Any = None
) -> None:
    """Keep one benchmark sweep of ``plugin`` ``version`` (the rows of ``run_benchmark``) in the event log."""
    if config is None:
        from .config import ConfigError, load_config

        try:
            config = load_config()
        except ConfigError:
            return  # the command that ran the benchmark has reported the configuration problem already
    settings = EventSettings.from_config(config)
    if not settings.enabled:
        return
    clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()} for row in rows]
    _writer.urgent(
        _log_for(settings),
        _Row(time.time(), "bench", plugin, version, path=path, data={"rows": clean, "isolation": isolation}),
    )

"""Live lifecycle across kernels: the event log, tailed, folded into one state per plugin, pushed to browsers.

Every process that runs plugins appends to ``$SYNAPSE_HOME/events.db`` (:mod:`synapse_nb.eventlog`). The
:class:`LiveHub` polls it (only while a browser listens) and folds lifecycle rows into :class:`LiveStates`: per
plugin folder, the last stage reported by each process. A plugin is ACTIVE while any living process has it
active; a process that died without tearing down (a killed kernel) stops counting once its pid is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from ..eventlog import Event, EventLog

__all__ = ["LiveHub", "LiveStates", "pid_alive"]

PRIORITY = {"ACTIVE": 6, "ACTIVATING": 5, "TEARING_DOWN": 4, "VALIDATED": 3, "DISCOVERED": 2, "FAILED": 1,
            "STOPPED": 0}  # fmt: skip
RUNNING = {"ACTIVE", "ACTIVATING", "TEARING_DOWN"}
BOOTSTRAP_ROWS = 20_000  # lifecycle rows read at start to know what is running already
CALLS_PER_POLL = 50  # call rows forwarded to browsers per poll (the rest are in the log, for the panel)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (the writers of the log are local processes)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def key_of(event: Event) -> str:
    return event.path or f"name:{event.plugin}"


class LiveStates:
    """Per plugin folder and per process, the last lifecycle row; folded into one state per plugin."""

    def __init__(self, alive: Callable[[int], bool] = pid_alive) -> None:
        self.alive = alive
        self._by_key: dict[str, dict[int, Event]] = {}

    def apply(self, event: Event) -> str | None:
        """Take one row into account; the key of the plugin whose state it changed, if it was lifecycle."""
        if event.kind != "lifecycle":
            return None
        key = key_of(event)
        self._by_key.setdefault(key, {})[event.pid] = event
        return key

    def reap(self) -> list[str]:
        """Forget processes that are gone while they had a plugin running; the keys whose state changed."""
        changed = []
        for key, by_pid in self._by_key.items():
            dead = [pid for pid, e in by_pid.items() if e.stage in RUNNING and not self.alive(pid)]
            for pid in dead:
                ended = by_pid[pid]
                by_pid[pid] = Event(ended.id, time.time(), "lifecycle", ended.plugin, ended.version, "STOPPED",
                                    pid, ended.source, ended.path, {**ended.data, "exited": True})  # fmt: skip
            if dead:
                changed.append(key)
        return changed

    def state(self, key: str) -> dict[str, Any] | None:
        """The plugin's folded state: the most alive stage over processes, and who runs it."""
        by_pid = self._by_key.get(key)
        if not by_pid:
            return None
        events = sorted(by_pid.values(), key=lambda e: e.id)
        latest = events[-1]
        running = [e for e in events if e.stage in RUNNING]
        best = max(running, key=lambda e: (PRIORITY[e.stage], e.id)) if running else latest
        failed = next((e for e in reversed(events) if e.stage == "FAILED"), None)
        isolation = next((e.data["isolation"] for e in reversed(events) if e.data.get("isolation")), "")
        error = (failed.data.get("error") or {}).get("message") if failed is not None else None
        return {
            "key": key,
            "plugin": best.plugin,
            "version": best.version,
            "stage": best.stage,
            "isolation": best.data.get("isolation") or isolation,
            "signer": best.data.get("signer", ""),
            "error": error if latest.stage == "FAILED" else None,
            "processes": [{"pid": e.pid, "source": e.source, "stage": e.stage} for e in running if e.stage == "ACTIVE"],
            "event_id": latest.id,
            "ts": latest.ts,
        }

    def states(self) -> dict[str, dict[str, Any]]:
        out = {}
        for key in self._by_key:
            state = self.state(key)
            if state is not None:
                out[key] = state
        return out


Listener = Callable[[dict[str, Any]], None]


class LiveHub:
    """Tails the event log while someone listens and pushes ``state`` and ``event`` messages to listeners."""

    def __init__(self, log: EventLog, *, interval_s: float = 0.1, reap_every_s: float = 2.0) -> None:
        self.log = log
        self.interval_s = interval_s
        self.reap_every_s = reap_every_s
        self.states = LiveStates()
        self.cursor = 0
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._bootstrapped = False

    def bootstrap(self) -> None:
        """Read what is running already (the newest lifecycle rows) and start the cursor at the log's end."""
        if self._bootstrapped:
            return
        latest = self.log.latest() if self.log.path.exists() else 0  # no file yet: every row to come is new
        start = max(0, latest - BOOTSTRAP_ROWS)
        if latest:
            for event in self.log.since(start, limit=BOOTSTRAP_ROWS, kinds=["lifecycle"]):
                self.states.apply(event)
            self.states.reap()
        self.cursor = latest
        self._bootstrapped = True

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every plugin's folded state now (what GET /synapse/api/plugins embeds)."""
        self.bootstrap()
        return self.states.states()

    def add(self, listener: Listener) -> None:
        self._listeners.add(listener)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def _send(self, message: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(message)
            except Exception:  # a closed socket: drop it
                self._listeners.discard(listener)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_reap = time.monotonic()
        while self._listeners:
            try:
                events = await loop.run_in_executor(None, self._poll)
            except Exception:  # the file may be absent or locked for a moment: try again next tick
                events = []
            self.dispatch(events)
            if time.monotonic() - last_reap > self.reap_every_s:
                last_reap = time.monotonic()
                for key in self.states.reap():
                    self._send({"type": "state", "state": self.states.state(key)})
            await asyncio.sleep(self.interval_s)

    def _poll(self) -> list[Event]:
        if not self.log.path.exists():
            return []
        self.bootstrap()
        events = self.log.since(self.cursor, limit=2000)
        if events:
            self.cursor = events[-1].id
        return events

    def dispatch(self, events: list[Event]) -> None:
        """Fold ``events`` in and push what changed: a ``state`` per plugin touched, then the rows themselves."""
        changed: dict[str, None] = {}
        calls = 0
        for event in events:
            key = self.states.apply(event)
            if key is not None:
                changed[key] = None
            if event.kind in ("call", "calls"):
                calls += 1
                if calls > CALLS_PER_POLL:
                    continue
            self._send({"type": "event", "event": event.to_json()})
        for key in changed:
            self._send({"type": "state", "state": self.states.state(key)})

    async def close(self) -> None:
        self._listeners.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

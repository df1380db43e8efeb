"""Idle workers do nothing: each worker's cgroup is frozen once it has been idle for a short while.

A call may start threads (or leave a child process running) and return; without this, a warm worker could go
on burning CPU between calls. One background thread per host process looks at the live workers every few
milliseconds and freezes (cgroup v1 freezer / v2 ``cgroup.freeze``) each one that has been idle for
``sandbox.idle_freeze_ms``; the next call thaws it before its request is written. Freezing happens off the
call path and only when nobody holds the worker, so back-to-back calls never pay for it.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Protocol

__all__ = ["Freezable", "IdleFreezer", "idle_freezer"]


class Freezable(Protocol):
    """What the freezer needs of a worker."""

    freeze_after_s: float

    def idle_for(self, now: float) -> float | None:
        """Seconds since the last call ended (None: busy, frozen, dead or not freezable)."""
        ...

    def try_freeze(self) -> bool:
        """Freeze now unless a call holds the worker; True when it froze."""
        ...


class IdleFreezer:
    """The background thread that freezes idle workers."""

    def __init__(self, tick_s: float = 0.01) -> None:
        self.tick_s = tick_s
        self._workers: weakref.WeakSet[Freezable] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, worker: Freezable) -> None:
        """Freeze ``worker`` whenever it has been idle for its ``freeze_after_s``."""
        with self._lock:
            self._workers.add(worker)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="synapse-idle-freezer", daemon=True)
                self._thread.start()
        self._wake.set()

    def forget(self, worker: Freezable) -> None:
        """Stop watching ``worker`` (it died or was stopped)."""
        with self._lock:
            self._workers.discard(worker)

    def _loop(self) -> None:
        while True:
            with self._lock:
                workers = list(self._workers)
            if not workers:
                self._wake.wait()
                self._wake.clear()
                continue
            now = time.monotonic()
            for worker in workers:
                idle = worker.idle_for(now)
                if idle is not None and idle >= worker.freeze_after_s:
                    worker.try_freeze()
            time.sleep(self.tick_s)


idle_freezer = IdleFreezer()

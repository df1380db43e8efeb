"""Warm workers, one per (plugin, version, file digest, policy): started once, shared, replaced when they die.

A :class:`WorkerSlot` owns the worker of one exact plugin file set and the state checkpoint that outlives any
single worker. Every :class:`~synapse_nb.plugin.Plugin` handle for the same file set shares the slot, so
loading an unchanged plugin again costs no cold start. When a worker dies or times out, the slot starts the
next one in the background from the last checkpoint; when the last handle lets go, the worker is torn down.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import threading
import weakref
from collections.abc import Callable
from typing import Any

from ..errors import SandboxError, SynapseError
from ..session import SessionStore
from .host import HostInfo
from .isolation import expected_isolation
from .prewarm import prewarmed
from .worker import CallResult, NotSent, StartInfo, Worker, WorkerSpec

__all__ = ["RECYCLE_CHECK_EVERY", "WorkerSlot", "acquire_slot", "release_slot"]

RECYCLE_CHECK_EVERY = 1000
MAX_NOT_SENT_RETRIES = 2

_live_workers: weakref.WeakSet[Worker] = weakref.WeakSet()
_slots: dict[tuple[Any, ...], WorkerSlot] = {}
_slots_lock = threading.Lock()


@atexit.register
def _kill_live_workers() -> None:
    for worker in list(_live_workers):
        worker.kill("interpreter exit")


def slot_key(spec: WorkerSpec) -> tuple[Any, ...]:
    secrets = hashlib.sha256(json.dumps(sorted(spec.secrets.items())).encode()).hexdigest()
    return (*spec.key, spec.policy, spec.layout, spec.entrypoint, secrets, spec.mode, spec.extra_mounts)


class WorkerSlot:
    """The (replaceable) worker of one plugin file set and its state checkpoint."""

    def __init__(
        self,
        spec: WorkerSpec,
        host: HostInfo,
        state: dict[str, Any] | None = None,
        *,
        prewarm: tuple[int, int] = (0, 0),
    ) -> None:
        self.spec = spec
        self.host = host
        self.state: dict[str, Any] = dict(state or {})
        self.key = slot_key(spec)
        self.users = 0
        self.last_start: StartInfo | None = None
        self.session: SessionStore | None = None  # handed to every worker of this slot
        self.on_state: Callable[[dict[str, Any]], object] | None = None  # called with each new checkpoint
        self.stop_error: str | None = None
        self._lock = threading.Lock()
        self._worker: Worker | None = None
        self._pending: Worker | None = None  # spawned, plugin code not started yet (see prepare)
        self._starting: threading.Thread | None = None
        self._closed = False
        self._seeded = state is not None
        # Pre-warmed jails (see .prewarm): how many to keep ready for this configuration, and the memory cap.
        self.prewarm = prewarm

    def seed_state(self, state: dict[str, Any] | None) -> None:
        """The state a new slot's first worker starts from (ignored once seeded: a shared slot keeps its own)."""
        with self._lock:
            if not self._seeded and self._worker is None:
                self.state = dict(state or {})
                self._seeded = True

    @property
    def current(self) -> Worker | None:
        return self._worker

    @property
    def isolation(self) -> str:
        if self._worker is not None:
            return self._worker.isolation
        return expected_isolation(self.host, self.spec.policy)

    def _new_worker(self) -> Worker:
        """A pre-warmed jail adopted for this plugin when one is ready, else a fresh worker; either way the pool
        is asked to keep one ready for the next activation of this configuration."""
        worker = prewarmed.take(self.spec, self.host) if self.prewarm[0] > 0 else None
        if worker is None:
            worker = Worker(self.spec, self.host)
        _live_workers.add(worker)
        if self.prewarm[0] > 0:
            prewarmed.want(self.spec, self.host, size=self.prewarm[0], memory_mb=self.prewarm[1])
        return worker

    def _start(self) -> tuple[Worker, StartInfo]:
        worker, self._pending = self._pending, None
        if worker is None:
            worker = self._new_worker()
        worker.session = self.session
        return worker, worker.start(self.state)

    def prepare(self) -> None:
        """Spawn the jail for the next worker now, while the caller still verifies the plugin.

        No plugin code runs until :meth:`worker` sends the start frame; if verification fails the caller
        releases the slot and the spawned jail is killed.
        """
        with self._lock:
            if self._closed or self._pending is not None:
                return
            if self._worker is not None and self._worker.alive:
                return
            worker = self._new_worker()
            worker.spawn()  # a no-op for a pre-warmed jail: it is up already
            worker.deliver_in_background()  # a pre-warmed jail gets its (read-only) files while we verify
            self._pending = worker

    def worker(self) -> tuple[Worker, StartInfo | None]:
        """The live worker, started now (a cold start) if there is none; the StartInfo when it started."""
        starting = self._starting
        if starting is not None:
            starting.join()
        with self._lock:
            if self._closed:
                raise SandboxError("plugin has been torn down", plugin=self.spec.plugin)
            current = self._worker
            if current is not None and current.alive:
                if not current.died_while_idle():
                    return current, None
                # Died between calls (killed from outside, or by something it left running): nobody's call
                # caused it, so replace it transparently from the last checkpoint.
                current.kill("died while idle")
            self._worker, self.last_start = self._start()
            return self._worker, self.last_start

    def run(self, send: Callable[[Worker], CallResult]) -> tuple[Worker, CallResult, StartInfo | None]:
        """One request on the live worker; checkpoints the state; replaces the worker if the call killed it. A
        request that never reached its worker (it died while the request waited its turn) runs on the
        replacement instead."""
        for attempt in range(MAX_NOT_SENT_RETRIES + 1):
            worker, started = self.worker()
            try:
                call = send(worker)
                break
            except NotSent:
                if attempt == MAX_NOT_SENT_RETRIES:
                    raise
            except SynapseError:
                if not worker.alive:
                    self._replace_in_background()
                raise
        if call.state is not None:
            self.state = call.state  # the checkpoint: a crash loses at most the call in flight
            if self.on_state is not None:
                self.on_state(call.state)
        if worker.calls % RECYCLE_CHECK_EVERY == 0 and worker.cpu_seconds() > 0.9 * self.spec.policy.cpu_seconds:
            self._recycle(worker)
        return worker, call, started

    def run_many(
        self, payloads: list[bytes]
    ) -> tuple[Worker, list[CallResult | SynapseError | None], StartInfo | None]:
        """Pipelined calls (see :meth:`Worker.call_many`); checkpoints the last state; replaces a dead worker."""
        worker, started = self.worker()
        results = worker.call_many(payloads)
        for result in reversed(results):
            if isinstance(result, CallResult) and result.state is not None:
                self.state = result.state
                if self.on_state is not None:
                    self.on_state(result.state)
                break
        if not worker.alive:
            self._replace_in_background()
        return worker, results, started

    def _replace_in_background(self) -> None:
        """After a kill, start the next worker now so that the next caller does not pay the cold start."""

        def replace() -> None:
            with self._lock:
                if self._closed or (self._worker is not None and self._worker.alive):
                    return
                try:
                    self._worker, self.last_start = self._start()
                except SynapseError:
                    self._worker = None  # the next call starts one itself and reports the error

        starting = threading.Thread(target=replace, name=f"synapse-replace-{self.spec.plugin}", daemon=True)
        starting.start()
        self._starting = starting  # published only once started: a caller may join it at once

    def _recycle(self, worker: Worker) -> None:
        """Retire a worker before its CPU-time rlimit (a backstop against runaway workers) would kill it."""
        with self._lock:
            if self._worker is worker:
                self._worker = None
        final = worker.stop()
        if final is not None:
            self.state = final

    def stop(self) -> dict[str, Any]:
        """Tear the worker down (running the handler's teardown); returns the state to preserve."""
        starting = self._starting
        if starting is not None:
            starting.join()
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.kill("never started")
        if worker is not None:
            final = worker.stop(timeout_ms=self.spec.policy.teardown_timeout_ms)
            if final is not None:
                self.state = final
            self.stop_error = worker.stop_error  # the last checkpoint is what is kept
        return dict(self.state)


def acquire_slot(
    spec: WorkerSpec, host: HostInfo, state: dict[str, Any] | None = None, *, prewarm: tuple[int, int] = (0, 0)
) -> WorkerSlot:
    """The shared slot for ``spec`` (created on first use; ``state`` only seeds a new slot; ``prewarm`` is
    (jails to keep ready for its configuration, their memory cap in MiB): see :mod:`.prewarm`)."""
    key = slot_key(spec)
    with _slots_lock:
        slot = _slots.get(key)
        if slot is None:
            slot = _slots[key] = WorkerSlot(spec, host, state, prewarm=prewarm)
        slot.users += 1
        return slot


def release_slot(slot: WorkerSlot) -> dict[str, Any]:
    """Let go of a slot; the last user tears its worker down. Returns the slot's state."""
    with _slots_lock:
        slot.users -= 1
        last = slot.users <= 0
        if last and _slots.get(slot.key) is slot:
            del _slots[slot.key]
    if last:
        return slot.stop()
    return dict(slot.state)

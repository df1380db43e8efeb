"""A circuit breaker per plugin (anchors: resilience4j's CircuitBreaker, pybreaker).

::

    CLOSED --(5 consecutive failures, or > 50% of the last 20 calls failed)--> OPEN
    OPEN --(reset elapsed: the next call is the one probe)--> HALF-OPEN
    HALF-OPEN --(the probe succeeds)--> CLOSED        HALF-OPEN --(the probe fails)--> OPEN

Counted failures are the plugin's health failures: a crashed worker (and a protocol violation, which kills it),
a timeout, a resource limit. Invalid input, a handler that raises, an output that fails its schema are the
caller's or the plugin's logic, not its health: they count as successes of the worker. While open, a call
fails at once with :class:`~synapse_nb.errors.CircuitOpen` (exit 8) naming when the next probe is let through.

Written as a small state machine rather than with pybreaker: the state must be one JSON record that several
processes can share through Redis or Memcached (compare-and-swap on the record), with identical logic for the
in-process case, and calls must cost no more than a dict read while the circuit is closed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import CircuitOpen, PluginCrashed, PluginTimeout, ResourceLimitExceeded, SynapseError
from ..state.base import StateStoreError

if TYPE_CHECKING:
    from ..state.base import KeyValue
    from .settings import CircuitSettings

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker", "LocalCell", "SharedCell", "counts_as_failure"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
RECORD_TTL_MS = 7 * 24 * 3_600_000
Record = dict[str, Any]
Change = Callable[[Record], Record | None]


def counts_as_failure(error: BaseException) -> bool:
    """Crashes (and protocol violations), timeouts and resource limits; not invalid input or a raising handler."""
    if isinstance(error, (PluginTimeout, ResourceLimitExceeded, PluginCrashed)):
        return not (isinstance(error, ResourceLimitExceeded) and error.limit == "max_payload_bytes")
    return False


def fresh() -> Record:
    return {"state": CLOSED, "run": 0, "recent": "", "until": 0, "probe": "", "why": ""}


class LocalCell:
    """The record in this process (every handle of the plugin here shares it)."""

    def __init__(self) -> None:
        self.record = fresh()
        self._lock = threading.Lock()

    def read(self) -> Record:
        return self.record

    def update(self, change: Change) -> Record:
        with self._lock:
            new = change(dict(self.record))
            if new is not None:
                self.record = new
            return self.record


class SharedCell:
    """The record in a shared store (Redis, Memcached), updated by compare-and-swap. While the store cannot be
    reached, this process keeps counting on its own copy (and says so in ``error``) rather than failing calls."""

    def __init__(self, kv: KeyValue, key: str) -> None:
        self.kv = kv
        self.key = key
        self.last = fresh()
        self.error: str | None = None

    def _load(self) -> tuple[str | None, Record]:
        raw = self.kv.kv_get(self.key)
        if raw is None:
            return None, fresh()
        try:
            record = json.loads(raw)
        except ValueError:
            return raw, fresh()
        return raw, record if isinstance(record, dict) and record.get("state") in (CLOSED, OPEN, HALF_OPEN) else fresh()

    def read(self) -> Record:
        try:
            _raw, self.last = self._load()
            self.error = None
        except StateStoreError as exc:
            self.error = str(exc)
        return self.last

    def update(self, change: Change) -> Record:
        try:
            for _ in range(100):
                raw, record = self._load()
                new = change(dict(record))
                if new is None:
                    self.last = record
                    return record
                if self.kv.kv_cas(self.key, raw, json.dumps(new, separators=(",", ":")), RECORD_TTL_MS):
                    self.last = new
                    self.error = None
                    return new
        except StateStoreError as exc:
            self.error = str(exc)
        new = change(dict(self.last))
        if new is not None:
            self.last = new
        return self.last


def _now_ms() -> int:
    return int(time.time() * 1000)


def _when(epoch_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch_ms / 1000))


class CircuitBreaker:
    """The breaker of one plugin: :meth:`check` before a call, :meth:`record` after each attempt."""

    def __init__(
        self,
        plugin: str,
        settings: CircuitSettings,
        cell: LocalCell | SharedCell,
        *,
        probe_lease_ms: int = 60_000,
    ) -> None:
        self.plugin = plugin
        self.settings = settings
        self.cell = cell
        self.probe_lease_ms = probe_lease_ms
        self.listeners: list[Callable[[str, str, str], object]] = []  # (old state, new state, why)
        self.seen = CLOSED
        self._seen_lock = threading.Lock()
        self._refusal: tuple[int, str] = (-1, "")

    @property
    def state(self) -> str:
        """The state as last seen (no store round trip)."""
        return self.seen

    def current(self) -> str:
        """The state now (reads the shared record)."""
        state: str = self._observe(self.cell.read())["state"]
        return state

    def _observe(self, record: Record) -> Record:
        state = record["state"]
        if state != self.seen:
            with self._seen_lock:  # one event per transition, whichever thread sees it first
                old = self.seen
                if state == old:
                    return record
                self.seen = state
            for listener in list(self.listeners):
                listener(old, state, record.get("why", ""))
        return record

    def _refuse(self, record: Record, now: int) -> CircuitOpen:
        if record["state"] == OPEN:
            until = record["until"]
            if self._refusal[0] != until:  # the message of this opening, built once (refusals must be cheap)
                why = record.get("why") or "too many failures"
                text = f"circuit open: {why}; calls are refused until the next probe at {_when(until)}"
                self._refusal = (until, text)
            wait = until - now if until > now else 0
            return CircuitOpen(f"{self._refusal[1]} (in {(wait + 999) // 1000} s)", plugin=self.plugin,
                               retry_after_ms=wait, circuit=OPEN)  # fmt: skip
        return CircuitOpen(
            "circuit half-open: one probe call is in flight; calls are refused until it succeeds",
            plugin=self.plugin, retry_after_ms=0, circuit=HALF_OPEN,
        )  # fmt: skip

    def check(self) -> str:
        """Before a call: ``""`` when the circuit is closed, a probe token when this call is the half-open probe;
        :class:`CircuitOpen` otherwise."""
        record = self.cell.read()
        if record["state"] == CLOSED:
            if self.seen != CLOSED:
                self._observe(record)
            return ""
        now = _now_ms()
        if now < record["until"]:
            raise self._refuse(self._observe(record), now)
        token = uuid.uuid4().hex[:12]

        def take_probe(r: Record) -> Record | None:
            if r["state"] == CLOSED or now < r["until"]:
                return None
            why = r.get("why", "") if r["state"] == OPEN else "the last probe never reported"
            return {**r, "state": HALF_OPEN, "until": now + self.probe_lease_ms, "probe": token, "why": why}

        record = self._observe(self.cell.update(take_probe))
        if record["state"] == CLOSED:
            return ""
        if record.get("probe") != token:
            raise self._refuse(record, now)
        return token

    def record(self, error: BaseException | None, probe: str = "") -> None:
        """After an attempt: ``error`` (None: success); ``probe`` is the token :meth:`check` returned."""
        failed = error is not None and counts_as_failure(error)
        settings = self.settings
        now = _now_ms()

        def change(r: Record) -> Record | None:
            if r["state"] == HALF_OPEN:
                if not probe or r.get("probe") != probe:
                    return None  # a call that started before the circuit opened, finishing late
                if failed:
                    return self._opened(r, now, f"the probe failed: {_short(error)}")
                return fresh()
            if r["state"] == OPEN:
                return None
            if not failed and r["run"] == 0 and r["recent"] == "0" * settings.window:
                return None  # healthy and the window full of successes: nothing changes
            recent = (r["recent"] + ("1" if failed else "0"))[-settings.window :]
            run = r["run"] + 1 if failed else 0
            if failed and run >= settings.failures:
                return self._opened(r, now, f"{run} consecutive failures, the last: {_short(error)}")
            rate = recent.count("1") / len(recent)
            if failed and len(recent) >= settings.window and rate > settings.failure_rate:
                why = f"{recent.count('1')} of the last {len(recent)} calls failed, the last: {_short(error)}"
                return self._opened(r, now, why)
            return {**r, "run": run, "recent": recent}

        self._observe(self.cell.update(change))

    def _opened(self, r: Record, now: int, why: str) -> Record:
        return {**fresh(), "state": OPEN, "until": now + self.settings.reset_ms, "why": why, "recent": r["recent"]}

    def snapshot(self) -> dict[str, Any]:
        """The state for status displays: state, why, when the next probe is allowed (epoch ms), recent outcomes."""
        record = self.cell.read()
        self._observe(record)
        return {"state": record["state"], "why": record.get("why", ""), "until": record.get("until", 0),
                "recent_failures": record.get("recent", "").count("1"), "run": record.get("run", 0)}  # fmt: skip


def _short(error: BaseException | None) -> str:
    if isinstance(error, SynapseError):
        return f"{error.code}: {error.message[:120]}"
    return str(error)[:120]

"""Idempotency keys (anchor: Stripe's): one outcome per (plugin publisher, key), replayed for every repeat.

``run(payload, idempotency_key=K)``: the first call with ``K`` claims it in the state store with a pending
record (SET NX: exactly one caller wins, in this process or any other sharing the store), runs, and stores its
outcome (result or error) for the idempotency window (default 24 h, ``policies.idempotency.window``). A repeat
with the same endpoint and input gets the stored outcome without running anything (``meta.idempotency:
replayed``); one with a different input is refused (exit 3); one that arrives while the first is still running
waits for its outcome (polling the record; a claim whose owner died expires after its lease and is taken over).
As with Stripe, only calls that started executing record an outcome: a refused input, an open circuit or a
timeout while waiting record nothing, and the key can be used again.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import (
    InvalidError,
    PluginCrashed,
    PluginFailed,
    PluginTimeout,
    ResourceLimitExceeded,
    SandboxError,
    SynapseError,
    ValidationError,
)

if TYPE_CHECKING:
    from ..state.base import KeyValue

__all__ = ["Claim", "IdempotencyKeys", "Replay", "error_from_json", "error_to_json"]

MAX_KEY_CHARS = 255
POLL_FIRST_S = 0.002
POLL_MAX_S = 0.05


@dataclass(frozen=True)
class Replay:
    """The stored outcome of an earlier call with the same key and input."""

    ok: bool
    result: Any = None
    error: SynapseError | None = None
    at: float = 0.0  # when the first call finished (epoch seconds)


class Claim:
    """The right to run the call for a key: :meth:`succeeded` or :meth:`failed` store its outcome,
    :meth:`release` gives the key back when the call never started executing."""

    def __init__(self, keys: IdempotencyKeys, record_key: str, pending: str, fingerprint: str) -> None:
        self.keys = keys
        self.record_key = record_key
        self.pending = pending
        self.fingerprint = fingerprint
        self.settled = False

    def _store(self, outcome: dict[str, Any]) -> None:
        if self.settled:
            return
        self.settled = True
        record = {"fp": self.fingerprint, "status": "done", "at": time.time(), **outcome}
        text = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        # Only over our own pending record: a claim whose lease ran out belongs to whoever took it over.
        self.keys.kv.kv_cas(self.record_key, self.pending, text, self.keys.window_ms)

    def succeeded(self, result: Any) -> None:
        self._store({"ok": True, "result": result})

    def failed(self, error: SynapseError) -> None:
        self._store({"ok": False, "error": error_to_json(error)})

    def release(self) -> None:
        if not self.settled:
            self.settled = True
            if self.keys.kv.kv_get(self.record_key) == self.pending:
                self.keys.kv.kv_delete(self.record_key)


class IdempotencyKeys:
    """The idempotency records of one plugin (one publisher's), in a :class:`~synapse_nb.state.base.KeyValue`."""

    def __init__(self, plugin: str, namespace: str, kv: KeyValue, *, window_ms: int, lease_ms: int) -> None:
        self.plugin = plugin
        self.namespace = namespace
        self.kv = kv
        self.window_ms = window_ms
        self.lease_ms = lease_ms  # how long a claim holds without an outcome (the longest a call can take)

    def check_key(self, key: Any) -> str:
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
            raise InvalidError(f"an idempotency key is a string of 1 to {MAX_KEY_CHARS} characters", plugin=self.plugin)
        return key

    def begin(self, key: str, fingerprint: str, *, wait_until: float) -> Claim | Replay:
        """Claim ``key`` for a call whose endpoint and input hash to ``fingerprint``, or get its stored outcome;
        waits (until ``wait_until``, monotonic) while another call holds it."""
        key = self.check_key(key)
        record_key = f"idem:{self.namespace}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"
        pending = json.dumps({"fp": fingerprint, "status": "pending", "owner": uuid.uuid4().hex, "at": time.time()})
        pause = POLL_FIRST_S
        while True:
            if self.kv.kv_add(record_key, pending, self.lease_ms):
                return Claim(self, record_key, pending, fingerprint)
            raw = self.kv.kv_get(record_key)
            if raw is None:
                continue  # it expired or was released in between: claim it
            record = _record(raw)
            if record.get("fp") != fingerprint:
                raise InvalidError(
                    f"idempotency key {key[:80]!r} reused with a different payload (or endpoint): it was first "
                    f"used at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(record.get('at', 0)))}; use a new "
                    "key for a different request",
                    plugin=self.plugin,
                )
            if record.get("status") == "done":
                if record.get("ok"):
                    return Replay(True, result=record.get("result"), at=record.get("at", 0.0))
                return Replay(False, error=error_from_json(record.get("error"), self.plugin), at=record.get("at", 0.0))
            left = wait_until - time.monotonic()
            if left <= 0:
                raise PluginTimeout(
                    f"a call with idempotency key {key[:80]!r} is still running; gave up waiting for its outcome",
                    plugin=self.plugin,
                )
            time.sleep(min(pause, left))
            pause = min(POLL_MAX_S, pause * 2)


def _record(raw: str) -> dict[str, Any]:
    try:
        record = json.loads(raw)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def error_to_json(error: SynapseError) -> dict[str, Any]:
    """What is kept of an error to raise it again on a replay."""
    out: dict[str, Any] = {"code": error.code, "class": type(error).__name__, "message": error.message}
    if error.details:
        out["details"] = error.details[:20]
    for attr in ("timeout_ms", "limit", "value", "exc_type", "location", "pointer", "schema", "direction"):
        value = getattr(error, attr, None)
        if isinstance(value, (str, int, float)):
            out[attr] = value
    return out


def error_from_json(data: Any, plugin: str) -> SynapseError:
    """The error of a stored outcome, as the class it was raised as (a plain SynapseError if unknown)."""
    if not isinstance(data, dict):
        return SynapseError("stored outcome without an error", plugin=plugin)
    message, details, cls = str(data.get("message", "")), data.get("details") or [], data.get("class")
    if cls == "PluginTimeout":
        return PluginTimeout(message, plugin=plugin, timeout_ms=int(data.get("timeout_ms", 0)), details=details)
    if cls == "ResourceLimitExceeded":
        limit = str(data.get("limit", ""))
        return ResourceLimitExceeded(message, plugin=plugin, limit=limit, value=data.get("value"), details=details)
    if cls == "PluginCrashed":
        return PluginCrashed(message, plugin=plugin, details=details)
    if cls in ("PluginFailed", "ItemError"):
        return PluginFailed(message, plugin=plugin, exc_type=data.get("exc_type"), location=data.get("location"),
                            details=details)  # fmt: skip
    if cls == "ValidationError":
        return ValidationError(message, plugin=plugin, pointer=str(data.get("pointer", "")), schema=data.get("schema"),
                               direction=data.get("direction"), details=details)  # fmt: skip
    by_code: dict[str, type[SynapseError]] = {"invalid": InvalidError, "sandbox": SandboxError}
    return by_code.get(str(data.get("code")), SynapseError)(message, plugin=plugin, details=details)

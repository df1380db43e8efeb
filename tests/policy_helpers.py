"""Helpers for the execution-policy tests: a scripted runner (no jail) and plugin folders with policy settings."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synapse_nb.activation import Activation
from synapse_nb.errors import PluginCrashed, PluginFailed, PluginTimeout, ResourceLimitExceeded
from synapse_nb.invocation import Execution
from synapse_nb.sandbox.worker import StartInfo
from synapse_nb.signing import sign_folder

from .test_manager_unit import FakeRunner  # its execute_many (one execute per job) serves here too


class ScriptedRunner(FakeRunner):
    """Answers in this process, one request at a time like a worker. The payload says what happens:
    ``{"crash": true}``, ``{"timeout": true}``, ``{"limit": true}``, ``{"fail": true}`` (the handler raised),
    ``{"crash_first": N, "id": K}`` (crash the first N attempts of K), ``{"sleep": S}``, ``{"ttl": MS}`` (a
    response TTL), ``{"item_error": "why"}`` (an ItemError in a batch), ``{"meta": ...}`` (raw metadata, as a
    hostile handler would send); otherwise ``{"echo": payload}``."""

    isolation = "fake"
    worker = None
    stop_error: str | None = None

    def __init__(self, plan: Activation) -> None:
        self.plan = plan
        self.started: StartInfo | None = None
        self.lock = threading.Lock()
        self.executions: list[int] = []  # the size of each runner call (1: execute)
        self.payloads: list[Any] = []
        self.counter = 0
        self.attempts: dict[Any, int] = {}
        self.closed = False

    @property
    def last_start(self) -> StartInfo | None:
        return self.started

    def start(self) -> StartInfo | None:
        if self.started is None:
            self.started = StartInfo(handler_class="Scripted", cold_start_ms=1.0, setup_ms=0.5)
            return self.started
        return None

    def _answer(self, payload: Any) -> tuple[Any, dict[str, Any] | None]:
        name = self.plan.name
        self.payloads.append(payload)
        if not isinstance(payload, dict):
            return {"echo": payload}, None
        if payload.get("sleep"):
            time.sleep(payload["sleep"])
        if payload.get("crash"):
            raise PluginCrashed("worker exited during a call with status 3", plugin=name)
        if payload.get("timeout"):
            raise PluginTimeout("timed out: no result within 100 ms", plugin=name, timeout_ms=100)
        if payload.get("limit"):
            raise ResourceLimitExceeded("memory_mb exceeded", plugin=name, limit="memory_mb", value=64)
        if payload.get("fail"):
            raise PluginFailed("ValueError: asked to fail", plugin=name)
        if "crash_first" in payload:
            key = payload.get("id")
            self.attempts[key] = self.attempts.get(key, 0) + 1
            if self.attempts[key] <= payload["crash_first"]:
                raise PluginCrashed("worker exited during a call with status 3", plugin=name)
        if payload.get("count"):
            self.counter += 1
            return {"n": self.counter}, None
        if "item_error" in payload:
            return None, {"error": {"type": "ItemError", "message": payload["item_error"]}}
        if "ttl" in payload:
            return {"echo": payload}, {"cache_ttl_ms": payload["ttl"]}
        if "meta" in payload:
            return {"echo": payload}, payload["meta"]
        return {"echo": payload}, None

    def execute(self, body: bytes, *, endpoint: str | None, timeout_ms: int | None) -> Execution:
        with self.lock:
            self.executions.append(1)
            payload = json.loads(body)
            if isinstance(payload, dict) and "item_error" in payload:
                raise PluginFailed(f"ItemError: {payload['item_error']}", plugin=self.plan.name)
            result, meta = self._answer(payload)
            if endpoint and isinstance(result, dict) and "echo" in result:
                result = {"echo": result["echo"], "endpoint": endpoint}
            return Execution(result=result, handler_ms=0.1, queue_ms=0.0, total_ms=0.2, meta=meta)

    def execute_batch(self, bodies: list[bytes], *, endpoint: str | None, timeout_ms: int | None) -> Execution:
        with self.lock:
            self.executions.append(len(bodies))
            answers = [self._answer(json.loads(b)) for b in bodies]
            results = [r for r, _m in answers]
            if endpoint:
                results = [{"echo": r["echo"], "endpoint": endpoint} if isinstance(r, dict) else r for r in results]
            items = [m for _r, m in answers]
            meta = {"items": items} if any(m is not None for m in items) else None
            return Execution(result=results, handler_ms=0.1, queue_ms=0.0, total_ms=0.2, meta=meta)

    def state(self) -> dict[str, Any]:
        return {"counter": self.counter}

    def close(self) -> dict[str, Any]:
        self.closed = True
        return self.state()


OUTPUT = {"type": "object", "properties": {"echo": {}, "n": {"type": "integer"}}}


def policy_plugin(
    make_plugin: Callable[..., Path], name: str = "policy-plugin", *, execution: str = "", spec: str = ""
) -> Path:
    """A signed plugin folder (any JSON object in, ``{"echo": ...}`` or ``{"n": ...}`` out) whose manifest adds
    ``execution`` lines under ``spec.execution`` and ``spec`` lines under ``spec`` (YAML, two-space indent)."""
    folder: Path = make_plugin(name)
    (folder / "schemas" / "input_schema.json").write_text(json.dumps({"type": "object"}))
    (folder / "schemas" / "output_schema.json").write_text(json.dumps(OUTPUT))
    manifest = folder / "manifest.yaml"
    text = manifest.read_text().replace("    timeout: 2s\n", "    timeout: 2s\n" + execution)
    text = text.replace("primary: /v1/process", "primary: /v1/process\n        analyze: /v1/analyze")
    manifest.write_text(text.rstrip("\n") + "\n" + spec)
    sign_folder(folder)
    return folder

"""The lifecycle widget: the five stages of one plugin, live from the manager's events."""

from __future__ import annotations

import threading
from typing import Any

from traitlets import Float, Int, List, Unicode

from ...manager import LifecycleEvent, PluginManager, Stage
from .base import MimeWidget, esc

__all__ = ["LifecycleWidget"]

STAGES = ("DISCOVERED", "VALIDATED", "ACTIVATING", "ACTIVE", "TEARING_DOWN", "STOPPED")
LABELS = {"DISCOVERED": "Discovery", "VALIDATED": "Validation", "ACTIVATING": "Activation",
          "ACTIVE": "Execution", "TEARING_DOWN": "Teardown", "STOPPED": "Stopped"}  # fmt: skip


class LifecycleWidget(MimeWidget):
    """Stage, timings, failure reason, isolation level, signer, calls, the secrets it asks for, its circuit
    breaker and its response cache's hit rate, of one plugin; updated on every event."""

    kind = "lifecycle"

    stage = Unicode("").tag(sync=True)
    activity = Unicode("").tag(sync=True)
    isolation = Unicode("").tag(sync=True)
    signer = Unicode("").tag(sync=True)
    failure = Unicode("").tag(sync=True)
    activation_ms = Float(0.0).tag(sync=True)
    version = Unicode("").tag(sync=True)
    calls = Int(0).tag(sync=True)
    errors = Int(0).tag(sync=True)
    secrets = List(Unicode()).tag(sync=True)
    secrets_refused = List(Unicode()).tag(sync=True)
    circuit = Unicode("").tag(sync=True)  # closed | open | half-open
    circuit_detail = Unicode("").tag(sync=True)  # why it opened, when the next probe is let through
    cache_hit_rate = Float(-1.0).tag(sync=True)  # -1: no lookup yet (or caching off)

    def __init__(self, manager: PluginManager, name: str, *, note: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manager = manager
        self.plugin_name = name
        self.note = note
        self.timings: dict[str, float] = {}
        self._lock = threading.Lock()
        for event in manager.get(name).history:
            self._apply(event)
        self._sync()
        self._unsubscribe = manager.subscribe(self._on_event)

    def _apply(self, event: LifecycleEvent) -> None:
        if event.kind == "circuit":
            self.circuit_detail = event.detail if event.circuit != "closed" else ""
        elif event.previous is not None and event.previous is not event.stage:
            self.timings[event.previous.value] = event.duration_ms

    def _on_event(self, event: LifecycleEvent) -> None:
        if event.plugin != self.plugin_name:
            return
        with self._lock:
            self._apply(event)
            self._sync()

    def _sync(self) -> None:
        record = self.manager.plugins.get(self.plugin_name)
        if record is None:
            return
        self.stage = record.stage.value
        self.activity = ("executing" if record.in_flight else "idle") if record.stage is Stage.ACTIVE else ""
        plugin = record.plugin
        self.isolation = plugin.isolation if plugin is not None else self.isolation
        self.signer = record.verification.signer_subject if record.verification else (self.signer or "unsigned")
        self.failure = str(record.error) if record.stage is Stage.FAILED and record.error else ""
        self.activation_ms = float(record.activation_ms or 0.0)
        self.version = record.version
        self.calls, self.errors = record.calls, record.errors
        if record.folder is not None:
            self.secrets = list(record.folder.manifest.secrets)
        if plugin is not None:
            self.secrets_refused = list(plugin.activation.secrets_refused)
            self.circuit = plugin.policies.circuit.state
            rate = plugin.policies.cache.hit_rate
            self.cache_hit_rate = -1.0 if rate is None else rate
        self.refresh()

    def close(self) -> None:
        self._unsubscribe()
        super().close()

    def to_text(self) -> str:
        head = f"{self.plugin_name} {self.version}".strip()
        parts = [f"{head}: {self.stage}" + (f" ({self.activity})" if self.activity else "")]
        if self.isolation:
            parts.append(f"isolation {self.isolation}")
        if self.signer:
            parts.append(f"signer {self.signer}")
        if self.activation_ms:
            parts.append(f"activated in {self.activation_ms:.1f} ms")
        parts.append(f"calls {self.calls}" + (f" ({self.errors} failed)" if self.errors else ""))
        if self.circuit:
            parts.append(f"circuit {self.circuit}")
        if self.cache_hit_rate >= 0:
            parts.append(f"cache hit rate {self.cache_hit_rate:.0%}")
        text = ", ".join(parts)
        if self.circuit_detail and self.circuit != "closed":
            text += f"\nCIRCUIT {self.circuit.upper()}: {self.circuit_detail}"
        if self.secrets:
            text += f"\nsecrets asked for: {', '.join(self.secrets)}" + (
                f" (not allowed, not passed: {', '.join(self.secrets_refused)})" if self.secrets_refused else ""
            )
        if self.failure:
            text += f"\nFAILED: {self.failure}"
        if self.isolation == "process":
            text += "\nWARNING: process isolation (opted in): rlimits only, the plugin is NOT sandboxed"
        if self.note:
            text += f"\n{self.note}"
        return text

    def to_html(self) -> str:
        reached = STAGES.index(self.stage) if self.stage in STAGES else -1
        pills = []
        for i, stage in enumerate(STAGES):
            css = "now" if stage == self.stage else ("done" if i < reached else "")
            ms = self.timings.get(stage)
            timing = f" {ms:.1f} ms" if ms is not None and stage not in ("ACTIVE", "STOPPED") else ""
            label = LABELS[stage] + (f" ({esc(self.activity)})" if stage == "ACTIVE" and self.activity else "")
            pills.append(f'<span class="stage {css}">{label}{timing}</span>')
        if self.stage == "FAILED":
            pills.append('<span class="stage failed">FAILED</span>')
        rows = [f"<b>{esc(self.plugin_name)}</b> {esc(self.version)} {' '.join(pills)}"]
        calls = f"{self.calls}" + (f" ({self.errors} failed)" if self.errors else "")
        css = "err" if self.circuit != "closed" else ""
        circuit = f' &nbsp; circuit: <span class="{css}">{esc(self.circuit)}</span>'
        hits = f" &nbsp; cache hit rate: {self.cache_hit_rate:.0%}" if self.cache_hit_rate >= 0 else ""
        rows.append(
            f"isolation: <b>{esc(self.isolation or '-')}</b> &nbsp; signer: {esc(self.signer or '-')}"
            f" &nbsp; calls: {calls}" + (circuit if self.circuit else "") + hits
        )
        if self.circuit_detail and self.circuit != "closed":
            rows.append(f'<span class="err">circuit {esc(self.circuit)}: {esc(self.circuit_detail)}</span>')
        if self.secrets:
            refused = (
                f" (not allowed, not passed: {esc(', '.join(self.secrets_refused))})" if self.secrets_refused else ""
            )
            rows.append(f"secrets asked for: {esc(', '.join(self.secrets))}{refused}")
        if self.failure:
            rows.append(f'<span class="err">{esc(self.failure)}</span>')
        if self.isolation == "process":
            rows.append('<span class="err">process isolation (opted in): rlimits only, NOT sandboxed</span>')
        if self.note:
            rows.append(f'<span class="warn">{esc(self.note)}</span>')
        return "<br>".join(rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin_name,
            "stage": self.stage,
            "activity": self.activity,
            "isolation": self.isolation,
            "signer": self.signer,
            "failure": self.failure,
            "activation_ms": self.activation_ms,
            "timings_ms": self.timings,
            "note": self.note,
            "version": self.version,
            "calls": self.calls,
            "errors": self.errors,
            "secrets": list(self.secrets),
            "secrets_refused": list(self.secrets_refused),
            "circuit": self.circuit,
            "circuit_detail": self.circuit_detail,
            "cache_hit_rate": None if self.cache_hit_rate < 0 else self.cache_hit_rate,
        }

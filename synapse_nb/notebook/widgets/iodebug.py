"""The I/O debugger: input -> validated input -> raw output -> validated output of recent calls.

It shows the plugin's call history (``Plugin.keep_history``), latest first: the payload, what passed the
input schema, what the handler returned before the host validated it, the validated output, where a failing
call stopped (input schema, the handler or sandbox, output schema) with the error and its location, queue
versus handler time, and the handler's captured stdout and stderr.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ipywidgets as widgets
from traitlets import Int, Unicode

from ...plugin import CallRecord
from .base import CSS, MimeWidget, bounded, esc, pretty_json

__all__ = ["IODebugger"]

STEPS = (("input", "payload"), ("validated input", "validated_input"), ("raw output", "raw_output"),
         ("validated output", "output"))  # fmt: skip
STOPPED_AT = {"input": "validated input", "execute": "raw output", "output": "validated output"}


class IODebugger(MimeWidget):
    """Recent calls of one plugin, with a picker; ``refresh()`` after new calls (magics do it for you)."""

    kind = "iodebug"

    selected = Int(0).tag(sync=True)
    last_stage = Unicode("").tag(sync=True)
    last_error = Unicode("").tag(sync=True)

    def __init__(self, plugin: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugin = plugin
        if getattr(plugin, "history", None) is None and hasattr(plugin, "keep_history"):
            plugin.keep_history(32)
        self.picker = widgets.Dropdown(description="call", options=[], layout=widgets.Layout(width="420px"))
        self.picker.observe(self._picked, names="value")
        self.children = [self.picker, self._html]
        self.refresh()

    def records(self) -> list[CallRecord]:
        history = getattr(self.plugin, "history", None) or []
        return list(reversed(history))

    def _label(self, i: int, record: CallRecord) -> str:
        when = dt.datetime.fromtimestamp(record.at).strftime("%H:%M:%S")
        verdict = "ok" if record.error is None else f"failed at {STOPPED_AT.get(record.stage, record.stage)}"
        return f"#{len(self.records()) - i} {when} {record.total_ms:.1f} ms {verdict}"

    def _picked(self, change: dict[str, Any]) -> None:
        if isinstance(change.get("new"), int):
            self.selected = change["new"]
            super().refresh()

    def refresh(self) -> None:
        records = self.records()
        options = [(self._label(i, r), i) for i, r in enumerate(records)]
        if hasattr(self, "picker"):
            self.picker.options = options
            if options:
                self.picker.value = 0
        self.selected = 0
        if records:
            self.last_stage = records[0].stage
            self.last_error = str(records[0].error) if records[0].error else ""
        super().refresh()

    def current(self) -> CallRecord | None:
        records = self.records()
        return records[self.selected] if 0 <= self.selected < len(records) else None

    def to_text(self) -> str:
        record = self.current()
        if record is None:
            return f"{self.plugin.name}: no calls yet"
        lines = [f"{self.plugin.name}: {record.stage} in {record.total_ms:.1f} ms "
                 f"(queue {record.queue_ms:.2f} ms, handler {record.handler_ms:.2f} ms)"]  # fmt: skip
        stop = STOPPED_AT.get(record.stage) if record.error is not None else None
        for label, attr in STEPS:
            if stop is not None and label == stop:
                lines.append(f"{label}: FAILED: {record.error}")
                break
            lines.append(f"{label}: {pretty_json(getattr(record, attr), 400)}")
        for stream in ("stdout", "stderr"):
            text = getattr(record, stream)
            if text:
                lines.append(f"{stream}: {text.rstrip()}")
        return "\n".join(lines)

    def to_html(self) -> str:
        record = self.current()
        if record is None:
            return f"<b>{esc(self.plugin.name)}</b>: no calls yet"
        stop = STOPPED_AT.get(record.stage) if record.error is not None else None
        cells = []
        for label, attr in STEPS:
            if stop is not None and label == stop:
                error = record.error
                where = getattr(error, "location", None) or getattr(error, "pointer", None) or ""
                cells.append(f'<td><b>{label}</b><div class="err">FAILED {esc(where)}<br>{esc(error)}</div></td>')
                break
            cells.append(f"<td><b>{label}</b><pre>{esc(pretty_json(getattr(record, attr)))}</pre></td>")
        timing = (
            f"total {record.total_ms:.2f} ms = queue {record.queue_ms:.2f} ms + handler {record.handler_ms:.2f} ms"
            " + sandbox and validation"
        )
        logs = "".join(
            f"<div><b>{stream}</b><pre>{esc(getattr(record, stream))}</pre></div>"
            for stream in ("stdout", "stderr")
            if getattr(record, stream)
        )
        return f"<b>{esc(self.plugin.name)}</b> {esc(timing)}<table><tr>{''.join(cells)}</tr></table>{logs}"

    def to_json(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin.name,
            "calls": [
                {
                    "stage": r.stage,
                    "payload": bounded(r.payload),
                    "validated_input": bounded(r.validated_input),
                    "raw_output": bounded(r.raw_output),
                    "output": bounded(r.output),
                    "error": str(r.error) if r.error else None,
                    "total_ms": r.total_ms,
                    "queue_ms": r.queue_ms,
                    "handler_ms": r.handler_ms,
                    "stdout": r.stdout,
                    "stderr": r.stderr,
                }
                for r in self.records()
            ],
        }


_ = CSS  # re-exported for notebooks that style their own output like the widgets

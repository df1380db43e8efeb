"""What every synapse widget shares: an HTML body and a mimebundle that works without widgets.

Besides the widget view, the bundle carries ``text/plain``, ``text/html``, ``application/json`` and
:data:`MIME` (``application/vnd.synapse.widget+json``: the widget's state as JSON). JupyterLab's synapse
extension renders that last one, so a saved notebook reopens showing what the widget showed instead of
"Error displaying widget: model not found", and becomes the live widget again while its kernel has the model.
"""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as widgets

from ...textsafe import escape_terminal

__all__ = ["CSS", "MIME", "MimeWidget", "bounded", "esc", "finite", "number", "pretty_json"]

MIME = "application/vnd.synapse.widget+json"
MAX_JSON_CHARS = 200_000  # per widget output in the notebook file

CSS = """<style>
.synapse-w{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;line-height:1.4}
.synapse-w table{border-collapse:collapse;margin:4px 0}
.synapse-w th,.synapse-w td{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
.synapse-w th{background:#f4f4f4}
.synapse-w .stage{display:inline-block;padding:2px 8px;margin:2px;border-radius:10px;border:1px solid #bbb;color:#666}
.synapse-w .done{background:#e6f4ea;border-color:#34a853;color:#1e7e34}
.synapse-w .now{background:#34a853;border-color:#34a853;color:#fff;font-weight:bold}
.synapse-w .failed{background:#d93025;border-color:#d93025;color:#fff;font-weight:bold}
.synapse-w .err{color:#d93025}
.synapse-w .warn{color:#b06000}
div.synapse-w pre{margin:2px 0;padding:4px;background:#f8f8f8;max-height:240px;overflow:auto;
  white-space:pre-wrap;word-break:normal;overflow-wrap:break-word}
.synapse-w .scroll{max-width:100%;overflow-x:auto}
.synapse-w img{max-width:100%;height:auto}
</style>"""
# JupyterLab's output CSS breaks <pre> text anywhere (word-break: break-all); div.synapse-w pre is more
# specific, so JSON wraps at spaces and only an over-long token is cut.


def esc(value: Any) -> str:
    """HTML-escaped, with control characters (a plugin's ANSI or OSC sequences) shown, never obeyed."""
    return html.escape(escape_terminal(str(value)))


def number(value: Any, digits: int = 3) -> str:
    """A float for reading: rounded, thousands grouped, NaN and None as a dash."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.1f}"


def bounded(value: Any, limit: int = 20_000) -> Any:
    """``value`` for the notebook file: as is when its JSON is small, else a truncated preview."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)[:limit]
    if len(text) <= limit:
        return json.loads(text)
    return {"truncated": True, "preview": text[:limit]}


def pretty_json(value: Any, limit: int = 4000) -> str:
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"


class MimeWidget(widgets.VBox):
    """A VBox whose content is one HTML body, with text/plain, text/html and JSON representations."""

    kind = "widget"  # what JupyterLab's renderer of MIME draws: lifecycle, schema, iodebug or bench

    def __init__(self, **kwargs: Any) -> None:
        # Both fill the output's width and no more: wide tables scroll inside their own box.
        self._html = widgets.HTML(layout=widgets.Layout(max_width="100%"))
        kwargs.setdefault("layout", widgets.Layout(max_width="100%"))
        super().__init__(children=[self._html], **kwargs)

    # Subclasses fill these three in.
    def to_text(self) -> str:
        raise NotImplementedError

    def to_html(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def refresh(self) -> None:
        self._html.value = CSS + f'<div class="synapse-w">{self.to_html()}</div>'

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        parent = super()._repr_mimebundle_(**kwargs)
        if parent:
            bundle.update(parent)
        bundle["text/plain"] = escape_terminal(self.to_text())
        bundle["text/html"] = CSS + f'<div class="synapse-w">{self.to_html()}</div>'
        data = finite(self.to_json())
        bundle["application/json"] = data
        text = json.dumps(data, ensure_ascii=False, default=str)
        if len(text) > MAX_JSON_CHARS:
            data = {"truncated": True, "text": self.to_text()[:MAX_JSON_CHARS]}
        else:
            data = json.loads(text)  # exactly what a notebook file keeps (tuples as lists, objects as strings)
        bundle[MIME] = {"kind": self.kind, "version": 1, "data": data}
        return bundle


def finite(value: Any, depth: int = 0) -> Any:
    """``value`` with NaN and infinities as None: JSON has neither (pandas rows often hold NaN)."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if depth > 50:
        return str(value)
    if isinstance(value, dict):
        return {str(k): finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v, depth + 1) for v in value]
    return value

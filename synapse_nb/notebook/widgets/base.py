"""What every synapse widget shares: an HTML body and a mimebundle that works without widgets."""

from __future__ import annotations

import html
import json
from typing import Any

import ipywidgets as widgets

from ...textsafe import escape_terminal

__all__ = ["CSS", "MimeWidget", "esc", "pretty_json"]

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
.synapse-w pre{margin:2px 0;padding:4px;background:#f8f8f8;max-height:240px;overflow:auto}
</style>"""


def esc(value: Any) -> str:
    """HTML-escaped, with control characters (a plugin's ANSI or OSC sequences) shown, never obeyed."""
    return html.escape(escape_terminal(str(value)))


def pretty_json(value: Any, limit: int = 4000) -> str:
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"


class MimeWidget(widgets.VBox):
    """A VBox whose content is one HTML body, with text/plain, text/html and JSON representations."""

    def __init__(self, **kwargs: Any) -> None:
        self._html = widgets.HTML()
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
        bundle["application/json"] = self.to_json()
        return bundle

"""The benchmark widget: the batch sweep as a table and a plot (throughput and latency by batch size)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .base import MimeWidget, esc

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BenchmarkWidget", "plot_png"]


def plot_png(frame: pd.DataFrame, title: str = "") -> bytes:
    """Throughput and p50/p99 latency against batch size (one line per concurrency), as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2), dpi=100)
    left, right = fig.subplots(1, 2)
    for threads, rows in frame.groupby("concurrency"):
        label = f"concurrency {threads}"
        left.plot(rows["batch_size"], rows["throughput_items_s"], marker="o", label=label)
        right.plot(rows["batch_size"], rows["p50_ms"], marker="o", label=f"p50, {label}")
        right.plot(rows["batch_size"], rows["p99_ms"], marker="x", linestyle="--", label=f"p99, {label}")
    for axis, ylabel in ((left, "items / s"), (right, "latency per request (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xlabel("batch size")
        axis.set_ylabel(ylabel)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


class BenchmarkWidget(MimeWidget):
    """A benchmark DataFrame (from :func:`synapse_nb.benchmark.run_benchmark`) with its plot."""

    def __init__(self, frame: pd.DataFrame, *, title: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frame = frame
        self.title = title
        self.png = plot_png(frame, title) if len(frame) else b""
        self.image = widgets.Image(value=self.png, format="png")
        self.children = [self._html, self.image]
        self.refresh()

    def to_text(self) -> str:
        return (f"{self.title}\n" if self.title else "") + self.frame.to_string(index=False, float_format="%.3f")

    def to_html(self) -> str:
        table = self.frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0)
        return (f"<b>{esc(self.title)}</b>" if self.title else "") + table

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "rows": self.frame.to_dict(orient="records")}

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        if self.png:
            bundle["image/png"] = self.png
        return bundle

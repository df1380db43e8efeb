"""The benchmark widget: the batch sweep as a table and a plot (throughput and latency by batch size).

The plot's x axis is logarithmic but labelled with the batch sizes that were run (1, 8, 64), and when the
event log holds sweeps of earlier versions of the plugin they are drawn too (dashed), so a new version is
read against the previous ones. The table is rounded and scrolls inside its own box, never the plot.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from .base import MimeWidget, esc, finite, number

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BenchmarkWidget", "figure", "plot_png", "previous_sweeps"]

SHOWN = ["batch_size", "concurrency", "requests", "throughput_items_s", "p50_ms", "p90_ms", "p99_ms", "queue_ms",
         "handler_ms", "error_rate", "cold_start_ms", "peak_memory_mb"]  # fmt: skip


def previous_sweeps(plugin: str, version: str, *, limit: int = 5) -> list[dict[str, Any]]:
    """The newest sweep of each other version of ``plugin`` in the event log (oldest version first)."""
    if not plugin:
        return []
    from ...eventlog import EVENTS_FILE, EventLog, flush
    from ...paths import synapse_home

    if not (synapse_home() / EVENTS_FILE).exists():
        return []
    flush(1.0)
    log = EventLog()
    try:
        rows = [e for e in log.benchmarks(plugin, limit=limit + 1) if e.version != version]
    finally:
        log.close()
    return [{"version": e.version, "ts": e.ts, "data": e.data} for e in rows[-limit:]]


def plot_png(frame: pd.DataFrame, title: str = "", previous: list[dict[str, Any]] | None = None) -> bytes:
    """Throughput and p50/p99 latency against batch size (one line per concurrency), as PNG bytes.

    ``previous`` sweeps (from :func:`previous_sweeps`) are drawn dashed, one line per version.
    """
    buffer = io.BytesIO()
    figure(frame, title, previous).savefig(buffer, format="png")
    return buffer.getvalue()


def figure(frame: pd.DataFrame, title: str = "", previous: list[dict[str, Any]] | None = None) -> Any:
    """The matplotlib Figure of :func:`plot_png`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    fig = Figure(figsize=(9, 3.2), dpi=100)
    left, right = fig.subplots(1, 2)
    sizes = {int(b) for b in frame["batch_size"]}
    for sweep in previous or []:
        earlier = [r for r in sweep["data"].get("rows", []) if (r.get("concurrency") or 1) == 1]
        earlier.sort(key=lambda r: r["batch_size"])
        sizes.update(int(r["batch_size"]) for r in earlier)
        x = [r["batch_size"] for r in earlier]
        label = f"{sweep['version']}"
        left.plot(x, [r.get("throughput_items_s") for r in earlier], linestyle=":", marker=".", alpha=0.7, label=label)
        right.plot(x, [r.get("p50_ms") for r in earlier], linestyle=":", marker=".", alpha=0.7, label=f"p50, {label}")
    for threads, rows in frame.groupby("concurrency"):
        label = f"concurrency {threads}"
        left.plot(rows["batch_size"], rows["throughput_items_s"], marker="o", label=label)
        right.plot(rows["batch_size"], rows["p50_ms"], marker="o", label=f"p50, {label}")
        right.plot(rows["batch_size"], rows["p99_ms"], marker="x", linestyle="--", label=f"p99, {label}")
    ticks = sorted(sizes)
    for axis, ylabel in ((left, "items / s"), (right, "latency per request (ms)")):
        axis.set_xscale("log", base=2)
        # The batch sizes that ran, as numbers: not 2^0..2^6.
        axis.xaxis.set_major_locator(FixedLocator(ticks))
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xticks(ticks, [str(t) for t in ticks])
        axis.set_xlabel("batch size")
        axis.set_ylabel(ylabel)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


class BenchmarkWidget(MimeWidget):
    """A benchmark DataFrame (from :func:`synapse_nb.benchmark.run_benchmark`) with its plot.

    ``compare``: also draw the sweeps of the plugin's other versions kept in the event log (the plugin and
    version come from the frame's ``attrs``, which ``run_benchmark`` sets).
    """

    kind = "bench"

    def __init__(self, frame: pd.DataFrame, *, title: str = "", compare: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frame = frame
        self.title = title
        self.plugin = str(frame.attrs.get("plugin", ""))
        self.version = str(frame.attrs.get("version", ""))
        self.previous = previous_sweeps(self.plugin, self.version) if compare else []
        self.png = plot_png(frame, title, self.previous) if len(frame) else b""
        self.image = widgets.Image(value=self.png, format="png", layout=widgets.Layout(max_width="100%"))
        self.children = [self._html, self.image]
        self.refresh()

    def result(self) -> pd.DataFrame:
        """The frame to return from a magic that displayed this widget: it is not shown a second time."""
        from .frames import shown

        return shown(self.frame, self.title)

    def _columns(self) -> list[str]:
        return [c for c in SHOWN if c in self.frame.columns]

    def to_text(self) -> str:
        from .frames import tidy

        return (f"{self.title}\n" if self.title else "") + repr(tidy(self.frame[self._columns()]))

    def to_html(self) -> str:
        head = "".join(f"<th>{esc(c)}</th>" for c in self._columns())
        body = "".join(
            "<tr>" + "".join(f"<td>{esc(number(row[c]))}</td>" for c in self._columns()) + "</tr>"
            for row in self.frame.to_dict(orient="records")
        )
        versus = ""
        if self.previous:
            versus = f"<div>compared with {esc(', '.join(s['version'] for s in self.previous))} (dashed)</div>"
        title = f"<b>{esc(self.title)}</b>" if self.title else ""
        return f'{title}{versus}<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "plugin": self.plugin,
            "version": self.version,
            "isolation": str(self.frame.attrs.get("isolation", "")),
            "rows": finite(self.frame.to_dict(orient="records")),
            "previous": self.previous,
        }

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        if self.png:
            bundle["image/png"] = self.png
        return bundle

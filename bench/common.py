"""Timing helpers and the result table shared by the benchmarks."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One target: ``measured`` against ``baseline`` (same unit, same run), passing when ratio <= target."""

    benchmark: str
    metric: str
    measured: float
    baseline: float
    baseline_name: str
    target: float | None  # None: an informational row
    unit: str = "ms"
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        return self.measured / self.baseline if self.baseline else float("inf")

    @property
    def passed(self) -> bool:
        if self.target is None:
            return True
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "metric": self.metric,
            "measured": self.measured,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "unit": self.unit,
            "ratio": round(self.ratio, 3),
            "target": self.target,
            "passed": self.passed,
        }


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "metric", "measured", "baseline", "ratio", "target", "")
    lines = [header]
    for r in rows:
        op = ">=" if r.higher_is_better else "<="
        verdict = "info" if r.target is None else ("ok" if r.passed else "MISS")
        lines.append(
            (
                r.benchmark,
                r.metric,
                f"{r.measured:.3f} {r.unit}",
                f"{r.baseline:.3f} {r.unit} ({r.baseline_name})",
                f"{r.ratio:.2f}x",
                "-" if r.target is None else f"{op} {r.target}x",
                verdict,
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def samples(fn: Callable[[], Any], n: int, warmup: int = 10) -> list[float]:
    """``n`` wall-clock durations of ``fn()`` in milliseconds, after ``warmup`` calls, sorted."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    return out


def percentile(sorted_ms: list[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted samples, nearest-rank."""
    if not sorted_ms:
        raise ValueError("no samples")
    rank = max(0, min(len(sorted_ms) - 1, round(q / 100 * len(sorted_ms) + 0.5) - 1))
    return sorted_ms[rank]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def scratch_home(name: str, *, jail: bool = False) -> Iterator[Path]:
    """A temporary folder for benchmark ``name``, with ``SYNAPSE_HOME`` at ``FOLDER/home`` while it runs.

    The benchmark never touches the user's keys, trust store or caches; afterwards ``SYNAPSE_HOME`` is restored
    and the folder removed. ``jail=True``: stop at once unless nsjail can run here (it needs root).
    """
    if jail:
        from synapse_nb.sandbox.host import detect_host

        host = detect_host()
        if host.nsjail is None or not host.is_root:
            raise SystemExit(f"{name} needs nsjail and root")
    folder = Path(tempfile.mkdtemp(prefix=f"synapse-{name.replace('_', '-')}-"))
    before = os.environ.get("SYNAPSE_HOME")
    os.environ["SYNAPSE_HOME"] = str(folder / "home")
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("SYNAPSE_HOME", None)
        else:
            os.environ["SYNAPSE_HOME"] = before
        shutil.rmtree(folder, ignore_errors=True)


def cold_start(folder: Path, payload: Any, config: Any = None) -> float:
    """ms from ``load(folder)`` to its first result (then torn down): a sandbox cold start as users see it."""
    from synapse_nb.plugin import load

    t0 = time.perf_counter()
    plugin = load(folder, config=config)
    plugin.run(payload)
    elapsed = (time.perf_counter() - t0) * 1000
    plugin.teardown()
    return elapsed

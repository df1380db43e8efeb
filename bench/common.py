"""Timing helpers and the result table shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
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
        if self.higher_is_better:
            return self.measured / self.baseline if self.baseline else float("inf")
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

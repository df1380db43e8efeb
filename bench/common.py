"""Timing helpers and the result table shared by the benchmarks.

Robust on a busy machine: a measurement and its baseline are sampled *interleaved* in the same loop
(:func:`interleaved`), so that noise from other processes hits both alike; each round yields one ratio, the row
reports the median of the rounds and their spread (min..max ratio). A row whose median misses the target while
some rounds meet it is ``noisy``, not ``MISS``.
"""

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
    spread: tuple[float, float] | None = None  # min and max ratio over the rounds, when measured in rounds

    @property
    def ratio(self) -> float:
        return self.measured / self.baseline if self.baseline else float("inf")

    def _meets(self, ratio: float) -> bool:
        if self.target is None:
            return True
        return ratio >= self.target if self.higher_is_better else ratio <= self.target

    @property
    def passed(self) -> bool:
        return self._meets(self.ratio)

    @property
    def verdict(self) -> str:
        """``info``, ``ok``, ``noisy`` (the median misses, but the spread straddles the target) or ``MISS``."""
        if self.target is None:
            return "info"
        if self.passed:
            return "ok"
        if self.spread is not None and (self._meets(self.spread[0]) or self._meets(self.spread[1])):
            return "noisy"
        return "MISS"

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
            "verdict": self.verdict,
            "spread": [round(x, 3) for x in self.spread] if self.spread is not None else None,
            "higher_is_better": self.higher_is_better,
        }


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "metric", "measured", "baseline", "ratio", "spread", "target", "")
    lines = [header]
    for r in rows:
        op = ">=" if r.higher_is_better else "<="
        spread = f"{r.spread[0]:.2f}-{r.spread[1]:.2f}x" if r.spread is not None else "-"
        lines.append(
            (
                r.benchmark,
                r.metric,
                f"{r.measured:.3f} {r.unit}",
                f"{r.baseline:.3f} {r.unit} ({r.baseline_name})",
                f"{r.ratio:.2f}x",
                spread,
                "-" if r.target is None else f"{op} {r.target}x",
                r.verdict,
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


@dataclass
class Rounds:
    """Per-round statistics of interleaved timings: ``values[name]`` is one number per round."""

    values: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])

    def ratios(self, measured: str, baseline: str) -> list[float]:
        return [m / b if b else float("inf") for m, b in zip(self.values[measured], self.values[baseline], strict=True)]

    def row(
        self, benchmark: str, metric: str, measured: str, baseline: str, baseline_name: str, target: float | None,
        *, unit: str = "ms", higher_is_better: bool = False,
    ) -> Row:  # fmt: skip
        """A row: the median of the rounds of both, and the min..max of the per-round ratios."""
        ratios = self.ratios(measured, baseline)
        return Row(benchmark, metric, self.median(measured), self.median(baseline), baseline_name, target, unit=unit,
                   higher_is_better=higher_is_better, spread=(min(ratios), max(ratios)))  # fmt: skip


def interleaved(
    fns: dict[str, Callable[[], Any]], *, rounds: int, per_round: int, statistic: Callable[[list[float]], float],
    warmup: int = 50,
) -> Rounds:  # fmt: skip
    """Time every function of ``fns`` alternately, one call each in turn, ``per_round`` times per round; the
    ``statistic`` (e.g. a percentile) of each function's samples in each round."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    values: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        taken: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(per_round):
            for name in names:
                t0 = time.perf_counter()
                fns[name]()
                taken[name].append((time.perf_counter() - t0) * 1000)
        for name in names:
            values[name].append(statistic(sorted(taken[name])))
    return Rounds(values)


def machine() -> dict[str, Any]:
    """What the numbers were measured on (for comparing runs)."""
    import platform

    import synapse_nb

    return {
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "synapse_nb": synapse_nb.__version__,
        "load_average": list(os.getloadavg()),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


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

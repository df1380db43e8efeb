"""Benchmark batches: a sweep of batch sizes (and concurrency) through a plugin's real runtime.

Every row reports throughput (items/s), p50/p90/p99 latency per request (nearest-rank percentiles of the
sorted samples, taken after warm-up), the median queue and handler time, the error rate, the plugin's cold
start and the worker's peak memory during that row. ``synapse-cli plugin bench`` and ``%synapse bench`` both
use :func:`run_benchmark`; it returns a pandas DataFrame. The sweep is kept in the event log
(:mod:`synapse_nb.eventlog`) so later versions can be compared with it, and its calls stay out of the plugin's
call history (the I/O debugger shows the user's own calls, not thousands of benchmark requests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import SynapseError, UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BenchRow", "percentile", "run_benchmark"]

COLUMNS = [
    "batch_size",
    "concurrency",
    "requests",
    "items",
    "throughput_items_s",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "queue_ms",
    "handler_ms",
    "error_rate",
    "cold_start_ms",
    "peak_memory_mb",
]


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of already sorted samples."""
    if not sorted_samples:
        return float("nan")
    rank = max(1, min(len(sorted_samples), int(-(-q * len(sorted_samples) // 100))))
    return sorted_samples[rank - 1]


@dataclass
class BenchRow:
    batch_size: int
    concurrency: int
    requests: int
    items: int
    throughput_items_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    queue_ms: float
    handler_ms: float
    error_rate: float
    cold_start_ms: float
    peak_memory_mb: float


def _one(plugin: Any, payload: Any, batch: int) -> tuple[float, float, float, bool]:
    """One request of ``batch`` items: (latency ms, queue ms, handler ms, ok)."""
    t0 = time.perf_counter()
    try:
        # cache=False: a benchmark measures the plugin, not the response cache (it sends one payload again and again)
        invocation = (
            plugin.invoke(payload, cache=False) if batch == 1 else plugin.invoke_batch([payload] * batch, cache=False)
        )
    except SynapseError:
        return (time.perf_counter() - t0) * 1000, 0.0, 0.0, False
    meta = invocation.meta
    return (time.perf_counter() - t0) * 1000, float(meta.get("queue_ms", 0.0)), float(meta.get("handler_ms", 0.0)), True


def _peak_mb(plugin: Any, *, reset: bool = False) -> float:
    worker = getattr(plugin, "worker", None)
    cgroup = getattr(worker, "cgroup", None) if worker is not None else None
    if cgroup is None:
        return float("nan")
    if reset:
        cgroup.reset_peak()
        return 0.0
    return float(cgroup.memory_peak()) / (1 << 20)


def run_benchmark(
    plugin: Any,
    payload: Any,
    *,
    batch_sizes: Sequence[int] = (1, 8, 64),
    concurrency: Sequence[int] = (1,),
    repeat: int = 20,
    warmup: int = 3,
) -> pd.DataFrame:
    """Sweep ``batch_sizes`` x ``concurrency``; each thread sends ``repeat`` timed requests after ``warmup``."""
    import pandas as pd

    if not batch_sizes or any(b < 1 for b in batch_sizes):
        raise UsageError(f"batch sizes must be positive integers, got {list(batch_sizes)}")
    if not concurrency or any(c < 1 for c in concurrency) or repeat < 1 or warmup < 0:
        raise UsageError("concurrency and repeat must be positive and warmup not negative")
    start = getattr(plugin, "last_start", None)
    cold_start = float(start.cold_start_ms) if start is not None else float(getattr(plugin, "cold_start_ms", "nan"))
    pipeline: Any = getattr(plugin, "pipeline", None)  # its call history is the I/O debugger's
    history = getattr(pipeline, "history", None)
    if history is not None:
        pipeline.history = None  # benchmark requests are not calls worth debugging
    try:
        rows = _sweep(plugin, payload, batch_sizes, concurrency, repeat, warmup, cold_start)
    finally:
        if history is not None:
            pipeline.history = history
    frame = pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)
    _remember(plugin, frame)
    return frame


def _remember(plugin: Any, frame: pd.DataFrame) -> None:
    """Keep the sweep in the event log, per plugin version."""
    from .eventlog import record_benchmark

    manifest = getattr(plugin, "manifest", None)
    source = getattr(plugin, "source", None)
    # Who was measured travels with the frame (the notebook widget compares it with earlier versions).
    frame.attrs.update(
        plugin=str(getattr(plugin, "name", "")),
        version=str(manifest.version) if manifest is not None else "",
        isolation=str(getattr(plugin, "isolation", "")),
    )
    record_benchmark(  # queued: the writer thread writes it and counts its own failures
        frame.attrs["plugin"],
        frame.attrs["version"],
        [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")],
        isolation=frame.attrs["isolation"],
        path=str(source.resolve()) if source is not None else "",
        config=getattr(plugin, "config", None),
    )


def _sweep(
    plugin: Any,
    payload: Any,
    batch_sizes: Sequence[int],
    concurrency: Sequence[int],
    repeat: int,
    warmup: int,
    cold_start: float,
) -> list[BenchRow]:
    rows: list[BenchRow] = []
    for batch in batch_sizes:
        for threads in concurrency:
            for _ in range(warmup):
                _one(plugin, payload, batch)
            _peak_mb(plugin, reset=True)
            samples: list[tuple[float, float, float, bool]] = []
            lock = threading.Lock()

            def worker(
                batch: int = batch, samples: list[tuple[float, float, float, bool]] = samples, lock: Any = lock
            ) -> None:
                local = [_one(plugin, payload, batch) for _ in range(repeat)]
                with lock:
                    samples.extend(local)

            t0 = time.perf_counter()
            pool = [threading.Thread(target=worker) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            elapsed = time.perf_counter() - t0
            latencies = sorted(s[0] for s in samples)
            ok = [s for s in samples if s[3]]
            queue = sorted(s[1] for s in ok)
            handler = sorted(s[2] for s in ok)
            items = len(samples) * batch
            rows.append(
                BenchRow(
                    batch_size=batch,
                    concurrency=threads,
                    requests=len(samples),
                    items=items,
                    throughput_items_s=len(ok) * batch / elapsed if elapsed > 0 else float("nan"),
                    p50_ms=percentile(latencies, 50),
                    p90_ms=percentile(latencies, 90),
                    p99_ms=percentile(latencies, 99),
                    queue_ms=percentile(queue, 50),
                    handler_ms=percentile(handler, 50),
                    error_rate=1 - len(ok) / len(samples) if samples else float("nan"),
                    cold_start_ms=cold_start,
                    peak_memory_mb=_peak_mb(plugin),
                )
            )
    return rows

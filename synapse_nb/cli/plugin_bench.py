"""``synapse-cli plugin bench PATH --input @FILE [--batch-sizes 1,8,64] [--concurrency 1] [--repeat N] [--json]``."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UsageError
from .output import Output
from .plugin_run import read_input


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"expected comma-separated integers such as 1,8,64, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"expected positive integers such as 1,8,64, got {text!r}")
    return values


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "bench",
        help="benchmark a plugin over batch sizes and concurrency",
        description="Run the input through the sandboxed plugin at each batch size and concurrency; print "
        "throughput, p50/p90/p99 latency, queue vs handler time, error rate, cold start and peak memory.",
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument("--input", dest="input", help="one input item as JSON, or @FILE (default: stdin)")
    p.add_argument("--batch-sizes", default="1,8,64", help="comma-separated batch sizes (default: 1,8,64)")
    p.add_argument("--concurrency", default="1", help="comma-separated numbers of concurrent callers (default: 1)")
    p.add_argument("--repeat", type=int, default=20, help="timed requests per caller and row (default: 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed requests before each row (default: 3)")
    p.add_argument("--insecure-allow-unsigned", action="store_true", help="benchmark an unsigned plugin")
    p.add_argument("--json", action="store_true", help="print one JSON object with every row")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..benchmark import run_benchmark
    from ..manager import PluginManager

    batch_sizes, concurrency = _ints(args.batch_sizes), _ints(args.concurrency)
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    payload = read_input(args.input)
    manager = PluginManager(insecure_allow_unsigned=args.insecure_allow_unsigned, warn=out.warn)
    plugin = manager.load(args.path)
    try:
        frame = run_benchmark(
            plugin, payload, batch_sizes=batch_sizes, concurrency=concurrency, repeat=args.repeat, warmup=args.warmup
        )
    finally:
        manager.teardown_all()
    meta = {"plugin": plugin.name, "version": str(plugin.manifest.version), "isolation": plugin.isolation}
    if out.json_mode:
        return out.ok({"rows": frame.to_dict(orient="records")}, meta=meta)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0

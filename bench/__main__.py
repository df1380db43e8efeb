"""``python -m bench [NAME...]`` (``make bench``): run the benchmarks and print one table.

Every benchmark module ``bench/bench_*.py`` defines ``run(quick: bool) -> list[Row]``. A row compares a
measurement with a baseline taken in the same run and states the target ratio it must meet. The table is also
written as JSON to ``build/bench-<time>.json`` (and ``build/bench-latest.json``) with the machine's facts;
``python -m bench --compare OLD.json NEW.json`` shows what moved between two runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path
from typing import Any

from .common import Row, format_table, machine

BUILD = Path(__file__).resolve().parent.parent / "build"


def _compare(old_path: Path, new_path: Path) -> int:
    old, new = (json.loads(p.read_text()) for p in (old_path, new_path))
    before = {(r["benchmark"], r["metric"], r["baseline_name"]): r for r in old["rows"]}
    print(f"old: {old_path} ({old['machine'].get('time')}), new: {new_path} ({new['machine'].get('time')})")
    print(f"| {'benchmark':<16} | {'metric':<48} | {'old ratio':>9} | {'new ratio':>9} | {'change':>7} | verdict |")
    print(f"|{'-' * 18}|{'-' * 50}|{'-' * 11}|{'-' * 11}|{'-' * 9}|---------|")
    for row in new["rows"]:
        prior: dict[str, Any] | None = before.get((row["benchmark"], row["metric"], row["baseline_name"]))
        if prior is None:
            change, old_ratio = "new", "-"
        else:
            old_ratio = f"{prior['ratio']:.2f}x"
            delta = (row["ratio"] - prior["ratio"]) / prior["ratio"] * 100 if prior["ratio"] else 0.0
            change = f"{delta:+.0f}%"
        print(f"| {row['benchmark']:<16} | {row['metric'][:48]:<48} | {old_ratio:>9} | {row['ratio']:>8.2f}x | "
              f"{change:>7} | {row.get('verdict', '')} |")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (for smoke runs)")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="compare two JSON results")
    args = parser.parse_args(argv)
    if args.compare:
        return _compare(*args.compare)
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if args.names:
        unknown = sorted(set(args.names) - set(names))
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(names)}")
        names = args.names
    rows: list[Row] = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run(quick=args.quick))
    result = {"machine": machine(), "quick": args.quick, "rows": [r.to_json() for r in rows]}
    BUILD.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for target in (BUILD / f"bench-{stamp}.json", BUILD / "bench-latest.json"):
        target.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps([r.to_json() for r in rows], indent=2))
    else:
        print(format_table(rows))
    print(f"written to build/bench-{stamp}.json", file=sys.stderr)
    # "noisy" rows (the spread straddles the target) do not fail the run; a clear MISS does.
    return 0 if all(r.verdict != "MISS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

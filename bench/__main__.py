"""``python -m bench [NAME...]`` (``make bench``): run the benchmarks and print one table.

Every benchmark module ``bench/bench_*.py`` defines ``run(quick: bool) -> list[Row]``. A row compares a
measurement with a baseline taken in the same run and states the target ratio it must meet.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

from .common import Row, format_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (for smoke runs)")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args(argv)
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
    if args.json:
        print(json.dumps([r.to_json() for r in rows], indent=2))
    else:
        print(format_table(rows))
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""``synapse-cli env list | gc``: the built dependency environments under ``SYNAPSE_HOME/envs``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..errors import UsageError
from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    env = subparsers["env"]
    p = env.add_parser("list", help="list built environments, most recently used first")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_list)

    p = env.add_parser(
        "gc",
        help="remove environments not used recently",
        description=(
            "Remove built environments not used within --keep-days (default: environments.keep_days, 30), "
            "except those mounted by a running jail or being built; also removes leftovers of killed builds."
        ),
    )
    p.add_argument("--keep-days", type=float, metavar="DAYS", help="keep environments used within DAYS days")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_gc)


def _ago(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def run_list(args: argparse.Namespace, out: Output) -> int:
    from ..environments import EnvironmentStore

    store = EnvironmentStore()
    records = store.records()
    now = time.time()
    out.info(f"{len(records)} environment(s) in {store.root}")
    for r in records:
        out.info(
            f"  {r.key}  used {_ago(now - r.last_used)}  {r.size_bytes / (1 << 20):.1f} MiB  "
            f"{r.interpreter}  {', '.join(r.requirements) or '(no requirements)'}"
        )
    return out.ok({"root": str(store.root), "environments": [r.to_json() for r in records]})


def run_gc(args: argparse.Namespace, out: Output) -> int:
    from ..config import load_config
    from ..environments import EnvironmentStore

    keep = args.keep_days if args.keep_days is not None else load_config().environments.keep_days
    if keep < 0:
        raise UsageError(f"env gc: --keep-days must be 0 or more, got {keep:g}")
    store = EnvironmentStore()
    report = store.gc(keep_days=keep, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    out.info(
        f"{verb} {len(report.removed)} environment(s), {report.freed_bytes / (1 << 20):.1f} MiB; "
        f"kept {len(report.kept)}; {report.staging_removed} leftover build folder(s)"
    )
    for key in report.removed:
        out.info(f"  {verb}: {key}")
    for key, why in report.kept.items():
        out.info(f"  kept: {key} ({why})")
    return out.ok({**report.to_json(), "dry_run": args.dry_run, "keep_days": keep})

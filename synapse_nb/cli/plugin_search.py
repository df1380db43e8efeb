"""``synapse-cli plugin search [QUERY] [--category C] [--registry NAME] [--json]``."""

from __future__ import annotations

import argparse
from typing import Any

from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "search",
        help="search the configured registries and the built-in public index",
        description=(
            "List plugins whose name, description or tags contain QUERY, in every configured registry and the "
            "public index shipped with synapse_nb (works offline). Indexes are cached under $SYNAPSE_HOME and "
            "fetched again after 5 minutes; every index is verified (signature, trust, rollback, expiry)."
        ),
    )
    p.add_argument("query", nargs="?", metavar="QUERY", help="text to look for (default: everything)")
    p.add_argument("--category", metavar="C", help="only plugins of this category (e.g. nlp)")
    p.add_argument("--registry", metavar="NAME", help="only this registry (`public` is the built-in one)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def format_table(rows: list[list[str]]) -> str:
    """Left-aligned columns; the last column (description) is cut to keep lines readable."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        description = row[-1] if len(row[-1]) <= 60 else row[-1][:57] + "..."
        lines.append("  ".join([*cells, description]).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..registry.operations import search

    hits = search(args.query, category=args.category, registry=args.registry, warn=out.warn)
    if not out.json_mode:
        if hits:
            header = ["NAME", "LATEST", "CATEGORY", "REGISTRY", "DESCRIPTION"]
            body = [[h.name, h.version, h.category or "-", h.registry, h.description] for h in hits]
            print(format_table([header, *body]))
        else:
            what = " ".join(
                filter(
                    None,
                    [repr(args.query) if args.query else "", f"category {args.category!r}" if args.category else ""],
                )
            )
            print(f"no plugins found{' for ' + what if what else ''}")
    return out.ok([h.to_json() for h in hits], meta={"count": len(hits)})

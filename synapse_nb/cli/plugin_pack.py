"""``synapse-cli plugin pack PATH [-o DIR]``: a signed plugin folder as ``NAME-VERSION.synapse``."""

from __future__ import annotations

import argparse
from typing import Any

from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "pack",
        help="pack a signed plugin folder into NAME-VERSION.synapse",
        description=(
            "Verify the plugin's signature and write a reproducible archive (same folder, same bytes) holding the "
            "signed files and synapse.sig.json, so that it verifies without the folder. Sign the folder first "
            "(`synapse-cli plugin sign PATH`)."
        ),
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument("-o", "--output", metavar="DIR", help="where to write the archive (default: the current folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..registry.archive import pack

    result = pack(args.path, args.output)
    out.info(
        f"packed: {result.name} {result.version} -> {result.path} ({result.size} bytes, {result.file_count} files, "
        f"sha256 {result.sha256[:16]}, platforms: {', '.join(result.platforms)})"
    )
    return out.ok(result.to_json(), meta={"plugin": result.name, "version": result.version})

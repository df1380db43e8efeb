"""``synapse-cli plugin init --name=NAME [--template=T] [--dir DIR]``."""

from __future__ import annotations

import argparse
from typing import Any

from ..scaffold import TEMPLATES, create_plugin
from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "init",
        help="create a plugin folder from a template",
        description="Create a plugin folder (./NAME unless --dir) from one of the templates.",
    )
    p.add_argument("--name", required=True, help="plugin name, a lower-case DNS label (e.g. custom-processor)")
    p.add_argument("--template", default="python", choices=TEMPLATES, help="template (default: python)")
    p.add_argument("--dir", dest="directory", help="folder to create (default: ./NAME)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    target = create_plugin(args.name, template=args.template, directory=args.directory)
    out.info(f"created {args.template} plugin {args.name!r} in {target}/")
    out.info(f"next: synapse-cli plugin validate {target}")
    return out.ok({"plugin": args.name, "template": args.template, "path": str(target)})

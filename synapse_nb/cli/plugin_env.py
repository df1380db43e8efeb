"""``synapse-cli plugin env PATH [--wheelhouse DIR] [--force-build] [--json]``: the plugin's dependency environment."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "env",
        help="resolve (and if needed build) a plugin's dependency environment and list its packages",
        description=(
            "Resolve the plugin's requirements.txt: reuse the kernel's environment when it satisfies every "
            "requirement, else build (or reuse from the cache) an environment under SYNAPSE_HOME/envs, installed "
            "inside nsjail. Prints the environment's key, where it came from and its packages (name==version)."
        ),
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument(
        "--wheelhouse",
        metavar="DIR",
        help="install offline from this folder of wheels (and sdists), no index (default: environments.find_links)",
    )
    p.add_argument("--force-build", action="store_true", help="build an environment even if the kernel's would do")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _size(n: int) -> str:
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


def run(args: argparse.Namespace, out: Output) -> int:
    from ..anatomy import display_path, validate_folder
    from ..environments import resolve_environment, terminal_progress

    folder = validate_folder(args.path, display=display_path(args.path))
    name = folder.manifest.name
    env = resolve_environment(
        folder.requirements,
        plugin=name,
        wheelhouse=args.wheelhouse,
        progress=terminal_progress(sys.stderr),
        force_build=args.force_build,
    )
    if env.kind == "kernel":
        out.info(f"{name}: the kernel's environment (reused read-only: it satisfies every requirement)")
        for directory in env.site_dirs:
            out.info(f"  site: {directory}")
    else:
        how = "built now" if env.built_now else "cached"
        out.info(
            f"{name}: environment {env.key} ({how}, from the {env.source}), {len(env.packages)} package(s), "
            f"{_size(env.size_bytes)}, {env.bytecode_files} precompiled .pyc"
        )
        out.info(f"  path: {env.path}")
    for package in env.packages:
        out.info(f"  {package}")
    return out.ok(env.to_json(), meta={"plugin": name, "version": str(folder.manifest.version)})

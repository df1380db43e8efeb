"""``synapse-cli plugin validate PATH... [--json]``: manifest, schemas, requirements, handler and tests/.

Static: nothing of the plugin is executed (the handler is parsed, never imported); import errors show up at
activation, which runs in the jail.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..anatomy import validate_folder
from ..errors import SynapseError
from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "validate",
        help="check plugin folders without running them",
        description="Check manifest.yaml, schemas/, requirements.txt, handler.py and tests/ of each folder, "
        "statically: nothing of the plugin is executed (imports are checked when it is activated, in its jail).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="plugin folder(s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    results: list[dict[str, Any]] = []
    failures: list[SynapseError] = []
    for path in args.paths:
        try:
            folder = validate_folder(path)
        except SynapseError as exc:
            failures.append(exc)
            results.append({"path": path, "ok": False, "error": exc.to_json()})
            if not out.json_mode:
                out.fail(exc)
            continue
        info = folder.to_json()
        results.append({"path": path, "ok": True, **info})
        m = folder.manifest
        out.info(f"ok: {m.name} {m.version} ({path}): handler {folder.handler_class}, trigger {m.execution.trigger}")
        for warning in folder.warnings:
            out.warn(f"{m.name}: {warning}")
    if len(args.paths) == 1:
        if failures:
            return out.fail(failures[0], meta={"path": args.paths[0]}) if out.json_mode else failures[0].exit_code
        result = results[0]
        return out.ok(result, meta={"plugin": result["plugin"], "version": result["version"]})
    if out.json_mode:
        out.emit_json({"ok": not failures, "result": results, "meta": {"count": len(results)}})
    return failures[0].exit_code if failures else 0

"""``synapse-cli plugin run PATH [--input JSON | --input @FILE | --input - | stdin] [--endpoint E] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import jsonsafe
from ..errors import SynapseError, UsageError
from ..signing.enforce import INSECURE_FLAG
from .output import Output, escape_terminal


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "run",
        help="run a plugin once in the sandbox",
        description="Activate the plugin in its sandbox, run one input through it, print the validated result.",
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument(
        "--input", dest="input", help="the input as JSON, @FILE to read it from a file, or - for stdin (default: stdin)"
    )
    p.add_argument("--endpoint", help="an endpoint of spec.interfaces, by key (primary, analyze) or path (/v1/analyze)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the result and its metadata")
    p.add_argument(
        INSECURE_FLAG,
        action="store_true",
        help="run even if the signature is missing or does not verify (local development only; warns every time)",
    )
    p.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="run a version lower than the highest one this publisher's plugin of this name ran here",
    )
    p.set_defaults(func=run)


def read_input(spec: str | None) -> Any:
    """Parse ``--input``: JSON text, ``@FILE``, ``-`` (stdin), or stdin when absent; bounded decoding (exit 3)."""
    if spec is None or spec == "-":
        if spec is None and sys.stdin.isatty():
            raise UsageError("no input: pass --input JSON, --input @FILE, --input -, or pipe JSON on stdin")
        text: str | bytes = getattr(sys.stdin, "buffer", sys.stdin).read()
        source = "stdin"
    elif spec.startswith("@"):
        path = Path(spec[1:])
        try:
            text, source = path.read_bytes(), str(path)
        except OSError as exc:
            raise UsageError(f"cannot read input file {str(path)!r}: {exc.strerror}") from exc
    else:
        text, source = spec, "--input"
    return jsonsafe.loads(text, what=f"input from {source}", direction="input")


def run(args: argparse.Namespace, out: Output) -> int:
    from ..environments import terminal_progress
    from ..manager import PluginManager

    payload = read_input(args.input)
    manager = PluginManager(
        insecure_allow_unsigned=args.insecure_allow_unsigned,
        allow_downgrade=args.allow_downgrade,
        warn=out.warn,
        progress=terminal_progress(),
        prewarm=False,  # one call, then the process exits: a jail pre-started for later would never pay
    )
    plugin = manager.load(args.path)
    meta: dict[str, Any] = {"plugin": plugin.name, "version": plugin.version, "isolation": plugin.isolation}
    try:
        # Whatever the trigger (sync, async, event), the command waits for the result.
        invocation = manager.invoke(plugin.name, payload, endpoint=args.endpoint)
    except SynapseError as exc:
        manager.teardown_all()
        return out.fail(exc, meta=meta)
    manager.teardown(plugin.name)  # saves the handler's state for the next run
    meta = invocation.meta
    if plugin.last_start is not None:
        meta["cold_start_ms"] = round(plugin.last_start.cold_start_ms, 3)
    if not out.json_mode:
        for stream in ("stdout", "stderr"):
            for line in (meta.get(stream) or "").splitlines():
                print(f"[{plugin.name} {stream}] {escape_terminal(line)}", file=sys.stderr)
        print(escape_terminal(json.dumps(invocation.result, indent=2, ensure_ascii=False)))
    return out.ok(invocation.result, meta=meta)

"""``synapse-cli plugin compat OLD NEW [--json]``: every change between two versions and the bump it needs.

OLD and NEW are plugin folders, ``.synapse`` archives or ``NAME@VERSION`` from the local history of signed
versions. Prints one row per change (the bump it needs, its rule id, file:line, JSON pointer and what changed),
what the new version asks for that the old did not, and the verdict: exit 0 when the version bump made is enough,
3 when it is too small (or a downgrade).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from typing import Any

from ..errors import UsageError
from ..units import parse_duration_ms
from .output import Output

DEFAULT_EXAMPLES = 100
DEFAULT_TIMEOUT = "20s"


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "compat",
        help="compare two versions of a plugin and check the version bump",
        description=(
            "Compare two versions of a plugin: the interface (endpoints, protocols, trigger, topics, permissions), "
            "the input and output schemas (inputs may only widen in a minor release, outputs only narrow) and "
            "the implementation files. Values generated from the old input schema must validate against the new "
            "one (and from the new output schema against the old). Exit 0 when the version bump is enough, 3 "
            "when it is too small."
        ),
    )
    p.add_argument("old", metavar="OLD", help="the previous version: folder, .synapse archive or NAME@VERSION")
    p.add_argument("new", metavar="NEW", help="the new version: folder, .synapse archive or NAME@VERSION")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        metavar="N",
        help=f"values generated for the semantic check (default {DEFAULT_EXAMPLES}; 0 turns it off)",
    )
    p.add_argument(
        "--timeout",
        default=DEFAULT_TIMEOUT,
        metavar="DURATION",
        help=f"time budget of the semantic check (default {DEFAULT_TIMEOUT})",
    )
    p.add_argument(
        "--previous-tests",
        action="store_true",
        help="also run OLD's tests/ against NEW's handler with `plugin test` (OLD must be a folder or archive)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..compat.previous import run_previous_tests
    from ..compat.render import verdict_lines
    from ..compat.sources import open_source
    from ..compat.verdict import verdict

    if args.examples < 0:
        raise UsageError(f"--examples must be 0 or more, not {args.examples}")
    try:
        timeout_s = parse_duration_ms(args.timeout) / 1000
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    with ExitStack() as stack:
        old = stack.enter_context(open_source(args.old))
        new = stack.enter_context(open_source(args.new))
        extra: list[Any] = []
        if args.previous_tests:
            if old.folder is None or new.folder is None:
                raise UsageError(
                    "--previous-tests needs OLD and NEW as folders or archives (the history keeps no tests)"
                )
            extra = run_previous_tests(old.folder, new.folder)
        v = verdict(old, new, examples=args.examples, timeout_s=timeout_s, extra=extra)
    result = v.to_json()
    result["old"], result["new"] = old.origin, new.origin
    if not out.json_mode:
        print("\n".join(verdict_lines(v)))
    error = v.refusal()
    if error is None:
        out.info(f"ok: the changes need {v.required_bump}, and {v.old_version} -> {v.new_version} is enough")
        return out.ok(result, meta={"plugin": v.name, "version": str(v.new_version)})
    if out.json_mode:
        out.emit_json({"ok": False, "error": error.to_json(), "result": result, "meta": {"plugin": v.name}})
        print(out.error_lines(error)[0], file=sys.stderr)
        return error.exit_code
    return out.fail(error)

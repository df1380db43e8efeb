"""``synapse-cli plugin test PATH [-k EXPR] [--json]``: the plugin's own tests/, run by pytest inside its jail.

Test files and ``conftest.py`` are plugin code, so the whole pytest session runs in the plugin's sandbox
(:mod:`synapse_nb.testrun`), and the plugin must be signed, as for ``run`` (``--insecure-allow-unsigned`` is the
same explicit, noisy waiver).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..signing.enforce import INSECURE_FLAG
from .output import Output, escape_terminal


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "test",
        help="run the plugin's tests/ with pytest, inside its sandbox",
        description="Run the plugin's tests/ with pytest inside the plugin's own jail (test files and conftest.py "
        "are plugin code: they never run on the host); the `plugin` fixture runs the handler there. The plugin "
        "must be signed, as for `run`. Exit 0 when all pass, 7 when some fail, 3 when there are no tests.",
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument("-k", dest="keyword", help="only tests matching this pytest -k expression")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds the whole session may take (default 600)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every test's outcome")
    p.add_argument(
        INSECURE_FLAG,
        action="store_true",
        help="test even if the signature is missing or does not verify (local development only; warns every time)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..activation import ActivationOptions
    from ..environments import terminal_progress
    from ..testrun import run_plugin_tests

    options = ActivationOptions(
        insecure_allow_unsigned=args.insecure_allow_unsigned, warn=out.warn, progress=terminal_progress()
    )
    report = run_plugin_tests(args.path, keyword=args.keyword, options=options, timeout_s=args.timeout)
    if report.isolation == "process":
        out.warn(f"{report.plugin}: tested at the process level: rlimits only, NOT a sandbox")
    if not out.json_mode and report.output:
        sys.stdout.write(escape_terminal(report.output))
        sys.stdout.flush()
    meta = {"plugin": report.plugin, "version": report.version, "isolation": report.isolation,
            "signed": report.signed, "pytest_exit": report.pytest_exit}  # fmt: skip
    error = report.error()
    if error is None:
        out.info(f"ok: {report.counts['passed']} passed ({report.path}, in the {report.isolation} sandbox)")
        return out.ok(report.to_json(), meta=meta)
    if out.json_mode:
        out.emit_json({"ok": False, "error": error.to_json(), "result": report.to_json(), "meta": meta})
        for line in out.error_lines(error):
            print(line, file=sys.stderr)
        return error.exit_code
    return out.fail(error)

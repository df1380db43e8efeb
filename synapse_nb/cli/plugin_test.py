"""``synapse-cli plugin test PATH [-k EXPR] [--json]``: run the plugin's own tests/ through the real runtime."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..anatomy import TESTS_DIR, display_path
from ..errors import InvalidError, PluginFailed, SynapseError, UsageError
from ..fileset import SIGNATURE_FILE
from .output import Output

# pytest's exit codes: 0 all passed, 1 some failed, 2 interrupted, 3 internal error, 4 usage error, 5 none collected.
PYTEST_FAILED, PYTEST_NO_TESTS = 1, 5


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "test",
        help="run the plugin's tests/ with pytest, through the sandboxed runtime",
        description="Run the plugin's tests/ with pytest; the `plugin` fixture activates the plugin in its "
        "sandbox. Exit 0 when all pass, 7 when some fail, 3 when there are no tests.",
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument("-k", dest="keyword", help="only tests matching this pytest -k expression")
    p.add_argument("--json", action="store_true", help="print one JSON object with every test's outcome")
    p.set_defaults(func=run)


def _results(junit: Path) -> list[dict[str, Any]]:
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return []
    tests = []
    for case in tree.iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (node.get("message") or "").strip().splitlines()[0] if node.get("message") else ""
                break
        name = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        tests.append({"name": name, "outcome": outcome, "message": message, "seconds": float(case.get("time", 0))})
    return tests


def run(args: argparse.Namespace, out: Output) -> int:
    folder = Path(args.path)
    shown = display_path(folder)
    if not (folder / "manifest.yaml").is_file():
        raise UsageError(f"{shown!r} is not a plugin folder (no manifest.yaml)")
    tests_dir = folder / TESTS_DIR
    if not tests_dir.is_dir():
        raise InvalidError(f"{display_path(folder, TESTS_DIR + '/')}: missing; every plugin ships tests (pytest files)")
    if not (folder / SIGNATURE_FILE).is_file():
        out.warn(f"testing {shown} unsigned (the sandbox still applies; sign it before it is run elsewhere)")
    with tempfile.TemporaryDirectory(prefix="synapse-test-") as tmp:
        junit = Path(tmp) / "junit.xml"
        ini = Path(tmp) / "pytest.ini"  # the plugin's tests, not whatever project the folder sits in
        ini.write_text("[pytest]\n")
        argv = [sys.executable, "-m", "pytest", str(tests_dir), "--rootdir", str(folder), "-c", str(ini)]
        argv += ["-p", "no:cacheprovider", "--junitxml", str(junit), "-q" if out.json_mode else "-v"]
        if args.keyword:
            argv += ["-k", args.keyword]
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE if out.json_mode else None,
            stderr=subprocess.STDOUT if out.json_mode else None,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},  # never leave bytecode in the plugin folder
            check=False,
        )
        tests = _results(junit)
    counts = {k: sum(1 for t in tests if t["outcome"] == k) for k in ("passed", "failed", "error", "skipped")}
    result = {"path": str(folder), **counts, "tests": tests}
    if proc.returncode == 0:
        out.info(f"ok: {counts['passed']} passed ({shown})")
        return out.ok(result, meta={"pytest_exit": 0})
    error: SynapseError
    if proc.returncode == PYTEST_FAILED:
        bad = [t for t in tests if t["outcome"] in ("failed", "error")]
        first = bad[0] if bad else {"name": "?", "message": ""}
        error = PluginFailed(
            f"{len(bad)} of {len(tests)} tests failed, first {first['name']}: {first['message']}",
            plugin=folder.resolve().name,
            details=[f"{t['outcome']}: {t['name']}: {t['message']}" for t in bad[1:]],
        )
    elif proc.returncode == PYTEST_NO_TESTS:
        error = InvalidError(f"{shown}/tests: no tests were collected", plugin=folder.resolve().name)
    else:
        error = UsageError(f"pytest stopped with exit status {proc.returncode} while testing {shown}")
    if out.json_mode:
        out.emit_json(
            {"ok": False, "error": error.to_json(), "result": result, "meta": {"pytest_exit": proc.returncode}}
        )
        for line in out.error_lines(error):
            print(line, file=sys.stderr)
        return error.exit_code
    return out.fail(error)

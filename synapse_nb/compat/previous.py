"""The previous version's tests, run against the new handler: a seam over ``synapse-cli plugin test``.

:func:`run_previous_tests` builds a temporary plugin folder from the *new* version with the *old* version's
``tests/`` in place of its own, and runs ``synapse-cli plugin test FOLDER --json`` on it in a child process.
Each failing test is a major change (the new version breaks what the old one promised its callers).

Plugin tests are plugin code: ``plugin test`` runs the whole pytest session inside the plugin's jail
(:mod:`synapse_nb.testrun`), never on the host; this seam only calls it. The combined folder is made here from
two versions, so no signature can cover it: it is tested with ``--insecure-allow-unsigned``, and the jail is what
protects the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..anatomy import TESTS_DIR
from ..errors import InvalidError, SandboxError, SynapseError, UsageError
from ..fileset import SIGNATURE_FILE
from ..signing.enforce import INSECURE_FLAG
from .model import Change

__all__ = ["PREVIOUS_TESTS_TIMEOUT_S", "run_previous_tests"]

PREVIOUS_TESTS_TIMEOUT_S = 600.0
_BY_EXIT = {2: UsageError, 3: InvalidError, 8: SandboxError}


def _combined(old_folder: Path, new_folder: Path, into: Path) -> Path:
    target = into / new_folder.resolve().name
    shutil.copytree(
        new_folder,
        target,
        ignore=shutil.ignore_patterns(TESTS_DIR, SIGNATURE_FILE, "__pycache__", "*.pyc", ".pytest_cache"),
        symlinks=False,
    )
    shutil.copytree(old_folder / TESTS_DIR, target / TESTS_DIR, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def run_previous_tests(
    old_folder: str | Path, new_folder: str | Path, *, timeout_s: float = PREVIOUS_TESTS_TIMEOUT_S
) -> list[Change]:
    """Run ``old_folder``'s ``tests/`` against ``new_folder``'s plugin; one major change per failing test.

    Returns ``[]`` when they all pass, or when the old version has no tests (nothing was promised in tests).
    Raises the error ``plugin test`` reported when the tests could not run at all (no sandbox, bad folder).
    """
    old, new = Path(old_folder), Path(new_folder)
    if not (old / TESTS_DIR).is_dir():
        return []
    with tempfile.TemporaryDirectory(prefix="synapse-previous-tests-") as tmp:
        folder = _combined(old, new, Path(tmp))
        # The folder is made here from two versions, so no signature can cover it: the jail is what protects.
        argv = [sys.executable, "-m", "synapse_nb", "plugin", "test", str(folder), "--json", INSECURE_FLAG]
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return [
                _change(
                    "previous-tests-timed-out",
                    f"the previous version's tests did not finish in {timeout_s:g}s",
                    TESTS_DIR,
                )
            ]
    report = _last_json(proc.stdout)
    if proc.returncode == 0:
        return []
    result: dict[str, Any] = report["result"] if isinstance(report.get("result"), dict) else {}
    tests = [t for t in result.get("tests", []) if isinstance(t, dict) and t.get("outcome") in ("failed", "error")]
    if tests:
        return [
            _change(
                "previous-test-failed",
                f"the previous version's test {t.get('name')} fails against the new version: {t.get('message', '')}",
                _test_file(str(t.get("name", ""))),
            )
            for t in tests
        ]
    error: dict[str, Any] = report["error"] if isinstance(report.get("error"), dict) else {}
    if error.get("code") == "invalid" and "no tests were collected" in str(error.get("message", "")):
        return []
    cls = _BY_EXIT.get(proc.returncode, SynapseError)
    message = str(error.get("message") or proc.stderr.strip().splitlines()[-1:] or "plugin test failed")
    raise cls(f"running the previous version's tests: {message}")


def _change(rule: str, message: str, file: str) -> Change:
    return Change(rule, "implementation", "change", "major", message, file=file, side="old")


def _test_file(name: str) -> str:
    """The file of a test: ``tests/test_x.py::test_y`` (a pytest node id) or ``tests.test_x::test_y`` (junit)."""
    module = name.split("::", 1)[0]
    if not module:
        return TESTS_DIR
    return module if module.endswith(".py") else module.replace(".", "/") + ".py"


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}

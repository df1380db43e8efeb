"""A plugin's pytest session, run *inside* its jail (``synapse-cli plugin test``, ``%synapse test``).

Test files and ``conftest.py`` are plugin code: they run here, in the guest of a worker started in ``test``
mode, under the plugin's own policy (uid 65534, no network unless the manifest asks, its memory and process
limits, a scrubbed environment), never on the host. pytest comes from the host's environment, mounted
read-only; third-party pytest plugins are not auto-loaded (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``): only
synapse_nb's own, whose ``plugin`` fixture runs the handler in this process (the jail around the whole session
is the sandbox). The terminal output goes to the worker's stdout; the report (one entry per test) is the reply.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ENV_FLAG", "run_session"]

ENV_FLAG = "SYNAPSE_TEST_SESSION"
MAX_MESSAGE = 2000


class _Collector:
    """A pytest plugin that keeps one entry per test: outcome, message and duration."""

    def __init__(self) -> None:
        self.tests: dict[str, dict[str, Any]] = {}
        self.collect_errors: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        entry = self.tests.setdefault(report.nodeid, {"name": report.nodeid, "outcome": "passed", "message": "",
                                                     "seconds": 0.0})  # fmt: skip
        entry["seconds"] = round(entry["seconds"] + float(getattr(report, "duration", 0.0)), 6)
        if report.skipped and report.when in ("setup", "call"):
            entry["outcome"] = "skipped"
            entry["message"] = _message(report)
        elif report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = _message(report)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collect_errors.append({"name": report.nodeid or "collection", "outcome": "error",
                                        "message": _message(report), "seconds": 0.0})  # fmt: skip


def _message(report: Any) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        text = str(crash.message)
    else:
        text = str(getattr(report, "longreprtext", "") or getattr(report, "longrepr", "") or "")
    lines = [line for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else "")[:MAX_MESSAGE]


def run_session(plugin_dir: str, args: list[str], isolation: str) -> dict[str, Any]:
    """Run pytest over ``plugin_dir/tests`` with ``args`` (e.g. ``-k EXPR``); the report."""
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ[ENV_FLAG] = isolation
    os.environ.setdefault("HOME", "/tmp")
    ini = os.path.join(os.environ.get("TMPDIR", "/tmp"), "synapse-pytest.ini")
    with open(ini, "w") as fh:  # the plugin's tests, not whatever configuration its folder holds
        fh.write("[pytest]\n")
    import pytest

    collector = _Collector()
    argv = [os.path.join(plugin_dir, "tests"), "-c", ini, "--rootdir", plugin_dir, "-p", "synapse_nb.testing",
            "-p", "no:cacheprovider", "-p", "no:pastebin", "-v", *args]  # fmt: skip
    t0 = time.perf_counter()
    sys.stdout.flush()
    code = pytest.main(argv, plugins=[collector])
    sys.stdout.flush()
    sys.stderr.flush()
    tests = collector.collect_errors + list(collector.tests.values())
    return {"exit": int(code), "tests": tests, "seconds": round(time.perf_counter() - t0, 3)}

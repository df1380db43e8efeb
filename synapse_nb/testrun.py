"""``plugin test``: a plugin's own ``tests/`` run by pytest inside its jail, never on the host.

The activation pipeline runs in ``test`` mode: snapshot, signature (required, as for ``run``; the same
``--insecure-allow-unsigned`` waiver), static validation, environment, then a worker whose guest does not
import the handler but runs the whole pytest session (test files, ``conftest.py``, the handler through the
``plugin`` fixture) under the plugin's own policy. See :mod:`synapse_nb.sandbox.testsession` for the jail side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .activation import ActivationOptions, activate
from .errors import InvalidError, PluginFailed, SynapseError
from .sandbox.pool import release_slot

__all__ = ["DEFAULT_TIMEOUT_S", "TestReport", "run_plugin_tests"]

DEFAULT_TIMEOUT_S = 600.0
# pytest's exit codes: 0 all passed, 1 some failed, 2 interrupted, 3 internal error, 4 usage error, 5 none collected.
PYTEST_OK, PYTEST_FAILED, PYTEST_NO_TESTS = 0, 1, 5


@dataclass
class TestReport:
    """The outcome of one jailed test session."""

    plugin: str
    version: str
    path: str
    pytest_exit: int
    tests: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""
    isolation: str = ""
    signed: bool = True
    seconds: float = 0.0

    __test__ = False  # not a pytest test class

    @property
    def counts(self) -> dict[str, int]:
        return {k: sum(1 for t in self.tests if t["outcome"] == k) for k in ("passed", "failed", "error", "skipped")}

    @property
    def ok(self) -> bool:
        return self.pytest_exit == PYTEST_OK

    def error(self) -> SynapseError | None:
        """The error this outcome is (exit 7 for failures, 3 when nothing was collected), or None."""
        if self.ok:
            return None
        if self.pytest_exit == PYTEST_NO_TESTS:
            return InvalidError(f"{self.path}/tests: no tests were collected", plugin=self.plugin)
        bad = [t for t in self.tests if t["outcome"] in ("failed", "error")]
        if self.pytest_exit == PYTEST_FAILED and bad:
            first = bad[0]
            return PluginFailed(
                f"{len(bad)} of {len(self.tests)} tests failed, first {first['name']}: {first['message']}",
                plugin=self.plugin,
                details=[f"{t['outcome']}: {t['name']}: {t['message']}" for t in bad[1:]],
            )
        tail = [line for line in self.output.splitlines() if line.strip()][-5:]
        first_bad = f": {bad[0]['name']}: {bad[0]['message']}" if bad else ""
        return PluginFailed(f"pytest stopped with exit status {self.pytest_exit}{first_bad}", plugin=self.plugin,
                            details=tail)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, **self.counts, "tests": self.tests, "seconds": self.seconds}


def run_plugin_tests(
    folder: str | Path,
    *,
    keyword: str | None = None,
    options: ActivationOptions | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> TestReport:
    """Run ``folder``'s tests in its jail; the report (failures are in it, not raised). Activation failures
    (signature, validation, sandbox) are raised as usual."""
    options = dataclasses.replace(options or ActivationOptions(), mode="test", state={}, prewarm=False)
    plan, slot = activate(folder, options)
    args = ["-k", keyword] if keyword else []
    try:
        worker, _started = slot.worker()
        _worker, call, _ = slot.run(lambda w: w.run_tests(args, timeout_ms=int(timeout_s * 1000)))
        output = worker.stdout.text()
    finally:
        release_slot(slot)
    report = call.result if isinstance(call.result, dict) else {}
    raw_tests = report.get("tests")
    tests = [t for t in raw_tests if isinstance(t, dict)] if isinstance(raw_tests, list) else []
    return TestReport(
        plugin=plan.name,
        version=str(plan.manifest.version),
        path=plan.shown,
        pytest_exit=int(report.get("exit", 3)) if isinstance(report.get("exit", 3), int) else 3,
        tests=[_clean(t) for t in tests],
        output=output,
        isolation=worker.isolation,
        signed=plan.signature is not None and plan.signature.signed,
        seconds=float(report.get("seconds", 0.0)) if isinstance(report.get("seconds"), (int, float)) else 0.0,
    )


def _clean(entry: dict[str, Any]) -> dict[str, Any]:
    """One test entry from the jail, with the fields and types the report promises (the jail is untrusted)."""
    outcome = entry.get("outcome")
    return {
        "name": str(entry.get("name", "?"))[:500],
        "outcome": outcome if outcome in ("passed", "failed", "error", "skipped") else "error",
        "message": str(entry.get("message", ""))[:2000],
        "seconds": float(entry["seconds"]) if isinstance(entry.get("seconds"), (int, float)) else 0.0,
    }

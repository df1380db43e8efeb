"""Helpers for isolation tests: an nsjail that fails the way nsjail does where namespaces cannot be created."""

from __future__ import annotations

from pathlib import Path

# What nsjail logs on Binder and in unprivileged containers, and its exit status there.
FAILING_NSJAIL = """#!/bin/sh
echo "[E][2026-01-01T00:00:00+0000][7] clone():461 clone(flags=CLONE_NEWNS|CLONE_NEWUSER|CLONE_NEWNET) failed: \
Operation not permitted" >&2
exit 255
"""


def write_failing_nsjail(directory: Path) -> Path:
    """An executable ``nsjail`` in ``directory`` that always fails to create its namespaces."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "nsjail"
    path.write_text(FAILING_NSJAIL)
    path.chmod(0o755)
    return path

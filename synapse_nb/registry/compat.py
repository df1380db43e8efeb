"""The compatibility check a registry runs before it accepts a new version: the seam for the compat differ.

``check_compat(old_archive, new_archive)`` compares the archive of the previous version with the new one and
answers a verdict dict: ``{"checked": True, "ok": bool, "required_bump": "major|minor|patch", ...}`` once the
interface differ (``synapse_nb.compat``, being built) is wired in here; until then it answers
``{"checked": False, "reason": ...}`` and the registry says "not checked" in its publish response. A verdict with
``checked: True, ok: False`` makes the registry refuse the upload (422).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["check_compat"]


def check_compat(old_archive: Path, new_archive: Path) -> dict[str, Any]:
    """The compatibility verdict of ``new_archive`` against ``old_archive`` (both ``.synapse`` files)."""
    return {"checked": False, "reason": "compatibility checking not available"}

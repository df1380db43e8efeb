"""Units written in manifests and config: durations such as ``1500ms``, ``2s``, ``1m30s``."""

from __future__ import annotations

import re

__all__ = ["DURATION_PATTERN", "format_duration_ms", "parse_duration_ms"]

DURATION_PATTERN = r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_FULL = re.compile(DURATION_PATTERN)
_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_duration_ms(text: str) -> int:
    """Milliseconds in a duration string (``1500ms``, ``2s``, ``1.5s``, ``1m30s``); ``ValueError`` otherwise."""
    if not isinstance(text, str) or not _FULL.match(text.strip()):
        raise ValueError(f"{text!r} is not a duration (use a number and a unit: 1500ms, 2s, 1m, 1h)")
    total = sum(float(num) * _MS[unit] for num, unit in _PART.findall(text.strip()))
    return round(total)


def format_duration_ms(ms: int) -> str:
    """The shortest exact spelling of ``ms`` (``1500ms``, ``2s``, ``1m``)."""
    for unit in ("h", "m", "s"):
        if ms and ms % _MS[unit] == 0:
            return f"{ms // _MS[unit]}{unit}"
    return f"{ms}ms"

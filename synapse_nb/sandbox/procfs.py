"""Readings of a worker's processes from ``/proc``: which pid is the guest, its CPU time and resident memory."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["child_pid", "cpu_seconds", "rss_bytes"]


def child_pid(pid: int) -> int | None:
    """The first child of ``pid`` (nsjail's child is the guest interpreter), or None."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def cpu_seconds(pid: int) -> float:
    """CPU time ``pid`` has used (user + system), 0.0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` in bytes, 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0

"""A verdict as people read it: the header, one row per change, what is asked for, the notes.

Shared by ``synapse-cli plugin compat`` and the notebook's ``%synapse compat NAME`` (which the notebook layer
builds on :func:`verdict_lines`), so both show the same table.
"""

from __future__ import annotations

from .verdict import Verdict

__all__ = ["verdict_lines"]

_MADE = {"none": "the same version", "downgrade": "a downgrade", "prerelease": "a pre-release step"}
_HEADER = ("BUMP", "RULE", "FILE:LINE", "POINTER", "CHANGE")


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] for row in rows]


def verdict_lines(v: Verdict) -> list[str]:
    """The lines of the table: ``*`` marks a change accepted in ``compat.yaml``, ``!`` a flagged one."""
    lines = [f"{v.name} {v.old_version} -> {v.new_version} ({_MADE.get(v.bump_made, v.bump_made + ' bump')})"]
    rows: list[tuple[str, ...]] = [_HEADER]
    for c in v.changes:
        bump = c.bump + ("*" if c.accepted else "") + ("!" if c.flagged else "")
        rows.append((bump, c.rule, c.location or "-", c.pointer or "/", c.message))
    lines += _table(rows) if v.changes else ["no changes"]
    for c in v.changes:
        if c.accepted:
            lines.append(f"* accepted in compat.yaml ({c.rule} at {c.at}): {c.accepted}")
        if c.flagged:
            lines.append(f"! {c.message}")
    if v.asks_for_more:
        lines.append("asks for more: " + "; ".join(v.asks_for_more))
    lines += [f"note: {note}" for note in v.notes]
    return lines

"""What the compatibility checker reports: one :class:`Change` per difference, and the bump each one needs.

A change is judged by what it does to the set of values a schema accepts (its *effect*: ``widen``, ``narrow``,
``change`` both ways, ``unknown`` when the checker cannot decide, or ``annotation``) and by the direction of the
data: a caller's old inputs must stay valid, so inputs may only widen in a minor release; a caller's old
expectations of outputs must stay true, so outputs may only narrow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..errors import InvalidError

__all__ = [
    "BUMPS",
    "Bump",
    "Change",
    "CompatibilityError",
    "Direction",
    "Effect",
    "bump_for",
    "max_bump",
]

Bump = Literal["none", "patch", "minor", "major"]
Direction = Literal["input", "output", "interface", "implementation"]
Effect = Literal["widen", "narrow", "change", "unknown", "annotation", "additive"]
Side = Literal["old", "new"]

BUMPS: tuple[Bump, ...] = ("none", "patch", "minor", "major")


def max_bump(bumps: Any) -> Bump:
    """The largest of ``bumps`` (``"none"`` for none)."""
    best: Bump = "none"
    for bump in bumps:
        if BUMPS.index(bump) > BUMPS.index(best):
            best = bump
    return best


def bump_for(direction: Direction, effect: Effect) -> Bump:
    """The bump a change needs: inputs may widen and outputs narrow in a minor release; the rest is major."""
    if effect == "annotation":
        return "patch"
    if effect == "additive":
        return "minor"
    if effect == "widen":
        return "minor" if direction in ("input", "interface") else "major"
    if effect == "narrow":
        return "minor" if direction in ("output", "interface") else "major"
    return "major"


@dataclass(frozen=True)
class Change:
    """One difference between two versions of a plugin, located in the file of the side it is about.

    ``pointer`` is the JSON pointer inside ``file`` (a schema, ``manifest.yaml``...), ``line`` its line there,
    ``side`` says whether that file is the old version's or the new one's. ``where`` is the place in the
    payload the change affects (``/address/zip``; ``/*`` is every item or member). ``rule`` is a stable id in
    the style of oasdiff (``input-property-became-required``).
    """

    rule: str
    direction: Direction
    effect: Effect
    bump: Bump
    message: str
    file: str = ""
    pointer: str = ""
    side: Side = "new"
    where: str = ""
    line: int | None = None
    flagged: bool = False
    asks_for_more: str | None = None
    example: Any = None
    has_example: bool = False
    accepted: str | None = field(default=None, compare=False)

    @property
    def undecidable(self) -> bool:
        """The checker cannot prove this change compatible (a changed pattern, ``if``/``then``...)."""
        return self.effect == "unknown"

    @property
    def at(self) -> str:
        """``file#pointer``: how ``compat.yaml`` names the place of an undecidable change."""
        return f"{self.file}#{self.pointer}"

    @property
    def location(self) -> str:
        """``file:line`` (``(old)`` when the place is in the old version's file)."""
        text = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{text} (old)" if self.side == "old" and text else text

    def located(self, line: int | None) -> Change:
        return replace(self, line=line)

    def __str__(self) -> str:
        where = f" ({self.location})" if self.file else ""
        return f"{self.direction}: {self.message}{where} [{self.rule}, {self.bump}]"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "direction": self.direction,
            "effect": self.effect,
            "bump": self.bump,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "pointer": self.pointer,
            "side": self.side,
            "where": self.where,
        }
        if self.flagged:
            out["flagged"] = True
        if self.asks_for_more:
            out["asks_for_more"] = self.asks_for_more
        if self.has_example:
            out["example"] = self.example
        if self.accepted is not None:
            out["accepted"] = self.accepted
        return out


class CompatibilityError(InvalidError):
    """A new version's number is too small for its changes, lower than one already signed, or reused.

    ``kind`` is ``insufficient-bump``, ``downgrade`` or ``reused-version``; ``required_bump`` the bump the
    changes need (``patch``, ``minor``, ``major``), ``bump_made`` what the version number gives, ``baseline``
    the version compared with, ``suggested_version`` the smallest version that would be enough, and
    ``changes`` the deciding changes (JSON objects with their rule, pointer, file and line).
    """

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        kind: str = "insufficient-bump",
        required_bump: str = "major",
        bump_made: str = "none",
        baseline: str | None = None,
        suggested_version: str | None = None,
        changes: list[Any] | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, plugin=plugin, details=details)
        self.kind = kind
        self.required_bump = required_bump
        self.bump_made = bump_made
        self.baseline = baseline
        self.suggested_version = suggested_version
        self.changes: list[Any] = list(changes or [])

    def _extra_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "required_bump": self.required_bump,
            "bump_made": self.bump_made,
            "baseline": self.baseline,
            "suggested_version": self.suggested_version,
            "changes": self.changes,
        }

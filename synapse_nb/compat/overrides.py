"""``compat.yaml``: the author's recorded reasons for changes the checker cannot prove compatible.

Where the differ cannot decide (a changed ``pattern``, ``if``, overlapping ``oneOf`` branches, a changed input
``default``...) the change needs a major release. An author who knows better says so in ``compat.yaml`` at the
top of the plugin folder, which is signed with the rest of the file set, so the reason travels with the version
and anyone can read who claimed what::

    accept:
      - rule: input-pattern-changed
        at: schemas/input_schema.json#/properties/email/pattern   # as `plugin compat` prints it
        against: 1.2.0          # the version this change is measured from
        bump: minor             # what the change needs instead of major: minor or patch (default minor)
        reason: the new pattern only adds '+' to the local part; every address valid before still is

An entry applies to exactly one change (rule, place and base version): a later change at the same place is
judged afresh. Only undecidable changes can be accepted; a change the checker proved breaking cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidError, Problem
from ..semver import SemVer
from ..yamlpos import LocatedDocument, YamlProblems, load_located_yaml

__all__ = ["OVERRIDES_FILE", "Override", "load_overrides", "parse_overrides"]

OVERRIDES_FILE = "compat.yaml"
MIN_REASON = 10
_KEYS = {"rule", "at", "against", "bump", "reason"}


@dataclass(frozen=True)
class Override:
    """One accepted change: ``rule`` at ``at`` (``file#pointer``) when comparing from version ``against``."""

    rule: str
    at: str
    against: SemVer
    bump: str
    reason: str
    line: int

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "at": self.at,
            "against": str(self.against),
            "bump": self.bump,
            "reason": self.reason,
            "line": self.line,
        }


def _entry(doc: LocatedDocument, i: int, item: Any, problems: list[Problem]) -> Override | None:
    pointer = f"/accept/{i}"
    if not isinstance(item, dict):
        problems.append(doc.problem(pointer, "each entry is a mapping with rule, at, against and reason"))
        return None
    for key in sorted(set(item) - _KEYS):
        problems.append(doc.problem(f"{pointer}/{key}", f"unknown key {key!r} (use {', '.join(sorted(_KEYS))})"))
    for key in ("rule", "at", "against", "reason"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            problems.append(doc.problem(pointer, f"missing {key!r} (a non-empty string)"))
    if problems:
        return None
    try:
        against = SemVer.parse(item["against"])
    except ValueError as exc:
        problems.append(doc.problem(f"{pointer}/against", str(exc)))
        return None
    bump = item.get("bump", "minor")
    if bump not in ("minor", "patch"):
        problems.append(doc.problem(f"{pointer}/bump", f"bump {bump!r} must be 'minor' or 'patch'"))
        return None
    if len(item["reason"].strip()) < MIN_REASON:
        problems.append(doc.problem(f"{pointer}/reason", "say why the change is compatible (a sentence, not a word)"))
        return None
    if "#" not in item["at"]:
        problems.append(doc.problem(f"{pointer}/at", "write the place as FILE#POINTER, as `plugin compat` prints it"))
        return None
    return Override(
        item["rule"].strip(), item["at"].strip(), against, bump, item["reason"].strip(), doc.position(pointer)[0]
    )


def parse_overrides(raw: bytes | str, *, file: str = OVERRIDES_FILE) -> list[Override]:
    """Every entry of a ``compat.yaml`` text; :class:`InvalidError` lists every problem, located."""
    try:
        doc = load_located_yaml(raw, file=file, max_bytes=256 << 10)
    except YamlProblems as exc:
        raise InvalidError.from_problems(exc.problems) from None
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("accept"), list):
        raise InvalidError.from_problems([doc.problem("", "compat.yaml holds `accept:`, a list of accepted changes")])
    problems: list[Problem] = []
    found: list[Override] = []
    for key in sorted(set(doc.data) - {"accept"}):
        problems.append(doc.problem(f"/{key}", f"unknown key {key!r} (compat.yaml holds only `accept:`)"))
    for i, item in enumerate(doc.data["accept"]):
        entry = _entry(doc, i, item, problems)
        if entry is not None:
            found.append(entry)
    if problems:
        raise InvalidError.from_problems(problems)
    return found


def load_overrides(folder: Path, display: str | None = None) -> list[Override]:
    """The overrides of the plugin in ``folder`` (none when it has no ``compat.yaml``)."""
    path = folder / OVERRIDES_FILE
    if not path.is_file():
        return []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidError(f"{display or path}: cannot read: {exc.strerror}") from None
    return parse_overrides(raw, file=display or str(path))

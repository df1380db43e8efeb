"""The verdict on a new version: every change, the bump they need, the bump made, and whether it is enough.

:func:`verdict` is what ``plugin compat``, the sign-time gate, ``PluginManager.load`` and the notebook call::

    v = verdict("old-folder", "new-folder")
    v.required_bump        # "none", "patch", "minor" or "major"
    v.sufficient           # the version bump made allows these changes
    v.compatible           # no major change: callers (and saved state) may carry over
    v.suggested_version    # the smallest version that would be enough

The syntactic comparison (interface, schemas, implementation files) is fast and deterministic; the semantic
check (values generated from the old schema, :mod:`.semantic`) runs only when ``examples`` is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..fileset import SIGNATURE_FILE
from ..manifest import MANIFEST_FILE
from ..schemas import INPUT_SCHEMA, OUTPUT_SCHEMA, SCHEMA_DIR
from ..semver import SemVer
from ..signing.diff import describe_changes, diff_filesets
from .contract import Contract
from .interface import diff_interface
from .model import Bump, Change, CompatibilityError, max_bump
from .overrides import OVERRIDES_FILE
from .schemadiff import diff_schema
from .versions import BumpMade, bump_made, is_sufficient, next_version

__all__ = ["Verdict", "compare", "suggest_version", "verdict"]

_INTERFACE_FILES = (MANIFEST_FILE, SIGNATURE_FILE, OVERRIDES_FILE)
DETAIL_LIMIT = 12


@dataclass(frozen=True)
class Verdict:
    """What changed from ``old`` to ``new`` and whether the new version number allows it."""

    name: str
    old_version: SemVer
    new_version: SemVer
    changes: tuple[Change, ...]
    required_bump: Bump
    bump_made: BumpMade
    suggested_version: SemVer
    notes: tuple[str, ...] = ()

    @property
    def sufficient(self) -> bool:
        """The bump made allows every change (a downgrade never does)."""
        return is_sufficient(self.required_bump, self.bump_made)

    @property
    def compatible(self) -> bool:
        """No change needs a major release: callers of the old version, and its saved state, carry over."""
        return self.required_bump != "major"

    @property
    def is_downgrade(self) -> bool:
        return self.bump_made == "downgrade"

    @property
    def asks_for_more(self) -> list[str]:
        """What the new version asks for that the old did not (network, memory, a GPU, secrets, time)."""
        return [c.asks_for_more for c in self.changes if c.asks_for_more]

    @property
    def blocking(self) -> list[Change]:
        """The changes that need the required bump, most telling first (proven breaking before undecidable)."""
        top = [c for c in self.changes if c.bump == self.required_bump]
        return sorted(top, key=lambda c: (c.undecidable, c.direction == "implementation"))

    def reasons(self) -> list[str]:
        """One line per change that decides the bump (for ``--version auto`` and the notebook's hint)."""
        if self.required_bump == "none":
            return ["nothing changed"]
        return [str(c) for c in self.blocking]

    def refusal(self, *, baseline: str | None = None, suggested: SemVer | None = None) -> CompatibilityError | None:
        """The one-line error for an insufficient bump (None when the bump made is enough)."""
        if self.sufficient:
            return None
        use = suggested or self.suggested_version
        made = f"{self.old_version} -> {self.new_version}"
        if self.is_downgrade:
            message = f"{self.new_version} is lower than {self.old_version}; use version {use}"
            kind = "downgrade"
        else:
            first = self.blocking[0]
            bump = "no" if self.bump_made == "none" else f"a {self.bump_made}"
            message = f"{first} needs a {self.required_bump} bump, but {made} is {bump} bump; use version {use}"
            kind = "insufficient-bump"
        more = [str(c) for c in self.blocking[1:DETAIL_LIMIT]]
        return CompatibilityError(
            message,
            plugin=self.name,
            kind=kind,
            required_bump=self.required_bump,
            bump_made=self.bump_made,
            baseline=baseline or str(self.old_version),
            suggested_version=str(use),
            changes=[c.to_json() for c in self.blocking],
            details=more,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "plugin": self.name,
            "old_version": str(self.old_version),
            "new_version": str(self.new_version),
            "required_bump": self.required_bump,
            "bump_made": self.bump_made,
            "sufficient": self.sufficient,
            "compatible": self.compatible,
            "suggested_version": str(self.suggested_version),
            "asks_for_more": self.asks_for_more,
            "changes": [c.to_json() for c in self.changes],
            "notes": list(self.notes),
        }


def _contract(source: Contract | str | Path) -> Contract:
    return source if isinstance(source, Contract) else Contract.from_folder(source)


def _schema_files(contract: Contract) -> dict[str, str] | None:
    """``schemas/*`` by path and sha256 (None when the file list is not known): equal means no schema change."""
    if contract.files is None:
        return None
    return {e.path: e.sha256 for e in contract.files.entries if e.path.startswith(f"{SCHEMA_DIR}/")}


def _implementation(old: Contract, new: Contract, found: list[Change]) -> list[Change]:
    if old.files is None or new.files is None or old.files.entries == new.files.entries:
        return []
    diffs = diff_filesets(old.files, new.files)
    outside = [
        d
        for d in diffs
        if d.path not in _INTERFACE_FILES
        and not d.path.startswith(f"{SCHEMA_DIR}/")
        and not (d.new_path or "").startswith(f"{SCHEMA_DIR}/")
    ]
    if outside:
        summary, _ = describe_changes(outside)
        return [
            Change(
                "implementation-changed",
                "implementation",
                "annotation",
                "patch",
                summary,
                file=outside[0].new_path or outside[0].path,
            )
        ]
    if not found:  # the interface files differ as bytes only (formatting, key order)
        summary, _ = describe_changes(diffs)
        return [
            Change(
                "content-changed",
                "implementation",
                "annotation",
                "patch",
                f"{summary} (no change in meaning)",
                file=diffs[0].path if diffs else "",
            )
        ]
    return []


def _apply_overrides(old: Contract, new: Contract, changes: list[Change]) -> tuple[list[Change], list[str]]:
    wanted = [o for o in new.overrides if o.against == old.version]
    used: set[int] = set()
    out: list[Change] = []
    for change in changes:
        match = next((o for o in wanted if o.rule == change.rule and o.at == change.at), None)
        if match is not None and change.undecidable:
            used.add(id(match))
            out.append(replace(change, bump=match.bump, accepted=match.reason))  # type: ignore[arg-type]
        else:
            out.append(change)
    notes: list[str] = []
    for override in wanted:
        if id(override) in used:
            continue
        proven = any(c.rule == override.rule and c.at == override.at for c in changes)
        why = "it is proven, not undecidable: bump the version" if proven else "no such change"
        notes.append(
            f"{OVERRIDES_FILE}:{override.line}: the override of {override.rule} at {override.at} was not "
            f"applied ({why})"
        )
    return out, notes


def compare(old: Contract, new: Contract) -> tuple[list[Change], list[str]]:
    """Every change from ``old`` to ``new`` (interface, input and output schemas, implementation), located."""

    def manifest_line(side: str, pointer: str) -> int | None:
        return (old if side == "old" else new).manifest_line(pointer)

    found = diff_interface(old.manifest, new.manifest, line_of=manifest_line)
    files_o, files_n = _schema_files(old), _schema_files(new)
    for name, direction in ((INPUT_SCHEMA, "input"), (OUTPUT_SCHEMA, "output")):
        if files_o is not None and files_n is not None:
            path = f"{SCHEMA_DIR}/{name}"
            if files_o == files_n:
                continue  # not one schema file changed
            if files_o.get(path) == files_n.get(path) and '"$ref"' not in old.schemas.texts.get(name, '"$ref"'):
                continue  # this schema is the same bytes and refers to no other file
        found += diff_schema(old.schemas, new.schemas, name, direction)  # type: ignore[arg-type]
    found += _implementation(old, new, found)
    return _apply_overrides(old, new, found)


def verdict(
    old: Contract | str | Path,
    new: Contract | str | Path,
    *,
    examples: int = 0,
    timeout_s: float = 10.0,
    extra: Iterable[Change] = (),
) -> Verdict:
    """Compare two versions of a plugin (folders or :class:`Contract` objects) and judge the version bump.

    ``examples`` > 0 adds the semantic check: that many values generated from the old input schema must
    validate against the new one (and from the new output schema against the old), within ``timeout_s``.
    ``extra`` adds changes found elsewhere (the previous version's tests, :func:`.previous.run_previous_tests`).
    """
    a, b = _contract(old), _contract(new)
    changes, notes = compare(a, b)
    if examples > 0:
        from .semantic import semantic_changes

        found, semantic_notes = semantic_changes(a, b, examples=examples, timeout_s=timeout_s)
        changes += found
        notes += semantic_notes
    changes += list(extra)
    required = max_bump(c.bump for c in changes)
    return Verdict(
        name=b.name,
        old_version=a.version,
        new_version=b.version,
        changes=tuple(changes),
        required_bump=required,
        bump_made=bump_made(a.version, b.version),
        suggested_version=next_version(a.version, required),
        notes=tuple(notes),
    )


def suggest_version(old: Contract | str | Path | None, new: Contract | str | Path) -> tuple[str, list[str]]:
    """The version ``new`` should carry after ``old``, and why (one reason per deciding change).

    With no previous version (``old`` None) the new folder's own version stands. A version the new folder
    already gives that is enough (and not lower) is kept: ``--version auto`` never lowers a choice.
    """
    b = _contract(new)
    if old is None:
        return str(b.version), ["no previous version: the version stays as written"]
    v = verdict(old, b)
    if v.sufficient and v.new_version > v.old_version:
        return str(v.new_version), [
            f"{v.old_version} -> {v.new_version} is enough ({v.required_bump} needed)",
            *v.reasons(),
        ]
    return str(v.suggested_version), [f"{v.required_bump} bump needed from {v.old_version}", *v.reasons()]

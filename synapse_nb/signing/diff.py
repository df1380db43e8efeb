"""What changed between the signed file set and the files on disk: modified, added, removed, renamed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..fileset import FileEntry, FileSet

__all__ = ["Change", "describe_changes", "diff_filesets"]

SUMMARY_LIMIT = 5

ChangeKind = Literal["modified", "added", "removed", "renamed"]


@dataclass(frozen=True)
class Change:
    """One difference; ``new_path`` is set for renames (same bytes, new name)."""

    kind: ChangeKind
    path: str
    new_path: str | None = None

    def __str__(self) -> str:
        if self.kind == "renamed":
            return f"{self.path} renamed to {self.new_path}"
        return f"{self.path} {self.kind}"


def diff_filesets(signed: FileSet, actual: FileSet) -> list[Change]:
    """Every difference, in path order; a removed and an added file with the same bytes count as a rename."""
    before, after = signed.by_path(), actual.by_path()
    changes: list[Change] = []
    removed: list[FileEntry] = []
    for path, entry in before.items():
        now = after.get(path)
        if now is None:
            removed.append(entry)
        elif now != entry:
            changes.append(Change("modified", path))
    added = [entry for path, entry in after.items() if path not in before]
    by_content: dict[tuple[str, int], list[FileEntry]] = {}
    for entry in added:
        by_content.setdefault((entry.sha256, entry.size), []).append(entry)
    for twins in by_content.values():
        twins.reverse()  # pop() from the end hands out the earliest path first
    renamed_to: set[str] = set()
    for entry in removed:
        candidates = by_content.get((entry.sha256, entry.size))
        if candidates:
            twin = candidates.pop()
            changes.append(Change("renamed", entry.path, twin.path))
            renamed_to.add(twin.path)
        else:
            changes.append(Change("removed", entry.path))
    changes.extend(Change("added", entry.path) for entry in added if entry.path not in renamed_to)
    changes.sort(key=lambda c: c.path.encode("utf-8"))
    return changes


def describe_changes(changes: list[Change]) -> tuple[str, list[str]]:
    """A one-line summary naming the first few changes, and one detail line per change."""
    shown = ", ".join(str(c) for c in changes[:SUMMARY_LIMIT])
    if len(changes) > SUMMARY_LIMIT:
        shown += f" and {len(changes) - SUMMARY_LIMIT} more"
    return shown, [str(c) for c in changes]

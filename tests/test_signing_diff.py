"""File-set differences: every change named, renames recognised by content."""

from __future__ import annotations

from synapse_nb.fileset import FileEntry, FileSet
from synapse_nb.signing.diff import Change, describe_changes, diff_filesets


def files(**contents: str) -> FileSet:
    entries = [FileEntry(path, len(sha), sha * 64) for path, sha in contents.items()]
    return FileSet(tuple(sorted(entries, key=lambda e: e.path.encode())))


def test_identical_sets_have_no_changes() -> None:
    assert diff_filesets(files(a="1", b="2"), files(a="1", b="2")) == []


def test_modified_added_removed_and_renamed_files_are_told_apart() -> None:
    signed = files(handler="1", old="2", gone="3")
    actual = files(handler="9", new="2", extra="4")
    assert diff_filesets(signed, actual) == [
        Change("added", "extra"),
        Change("removed", "gone"),
        Change("modified", "handler"),
        Change("renamed", "old", "new"),
    ]


def test_two_removed_files_with_the_same_bytes_pair_with_added_ones_in_order() -> None:
    signed = files(a="1", b="1")
    actual = files(c="1", d="1", e="1")
    assert diff_filesets(signed, actual) == [
        Change("renamed", "a", "c"),
        Change("renamed", "b", "d"),
        Change("added", "e"),
    ]


def test_the_summary_names_the_first_five_changes_and_counts_the_rest() -> None:
    changes = [Change("added", f"f{n}") for n in range(8)]
    summary, details = describe_changes(changes)
    assert summary == "f0 added, f1 added, f2 added, f3 added, f4 added and 3 more"
    assert details == [f"f{n} added" for n in range(8)]

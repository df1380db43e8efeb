"""The signed statement: canonical bytes, and strict parsing of every path it names."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from synapse_nb.fileset import FileEntry, FileSet
from synapse_nb.signing.envelope import EnvelopeError
from synapse_nb.signing.payload import Statement

SHA = "0" * 64
WHEN = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def statement(*paths: str) -> Statement:
    return Statement("demo", "1.0.0", WHEN, FileSet(tuple(FileEntry(p, 1, SHA) for p in paths)))


def test_a_statement_round_trips_and_its_bytes_are_canonical() -> None:
    original = statement("handler.py", "schemas/input_schema.json")
    data = original.to_bytes()
    assert Statement.from_bytes(data) == original
    assert data == statement("handler.py", "schemas/input_schema.json").to_bytes()
    obj = json.loads(data)
    assert list(obj) == sorted(obj)
    assert obj["signedAt"] == "2025-03-01T12:00:00Z"
    assert obj["plugin"] == {"name": "demo", "version": "1.0.0"}
    assert b" " not in data


def _payload(files: list[dict[str, Any]]) -> bytes:
    fileset = FileSet.from_json(files)
    obj = {"digest": fileset.digest, "files": files, "plugin": {"name": "d", "version": "1.0.0"}}
    obj["signedAt"] = "2025-03-01T12:00:00Z"
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "absolute"),
        ("../outside.py", "'..'"),
        ("a/./b.py", "'.'"),
        ("a//b.py", "empty"),
        ("a\\b.py", "backslash"),
        ("a\x00b.py", "control character"),
        ("cafe\u0301.py", "NFC"),
        ("synapse.sig.json", "signature file"),
    ],
)
def test_unsafe_paths_in_a_payload_are_refused(path: str, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        Statement.from_bytes(_payload([{"path": path, "size": 1, "sha256": SHA}]))


def test_unsorted_duplicate_and_case_colliding_paths_are_refused() -> None:
    entry = {"size": 1, "sha256": SHA}
    with pytest.raises(EnvelopeError, match="out of order"):
        Statement.from_bytes(_payload([{"path": "b.py", **entry}, {"path": "a.py", **entry}]))
    with pytest.raises(EnvelopeError, match="listed twice"):
        Statement.from_bytes(_payload([{"path": "a.py", **entry}, {"path": "a.py", **entry}]))
    with pytest.raises(EnvelopeError, match="case-insensitively"):
        Statement.from_bytes(_payload([{"path": "A.py", **entry}, {"path": "a.py", **entry}]))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "a.py", "size": True, "sha256": SHA}, "size"),
        ({"path": "a.py", "size": -1, "sha256": SHA}, "size"),
        ({"path": "a.py", "size": 1, "sha256": "A" * 64}, "sha256"),
        ({"path": "a.py", "size": 1, "sha256": SHA + "\n"}, "sha256"),
        ({"size": 1, "sha256": SHA}, "path"),
    ],
)
def test_bad_file_entries_are_refused(entry: dict[str, Any], message: str) -> None:
    obj = {"digest": "x", "files": [entry], "plugin": {"name": "d", "version": "1"}, "signedAt": "2025-03-01T12:00:00Z"}
    with pytest.raises(EnvelopeError, match=message):
        Statement.from_bytes(json.dumps(obj).encode())


def test_a_digest_that_does_not_match_the_files_is_refused() -> None:
    obj = json.loads(statement("a.py").to_bytes())
    obj["digest"] = "f" * 64
    with pytest.raises(EnvelopeError, match="digest"):
        Statement.from_bytes(json.dumps(obj).encode())


def test_a_signing_time_in_another_format_is_refused() -> None:
    obj = json.loads(statement("a.py").to_bytes())
    obj["signedAt"] = "2025-03-01 12:00"
    with pytest.raises(EnvelopeError, match="signedAt"):
        Statement.from_bytes(json.dumps(obj).encode())


def test_a_payload_without_plugin_name_and_version_is_refused() -> None:
    obj = json.loads(statement("a.py").to_bytes())
    obj["plugin"] = {"name": "demo"}
    with pytest.raises(EnvelopeError, match="'plugin'"):
        Statement.from_bytes(json.dumps(obj).encode())

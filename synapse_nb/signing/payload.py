"""The signed statement inside the envelope: which plugin, which version, when, and exactly which files.

The payload is canonical JSON (sorted keys, no whitespace, UTF-8)::

    {"digest": "<FileSet.digest>",
     "files": [{"path": "handler.py", "size": 1234, "sha256": "..."}, ...],   # sorted by UTF-8 bytes of path
     "plugin": {"name": "sentiment-analyzer", "version": "1.2.0"},
     "signedAt": "2025-01-31T12:00:00Z"}

Parsing is strict: every path must be one the file-set scanner could have produced (relative POSIX, no ``..``,
no backslash or control character, NFC, no case-insensitive collision, sorted, unique), so that a hand-made
payload cannot name files that a scan of a real folder would describe differently.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from ..fileset import SIGNATURE_FILE, FileEntry, FileSet
from .certs import utc
from .envelope import EnvelopeError

__all__ = ["Statement"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSAFE_CHAR = re.compile(r"[\x00-\x1f\x7f\\]")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Statement:
    """What a signature vouches for: ``name`` at ``version``, signed at ``signed_at``, made of ``files``."""

    name: str
    version: str
    signed_at: dt.datetime
    files: FileSet

    def to_bytes(self) -> bytes:
        obj = {
            "digest": self.files.digest,
            "files": self.files.to_json(),
            "plugin": {"name": self.name, "version": self.version},
            "signedAt": utc(self.signed_at).strftime(_TIME_FORMAT),
        }
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Statement:
        """Parse a payload; :class:`EnvelopeError` names the first thing that is wrong."""
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"payload is not UTF-8 JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise EnvelopeError("payload is not a JSON object")
        plugin = obj.get("plugin")
        if not isinstance(plugin, dict) or not all(isinstance(plugin.get(k), str) for k in ("name", "version")):
            raise EnvelopeError("payload has no 'plugin' object with 'name' and 'version' strings")
        signed_at = _parse_time(obj.get("signedAt"))
        files = FileSet(tuple(_entries(obj.get("files"))))
        if obj.get("digest") != files.digest:
            raise EnvelopeError("payload 'digest' does not match its 'files' list")
        return cls(plugin["name"], plugin["version"], signed_at, files)


def _parse_time(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise EnvelopeError("payload has no 'signedAt' time")
    try:
        return dt.datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise EnvelopeError(f"payload 'signedAt' {value!r} is not YYYY-MM-DDTHH:MM:SSZ") from exc


def _path_problem(path: str) -> str | None:
    if not path or path.startswith("/"):
        return "is empty or absolute"
    if _UNSAFE_CHAR.search(path):
        return "contains a backslash or a control character"
    if not unicodedata.is_normalized("NFC", path):
        return "is not NFC-normalised"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has an empty, '.' or '..' component"
    if path == SIGNATURE_FILE:
        return "is the signature file itself"
    return None


def _entries(value: object) -> list[FileEntry]:
    if not isinstance(value, list):
        raise EnvelopeError("payload has no 'files' list")
    entries: list[FileEntry] = []
    folded: set[str] = set()
    previous = b""
    for item in value:
        entry = _entry(item)
        why = _path_problem(entry.path)
        if why is not None:
            raise EnvelopeError(f"payload path {entry.path!r} {why}")
        key = entry.path.encode("utf-8")
        if entries and key <= previous:
            raise EnvelopeError(f"payload path {entry.path!r} is out of order or listed twice")
        if entry.path.casefold() in folded:
            raise EnvelopeError(f"payload path {entry.path!r} collides case-insensitively with another")
        folded.add(entry.path.casefold())
        previous = key
        entries.append(entry)
    return entries


def _entry(item: Any) -> FileEntry:
    if not isinstance(item, dict):
        raise EnvelopeError("payload 'files' entry is not an object")
    path, size, sha = item.get("path"), item.get("size"), item.get("sha256")
    if not isinstance(path, str):
        raise EnvelopeError("payload 'files' entry has no 'path' string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise EnvelopeError(f"payload 'files' entry {path!r} has no valid 'size'")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise EnvelopeError(f"payload 'files' entry {path!r} has no lower-case hex 'sha256'")
    return FileEntry(path, size, sha)

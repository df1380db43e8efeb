"""What a client remembers about each registry, under ``$SYNAPSE_HOME/registry/NAME/``.

::

    state.json    {"highest_version": N, "payload_sha256": "...", "signer": "...", "endpoint": "...",
                   "fetched_at": 1700000000.0, "etag": "..."}      rollback protection; written (fsync) last
    index.json    the verified index payload (plain JSON: this folder is as trusted as the trust store)
    search.jsonl  one line per plugin [name, latest, category, description, tags]: what `plugin search` reads

Rollback protection in the spirit of TUF: an index is accepted only when its ``version`` is at least the highest
accepted before, and an index with the *same* version must be byte-identical to the one accepted then (a
registry may not show two different "version N"s). The state is updated only after the index verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SignatureError
from ..paths import atomic_write
from .index import TIME_FORMAT, Index, SignedIndex
from .settings import registry_dir

__all__ = ["CachedIndex", "SearchRow", "accept", "load_index", "load_rows", "read_state", "search_rows"]

SearchRow = list[Any]  # [name, latest version, category, description, tags]


@dataclass(frozen=True)
class CachedIndex:
    """A registry's last accepted index and when it was fetched."""

    registry: str
    index: Index
    fetched_at: float
    etag: str | None


def read_state(name: str) -> dict[str, Any]:
    try:
        data = json.loads((registry_dir(name) / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check_rollback(name: str, signed: SignedIndex) -> None:
    """SignatureError (exit 4, reason ``rollback``) when ``signed`` is older than what was accepted before."""
    state = read_state(name)
    highest = state.get("highest_version")
    if not isinstance(highest, int):
        return
    version = signed.index.version
    if version < highest:
        raise SignatureError(
            f"registry {name!r}: index rollback: the registry served index version {version}, but version "
            f"{highest} was accepted before (a stale mirror or a replay); refusing it",
            reason="rollback",
        )
    if version == highest and state.get("payload_sha256") not in (None, _sha(signed.payload)):
        raise SignatureError(
            f"registry {name!r}: index rollback: the registry served a different index with the same version "
            f"{version}; refusing it",
            reason="rollback",
        )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def search_rows(index: Index) -> list[SearchRow]:
    """One compact row per plugin with at least one version that is not yanked."""
    return index.search_rows()


_ROW = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def accept(name: str, signed: SignedIndex, *, endpoint: str, etag: str | None, check: bool = True) -> CachedIndex:
    """Record a verified index as this registry's current one (after the rollback check)."""
    if check:
        check_rollback(name, signed)
    folder = registry_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    # Caches first, then the state: a crash in between leaves the old state, never a state without its index.
    _write_fast(folder / "index.json", signed.payload)
    lines = [_ROW(row) for row in search_rows(signed.index)]
    _write_fast(folder / "search.jsonl", "\n".join(lines).encode())
    now = time.time()
    state = {
        "highest_version": signed.index.version,
        "payload_sha256": _sha(signed.payload),
        "signer": signed.signer,
        "root_fingerprint": signed.root_fingerprint,
        "endpoint": endpoint,
        "fetched_at": now,
        "etag": etag,
        "expires": signed.index.expires.strftime(TIME_FORMAT),
    }
    atomic_write(folder / "state.json", json.dumps(state, indent=2).encode(), 0o600)
    return CachedIndex(name, signed.index, now, etag)


def touch(name: str) -> None:
    """The registry answered "not modified": the cached index is fresh as of now."""
    state = read_state(name)
    if state:
        state["fetched_at"] = time.time()
        atomic_write(registry_dir(name) / "state.json", json.dumps(state, indent=2).encode(), 0o600)


def _write_fast(path: Path, data: bytes) -> None:
    """Atomic replace without fsync: a cache that can always be fetched again."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def load_index(name: str, *, endpoint: str | None = None) -> CachedIndex | None:
    """The cached index of ``name`` (None when there is none, or it was fetched from another endpoint)."""
    state = read_state(name)
    if not state or (endpoint is not None and state.get("endpoint") != endpoint):
        return None
    try:
        payload = (registry_dir(name) / "index.json").read_bytes()
        index = Index.from_json(json.loads(payload))
    except (OSError, ValueError):
        return None
    if _sha(payload) != state.get("payload_sha256"):
        return None
    return CachedIndex(name, index, float(state.get("fetched_at", 0)), state.get("etag"))


def load_rows(
    name: str, *, endpoint: str | None = None, keep: Callable[[str], bool] | None = None
) -> list[SearchRow] | None:
    """The cached search rows of ``name`` (None when not cached): the fast path of ``plugin search``.

    ``keep`` sees each row's raw JSON line first; only the lines it keeps are parsed (a cheap pre-filter for
    searches, which must then check the parsed row exactly).
    """
    state = read_state(name)
    if not state or (endpoint is not None and state.get("endpoint") != endpoint):
        return None
    try:
        text = (registry_dir(name) / "search.jsonl").read_text(encoding="utf-8")
    except OSError:
        return None
    rows = []
    for line in text.splitlines():
        if keep is None or keep(line):
            try:
                row = json.loads(line)
            except ValueError:
                return None
            rows.append(row)
    return rows

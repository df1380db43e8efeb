"""The local history of signed versions: the contract of every version a publisher signed, under SYNAPSE_HOME.

Each ``plugin sign`` records the version it signed in one small JSON file (manifest and schemas with their
texts, the file list and digest; never code)::

    $SYNAPSE_HOME/history/<name>/<publisher>/<version>.json

The *publisher* is the key that issued the signing certificate (its authority key identifier), so renewing the
developer certificate (``keys init --renew``, or the automatic renewal at expiry) keeps one history, and every
developer whose certificate an organisation's CA issued shares that organisation's history. A self-signed or
identifier-less certificate is its own publisher (the sha256 of its public key).

The sign-time gate (:mod:`.gate`) compares each new version with this history; ``plugin compat NAME@VERSION``
reads it; the registry's resolver may too. Records are replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..paths import synapse_home
from ..semver import SemVer, SemVerRange
from .contract import Contract

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["HISTORY_DIR", "HistoryRecord", "find_record", "publisher_id", "records", "write_record"]

HISTORY_DIR = "history"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a plugin name (manifest v1): a safe folder name
MAX_RECORD_BYTES = 8 << 20


def history_root() -> Path:
    """``$SYNAPSE_HOME/history``."""
    return synapse_home() / HISTORY_DIR


def publisher_id(chain: list[x509.Certificate]) -> str:
    """The publisher of a signing chain: the issuing key's identifier (hex), else the leaf key's sha256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    leaf = chain[0]
    try:
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    if aki and leaf.issuer != leaf.subject:
        return "aki-" + aki.hex()
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "key-" + hashlib.sha256(spki).hexdigest()[:40]


def _key(version: SemVer) -> str:
    """The file name of a version: build metadata does not make another version."""
    return str(SemVer(version.major, version.minor, version.patch, version.prerelease))


@dataclass(frozen=True)
class HistoryRecord:
    """One recorded version; :meth:`contract` reads it."""

    name: str
    publisher: str
    version: SemVer
    path: Path

    def data(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
            if len(raw) > MAX_RECORD_BYTES:
                raise ValueError(f"over {MAX_RECORD_BYTES >> 20} MiB")
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return data
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path}: cannot read this history record ({exc}); remove it") from None

    def contract(self) -> Contract:
        return Contract.from_record(self.data(), origin=f"{self.name}@{self.version} (history)")

    @property
    def digest(self) -> str | None:
        digest = self.data().get("digest")
        return digest if isinstance(digest, str) else None


def records(name: str, publisher: str | None = None) -> list[HistoryRecord]:
    """Every recorded version of ``name`` (by ``publisher``, or by anyone), lowest first."""
    folder = history_root() / name
    if not folder.is_dir():
        return []
    found: list[HistoryRecord] = []
    publishers = [folder / publisher] if publisher is not None else sorted(p for p in folder.iterdir() if p.is_dir())
    for pub in publishers:
        if not pub.is_dir():
            continue
        for path in pub.glob("*.json"):
            try:
                version = SemVer.parse(path.stem)
            except ValueError:
                continue
            found.append(HistoryRecord(name, pub.name, version, path))
    found.sort(key=lambda r: (r.version, r.publisher))
    return found


def write_record(contract: Contract, publisher: str, **extra: Any) -> Path:
    """Record ``contract`` as signed by ``publisher`` (replacing a record of the same version).

    A new version's record is created in place (``O_EXCL``: no other writer can be half-way through it); a
    replaced record is written beside it and renamed over it, so readers see the old record or the new one.
    Neither is fsync'ed: this runs on every ``plugin sign``, and a record lost to a power cut only makes the next
    comparison start one version earlier (a record cut short says so when read, naming the file to remove).
    """
    folder = history_root() / contract.name / publisher
    path = folder / f"{_key(contract.version)}.json"
    data = json.dumps(contract.to_record(publisher=publisher, **extra), ensure_ascii=False, default=str).encode()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            target = path
        except FileExistsError:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
            target = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            if target != path:
                os.replace(target, path)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot record {contract.id} in {folder}: {exc.strerror or exc}") from None
    return path


def find_record(spec: str) -> HistoryRecord:
    """``NAME@VERSION`` or ``NAME@RANGE`` (``^1.2``, ``~1.2.3``...; the highest match) from the local history."""
    name, _, wanted = spec.partition("@")
    if not _NAME.match(name) or not wanted:
        raise UsageError(f"{spec!r} is not NAME@VERSION (e.g. sentiment-analyzer@1.2.0 or sentiment-analyzer@^1.2)")
    try:
        range_ = SemVerRange.parse(wanted)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    known = records(name)
    matching = [r for r in known if range_.contains(r.version)]
    if not matching:
        have = ", ".join(sorted({str(r.version) for r in known})) or "none"
        raise UsageError(f"no signed version of {name!r} matches {wanted!r} in the local history (have: {have})")
    best = max(r.version for r in matching)
    top = [r for r in matching if r.version == best]
    if len({r.digest for r in top}) > 1:
        publishers = ", ".join(r.publisher for r in top)
        raise UsageError(
            f"{name}@{best} was signed with different content by {len(top)} publishers ({publishers}); "
            "compare with a folder or an archive instead"
        )
    return top[0]

"""A registry's storage on disk: content-addressed archives, the catalog, and the signed index.

::

    DIR/blobs/sha256/<hex>        every published archive, named by the sha256 of its bytes (never rewritten)
    DIR/catalog.json              the registry's own record: versions, digests, publisher, time, yank, compat
    DIR/index.json                the signed index (a DSSE envelope) that clients fetch
    DIR/keys/registry*.pem        the index signing identity (created on first start; see :mod:`.pki`)
    DIR/trust/roots/*.pem         the roots this registry accepts plugin signers from (`registry serve --trust`)
    DIR/.lock                     serialises publishers, also across server processes (flock)

Publishing verifies the archive in memory (:func:`~.archive.open_archive`: caps, safe names, signature against
the registry's *own* trust store), asks the compatibility seam about the previous version, then, under the
lock, refuses a version that exists with other bytes (versions are immutable; the same bytes again are a no-op),
stores the blob, updates the catalog and signs a new index with the next version number. Every file is replaced
atomically, so readers see the old index or the new one. The index is re-signed (next version, new expiry) when
half of its lifetime has passed, so a healthy registry never serves an expired index.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidError, SynapseError, UsageError
from ..paths import atomic_write
from ..semver import SemVer
from ..signing.certs import fingerprint, subject, utc
from ..signing.trust import TrustStore, add_root
from .archive import ArchiveLimits, VerifiedArchive, open_archive
from .compat import check_compat
from .index import NAME_PATTERN, Index, PluginEntry, Release, sign_index
from .pki import Identity, ensure_identity

__all__ = ["Conflict", "NotFound", "RegistryStore", "identity_summary"]

DEFAULT_INDEX_TTL = dt.timedelta(days=7)


class Conflict(SynapseError):
    """The version exists with other bytes (409)."""

    exit_code = 9
    code = "registry"


class NotFound(SynapseError):
    """No such plugin or version (404)."""

    exit_code = 9
    code = "registry"


@dataclass
class RegistryStore:
    """One registry folder; safe for concurrent publishers (threads and processes)."""

    root: Path
    index_ttl: dt.timedelta = DEFAULT_INDEX_TTL
    limits: ArchiveLimits = field(default_factory=lambda: ArchiveLimits(max_archive_bytes=100 << 20))
    compat: Callable[[Path, Path], dict[str, Any]] = check_compat

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._lock = threading.Lock()
        for sub in ("blobs/sha256", "keys", "trust/roots"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.identity, self.created_key = ensure_identity(
            self.root / "keys", "registry", f"synapse registry {self.root.resolve().name}"[:60]
        )
        if not (self.root / "index.json").exists():
            with self.locked():
                self._write_index(self._catalog())

    # -- files ---------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock, open(self.root / ".lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / sha256

    def trust(self) -> TrustStore:
        return TrustStore.load(home=self.root)

    def add_trusted_root(self, pem_path: Path) -> str:
        """Accept plugins signed under the CA in ``pem_path`` (returns its subject)."""
        from ..signing.certs import read_certificates

        try:
            cert = read_certificates(pem_path)[0]
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read certificate {str(pem_path)!r}: {exc}") from exc
        add_root(cert, home=self.root)
        return subject(cert)

    def _catalog(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / "catalog.json").read_bytes())
        except FileNotFoundError:
            return {"index_version": 0, "plugins": {}}
        if not isinstance(data, dict):
            raise UsageError(f"{self.root / 'catalog.json'} is not a registry catalog")
        return data

    def _write_catalog(self, catalog: dict[str, Any]) -> None:
        atomic_write(self.root / "catalog.json", json.dumps(catalog, indent=1, sort_keys=True).encode())

    # -- the index -----------------------------------------------------------------------------------------------
    def build_index(self, catalog: dict[str, Any], version: int, now: dt.datetime) -> Index:
        plugins = {}
        for name, entry in catalog["plugins"].items():
            releases = {
                v: Release(f"blobs/sha256/{r['sha256']}", r["sha256"], r["size"], r["yanked"], tuple(r["platforms"]))
                for v, r in entry["versions"].items()
            }
            plugins[name] = PluginEntry(
                name, releases, entry.get("category"), tuple(entry.get("tags", ())), entry.get("description", "")
            )
        return Index(version, (now + self.index_ttl).replace(microsecond=0), plugins)

    def _write_index(self, catalog: dict[str, Any], now: dt.datetime | None = None) -> int:
        """Sign the catalog as the next index version; the caller holds the lock."""
        moment = utc(now)
        version = int(catalog.get("index_version", 0)) + 1
        index = self.build_index(catalog, version, moment)
        catalog["index_version"] = version
        catalog["index_expires"] = index.expires.isoformat()
        data = sign_index(index, self.identity.key, self.identity.chain)
        self._write_catalog(catalog)
        atomic_write(self.root / "index.json", data)
        return version

    def index_bytes(self, now: dt.datetime | None = None) -> bytes:
        """The current signed index, re-signed first when half of its lifetime has passed."""
        path = self.root / "index.json"
        moment = utc(now)
        with contextlib.suppress(OSError, ValueError, KeyError):
            expires = json.loads(path.with_name("catalog.json").read_bytes()).get("index_expires")
            if expires and dt.datetime.fromisoformat(expires) - moment > self.index_ttl / 2:
                return path.read_bytes()
        with self.locked():
            self._write_index(self._catalog(), moment)
        return path.read_bytes()

    # -- publishing ----------------------------------------------------------------------------------------------
    def publish(self, data: bytes, name: str, version: str, publisher: str) -> tuple[int, dict[str, Any]]:
        """Verify and store an archive; ``(HTTP status, answer)``. Raises the verification errors as they are."""
        if not NAME_PATTERN.match(name):
            raise UsageError(f"{name!r} is not a plugin name (a lower-case DNS label)")
        try:
            SemVer.parse(version)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        archive = open_archive(data, trust=self.trust(), expected=(name, version), limits=self.limits)
        blob = self.blob_path(archive.sha256)
        if not blob.exists():
            atomic_write(blob, data)
        previous = self._previous(name, version)
        compat = {"checked": False, "reason": "first version"}
        if previous is not None:
            compat = self.compat(self.blob_path(previous[1]), blob)
        if compat.get("checked") and not compat.get("ok", True):
            raise InvalidError(
                f"{name} {version} is not a compatible successor of {previous[0] if previous else '?'}: "
                f"{compat.get('reason') or compat.get('summary') or 'see the compatibility report'}",
                plugin=name,
            )
        with self.locked():
            catalog = self._catalog()
            entry = catalog["plugins"].setdefault(name, {"versions": {}})
            existing = entry["versions"].get(version)
            if existing is not None:
                if existing["sha256"] == archive.sha256:
                    return 200, {"status": "unchanged", **self._answer(name, version, existing)}
                raise Conflict(
                    f"{name} {version} is already published with other content (sha256 {existing['sha256'][:16]}...);"
                    " versions are immutable: publish a new version"
                )
            record = self._record(archive, publisher, compat, previous[0] if previous else None)
            entry["versions"][version] = record
            if version == _highest(entry["versions"]):
                entry.update(_listing(archive))
            index_version = self._write_index(catalog)
        return 201, {"status": "published", "index_version": index_version, **self._answer(name, version, record)}

    def _previous(self, name: str, version: str) -> tuple[str, str] | None:
        """(version, sha256) of the highest published version below ``version``, for the compatibility check."""
        versions = self._catalog()["plugins"].get(name, {}).get("versions", {})
        new = SemVer.parse(version)
        lower = [(SemVer.parse(v), r["sha256"]) for v, r in versions.items() if SemVer.parse(v) < new]
        if not lower:
            return None
        best = max(lower, key=lambda item: item[0])
        return str(best[0]), best[1]

    @staticmethod
    def _record(
        archive: VerifiedArchive, publisher: str, compat: dict[str, Any], against: str | None
    ) -> dict[str, Any]:
        return {
            "sha256": archive.sha256,
            "size": archive.size,
            "platforms": list(archive.platforms),
            "yanked": False,
            "digest": archive.digest,
            "signer": archive.verification.signer_subject,
            "publisher": publisher,
            "published_at": utc(None).replace(microsecond=0).isoformat(),
            "compat": {**compat, "against": against},
        }

    @staticmethod
    def _answer(name: str, version: str, record: dict[str, Any]) -> dict[str, Any]:
        compat = record.get("compat", {})
        verdict = "checked" if compat.get("checked") else f"not checked ({compat.get('reason', 'unknown')})"
        return {
            "name": name,
            "version": version,
            "sha256": record["sha256"],
            "size": record["size"],
            "platforms": record["platforms"],
            "url": f"blobs/sha256/{record['sha256']}",
            "compat": compat,
            "compat_verdict": verdict,
        }

    def yank(self, name: str, version: str, *, yanked: bool, reason: str = "") -> dict[str, Any]:
        """Hide a version from resolution (or show it again); the archive stays where it is."""
        with self.locked():
            catalog = self._catalog()
            record = catalog["plugins"].get(name, {}).get("versions", {}).get(version)
            if record is None:
                raise NotFound(f"{name} {version} is not published here")
            record["yanked"] = yanked
            record["yank_reason"] = reason[:500] if yanked else ""
            index_version = self._write_index(catalog)
        return {"name": name, "version": version, "yanked": yanked, "index_version": index_version}

    def describe(self) -> dict[str, Any]:
        """For the start-up banner: who signs the index and which roots are trusted for plugins."""
        return {
            "signer": subject(self.identity.chain[0]),
            "root": str(self.identity.ca_path),
            "root_fingerprint": fingerprint(self.identity.ca),
            "trusted_plugin_roots": [subject(r) for r in self.trust().roots],
        }


def _highest(versions: dict[str, Any]) -> str:
    return str(max(SemVer.parse(v) for v in versions))


def _listing(archive: VerifiedArchive) -> dict[str, Any]:
    """What the index shows for a plugin, from its newest version's manifest."""
    manifest = archive.manifest
    category = manifest.category or (manifest.interfaces[0].type if manifest.interfaces else None)
    return {"category": category, "tags": list(manifest.tags), "description": manifest.description[:2000]}


def identity_summary(identity: Identity) -> str:
    return f"{subject(identity.chain[0])} (root sha256 {fingerprint(identity.ca)[:16]})"

"""The registry index: every plugin and version a registry serves, signed like a plugin (a DSSE envelope).

The payload is canonical JSON (sorted keys, no whitespace)::

    {"api_version": 1,
     "version": 42,                                  # increases with every change (rollback protection)
     "expires": "2026-12-31T00:00:00Z",              # clients refuse it afterwards (freeze protection)
     "plugins": {"sentiment-analyzer": {
         "category": "nlp", "tags": ["text"], "description": "...",
         "versions": {"1.2.0": {"url": "blobs/sha256/ab...", "sha256": "ab...", "size": 1234,
                                "yanked": false, "platforms": ["any"]}}}}}

It travels as an envelope of type :data:`INDEX_PAYLOAD_TYPE` whose signature carries the registry's certificate
chain, checked against the client's trust store exactly as a plugin signer's is (code-signing usage, validity,
revocation). ``url`` is relative to the registry's endpoint: an index cannot send a client, or its bearer token,
anywhere else. In the spirit of TUF's timestamp role, the client keeps the highest ``version`` it has accepted
per registry and refuses a lower one, and refuses an index past ``expires`` (see :mod:`.client`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from ..errors import SignatureError
from ..semver import SemVer
from ..signing.certs import PrivateKey, fingerprint, subject, utc
from ..signing.chain import ChainProblem, validate_chain
from ..signing.envelope import Envelope, EnvelopeError, sign_envelope, verify_bytes
from ..signing.trust import TrustStore

__all__ = [
    "API_VERSION",
    "INDEX_PAYLOAD_TYPE",
    "Index",
    "PluginEntry",
    "Release",
    "SignedIndex",
    "sign_index",
    "verify_index",
]

API_VERSION = 1
INDEX_PAYLOAD_TYPE = "application/vnd.synapse.registry-index.v1+json"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HEX = "0123456789abcdef"
_URL = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")
_MAX_TEXT = 2000


# Indexes repeat the same version strings thousands of times ("1.0.0"): parse each distinct one once.
parse_version = functools.lru_cache(maxsize=65536)(SemVer.parse)


@functools.lru_cache(maxsize=65536)
def version_key(version: str) -> tuple[Any, ...]:
    """A sort key with SemVer precedence (cached; ``max(versions, key=version_key)`` is the latest)."""
    parsed = parse_version(version)
    pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parsed.prerelease)
    return (parsed.major, parsed.minor, parsed.patch, 0 if parsed.prerelease else 1, pre)


class _Malformed(ValueError):
    """The signed payload is not an index (reported as a ``malformed`` SignatureError)."""


@dataclass(frozen=True)
class Release:
    """One published version of a plugin."""

    url: str
    sha256: str
    size: int
    yanked: bool = False
    platforms: tuple[str, ...] = ("any",)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "sha256": self.sha256,
            "size": self.size,
            "yanked": self.yanked,
            "platforms": list(self.platforms),
        }


@dataclass(frozen=True)
class PluginEntry:
    """A plugin and all of its versions (yanked ones included: they stay downloadable by digest)."""

    name: str
    versions: dict[str, Release]
    category: str | None = None
    tags: tuple[str, ...] = ()
    description: str = ""

    def available(self) -> list[str]:
        """Versions open to resolution (not yanked), in no particular order."""
        return [v for v, r in self.versions.items() if not r.yanked]

    def latest(self) -> str | None:
        """The highest version that is not yanked (releases before pre-releases of the same number)."""
        candidates = self.available()
        if not candidates:
            return None
        return max(candidates, key=version_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "tags": list(self.tags),
            "description": self.description,
            "versions": {v: r.to_json() for v, r in sorted(self.versions.items())},
        }


@dataclass(frozen=True)
class Index:
    """An index payload: its ``version`` counter, its expiry and the plugins."""

    version: int
    expires: dt.datetime
    plugins: Mapping[str, PluginEntry] = field(default_factory=dict)
    api_version: int = API_VERSION

    def to_json(self) -> dict[str, Any]:
        if isinstance(self.plugins, _Plugins):
            plugins = self.plugins.raw
        else:
            plugins = {name: p.to_json() for name, p in sorted(self.plugins.items())}
        return {
            "api_version": self.api_version,
            "version": self.version,
            "expires": utc(self.expires).strftime(TIME_FORMAT),
            "plugins": plugins,
        }

    def search_rows(self) -> list[list[Any]]:
        """``[name, latest, category, description, tags]`` per plugin with a version that is not yanked."""
        if isinstance(self.plugins, _Plugins):
            return self.plugins.search_rows()
        rows = []
        for name, entry in sorted(self.plugins.items()):
            latest = entry.latest()
            if latest is not None:
                rows.append([name, latest, entry.category, entry.description, list(entry.tags)])
        return rows

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, obj: Any) -> Index:
        """Parse a payload strictly; ``ValueError`` names the first thing that is wrong.

        Everything a search shows is checked now; each release's url, digest, size and platforms when its
        plugin entry is first looked up (installing reads one entry of thousands).
        """
        if not isinstance(obj, dict):
            raise _Malformed("the index is not a JSON object")
        api = obj.get("api_version")
        if api != API_VERSION:
            raise _Malformed(f"api_version {api!r} is not {API_VERSION} (upgrade synapse_nb?)")
        version = obj.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise _Malformed("'version' is not a non-negative integer")
        expires = _time(obj.get("expires"))
        plugins = obj.get("plugins")
        if not isinstance(plugins, dict):
            raise _Malformed("'plugins' is not an object")
        for name, entry in plugins.items():
            _check_plugin(name, entry)
        return cls(version, expires, _Plugins(plugins), api)


class _Plugins(Mapping[str, PluginEntry]):
    """Validated plugin entries as parsed; a :class:`PluginEntry` is built only when one is looked up.

    An index of 10,000 plugins is parsed and checked on every fetch, but an install looks at one entry.
    """

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self._built: dict[str, PluginEntry] = {}

    def __getitem__(self, name: str) -> PluginEntry:
        entry = self._built.get(name)
        if entry is None:
            try:
                entry = self._built[name] = _build(name, self.raw[name])
            except _Malformed as exc:  # signed by the registry, but unusable: as bad as a broken signature
                raise SignatureError(f"index malformed: {exc}", plugin=name, reason="malformed") from exc
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self.raw

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def search_rows(self) -> list[list[Any]]:
        rows = []
        for name in sorted(self.raw):
            obj = self.raw[name]
            open_versions = [v for v, r in obj["versions"].items() if not r.get("yanked", False)]
            if open_versions:
                latest = max(open_versions, key=version_key)
                rows.append([name, latest, obj.get("category"), obj.get("description") or "", obj.get("tags", [])])
        return rows


def _build(name: str, obj: dict[str, Any]) -> PluginEntry:
    """A PluginEntry from a checked raw entry; its releases are checked here, when first used."""
    for version, release in obj["versions"].items():
        _check_release(name, version, release)
    releases = {
        v: Release(r["url"], r["sha256"], r["size"], r.get("yanked", False), tuple(r.get("platforms", ["any"])))
        for v, r in obj["versions"].items()
    }
    return PluginEntry(name, releases, obj.get("category"), tuple(obj.get("tags", ())), obj.get("description") or "")


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise _Malformed("'expires' is not a time string")
    try:
        return dt.datetime.strptime(value, TIME_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise _Malformed(f"'expires' {value!r} is not YYYY-MM-DDTHH:MM:SSZ") from exc


def _text(value: Any, what: str, *, optional: bool = False) -> str:
    if value is None and optional:
        return ""
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _Malformed(f"{what} is not a string of at most {_MAX_TEXT} characters")
    return value


def _check_plugin(name: Any, obj: Any) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _Malformed(f"plugin name {name!r} is not a lower-case DNS label")
    if not isinstance(obj, dict):
        raise _Malformed(f"plugins/{name} is not an object")
    category = obj.get("category")
    if category is not None:
        _text(category, f"plugins/{name}/category")
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 64 for t in tags):
        raise _Malformed(f"plugins/{name}/tags is not a list of short strings")
    _text(obj.get("description"), f"plugins/{name}/description", optional=True)
    versions = obj.get("versions")
    if not isinstance(versions, dict):
        raise _Malformed(f"plugins/{name}/versions is not an object")
    for version, release in versions.items():
        try:
            parse_version(version)
        except (ValueError, TypeError) as exc:
            raise _Malformed(f"plugins/{name}/versions: {exc}") from exc
        if not isinstance(release, dict) or not isinstance(release.get("yanked", False), bool):
            raise _Malformed(f"plugins/{name}/versions/{version} is not an object with a boolean 'yanked'")


def _check_release(name: str, version: str, obj: Any) -> None:
    if not isinstance(obj, dict):
        raise _Malformed(f"plugins/{name}/versions/{version} is not an object")
    url, sha, size = obj.get("url"), obj.get("sha256"), obj.get("size")
    where = f"plugins/{name}/versions/{version}"
    if not isinstance(url, str) or not _URL.match(url) or "/." in url or url.startswith("."):
        raise _Malformed(f"{where}/url {url!r} is not a relative path under the registry's endpoint")
    if not isinstance(sha, str) or len(sha) != 64 or sha.strip(_HEX):
        raise _Malformed(f"{where}/sha256 is not a lower-case hex sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _Malformed(f"{where}/size is not a non-negative integer")
    if not isinstance(obj.get("yanked", False), bool):
        raise _Malformed(f"{where}/yanked is not a boolean")
    platforms = obj.get("platforms", ["any"])
    if not isinstance(platforms, list) or not platforms or not all(isinstance(p, str) for p in platforms):
        raise _Malformed(f"{where}/platforms is not a non-empty list of strings")


@dataclass(frozen=True)
class SignedIndex:
    """A verified index and who signed it."""

    index: Index
    signer: str
    root_fingerprint: str
    payload: bytes


def sign_index(index: Index, key: PrivateKey, chain: list[x509.Certificate]) -> bytes:
    """The envelope bytes of ``index`` signed by ``key`` (``chain``: its certificate first, then issuers)."""
    return sign_envelope(index.to_bytes(), key, chain, payload_type=INDEX_PAYLOAD_TYPE).to_bytes()


def verify_index(
    data: bytes, *, registry: str, trust: TrustStore | None = None, now: dt.datetime | None = None
) -> SignedIndex:
    """Verify an index envelope: signature, signer chain to a trusted root, payload shape and expiry.

    Raises :class:`SignatureError` (exit 4) naming ``registry`` and the reason (``malformed``,
    ``bad-signature``, ``untrusted``, ``expired``...). Rollback is the caller's check (it needs state).
    """
    moment = utc(now)

    def fail(reason: str, message: str, details: list[str] | None = None) -> SignatureError:
        return SignatureError(f"registry {registry!r}: index {reason}: {message}", reason=reason, details=details)

    try:
        envelope = Envelope.from_bytes(data)
    except EnvelopeError as exc:
        raise fail("malformed", f"the index envelope {exc}") from exc
    signature = envelope.signature
    signer = subject(signature.leaf)
    if not verify_bytes(signature.leaf.public_key(), signature.sig, envelope.signed_bytes()):
        raise fail("bad-signature", f"the signature does not verify with the key of {signer!r}")
    if envelope.payload_type != INDEX_PAYLOAD_TYPE:
        raise fail("malformed", f"payload type {envelope.payload_type!r} is not {INDEX_PAYLOAD_TYPE!r}")
    store = trust if trust is not None else TrustStore.load()
    try:
        chain = validate_chain(signature.certificates, store, signed_at=moment, now=moment)
    except ChainProblem as exc:
        hint = "" if exc.reason != "untrusted" else "; trust the registry's root with `synapse-cli keys trust ROOT.pem`"
        raise fail(exc.reason, f"{exc.message} (signed by {signer!r}){hint}", exc.details) from exc
    try:
        index = Index.from_json(json.loads(envelope.payload))
    except (ValueError, RecursionError) as exc:
        raise fail("malformed", f"{exc} (signed by {signer!r})") from exc
    if index.expires <= moment:
        raise fail(
            "expired",
            f"it expired at {index.expires:%Y-%m-%d %H:%M:%SZ} (a stale or frozen mirror?); the registry must "
            "re-sign it",
        )
    return SignedIndex(index, signer, fingerprint(chain[-1]), envelope.payload)

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
import json
import re
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
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_URL = re.compile(r"^[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$")
_MAX_TEXT = 2000


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
        return str(max(SemVer.parse(v) for v in candidates))

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
    plugins: dict[str, PluginEntry] = field(default_factory=dict)
    api_version: int = API_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "api_version": self.api_version,
            "version": self.version,
            "expires": utc(self.expires).strftime(TIME_FORMAT),
            "plugins": {name: p.to_json() for name, p in sorted(self.plugins.items())},
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, obj: Any) -> Index:
        """Parse a payload strictly; ``ValueError`` names the first thing that is wrong."""
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
        return cls(version, expires, {name: _plugin(name, entry) for name, entry in plugins.items()}, api)


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


def _plugin(name: Any, obj: Any) -> PluginEntry:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise _Malformed(f"plugin name {name!r} is not a lower-case DNS label")
    if not isinstance(obj, dict):
        raise _Malformed(f"plugins/{name} is not an object")
    category = obj.get("category")
    if category is not None:
        category = _text(category, f"plugins/{name}/category")
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 64 for t in tags):
        raise _Malformed(f"plugins/{name}/tags is not a list of short strings")
    versions = obj.get("versions")
    if not isinstance(versions, dict):
        raise _Malformed(f"plugins/{name}/versions is not an object")
    releases = {}
    for version, release in versions.items():
        try:
            SemVer.parse(version)
        except ValueError as exc:
            raise _Malformed(f"plugins/{name}/versions: {exc}") from exc
        releases[version] = _release(f"plugins/{name}/versions/{version}", release)
    description = _text(obj.get("description"), f"plugins/{name}/description", optional=True)
    return PluginEntry(name, releases, category, tuple(tags), description)


def _release(where: str, obj: Any) -> Release:
    if not isinstance(obj, dict):
        raise _Malformed(f"{where} is not an object")
    url, sha, size = obj.get("url"), obj.get("sha256"), obj.get("size")
    if not isinstance(url, str) or not _URL.match(url) or any(p in (".", "..") for p in url.split("/")):
        raise _Malformed(f"{where}/url {url!r} is not a relative path under the registry's endpoint")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise _Malformed(f"{where}/sha256 is not a lower-case hex sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _Malformed(f"{where}/size is not a non-negative integer")
    yanked = obj.get("yanked", False)
    platforms = obj.get("platforms", ["any"])
    if not isinstance(yanked, bool):
        raise _Malformed(f"{where}/yanked is not a boolean")
    if not isinstance(platforms, list) or not platforms or not all(isinstance(p, str) for p in platforms):
        raise _Malformed(f"{where}/platforms is not a non-empty list of strings")
    return Release(url, sha, size, yanked, tuple(platforms))


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

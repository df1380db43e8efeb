"""What the commands and notebook functions do: search, install, publish and yank across registries.

Sources are the configured registries (in config order), then the built-in ``public`` index. ``search`` reads
each registry's cached search rows (fetching the index when the cache is older than
:data:`~.client.INDEX_MAX_AGE`, or expired); ``install`` resolves ``NAME[@RANGE]`` on one registry (``--registry``,
else the registry the name is pinned to, else the single registry that has it: a name found on several is
refused as ambiguous), downloads the archive, checks its sha256 against the signed index, verifies it against
the user's trust store, and unpacks it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..config import Config, load_config
from ..errors import InvalidError, RegistryError, SignatureError, SynapseError, UsageError
from .archive import ARCHIVE_SUFFIX, VerifiedArchive, open_archive, pack
from .cache import SearchRow, load_rows, read_state, search_rows
from .client import INDEX_MAX_AGE, RegistryClient
from .index import Index, Release
from .installed import InstalledPlugin, check_pin, install_archive, pins, set_pin
from .public import public_archive, public_index, untrusted_hint
from .resolve import resolve
from .settings import PUBLIC, RegistryConfig, configured_registries, get_registry

__all__ = [
    "InstallResult",
    "SearchHit",
    "install",
    "platform_note",
    "publish",
    "search",
    "sources",
    "yank",
]

Warn = Callable[[str], None]
Keep = Callable[[str], bool]


@dataclass(frozen=True)
class SearchHit:
    """One row of ``plugin search``."""

    name: str
    version: str
    category: str | None
    description: str
    registry: str
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "category": self.category,
            "description": self.description,
            "registry": self.registry,
            "tags": list(self.tags),
        }


class Source:
    """A registry to search and install from."""

    name: str
    endpoint: str

    def rows(self, keep: Keep | None = None) -> list[SearchRow]:
        """Search rows; ``keep`` may pre-filter raw rows (callers still check each row exactly)."""
        raise NotImplementedError

    def index(self) -> Index:
        raise NotImplementedError

    def archive(self, name: str, version: str, release: Release) -> bytes:
        raise NotImplementedError


class PublicSource(Source):
    """The index and archives shipped in the package."""

    name = PUBLIC
    endpoint = "builtin:public"

    def rows(self, keep: Keep | None = None) -> list[SearchRow]:
        return search_rows(self.index())

    def index(self) -> Index:
        return public_index().index

    def archive(self, name: str, version: str, release: Release) -> bytes:
        return public_archive(release)


@dataclass
class RemoteSource(Source):
    """A configured registry, reached over HTTP(S)."""

    registry: RegistryConfig
    transport: httpx.BaseTransport | None = None
    warn: Warn | None = None
    _index: Index | None = field(default=None, repr=False)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.registry.name

    @property
    def endpoint(self) -> str:  # type: ignore[override]
        return self.registry.endpoint

    def client(self) -> RegistryClient:
        return RegistryClient(self.registry, transport=self.transport)

    def rows(self, keep: Keep | None = None) -> list[SearchRow]:
        state = read_state(self.name)
        fresh = (
            state.get("endpoint") == self.endpoint
            and time.time() - float(state.get("fetched_at", 0)) < INDEX_MAX_AGE
            and str(state.get("expires", "")) > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        )
        if fresh:
            rows = load_rows(self.name, endpoint=self.endpoint, keep=keep)
            if rows is not None:
                return rows
        try:
            with self.client() as client:
                self._index = client.fetch_index().index
        except RegistryError as exc:  # unreachable: an unexpired cache still answers, with a warning
            rows = load_rows(self.name, endpoint=self.endpoint, keep=keep)
            if rows is None or str(state.get("expires", "")) <= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()):
                raise
            if self.warn:
                self.warn(f"{exc}; searching the index cached by an earlier fetch instead")
            return rows
        return load_rows(self.name, endpoint=self.endpoint, keep=keep) or []

    def index(self) -> Index:
        if self._index is None:
            with self.client() as client:
                self._index = client.index().index
        return self._index

    def archive(self, name: str, version: str, release: Release) -> bytes:
        with self.client() as client:
            return client.download(name, version, release)


def sources(
    *, config: Config | None = None, transport: httpx.BaseTransport | None = None, warn: Warn | None = None
) -> list[Source]:
    """The configured registries, then the built-in public one."""
    found: list[Source] = [RemoteSource(r, transport, warn) for r in configured_registries(config)]
    found.append(PublicSource())
    return found


def _pick(all_sources: list[Source], name: str | None) -> list[Source]:
    if name is None:
        return all_sources
    chosen = [s for s in all_sources if s.name == name]
    if not chosen:
        known = ", ".join(s.name for s in all_sources)
        raise UsageError(f"no registry named {name!r} (configured: {known}); add one with `synapse-cli registry add`")
    return chosen


def search(
    query: str | None = None,
    *,
    category: str | None = None,
    registry: str | None = None,
    config: Config | None = None,
    transport: httpx.BaseTransport | None = None,
    warn: Warn | None = None,
) -> list[SearchHit]:
    """Plugins whose name, description or tags contain ``query`` (case-insensitive), in ``category`` if given.

    A registry that cannot answer (and has no usable cache) is reported through ``warn`` and skipped, unless
    it is the one asked for with ``registry`` or every registry failed: then its error is raised.
    """
    chosen = _pick(sources(config=config, transport=transport, warn=warn), registry)
    needle = (query or "").casefold()
    wanted = category.casefold() if category else None
    hits: list[SearchHit] = []
    errors: list[SynapseError] = []
    for source in chosen:
        try:
            rows = source.rows(_prefilter(needle, wanted))
        except SynapseError as exc:
            if registry is not None:
                raise
            errors.append(exc)
            if warn:
                warn(str(exc))
            continue
        for name, version, cat, description, tags in rows:
            if wanted is not None and (cat or "").casefold() != wanted:
                continue
            if needle and not (
                needle in name or needle in (description or "").casefold() or any(needle in t.casefold() for t in tags)
            ):
                continue
            hits.append(SearchHit(name, version, cat, description or "", source.name, tuple(tags)))
    if errors and len(errors) == len(chosen):
        raise errors[0]
    return hits


def _prefilter(needle: str, category: str | None) -> Keep | None:
    """A raw-line test that never drops a matching row (JSON escaping aside, which disables it)."""
    words = [w for w in (needle, category) if w]
    if not words or any(c in w for w in words for c in '"\\') or any(ord(c) < 32 for w in words for c in w):
        return None
    return lambda line: all(w in line.casefold() for w in words)


# -- install -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InstallResult:
    """What ``install`` did."""

    plugin: InstalledPlugin
    changed: bool
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**self.plugin.to_json(), "changed": self.changed, "notes": list(self.notes)}


def _platform_family(platform: str) -> str:
    if platform.startswith("linux"):
        return "linux"
    if platform == "darwin":
        return "macos"
    if platform in ("win32", "cygwin"):
        return "windows"
    return platform


def platform_note(platform: str = sys.platform) -> str | None:
    """One line for hosts where plugins cannot run under nsjail (macOS, Windows), else None."""
    family = _platform_family(platform)
    if family == "linux":
        return None
    shown = {"macos": "macOS", "windows": "Windows"}.get(family, family)
    return (
        f"on {shown} only the `process` isolation level exists (rlimits, no sandbox): running a plugin needs the "
        "explicit opt-in `sandbox: {require: any}` in $SYNAPSE_HOME/config (or allow_process_isolation=True)"
    )


def _runs_here(platforms: tuple[str, ...], platform: str) -> bool:
    if "any" in platforms:
        return True
    family = _platform_family(platform)
    prefixes = {"linux": ("linux", "manylinux", "musllinux"), "macos": ("macos", "macosx"), "windows": ("win",)}
    return any(tag.startswith(prefixes.get(family, (family,))) for tag in platforms)


def _split_spec(spec: str) -> tuple[str, str]:
    name, _, range_text = spec.partition("@")
    return name.strip(), range_text.strip() or "*"


def _verify_download(data: bytes, source: Source, name: str, version: str, release: Release) -> VerifiedArchive:
    try:
        return open_archive(data, expected_sha256=release.sha256, expected=(name, version))
    except SignatureError as exc:
        if source.name == PUBLIC and exc.reason == "untrusted":
            raise SignatureError(f"{exc.message}; {untrusted_hint()}", plugin=name, reason=exc.reason) from exc
        raise


def _locate(name: str, chosen: list[Source], registry: str | None, move_pin: bool) -> tuple[Source, Index]:
    pin = pins().get(name)
    if registry is None and pin is not None and not move_pin:
        pinned = [s for s in chosen if s.name == pin.get("registry")]
        if not pinned:
            raise RegistryError(
                f"{name} is pinned to registry {pin.get('registry')!r}, which is not configured any more; add it "
                f"back, or pass --registry NAME --move-pin"
            )
        chosen = pinned
    having = []
    for source in chosen:
        index = source.index()
        if name in index.plugins:
            having.append((source, index))
    if not having:
        where = ", ".join(s.name for s in chosen)
        raise RegistryError(f"no plugin named {name!r} in registry {where}; try `synapse-cli plugin search {name}`")
    if len(having) > 1:
        names = ", ".join(s.name for s, _ in having)
        raise UsageError(
            f"{name!r} is offered by several registries ({names}); choose one with --registry (the name is then "
            "pinned to it)"
        )
    return having[0]


def install(
    spec: str,
    *,
    registry: str | None = None,
    move_pin: bool = False,
    config: Config | None = None,
    transport: httpx.BaseTransport | None = None,
    platform: str = sys.platform,
    warn: Warn | None = None,
) -> InstallResult:
    """Install ``NAME[@RANGE]`` from a registry, or a local ``.synapse`` archive, into ``$SYNAPSE_HOME/plugins``."""
    note = platform_note(platform)
    notes = (note,) if note else ()
    path = Path(spec)
    if spec.endswith(ARCHIVE_SUFFIX) or path.is_file():
        archive = open_archive(path)
        _require_platform(archive.name, archive.version, archive.platforms, platform)
        installed, changed = install_archive(archive, registry="local", endpoint=str(path.resolve()))
        return InstallResult(installed, changed, notes)
    name, range_text = _split_spec(spec)
    chosen = _pick(sources(config=config, transport=transport, warn=warn), registry)
    source, index = _locate(name, chosen, registry, move_pin)
    check_pin(name, source.name, source.endpoint, move=move_pin)
    entry = index.plugins[name]
    try:
        version = resolve(entry.available(), range_text)
    except ValueError as exc:
        raise UsageError(f"{spec!r}: {exc}") from exc
    if version is None:
        available = ", ".join(sorted(entry.available(), key=_semver_key)) or "none"
        yanked = [v for v, r in entry.versions.items() if r.yanked]
        extra = f"; yanked: {', '.join(sorted(yanked))}" if yanked else ""
        raise RegistryError(
            f"no version of {name} matches {range_text!r} on {source.name} (available: {available}{extra})"
        )
    release = entry.versions[version]
    _require_platform(name, version, release.platforms, platform)
    archive = _verify_download(source.archive(name, version, release), source, name, version, release)
    installed, changed = install_archive(archive, registry=source.name, endpoint=source.endpoint)
    if name not in pins() or move_pin:
        set_pin(name, source.name, source.endpoint)
    return InstallResult(installed, changed, notes)


def _semver_key(version: str) -> Any:
    from ..semver import SemVer

    return SemVer.parse(version)


def _require_platform(name: str, version: str, platforms: tuple[str, ...], platform: str) -> None:
    if not _runs_here(platforms, platform):
        raise InvalidError(
            f"{name} {version} ships native code for {', '.join(platforms)} only; this host is "
            f"{_platform_family(platform)}",
            plugin=name,
        )


# -- publish and yank --------------------------------------------------------------------------------------------
def publish(
    path: str | Path,
    *,
    registry: str,
    config: Config | None = None,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """Pack (a folder) or check (an archive) locally, then upload to ``registry``; the server's answer."""
    target = get_registry(registry, config or load_config())
    source = Path(path)
    if source.is_dir():
        with tempfile.TemporaryDirectory(prefix="synapse-publish-") as tmp:
            packed = pack(source, tmp)
            data = packed.path.read_bytes()
            name, version = packed.name, packed.version
    else:
        archive = open_archive(source)
        data, name, version = archive.data, archive.name, archive.version
    with RegistryClient(target, transport=transport) as client:
        return client.publish(name, version, data)


def yank(
    spec: str,
    *,
    registry: str,
    undo: bool = False,
    reason: str = "",
    config: Config | None = None,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """Hide ``NAME@VERSION`` from resolution on ``registry`` (``undo``: show it again)."""
    name, version = _split_spec(spec)
    if version == "*":
        raise UsageError(f"{spec!r}: give the exact version to yank, as NAME@VERSION")
    target = get_registry(registry, config or load_config())
    with RegistryClient(target, transport=transport) as client:
        return client.yank(name, version, yanked=not undo, reason=reason)

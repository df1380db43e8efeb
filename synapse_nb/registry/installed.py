"""Installed plugins under ``$SYNAPSE_HOME/plugins``, and the registry each plugin name is pinned to.

::

    plugins/NAME/VERSION/          an unpacked, signed plugin folder (what `plugin run` and discovery load)
    plugins/NAME/install.json      {"active": VERSION, "versions": {VERSION: {registry, endpoint, sha256, ...}}}
    plugins/pins.json              {NAME: {"registry": R, "endpoint": URL}}: where NAME was first installed from

The pin is the defence against dependency confusion: once ``acme-tool`` came from ``corporate-registry``, a
plugin of the same name on any other registry (or the same registry name pointing at another endpoint) is
refused until the user moves the pin (``plugin install NAME --registry OTHER --move-pin``). Local archives are
installed without touching pins: the user chose that exact file.

:func:`installed_plugin_folders` lists the active version of every installed plugin: the hook through which
``PluginManager.discover()`` finds them.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SignatureError, UsageError
from ..paths import atomic_write, synapse_home
from ..semver import SemVer
from .archive import VerifiedArchive

__all__ = [
    "InstalledPlugin",
    "check_pin",
    "install_archive",
    "installed_plugin_folders",
    "list_installed",
    "pins",
    "plugins_root",
    "set_pin",
    "uninstall",
]

RECORD = "install.json"


def plugins_root() -> Path:
    """``$SYNAPSE_HOME/plugins``."""
    return synapse_home() / "plugins"


@dataclass(frozen=True)
class InstalledPlugin:
    """One installed version."""

    name: str
    version: str
    path: Path
    registry: str
    sha256: str
    installed_at: str
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "registry": self.registry,
            "sha256": self.sha256,
            "installed_at": self.installed_at,
            "active": self.active,
        }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record(name: str) -> dict[str, Any]:
    data = _read_json(plugins_root() / name / RECORD)
    data.setdefault("versions", {})
    return data


def _write_record(name: str, record: dict[str, Any]) -> None:
    atomic_write(plugins_root() / name / RECORD, json.dumps(record, indent=2, sort_keys=True).encode())


def pins() -> dict[str, dict[str, str]]:
    """Every pinned plugin name: ``{name: {"registry", "endpoint"}}``."""
    return {k: v for k, v in _read_json(plugins_root() / "pins.json").items() if isinstance(v, dict)}


def check_pin(name: str, registry: str, endpoint: str, *, move: bool = False) -> None:
    """SignatureError (exit 4, reason ``pinned``) when ``name`` is pinned elsewhere and ``move`` is not set."""
    pin = pins().get(name)
    if pin is None or move or (pin.get("registry"), pin.get("endpoint")) == (registry, endpoint):
        return
    where = f"{pin.get('registry')!r} ({pin.get('endpoint')})"
    raise SignatureError(
        f"{name} is pinned to registry {where}, where it was first installed from; refusing the same name from "
        f"{registry!r} ({endpoint}) (dependency confusion). If this is intended, pass --registry {registry} "
        "--move-pin",
        plugin=name,
        reason="pinned",
    )


def set_pin(name: str, registry: str, endpoint: str) -> None:
    data = pins()
    data[name] = {"registry": registry, "endpoint": endpoint}
    plugins_root().mkdir(parents=True, exist_ok=True)
    atomic_write(plugins_root() / "pins.json", json.dumps(data, indent=2, sort_keys=True).encode())


def install_archive(archive: VerifiedArchive, *, registry: str, endpoint: str = "") -> tuple[InstalledPlugin, bool]:
    """Unpack a verified archive to ``plugins/NAME/VERSION`` and make it the active version.

    Returns ``(installed, changed)``; the same archive again is a no-op. A *different* archive for an installed
    NAME@VERSION is refused (uninstall it first): a version never silently changes under the user.
    """
    target = plugins_root() / archive.name / archive.version
    record = _record(archive.name)
    known = record["versions"].get(archive.version)
    changed = True
    if target.exists():
        if known is None or known.get("digest") != archive.digest:
            raise UsageError(
                f"{archive.name} {archive.version} is already installed at {target} with other content; "
                f"`synapse-cli plugin uninstall {archive.name}@{archive.version}` first"
            )
        changed = False
    else:
        archive.extract(target)
        known = {
            "registry": registry,
            "endpoint": endpoint,
            "sha256": archive.sha256,
            "digest": archive.digest,
            "signer": archive.verification.signer_subject,
            "installed_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        }
        record["versions"][archive.version] = known
    record["active"] = archive.version
    _write_record(archive.name, record)
    return _installed(archive.name, archive.version, known, True), changed


def _installed(name: str, version: str, info: dict[str, Any], active: bool) -> InstalledPlugin:
    return InstalledPlugin(
        name=name,
        version=version,
        path=plugins_root() / name / version,
        registry=str(info.get("registry", "")),
        sha256=str(info.get("sha256", "")),
        installed_at=str(info.get("installed_at", "")),
        active=active,
    )


def list_installed() -> list[InstalledPlugin]:
    """Every installed version, by name then version."""
    root = plugins_root()
    out: list[InstalledPlugin] = []
    if not root.is_dir():
        return out
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        record = _record(folder.name)
        versions = sorted(record["versions"], key=SemVer.parse)
        out.extend(_installed(folder.name, v, record["versions"][v], v == record.get("active")) for v in versions)
    return out


def installed_plugin_folders() -> list[Path]:
    """The active version's folder of every installed plugin (for ``PluginManager.discover``)."""
    return [p.path for p in list_installed() if p.active and p.path.is_dir()]


def uninstall(name: str, version: str | None = None) -> list[InstalledPlugin]:
    """Remove one version (or all); the pin stays. UsageError when nothing matches."""
    record = _record(name)
    versions = [version] if version else list(record["versions"])
    missing = [v for v in versions if v not in record["versions"]]
    if not versions or missing:
        installed = ", ".join(sorted(record["versions"])) or "none"
        what = f"{name}@{missing[0]}" if missing else name
        raise UsageError(f"{what} is not installed (installed versions of {name}: {installed})")
    removed = []
    for v in versions:
        info = record["versions"].pop(v)
        removed.append(_installed(name, v, info, v == record.get("active")))
        shutil.rmtree(plugins_root() / name / v, ignore_errors=True)
    if record["versions"]:
        if record.get("active") not in record["versions"]:
            record["active"] = str(max(SemVer.parse(v) for v in record["versions"]))
        _write_record(name, record)
    else:
        shutil.rmtree(plugins_root() / name, ignore_errors=True)
    return removed

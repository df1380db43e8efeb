"""The plugins a Jupyter server shows: those under its root folder and the installed ones, read statically.

Discovery walks the root breadth first and is bounded three ways (depth, number of plugins, time), so a
server started in a home folder with a million files still answers at once and says what it left out.
Everything here is static: manifests are parsed, schemas loaded, handler.py compiled (never imported),
signatures verified; nothing from a plugin folder runs. Results are cached per folder and recomputed when a
file of the folder (or the trust store) changes.

A plugin is named by a *scope* (``workspace``: under the server root; ``installed``: under
``$SYNAPSE_HOME/plugins``) and a path relative to that scope's folder. :meth:`Workspace.resolve` refuses
anything that leaves the folder (``..``, absolute paths, symlinks pointing outside).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidError, SignatureError, SynapseError, UsageError
from ..paths import synapse_home

if TYPE_CHECKING:
    from ..manifest import Manifest

# manifest.MANIFEST_FILE: the manifest, YAML and schema machinery is imported on the first request, not while
# jupyter_server starts (the extension must not slow JupyterLab's start).
MANIFEST_FILE = "manifest.yaml"

__all__ = ["SCOPES", "DiscoveryLimits", "Refused", "Workspace", "manifest_diagnostics"]

SCOPES = ("workspace", "installed")
# Folders never searched for plugins: environments, caches, VCS data and dependency trees.
SKIP = {"node_modules", "__pycache__", "site-packages", "dist-packages", "venv", "env", "build", "dist"}
_HINT = re.compile(r"\(did you mean '([^']+)'\?\)")


class Refused(UsageError):
    """A request names something outside the folders the server may show (HTTP 403)."""


class NotFound(UsageError):
    """A request names a plugin folder that does not exist (HTTP 404)."""


@dataclass(frozen=True)
class DiscoveryLimits:
    """How far discovery looks: folder depth below the root, plugins found, and seconds spent."""

    max_depth: int = 4
    max_plugins: int = 500
    timeout_s: float = 2.0


@dataclass
class _Cached:
    fingerprint: tuple[Any, ...]
    summary: dict[str, Any]
    detail: dict[str, Any] | None = None


def discover(root: Path, limits: DiscoveryLimits) -> tuple[list[Path], str | None]:
    """Plugin folders under ``root`` (breadth first, sorted per level) and why the search stopped early, if it did.

    Hidden folders, :data:`SKIP` and symbolic links are not followed; a plugin folder is not searched further.
    """
    found: list[Path] = []
    deadline = time.monotonic() + limits.timeout_s
    queue: deque[tuple[Path, int]] = deque([(root, 0)])
    while queue:
        folder, depth = queue.popleft()
        if time.monotonic() > deadline:
            return found, f"stopped after {limits.timeout_s:g} s (discovery_timeout)"
        try:
            with os.scandir(folder) as entries:
                children = sorted(
                    (e for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")),
                    key=lambda e: e.name,
                )
        except OSError:
            continue
        for entry in children:
            if entry.name in SKIP:
                continue
            path = Path(entry.path)
            if (path / MANIFEST_FILE).is_file():
                found.append(path)
                if len(found) >= limits.max_plugins:
                    return found, f"listing the first {limits.max_plugins} plugins (discovery_max_plugins)"
            elif depth + 1 < limits.max_depth:
                queue.append((path, depth + 1))
    return found, None


def _fingerprint(folder: Path, trust_marks: tuple[Any, ...]) -> tuple[Any, ...]:
    """What the cached result depends on: every file's path, size and mtime, and the trust store's state."""
    marks: list[Any] = []
    for base, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            try:
                st = os.stat(os.path.join(base, name), follow_symlinks=False)
            except OSError:
                continue
            marks.append((base, name, st.st_size, st.st_mtime_ns))
    return (*trust_marks, *marks)


def _trust_marks() -> tuple[Any, ...]:
    home = synapse_home()
    marks: list[Any] = []
    for sub in ("trust", "trust/roots", "trust/crl", "keys"):
        try:
            marks.append(os.stat(home / sub).st_mtime_ns)
        except OSError:
            marks.append(None)
    return tuple(marks)


def _problem_json(problem: Any) -> dict[str, Any]:
    data: dict[str, Any] = problem.to_json()
    hint = _HINT.search(problem.message)
    data["hint"] = hint.group(1) if hint else None
    return data


def manifest_diagnostics(text: str, *, file: str = MANIFEST_FILE) -> list[dict[str, Any]]:
    """Every located problem of manifest text (line, col, pointer, message, did-you-mean ``hint``)."""
    from ..manifest import parse_manifest

    try:
        parse_manifest(text, file=file)
    except InvalidError as exc:
        unlocated = {"file": file, "message": str(exc), "line": None, "col": None, "pointer": None, "hint": None}
        return [_problem_json(p) for p in exc.problems] or [unlocated]
    return []


def _manifest_json(m: Manifest) -> dict[str, Any]:
    return {
        "name": m.name,
        "version": str(m.version),
        "description": m.description,
        "category": m.category,
        "tags": list(m.tags),
        "authors": list(m.authors),
        "license": m.license,
        "homepage": m.homepage,
        "runtime": str(m.runtime),
        "trigger": m.execution.trigger,
        "timeout": m.execution.timeout,
        "timeout_ms": m.execution.timeout_ms,
        "entrypoint": m.execution.entrypoint or "handler.py",
        "interfaces": [{"type": i.type, "protocol": i.protocol, "endpoints": i.endpoints} for i in m.interfaces],
        "events": list(m.events),
    }


class Workspace:
    """The server root's plugins and the installed ones, with cached static checks."""

    def __init__(self, root: str | Path, *, installed: str | Path | None = None, limits: DiscoveryLimits) -> None:
        self.root = Path(root).resolve()
        self.installed = Path(installed).expanduser() if installed else synapse_home() / "plugins"
        self.limits = limits
        self._cache: dict[Path, _Cached] = {}
        self._lock = threading.Lock()

    # -- naming ----------------------------------------------------------------------------------------------
    def base(self, scope: str) -> Path:
        if scope == "workspace":
            return self.root
        if scope == "installed":
            return self.installed.resolve()
        raise UsageError(f"unknown scope {scope!r}; use one of: {', '.join(SCOPES)}")

    def resolve(self, scope: str, path: str, *, need_plugin: bool = True) -> Path:
        """The folder ``path`` (relative to ``scope``'s folder), refused with :class:`Refused` when outside it."""
        base = self.base(scope)
        if not isinstance(path, str) or "\x00" in path:
            raise UsageError("path must be a string")
        if os.path.isabs(path) or path.startswith("~"):
            raise Refused(f"{path!r} is not relative to the {scope} folder; absolute paths are refused")
        target = (base / path).resolve()
        if target != base and base not in target.parents:
            raise Refused(f"{path!r} is outside the {scope} folder ({base}); refused")
        if need_plugin and not (target / MANIFEST_FILE).is_file():
            raise NotFound(f"no plugin folder at {path!r} in the {scope} folder (no {MANIFEST_FILE})")
        return target

    def relative(self, scope: str, folder: Path) -> str:
        return folder.resolve().relative_to(self.base(scope)).as_posix()

    # -- listing ---------------------------------------------------------------------------------------------
    def list(self, *, quick: bool = False) -> dict[str, Any]:
        """Summaries of every plugin found, and what discovery left out.

        ``quick``: without the static checks of folders not checked yet (their name, version and description
        are read from manifest.yaml alone and ``checked`` is false), so a long list shows at once and the full
        listing that follows fills in validity and signatures.
        """
        t0 = time.perf_counter()
        found: list[tuple[str, Path]] = []
        notes: list[str] = []
        workspace, why = discover(self.root, self.limits)
        found.extend(("workspace", p) for p in workspace)
        if why:
            notes.append(f"workspace: {why}")
        installed_base = self.installed
        if installed_base.is_dir():
            installed, why = discover(installed_base.resolve(), self.limits)
            found.extend(("installed", p) for p in installed)
            if why:
                notes.append(f"installed: {why}")
        trust_marks = _trust_marks()
        trust: Any = None
        plugins = []
        for scope, folder in found:
            if quick:
                known = self._cache.get(folder)
                plugins.append(known.summary if known is not None else self._glance(scope, folder))
                continue
            fingerprint = _fingerprint(folder, trust_marks)
            cached = self._cache.get(folder)
            if cached is None or cached.fingerprint != fingerprint:
                if trust is None:
                    from ..signing import TrustStore

                    trust = TrustStore.load()
                cached = _Cached(fingerprint, self._summarise(scope, folder, trust))
                with self._lock:
                    self._cache[folder] = cached
            plugins.append(cached.summary)
        return {
            "root": str(self.root),
            "installed_dir": str(installed_base),
            "installed_available": installed_base.is_dir(),
            "plugins": plugins,
            "truncated": notes,
            "elapsed_ms": round((time.perf_counter() - t0) * 1000, 1),
        }

    def _glance(self, scope: str, folder: Path) -> dict[str, Any]:
        """Name, version and description from manifest.yaml alone (size-bounded safe YAML, nothing checked)."""
        import yaml

        from ..manifest.load import MAX_MANIFEST_BYTES

        summary: dict[str, Any] = {"scope": scope, "path": self.relative(scope, folder), "abspath": str(folder),
                                   "name": folder.name, "version": "", "description": "", "problems": [],
                                   "valid": False, "checked": False}  # fmt: skip
        try:
            with (folder / MANIFEST_FILE).open("rb") as fh:
                data = yaml.load(fh.read(MAX_MANIFEST_BYTES), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            meta = data.get("metadata") if isinstance(data, dict) else None
            if isinstance(meta, dict):
                for key in ("name", "version", "description"):
                    if isinstance(meta.get(key), (str, int, float)):
                        summary[key] = str(meta[key])[:200]
        except (OSError, yaml.YAMLError, RecursionError):
            pass
        return summary

    def _summarise(self, scope: str, folder: Path, trust: Any) -> dict[str, Any]:
        from ..anatomy import validate_folder
        from ..manifest import load_manifest
        from ..signing import verify_folder

        rel = self.relative(scope, folder)
        summary: dict[str, Any] = {
            "scope": scope,
            "path": rel,
            "abspath": str(folder),
            "name": folder.name,
            "version": "",
            "description": "",
            "problems": [],
            "valid": False,
            "checked": True,
        }
        manifest: Manifest | None = None
        try:
            manifest = validate_folder(folder, display=rel).manifest
            summary["valid"] = True
        except InvalidError as exc:
            summary["problems"] = [_problem_json(p) for p in exc.problems] or [
                {"file": rel, "message": str(exc), "line": None, "col": None, "pointer": None, "hint": None}
            ]
            with contextlib.suppress(InvalidError):  # the folder is invalid, but its manifest may still name it
                manifest = load_manifest(folder, display=f"{rel}/{MANIFEST_FILE}")
        if manifest is not None:
            summary["name"], summary["version"] = manifest.name, str(manifest.version)
            summary["description"], summary["category"] = manifest.description, manifest.category
            summary["trigger"] = manifest.execution.trigger
        try:
            verification = verify_folder(folder, manifest=manifest, trust=trust)
            summary["signature"] = {"status": "verified", "signer": verification.signer_subject, "message": ""}
        except SignatureError as exc:
            summary["signature"] = {"status": exc.reason, "signer": "", "message": str(exc)}
        except SynapseError as exc:
            summary["signature"] = {"status": "malformed", "signer": "", "message": str(exc)}
        return summary

    # -- one plugin ------------------------------------------------------------------------------------------
    def detail(self, scope: str, folder: Path) -> dict[str, Any]:
        """Everything the plugin panel shows, statically: manifest, problems, signature, schemas, permissions."""
        from ..signing import TrustStore

        fingerprint = _fingerprint(folder, _trust_marks())
        cached = self._cache.get(folder)
        if cached is None or cached.fingerprint != fingerprint:
            cached = _Cached(fingerprint, self._summarise(scope, folder, TrustStore.load()))
        if cached.detail is None:
            cached.detail = self._detail(folder)
        with self._lock:
            self._cache[folder] = cached
        return {**cached.summary, **cached.detail}

    def _detail(self, folder: Path) -> dict[str, Any]:
        import json

        from ..manifest import load_manifest
        from ..schemas import INPUT_SCHEMA, OUTPUT_SCHEMA, SCHEMA_DIR

        detail: dict[str, Any] = {"manifest": None, "schemas": {}, "permissions": None, "secrets": []}
        detail["requirements"] = []
        try:
            manifest = load_manifest(folder)
        except InvalidError:
            manifest = None
        if manifest is not None:
            detail["manifest"] = _manifest_json(manifest)
            detail["permissions"] = {
                "network_access": {"domains": list(manifest.permissions.domains)},
                "system_resources": {"gpu": manifest.permissions.gpu, "memory_mb": manifest.permissions.memory_mb},
            }
            detail["secrets"] = list(manifest.secrets)
        for name in (INPUT_SCHEMA, OUTPUT_SCHEMA):
            path = folder / SCHEMA_DIR / name
            try:
                if path.stat().st_size <= 1 << 20:
                    detail["schemas"][name] = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                detail["schemas"][name] = None
        try:
            lines = (folder / "requirements.txt").read_text("utf-8").splitlines()[:200]
            detail["requirements"] = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        except (OSError, UnicodeDecodeError):
            pass
        return detail

    def forget(self, folder: Path) -> None:
        """Drop the cached checks of ``folder`` (after an action changed it)."""
        with self._lock:
            self._cache.pop(folder, None)

"""The store of built environments: ``SYNAPSE_HOME/envs/<key>/``, written atomically, locked, garbage-collected.

Layout::

    envs/
      <key>/                     a complete environment (its presence means complete: it appears by rename)
        site-packages/           what the jail mounts read-only and the guest adds with site.addsitedir
        environment.json         the record: requirements, interpreter, platform, packages, created, size
        .last-used               touched at every activation (its mtime is the last use)
      <key>.lock                 flock: held exclusively while <key> is built (and by gc while removing it)
      .staging-<key>-XXXX/       a build in progress; left behind only by a killed process, removed next time

The key hashes the normalised requirement lines, the interpreter (implementation, major.minor, ABI flags) and
the platform (machine, libc), so that plugins with the same needs on the same interpreter share one directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import synapse_home
from ..requirements import Requirements

__all__ = [
    "ENV_FORMAT",
    "EnvironmentRecord",
    "EnvironmentStore",
    "GcReport",
    "environment_key",
    "interpreter_tag",
    "platform_tag",
]

ENV_FORMAT = 1
RECORD = "environment.json"
SITE = "site-packages"
LAST_USED = ".last-used"
STAGING_PREFIX = ".staging-"
INSTALLER_PID = "installer.pid"
_KEY = re.compile(r"^[0-9a-f]{32}$")


@functools.cache
def interpreter_tag() -> str:
    """``cpython-3.11``: what decides binary compatibility and the bytecode format of an environment."""
    abiflags = getattr(sys, "abiflags", "")
    return f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}{abiflags}"


@functools.cache
def platform_tag() -> str:
    """``linux-x86_64-glibc2.36``: which binary wheels fit this machine (cached: libc_ver reads the binary)."""
    libc, version = platform.libc_ver()
    return f"{sysconfig.get_platform()}-{libc}{version}" if libc else sysconfig.get_platform()


def environment_key(requirements: Requirements, *, interpreter: str | None = None, platform: str | None = None) -> str:
    """32 hex digits identifying (normalised requirements, interpreter, platform): the cache key."""
    body = {
        "format": ENV_FORMAT,
        "requirements": sorted({line.normalized for line in requirements}),
        "interpreter": interpreter or interpreter_tag(),
        "platform": platform or platform_tag(),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class EnvironmentRecord:
    """What ``environment.json`` says about one built environment, plus its last use."""

    key: str
    path: Path
    requirements: tuple[str, ...]
    interpreter: str
    platform: str
    packages: tuple[str, ...]
    source: str
    created: float
    build_seconds: float = 0.0
    size_bytes: int = 0
    bytecode_files: int = 0
    last_used: float = 0.0

    @property
    def site_dir(self) -> Path:
        return self.path / SITE

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ENV_FORMAT,
            "key": self.key,
            "path": str(self.path),
            "requirements": list(self.requirements),
            "interpreter": self.interpreter,
            "platform": self.platform,
            "packages": list(self.packages),
            "source": self.source,
            "created": self.created,
            "build_seconds": self.build_seconds,
            "size_bytes": self.size_bytes,
            "bytecode_files": self.bytecode_files,
            "last_used": self.last_used,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path, last_used: float) -> EnvironmentRecord:
        return cls(
            key=str(data["key"]),
            path=path,
            requirements=tuple(data.get("requirements", ())),
            interpreter=str(data.get("interpreter", "")),
            platform=str(data.get("platform", "")),
            packages=tuple(data.get("packages", ())),
            source=str(data.get("source", "")),
            created=float(data.get("created", 0.0)),
            build_seconds=float(data.get("build_seconds", 0.0)),
            size_bytes=int(data.get("size_bytes", 0)),
            bytecode_files=int(data.get("bytecode_files", 0)),
            last_used=last_used,
        )


@dataclass
class GcReport:
    """What ``gc`` removed and what it kept, and why."""

    removed: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # key -> reason
    staging_removed: int = 0
    freed_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "kept": self.kept,
            "staging_removed": self.staging_removed,
            "freed_bytes": self.freed_bytes,
        }


def _tree_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _kill_orphan_installer(staging: Path) -> None:
    """A killed build may leave its jailed installer running: kill it if its command line names ``staging``."""
    try:
        pid = int((staging / INSTALLER_PID).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if os.fsencode(str(staging)) in cmdline:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


class EnvironmentStore:
    """Built environments under ``root`` (default ``SYNAPSE_HOME/envs``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else synapse_home() / "envs"

    def path(self, key: str) -> Path:
        return self.root / key

    def site_dir(self, key: str) -> Path:
        return self.root / key / SITE

    def get(self, key: str) -> EnvironmentRecord | None:
        """The complete environment ``key``, or None (never a partial one: those only exist as staging dirs)."""
        path = self.path(key)
        try:
            data = json.loads((path / RECORD).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != ENV_FORMAT or data.get("key") != key:
            return None
        try:
            last_used = (path / LAST_USED).stat().st_mtime
        except OSError:
            last_used = float(data.get("created", 0.0))
        return EnvironmentRecord.from_json(data, path, last_used)

    def touch(self, key: str) -> None:
        """Record a use now (gc keeps environments used recently)."""
        with contextlib.suppress(OSError):
            os.utime(self.path(key) / LAST_USED)

    @contextlib.contextmanager
    def lock(self, key: str, *, blocking: bool = True) -> Iterator[bool]:
        """Hold ``<key>.lock`` exclusively; yields False (without the lock) when not ``blocking`` and it is taken."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{key}.lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                yield False
                return
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # gc unlinked the file we waited on: lock the current one instead
        try:
            yield True
        finally:
            os.close(fd)  # closing releases the flock

    def staging(self, key: str) -> Path:
        """A fresh staging directory for ``key``, on the same file system as the final one (for the rename)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{key}-", dir=self.root))

    def clear_staging(self, key: str) -> int:
        """Remove what killed builds of ``key`` left behind (call with the key's lock held)."""
        removed = 0
        for stale in self.root.glob(f"{STAGING_PREFIX}{key}-*"):
            _kill_orphan_installer(stale)
            shutil.rmtree(stale, ignore_errors=True)
            removed += 1
        return removed

    def commit(self, staging: Path, key: str) -> Path:
        """Make the staged environment visible as ``<key>`` with one rename (call with the key's lock held)."""
        final = self.path(key)
        (staging / LAST_USED).touch()
        os.rename(staging, final)
        return final

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _KEY.match(p.name) and p.is_dir())

    def records(self) -> list[EnvironmentRecord]:
        """Every complete environment, most recently used first."""
        found = [r for r in (self.get(k) for k in self.keys()) if r is not None]
        return sorted(found, key=lambda r: r.last_used, reverse=True)

    def mounted_keys(self) -> set[str]:
        """Keys of environments bind-mounted into a running jail right now (from every process's mountinfo)."""
        roots = sorted({re.escape(str(self.root.absolute())), re.escape(str(self.root.resolve()))})
        pattern = re.compile(r"(?:" + "|".join(roots) + r")/([0-9a-f]{32})(?:/|\s)")
        keys: set[str] = set()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/mountinfo", "rb") as fh:
                    text = fh.read().decode("utf-8", "replace")
            except OSError:
                continue
            keys.update(pattern.findall(text))
        return keys

    def remove(self, key: str) -> int:
        """Delete environment ``key`` (rename first, so no reader ever sees half of it); returns bytes freed."""
        path = self.path(key)
        if not path.is_dir():
            return 0
        size = _tree_size(path)
        trash = Path(tempfile.mkdtemp(prefix=f".trash-{key}-", dir=self.root))
        os.rename(path, trash / key)
        shutil.rmtree(trash, ignore_errors=True)
        return size

    def gc(self, *, keep_days: float, dry_run: bool = False, now: float | None = None) -> GcReport:
        """Remove environments not used within ``keep_days``, unless a jail mounts them or a build holds them.

        Also removes leftovers of killed builds (staging directories whose key is not being built).
        """
        report = GcReport()
        now = time.time() if now is None else now
        if not self.root.is_dir():
            return report
        mounted = self.mounted_keys()
        for key in self.keys():
            record = self.get(key)
            last = record.last_used if record is not None else 0.0
            if key in mounted:
                report.kept[key] = "in use by a running jail"
                continue
            if record is not None and now - last < keep_days * 86400:
                report.kept[key] = f"used {(now - last) / 86400:.1f} days ago (keep_days={keep_days:g})"
                continue
            with self.lock(key, blocking=False) as locked:
                if not locked:
                    report.kept[key] = "locked by a build in progress"
                    continue
                report.removed.append(key)
                report.freed_bytes += _tree_size(self.path(key)) if dry_run else self.remove(key)
        for stale in sorted(self.root.glob(f"{STAGING_PREFIX}*")) + sorted(self.root.glob(".trash-*")):
            key = stale.name.split("-")[1] if stale.name.startswith(STAGING_PREFIX) else ""
            if key and _KEY.match(key):
                with self.lock(key, blocking=False) as locked:
                    if not locked:
                        continue
                    if not dry_run:
                        _kill_orphan_installer(stale)
                        shutil.rmtree(stale, ignore_errors=True)
            elif not dry_run:
                shutil.rmtree(stale, ignore_errors=True)
            report.staging_removed += 1
        if not dry_run:
            for lock in self.root.glob("*.lock"):
                key = lock.name[: -len(".lock")]
                if not self.path(key).exists() and not any(self.root.glob(f"{STAGING_PREFIX}{key}-*")):
                    with self.lock(key, blocking=False) as locked:
                        if locked:
                            lock.unlink(missing_ok=True)
        return report

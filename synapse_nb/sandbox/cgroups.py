"""Per-worker cgroups: the memory and process limits, the record of what hit them, and the freezer.

Each worker gets its own cgroup in the memory and pids controllers, created by the host, nested under the
host process's own cgroup where the kernel allows it (cgroup v1 always; on v2 only when that cgroup has no
processes of its own, otherwise under ``/synapse`` at the root). The worker is started *inside* it (a tiny
``sh`` writes its pid into ``cgroup.procs`` and then execs nsjail), so every process of the jail is counted
from its first instruction. Because the cgroup is ours rather than nsjail's, it outlives the worker long
enough for the host to read why the worker died (an OOM kill, forks refused at ``pids.max``) and its peak
memory, and to kill anything left in it.

Between calls a worker is frozen (cgroup v1's freezer controller, v2's ``cgroup.freeze``): threads a call
started and left running cannot burn CPU while the worker is idle. See :class:`~.freezer.IdleFreezer`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupSupport", "WorkerCgroup", "detect_cgroups", "sweep_stale"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count(1)


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """controller -> own cgroup path, from the text of /proc/self/cgroup (v2's line is keyed ``""``)."""
    out: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            out[controller] = path
    return out


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


@dataclass(frozen=True)
class CgroupSupport:
    """Where per-worker cgroups are created on this host, or why they cannot be."""

    version: int | None  # 1, 2, or None when unavailable
    memory_parent: Path | None = None
    pids_parent: Path | None = None
    reason: str = ""
    freezer_parent: Path | None = None  # v1: the freezer controller's parent; v2: the same as memory_parent

    @property
    def can_freeze(self) -> bool:
        return self.freezer_parent is not None

    @property
    def available(self) -> bool:
        return self.version is not None

    def describe(self) -> str:
        if self.version == 1:
            return f"cgroup v1 (memory under {self.memory_parent}, pids under {self.pids_parent})"
        if self.version == 2:
            return f"cgroup v2 (under {self.memory_parent})"
        return f"unavailable: {self.reason}"


def _prepare_parent(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return _writable_dir(path)


def _detect_v2(root: Path, own: dict[str, str]) -> CgroupSupport:
    controllers = (root / "cgroup.controllers").read_text().split()
    missing = {"memory", "pids"} - set(controllers)
    if missing:
        return CgroupSupport(None, reason=f"cgroup v2 lacks the {', '.join(sorted(missing))} controller(s)")
    candidates = []
    own_path = own.get("", "/").lstrip("/")
    if own_path:
        here = root / own_path
        try:
            has_procs = bool((here / "cgroup.procs").read_text().split())
        except OSError:
            has_procs = True
        if not has_procs:
            candidates.append(here / "synapse")
    candidates.append(root / "synapse")
    for parent in candidates:
        if not _prepare_parent(parent):
            continue
        try:
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
        except OSError:
            continue
        freezer = parent if (parent / "cgroup.subtree_control").exists() else None  # cgroup.freeze: every v2 group
        return CgroupSupport(2, memory_parent=parent, pids_parent=parent, freezer_parent=freezer)
    return CgroupSupport(None, reason=f"cannot create a delegated cgroup under {root} (not root? no delegation?)")


def detect_cgroups(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> CgroupSupport:
    """Find (and create) the parent cgroups for workers; never raises."""
    try:
        text = proc_cgroup if proc_cgroup is not None else Path("/proc/self/cgroup").read_text()
        own = _own_paths(text)
        if (root / "cgroup.controllers").is_file():
            return _detect_v2(root, own)
        memory_root, pids_root = root / "memory", root / "pids"
        if not (memory_root.is_dir() and pids_root.is_dir()):
            return CgroupSupport(None, reason=f"no memory and pids controllers under {root}")
        memory = memory_root / own.get("memory", "/").lstrip("/") / "synapse"
        pids = pids_root / own.get("pids", "/").lstrip("/") / "synapse"
        if not (_prepare_parent(memory) and _prepare_parent(pids)):
            return CgroupSupport(None, reason=f"cannot create {memory} and {pids} (run as root, or delegate them)")
        freezer: Path | None = root / "freezer" / own.get("freezer", "/").lstrip("/") / "synapse"
        if freezer is None or not ((root / "freezer").is_dir() and _prepare_parent(freezer)):
            freezer = None  # no freezer controller: idle workers are not frozen (reported by doctor)
        return CgroupSupport(1, memory_parent=memory, pids_parent=pids, freezer_parent=freezer)
    except OSError as exc:
        return CgroupSupport(None, reason=f"cannot read cgroups: {exc}")


def sweep_stale(support: CgroupSupport) -> int:
    """Remove empty worker cgroups left behind by host processes that no longer exist; returns how many."""
    removed = 0
    for parent in {p for p in (support.memory_parent, support.pids_parent, support.freezer_parent) if p is not None}:
        try:
            children = list(parent.iterdir())
        except OSError:
            continue
        for child in children:
            name = child.name
            if not (child.is_dir() and name.startswith("w") and "-" in name):
                continue
            owner = name[1:].split("-", 1)[0]
            if not owner.isdigit() or Path(f"/proc/{owner}").exists():
                continue
            with contextlib.suppress(OSError):
                child.rmdir()  # fails (and is kept) while any process is still inside
                removed += 1
    return removed


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_key(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class WorkerCgroup:
    """The cgroups of one worker: create with limits, read counters, kill everything, remove."""

    def __init__(
        self,
        support: CgroupSupport,
        *,
        memory_bytes: int | None = None,
        pids_max: int | None = None,
        name: str | None = None,
    ) -> None:
        if not support.available or support.memory_parent is None or support.pids_parent is None:
            raise RuntimeError(f"cgroups are {support.describe()}")
        self.support = support
        self.name = name or f"w{os.getpid()}-{next(_counter)}"
        self.memory_dir = support.memory_parent / self.name
        self.pids_dir = support.pids_parent / self.name
        self._dirs = [self.memory_dir] if self.memory_dir == self.pids_dir else [self.memory_dir, self.pids_dir]
        self.freezer_dir: Path | None = None
        if support.freezer_parent is not None:
            self.freezer_dir = support.freezer_parent / self.name
            if self.freezer_dir not in self._dirs:
                self._dirs.append(self.freezer_dir)
        self.frozen = False
        for d in self._dirs:
            d.mkdir()
        if memory_bytes is not None and pids_max is not None:
            try:
                self.limit(memory_bytes=memory_bytes, pids_max=pids_max)
            except OSError:
                self.remove()
                raise

    def limit(self, *, memory_bytes: int, pids_max: int) -> None:
        """Set the memory and process limits (cheap: unlike joining a cgroup, this needs no RCU grace period)."""
        self.memory_bytes = memory_bytes
        self.pids_max = pids_max
        if self.support.version == 2:
            (self.memory_dir / "memory.max").write_text(str(memory_bytes))
            swap = self.memory_dir / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")
            (self.pids_dir / "pids.max").write_text(str(pids_max))
            return
        (self.memory_dir / "memory.limit_in_bytes").write_text(str(memory_bytes))
        memsw = self.memory_dir / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # only with swap accounting; keeps a hog from escaping into swap
            with contextlib.suppress(OSError):
                memsw.write_text(str(memory_bytes))
        with contextlib.suppress(OSError):
            (self.memory_dir / "memory.swappiness").write_text("0")
        (self.pids_dir / "pids.max").write_text(str(pids_max))

    @property
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a new process must write its pid into."""
        return [d / "cgroup.procs" for d in self._dirs]

    # -- counters ----------------------------------------------------------------------------------------------
    def oom_kills(self) -> int:
        if self.support.version == 2:
            return _read_key(self.memory_dir / "memory.events", "oom_kill")
        return _read_key(self.memory_dir / "memory.oom_control", "oom_kill")

    def pids_refused(self) -> int:
        """How many forks (or threads) were refused at ``pids.max``."""
        return _read_key(self.pids_dir / "pids.events", "max")

    def memory_peak(self) -> int:
        if self.support.version == 2:
            return _read_int(self.memory_dir / "memory.peak")
        return _read_int(self.memory_dir / "memory.max_usage_in_bytes")

    def reset_peak(self) -> None:
        """Start a new peak measurement (cgroup v1 resets on write; on v2 ``memory.peak`` is per-open-file)."""
        if self.support.version == 1:
            with contextlib.suppress(OSError):
                (self.memory_dir / "memory.max_usage_in_bytes").write_text("0")

    def members(self) -> list[int]:
        """Pids of every process in the worker's cgroups."""
        pids: set[int] = set()
        for d in self._dirs:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return sorted(pids)

    # -- freezer -----------------------------------------------------------------------------------------------
    def _freeze_file(self) -> tuple[Path, str, str] | None:
        if self.freezer_dir is None:
            return None
        if self.support.version == 2:
            return self.freezer_dir / "cgroup.freeze", "1", "0"
        return self.freezer_dir / "freezer.state", "FROZEN", "THAWED"

    def freeze(self) -> bool:
        """Stop every process of the worker where it is (no CPU time until :meth:`thaw`); False if unsupported."""
        target = self._freeze_file()
        if target is None:
            return False
        try:
            target[0].write_text(target[1])
        except OSError:
            return False
        self.frozen = True
        return True

    def thaw(self) -> None:
        """Let the worker's processes run again (a no-op unless frozen)."""
        target = self._freeze_file()
        if target is None or not self.frozen:
            return
        with contextlib.suppress(OSError):
            target[0].write_text(target[2])
        self.frozen = False

    # -- teardown ----------------------------------------------------------------------------------------------
    def kill_all(self, timeout: float = 1.0) -> None:
        """SIGKILL every process in the cgroup until it is empty (or ``timeout`` passes)."""
        self.thaw()  # a frozen task (cgroup v1) would not act on SIGKILL until thawed
        kill_file = self.memory_dir / "cgroup.kill"
        deadline = time.monotonic() + timeout
        while True:
            pids = self.members()
            if not pids:
                return
            if self.support.version == 2 and kill_file.exists():
                with contextlib.suppress(OSError):
                    kill_file.write_text("1")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)

    def remove(self) -> None:
        """Kill what is left and remove the cgroup directories (idempotent)."""
        self.kill_all()
        for d in self._dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.002)

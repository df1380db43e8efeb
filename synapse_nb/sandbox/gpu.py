"""The GPU scope: which NVIDIA device nodes and driver files a ``gpu: true`` jail gets, found on this host.

:func:`find_gpu` is a pure function of a ``/dev`` tree, the output of ``ldconfig -p`` and a few driver
directories, so it is tested on fake trees; :func:`detect_gpu` applies it to this host (and only runs
``ldconfig`` when NVIDIA device nodes exist at all). A ``gpu: false`` jail gets none of this: its ``/dev``
holds only ``null``, ``zero`` and ``urandom`` (see :mod:`.jail`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GpuFiles", "detect_gpu", "find_gpu", "parse_ldconfig"]

# Device nodes of the NVIDIA driver: per-GPU nodes, the control node, unified memory, modesetting, MIG caps.
_DEVICE = re.compile(r"^nvidia([0-9]+|ctl|-uvm|-uvm-tools|-modeset)$")
# User-space driver libraries (the CUDA driver API, NVML, PTX JIT compiler, ...), not the CUDA toolkit.
_LIBRARY = re.compile(r"^lib(cuda|nvidia-[a-z0-9-]+|nvcuvid|nvoptix)\.so(\.[0-9.]+)?$")
# Where container toolkits put driver libraries outside the usual library directories.
DRIVER_DIRS = ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/wsl/lib")
# Tools a GPU plugin may reasonably call, bound when present.
_TOOLS = ("/usr/bin/nvidia-smi",)


@dataclass(frozen=True)
class GpuFiles:
    """NVIDIA device nodes (bound read-write) and driver files (bound read-only) of this host."""

    devices: tuple[Path, ...] = ()
    libraries: tuple[Path, ...] = ()
    tools: tuple[Path, ...] = ()

    @property
    def available(self) -> bool:
        """A GPU is usable only with the control node and at least one per-GPU node."""
        names = {d.name for d in self.devices}
        return "nvidiactl" in names and any(re.fullmatch(r"nvidia[0-9]+", n) for n in names)

    def describe(self) -> str:
        if not self.devices:
            return "no NVIDIA device nodes (/dev/nvidia*)"
        gpus = sum(1 for d in self.devices if re.fullmatch(r"nvidia[0-9]+", d.name))
        return f"{gpus} NVIDIA GPU(s): {len(self.devices)} device node(s), {len(self.libraries)} driver librar(ies)"


def parse_ldconfig(text: str) -> list[Path]:
    """Paths of NVIDIA driver libraries in ``ldconfig -p`` output (``\\tlibcuda.so.1 (libc6,x86-64) => /p``)."""
    found: list[Path] = []
    for line in text.splitlines():
        name, arrow, path = line.strip().partition(" => ")
        if not arrow:
            continue
        if _LIBRARY.match(name.split(" ", 1)[0]) and Path(path) not in found:
            found.append(Path(path))
    return found


def find_gpu(
    dev: Path = Path("/dev"),
    *,
    ldconfig_output: str = "",
    driver_dirs: Iterable[Path] = (),
    tools: Iterable[Path] = (),
) -> GpuFiles:
    """The GPU files under ``dev`` (device nodes), in ``ldconfig_output`` and ``driver_dirs`` (libraries)."""
    devices: list[Path] = []
    try:
        entries = sorted(dev.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        if _DEVICE.match(entry.name):
            devices.append(entry)
        elif entry.name == "nvidia-caps" and entry.is_dir():
            devices.extend(sorted(p for p in entry.iterdir() if p.name.startswith("nvidia-cap")))
    if not devices:
        return GpuFiles()
    libraries = parse_ldconfig(ldconfig_output)
    for directory in driver_dirs:
        try:
            libraries += sorted(p for p in directory.iterdir() if _LIBRARY.match(p.name) and p not in libraries)
        except OSError:
            continue
    return GpuFiles(
        devices=tuple(devices),
        libraries=tuple(libraries),
        tools=tuple(t for t in tools if t.exists()),
    )


def detect_gpu() -> GpuFiles:
    """This host's NVIDIA files (``ldconfig -p`` is consulted only when device nodes exist)."""
    files = find_gpu(Path("/dev"))
    if not files.devices:
        return files
    try:
        ldconfig = subprocess.run(
            ["/sbin/ldconfig", "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        ldconfig = ""
    return find_gpu(
        Path("/dev"),
        ldconfig_output=ldconfig,
        driver_dirs=[Path(d) for d in DRIVER_DIRS],
        tools=[Path(t) for t in _TOOLS],
    )

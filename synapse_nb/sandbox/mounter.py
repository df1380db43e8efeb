"""Delivering a verified snapshot into a jail that is already running: a read-only bind mount, made late.

A pre-warmed jail (:mod:`.prewarm`) is started with an empty placeholder at ``/plugin``. Once a plugin has been
verified, the host gives that jail its snapshot with the kernel's mount API, from a small helper process that
runs as root and is single-threaded (``setns`` into another mount namespace requires it):

1. ``open_tree(SNAPSHOT, OPEN_TREE_CLONE | AT_RECURSIVE)`` makes a detached copy of the snapshot's mount,
   resolved in the host's namespace;
2. ``mount_setattr(..., MOUNT_ATTR_RDONLY)`` makes it read-only before anyone can see it;
3. ``setns`` into the jail's mount namespace, unmount the placeholder, ``move_mount`` the detached tree onto
   ``/plugin``, and ``setns`` back.

The result is exactly the mount a fresh jail gets from nsjail's configuration (a read-only bind mount of the
same snapshot at the same place; ``tests/test_prewarm.py`` compares the two), only made after the jail started.
No plugin code has run in the jail before (it only holds the guest runtime waiting for its start frame).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import SandboxError

__all__ = ["MOUNTER", "Mounter", "mounter"]

# Runs as `python -I -S -c MOUNTER`: one request per line ("PID<TAB>SOURCE<TAB>TARGET"), one answer per line.
MOUNTER = r"""
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE = -100, 0x1000, 0x8000
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 1, 0o2000000
MOVE_MOUNT_F_EMPTY_PATH, CLONE_NEWNS = 0x4, 0x20000
RDONLY, MNT_DETACH = 0x1, 0x2
OPEN_TREE, MOVE_MOUNT, MOUNT_SETATTR = 428, 429, 442
def check(value, what):
    if value < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return value
own = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
for line in sys.stdin:
    try:
        pid, source, target = line.rstrip("\n").split("\t")
        tree = check(libc.syscall(OPEN_TREE, AT_FDCWD, source.encode(),
                                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE), "open_tree")
        try:
            attr = ctypes.create_string_buffer(struct.pack("QQQQ", RDONLY, 0, 0, 0))
            check(libc.syscall(MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH | AT_RECURSIVE, attr, 32), "mount_setattr")
            ns = os.open(f"/proc/{int(pid)}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            try:
                check(libc.setns(ns, CLONE_NEWNS), "setns into the jail")
                try:
                    check(libc.umount2(target.encode(), MNT_DETACH), "umount the placeholder")
                    check(libc.syscall(MOVE_MOUNT, tree, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH),
                          "move_mount")
                finally:
                    check(libc.setns(own, CLONE_NEWNS), "setns back")
            finally:
                os.close(ns)
        finally:
            os.close(tree)
        sys.stdout.write("ok\n")
    except Exception as exc:
        sys.stdout.write("error " + str(exc).replace("\n", " ") + "\n")
    sys.stdout.flush()
"""


class Mounter:
    """The helper process (started on first use, one per host process) and its request line."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def _helper(self) -> subprocess.Popen[str]:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            proc = self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", MOUNTER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                close_fds=True,
            )
        return proc

    def bind_read_only(self, pid: int, source: Path, target: str, *, plugin: str | None = None) -> None:
        """Mount ``source`` (a host folder) read-only at ``target`` inside the mount namespace of ``pid``."""
        if "\t" in str(source) or "\n" in str(source) or "\t" in target or "\n" in target:
            raise SandboxError(f"cannot deliver {str(source)!r} into a jail: unusual characters", plugin=plugin)
        with self._lock:
            proc = self._helper()
            if proc.stdin is None or proc.stdout is None:  # pragma: no cover - pipes were requested
                raise SandboxError("the mount helper has no pipes", plugin=plugin)
            try:
                proc.stdin.write(f"{pid}\t{os.fspath(source)}\t{target}\n")
                proc.stdin.flush()
                answer = proc.stdout.readline().strip()
            except (OSError, ValueError) as exc:
                self._proc = None
                raise SandboxError(f"the mount helper is gone: {exc}", plugin=plugin) from exc
        if answer != "ok":
            why = answer.removeprefix("error ").strip() or "no answer"
            raise SandboxError(f"could not deliver the snapshot into the pre-warmed jail: {why}", plugin=plugin)

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=5)


mounter = Mounter()

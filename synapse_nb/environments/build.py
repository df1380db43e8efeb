"""Building one environment: stage, fetch, install in the jail, precompile, record, rename into place.

Where packages come from:

* offline (``--wheelhouse DIR`` or ``environments.find_links``): the jailed pip installs from those folders
  with ``--no-index``; nothing is fetched, and sdists found there are built inside the jail;
* online: pip on the host *downloads* the requirements and their dependencies as binary wheels only
  (``--only-binary=:all:``: resolution reads wheel metadata, so no third-party code runs on the host), into the
  shared wheel cache ``SYNAPSE_HOME/cache/wheels/<index id>`` (a wheel is fetched once for all environments;
  only the host's pip writes there, jailed code only reads it); the jailed pip then installs exactly the
  wheels the host resolved (a constraints file) from there, with ``--no-index``. A requirement with no wheel
  for this interpreter is an error that says to use a wheelhouse: building sdists fetched from an index needs
  network inside the jail, which waits for the egress proxy (network scopes).

The caller holds the key's lock. Everything happens in a staging folder next to the final one; only a
complete environment is renamed to ``envs/<key>``, so a killed build leaves nothing that is later used.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from ..config import EnvironmentSettings
from ..errors import DependencyError, ResourceLimitExceeded, SandboxError, SynapseError
from ..paths import synapse_home
from ..requirements import Requirements
from ..sandbox.host import HostInfo
from ..sandbox.jail import NOBODY
from .cache import INSTALLER_PID, RECORD, SITE, EnvironmentRecord, EnvironmentStore, interpreter_tag, platform_tag
from .installer import JOB_DIR, BuildJob, pip_failure, run_installer
from .progress import PipProgress, ProgressCallback

__all__ = ["build_environment", "pip_package_dir", "wheel_cache"]

_COMMON_PIP = ("--no-input", "--disable-pip-version-check", "--progress-bar", "off")


def pip_package_dir() -> Path:
    """The kernel's pip package folder (mounted read-only into the installer's jail)."""
    import importlib.util

    spec = importlib.util.find_spec("pip")
    if spec is None or not spec.origin:
        raise SandboxError(
            "pip is not installed in the kernel's environment; the jailed installer runs it "
            f"(run `{sys.executable} -m ensurepip`)"
        )
    return Path(spec.origin).resolve().parent


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.lchown(path, uid, gid)
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(os.path.join(folder, name), uid, gid)


def _packages(site: Path) -> tuple[str, ...]:
    from packaging.utils import canonicalize_name

    found = {}
    for dist in metadata.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if name:
            found[canonicalize_name(name)] = f"{canonicalize_name(name)}=={dist.version}"
    return tuple(found[name] for name in sorted(found))


def _tree_stats(site: Path) -> tuple[int, int]:
    size = pycs = 0
    for folder, _dirs, files in os.walk(site):
        for name in files:
            size += os.lstat(os.path.join(folder, name)).st_size
            pycs += name.endswith(".pyc")
    return size, pycs


def wheel_cache(settings: EnvironmentSettings) -> Path:
    """The shared wheel cache of one index configuration: ``SYNAPSE_HOME/cache/wheels/<index id>``.

    ``pip download`` saves into it and reuses what is there (checked against the index's hash when the index
    gives one), whatever cache headers the index sends. One folder per index configuration, so that switching
    to another index never picks up a same-named wheel from the previous one. Only the host's pip writes here.
    """
    source = json.dumps([settings.index_url or "pip-configuration", *settings.extra_index_urls])
    return synapse_home() / "cache" / "wheels" / hashlib.sha256(source.encode()).hexdigest()[:16]


_USED = re.compile(r"^\s*(?:Saved|File was already downloaded) (.+\.whl)\s*$")


def _download(
    requirements_file: Path,
    cache: Path,
    *,
    settings: EnvironmentSettings,
    on_line: Callable[[str], None],
    timeout_s: float,
) -> tuple[int, list[str], list[Path]]:
    """pip download, binary wheels only, on the host (no third-party code runs), into the wheel cache.

    Returns (status, the last output lines, the wheel files this resolution uses). Downloads into one cache
    folder are serialised (a flock), so that no build reads a wheel another is still writing.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(cache)]
    cmd += ["--cache-dir", str(synapse_home() / "cache" / "pip"), *_COMMON_PIP, "-r", str(requirements_file)]
    cmd += ["--retries", "3"]  # pip's 5 back off for ~8 s per URL before an unreachable index is reported
    env = dict(os.environ)
    if settings.index_url:
        # Our configuration names the index: pip's own configuration files and PIP_* variables must not add others.
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        cmd += ["--index-url", settings.index_url]
    for url in settings.extra_index_urls:
        cmd += ["--extra-index-url", url]
    tail: deque[str] = deque(maxlen=200)
    used: list[Path] = []
    cache.mkdir(parents=True, exist_ok=True)
    lock = os.open(cache.parent / f"{cache.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        if proc.stdout is None:  # for type checkers: stdout=PIPE sets it
            raise RuntimeError("pip's output pipe is missing")
        deadline = time.monotonic() + timeout_s
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            tail.append(line)
            on_line(line)
            if match := _USED.match(line):
                used.append(cache / Path(match.group(1)).name)
            if time.monotonic() > deadline:
                proc.kill()
                tail.append(f"ERROR: download timed out after {timeout_s:g} s")
                break
        status = proc.wait()
    finally:
        os.close(lock)
    return status, list(tail), used


def _constraints(wheels: list[Path]) -> str:
    """``name==version`` for each wheel the host resolved: the jailed pip must pick exactly these."""
    from packaging.utils import parse_wheel_filename

    pins = set()
    for wheel in wheels:
        name, version, _build, _tags = parse_wheel_filename(wheel.name)
        pins.add(f"{name}=={version}\n")
    return "".join(sorted(pins))


def _no_space(exc: OSError, plugin: str | None) -> ResourceLimitExceeded:
    return ResourceLimitExceeded(
        f"no space left on the device holding {synapse_home() / 'envs'} while building the plugin's environment; "
        "free some space (`synapse-cli env gc`) or point SYNAPSE_HOME at a larger disk",
        plugin=plugin,
        limit="disk",
        value="full",
        details=[str(exc)],
    )


def build_environment(
    requirements: Requirements,
    *,
    key: str,
    store: EnvironmentStore,
    host: HostInfo,
    settings: EnvironmentSettings,
    find_links: tuple[Path, ...],
    plugin: str | None,
    progress: ProgressCallback | None = None,
) -> EnvironmentRecord:
    """Build environment ``key`` and rename it into place (the caller holds ``store.lock(key)``)."""
    started = time.time()
    reporter = PipProgress(progress, plugin=plugin, key=key)
    store.clear_staging(key)
    stage: Path | None = None
    try:
        stage = store.staging(key)
        stage.chmod(0o755)
        job_dir, site, tmp = stage / "job", stage / SITE, stage / "tmp"
        for folder in (job_dir, site, tmp):
            folder.mkdir()
        (job_dir / "requirements.txt").write_text("".join(f"{line.text}\n" for line in requirements))
        if host.is_root:  # the jailed installer runs as nobody
            for folder in (site, tmp):
                os.chown(folder, NOBODY, NOBODY)
        final_site = store.site_dir(key)
        pip_args = ["install", "--isolated", *_COMMON_PIP, "--no-index", "--target", str(final_site)]
        pip_args += ["--no-compile", "--no-cache-dir", "--no-warn-script-location"]
        if find_links:
            source = "the wheelhouse " + ", ".join(str(d) for d in find_links)
            sources = find_links
            pip_args += ["--prefer-binary", *[a for d in find_links for a in ("--find-links", str(d))]]
            reporter.emit("resolving", f"resolving {len(requirements)} requirement(s) offline from {source}")
        else:
            source = "the package index (binary wheels only for " + f"{interpreter_tag()} {platform_tag()})"
            cache = wheel_cache(settings)
            reporter.emit("resolving", f"resolving {len(requirements)} requirement(s) against the package index")
            status, tail, used = _download(
                job_dir / "requirements.txt",
                cache,
                settings=settings,
                on_line=reporter.feed,
                timeout_s=settings.build_timeout,
            )
            if status != 0:
                error = pip_failure(tail, requirements, plugin=plugin, source=source)
                if isinstance(error, DependencyError):
                    error.details.append(
                        "sdists are built only from a wheelhouse for now: `pip download --no-deps -d DIR REQ`, "
                        "then --wheelhouse DIR (or environments.find_links)"
                    )
                raise error
            sources = (cache,)
            pip_args += ["--only-binary=:all:", "--find-links", str(cache)]
            if not requirements.hash_pinned:  # hash-pinned files pin every distribution already
                (job_dir / "constraints.txt").write_text(_constraints(used))
                pip_args += ["-c", f"{JOB_DIR}/constraints.txt"]
        pip_args += ["-r", f"{JOB_DIR}/requirements.txt"]
        reporter.emit("resolving", "starting the installer in its jail (no network)", 0.5)

        def feed(line: str) -> None:
            if line.startswith("synapse: compiling"):
                reporter.emit("compiling", "precompiling bytecode (unchecked-hash .pyc)", 0.1)
            else:
                reporter.feed(line)

        job = BuildJob(
            job_dir=job_dir,
            stage_site=site,
            final_site=final_site,
            stage_tmp=tmp,
            sources=tuple(sources),
            pip_dir=pip_package_dir(),
            pip_args=tuple(pip_args),
            memory_mb=settings.build_memory_mb,
            timeout_s=settings.build_timeout,
        )
        status, tail, stopped = run_installer(job, host, on_line=feed, pid_file=stage / INSTALLER_PID)
        if status != 0 or stopped is not None:
            raise pip_failure(tail, requirements, plugin=plugin, source=source, stopped=stopped)
        if not any("synapse: compiled" in line for line in tail):
            message = "the installer stopped before precompiling bytecode"
            raise DependencyError(message, plugin=plugin, details=tail[-6:])
        for leftover in ("tmp", "job", "nsjail.cfg", INSTALLER_PID):
            path = stage / leftover
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        if host.is_root:
            _chown_tree(site, host.uid, host.gid)
        size, pycs = _tree_stats(site)
        record = EnvironmentRecord(
            key=key,
            path=store.path(key),
            requirements=tuple(sorted({line.normalized for line in requirements})),
            interpreter=interpreter_tag(),
            platform=platform_tag(),
            packages=_packages(site),
            source="wheelhouse" if find_links else "index",
            created=time.time(),
            build_seconds=round(time.time() - started, 3),
            size_bytes=size,
            bytecode_files=pycs,
        )
        with open(stage / RECORD, "w", encoding="utf-8") as fh:
            json.dump(record.to_json(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        store.commit(stage, key)
        stage = None
        reporter.emit("done", f"environment {key[:12]} ready: {len(record.packages)} package(s)", 1.0)
        return record
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(exc, plugin) from exc
        raise
    except SynapseError as exc:
        if exc.plugin is None:
            exc.plugin = plugin
        raise
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)

"""Which environment a plugin runs in: the kernel's (reused read-only) or a built one from the cache.

:func:`resolve_environment` is what activation calls; :func:`lookup_environment` is its cheap half (no build),
used to start the jail before the signature is verified.

Decisions:

* the kernel's environment is reused when it satisfies every requirement (checked with ``packaging`` against
  installed distributions) and no line carries ``--hash``: hashes promise *these exact files*, which
  installed distributions cannot prove, so hash-pinned requirements always get a built environment;
* a built environment is keyed by (normalised requirements, interpreter, platform) and shared by every plugin
  with that key; the first activation builds it under the key's lock, concurrent ones wait and then use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, EnvironmentSettings, load_config
from ..errors import UsageError
from ..requirements import Requirements
from ..sandbox.host import HostInfo, detect_host
from .cache import EnvironmentRecord, EnvironmentStore, environment_key, interpreter_tag, platform_tag
from .kernel import lookup_versions, unsatisfied
from .progress import ProgressCallback, ProgressEvent

__all__ = ["Environment", "lookup_environment", "plan_environment", "resolve_environment"]


@dataclass(frozen=True)
class Environment:
    """The dependency environment a plugin's jail mounts read-only.

    ``kind`` is ``"kernel"`` (the kernel's own site-packages) or ``"built"`` (``path`` under
    ``SYNAPSE_HOME/envs``). ``site_dirs`` are what the jail mounts and the guest adds with ``site.addsitedir``;
    ``packages`` lists ``name==version`` (for the kernel: the distributions the plugin requires).
    """

    kind: str
    key: str
    path: Path | None
    site_dirs: tuple[Path, ...]
    packages: tuple[str, ...]
    requirements: tuple[str, ...] = ()
    interpreter: str = ""
    platform: str = ""
    source: str = "kernel"  # kernel | index | wheelhouse
    extra_dirs: tuple[Path, ...] = ()
    built_now: bool = False  # this call built it (else: the kernel, or a cache hit)
    ready: bool = True  # False: planned only (see plan_environment), not built yet
    created: float | None = None
    size_bytes: int = 0
    bytecode_files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "path": str(self.path) if self.path is not None else None,
            "site_dirs": [str(d) for d in self.site_dirs],
            "packages": list(self.packages),
            "requirements": list(self.requirements),
            "interpreter": self.interpreter,
            "platform": self.platform,
            "source": self.source,
            "built_now": self.built_now,
            "ready": self.ready,
            "created": self.created,
            "size_bytes": self.size_bytes,
            "bytecode_files": self.bytecode_files,
        }

    @classmethod
    def from_record(cls, record: EnvironmentRecord, *, built_now: bool = False) -> Environment:
        return cls(
            kind="built",
            key=record.key,
            path=record.path,
            site_dirs=(record.site_dir,),
            packages=record.packages,
            requirements=record.requirements,
            interpreter=record.interpreter,
            platform=record.platform,
            source=record.source,
            built_now=built_now,
            created=record.created,
            size_bytes=record.size_bytes,
            bytecode_files=record.bytecode_files,
        )


def _kernel(requirements: Requirements, host: HostInfo) -> Environment | None:
    installed = lookup_versions({line.name for line in requirements})
    if unsatisfied(requirements, installed):
        return None
    # A requirement whose marker excludes this platform may be absent: it is satisfied and not listed.
    packages = [f"{name}=={installed[name]}" for name in sorted(installed)]
    return Environment(
        kind="kernel",
        key=environment_key(requirements, interpreter=f"kernel:{host.python}"),
        path=None,
        site_dirs=host.site_dirs,
        packages=tuple(packages),
        requirements=tuple(line.normalized for line in requirements),
        interpreter=interpreter_tag(),
        platform=platform_tag(),
        source="kernel",
        extra_dirs=host.extra_dirs,
    )


def _settings(config: Config | None) -> tuple[Config, EnvironmentSettings]:
    cfg = config if config is not None else load_config()
    return cfg, cfg.environments


def _find_links(wheelhouse: str | Path | None, settings: EnvironmentSettings) -> tuple[Path, ...]:
    dirs = [Path(wheelhouse)] if wheelhouse is not None else [Path(d) for d in settings.find_links]
    out = []
    for d in dirs:
        path = Path(os.path.expandvars(str(d))).expanduser().absolute()
        if not path.is_dir():
            where = "--wheelhouse" if wheelhouse is not None else "environments.find_links"
            raise UsageError(f"{where}: {str(path)!r} is not a folder of wheels (or sdists)")
        out.append(path)
    return tuple(out)


def lookup_environment(
    requirements: Requirements,
    *,
    config: Config | None = None,
    host: HostInfo | None = None,
    store: EnvironmentStore | None = None,
    force_build: bool = False,
) -> Environment | None:
    """The environment to use if it is available *now* (the kernel's, or a built one in the cache), else None."""
    cfg, settings = _settings(config)
    info = host or detect_host(cfg.sandbox.nsjail)
    if settings.reuse_kernel and not force_build and not requirements.hash_pinned:
        kernel = _kernel(requirements, info)
        if kernel is not None:
            return kernel
    store = store or EnvironmentStore()
    key = environment_key(requirements)
    record = store.get(key)
    if record is None:
        return None
    store.touch(key)
    return Environment.from_record(record)


def plan_environment(
    requirements: Requirements,
    *,
    config: Config | None = None,
    host: HostInfo | None = None,
    store: EnvironmentStore | None = None,
) -> Environment:
    """The environment ``requirements`` would get, without building anything (for inspection commands).

    The kernel's or a cached one when available, else the built environment to come (``ready`` False, no
    packages yet) at the path it will have: what ``plugin sandbox-config`` prints, running nothing.
    """
    store = store or EnvironmentStore()
    found = lookup_environment(requirements, config=config, host=host, store=store)
    if found is not None:
        return found
    key = environment_key(requirements)
    return Environment(
        kind="built",
        key=key,
        path=store.path(key),
        site_dirs=(store.site_dir(key),),
        packages=(),
        requirements=tuple(sorted({line.normalized for line in requirements})),
        interpreter=interpreter_tag(),
        platform=platform_tag(),
        source="planned",
        ready=False,
    )


def resolve_environment(
    requirements: Requirements,
    *,
    plugin: str,
    wheelhouse: str | Path | None = None,
    progress: ProgressCallback | None = None,
    config: Config | None = None,
    host: HostInfo | None = None,
    store: EnvironmentStore | None = None,
    force_build: bool = False,
) -> Environment:
    """The environment ``plugin`` runs in: the kernel's if it satisfies ``requirements``, else a built one.

    A built environment comes from the cache when its key is there; otherwise it is built now (offline from
    ``wheelhouse`` or ``environments.find_links`` when given, else from the package index), under the key's
    lock so that concurrent activations build it once. ``progress`` receives :class:`ProgressEvent` objects.
    ``force_build`` skips the kernel fast path.

    Raises :class:`~synapse_nb.errors.DependencyError` (exit 3) when the requirements cannot be installed,
    :class:`~synapse_nb.errors.RegistryError` (9) when the index cannot be reached,
    :class:`~synapse_nb.errors.ResourceLimitExceeded` (6) when the disk is full, and
    :class:`~synapse_nb.errors.SandboxError` (8) when the installer's jail cannot run.
    """
    cfg, settings = _settings(config)
    info = host or detect_host(cfg.sandbox.nsjail)
    store = store or EnvironmentStore()
    found = lookup_environment(requirements, config=cfg, host=info, store=store, force_build=force_build)
    if found is not None:
        if progress is not None:
            progress(ProgressEvent("done", f"using the {found.kind} environment {found.key[:12]}", 1.0, plugin))
        return found
    from .build import build_environment

    find_links = _find_links(wheelhouse, settings)
    key = environment_key(requirements)
    with store.lock(key):
        record = store.get(key)  # built by someone else while we waited for the lock
        if record is not None:
            store.touch(key)
            if progress is not None:
                progress(ProgressEvent("done", f"using environment {key[:12]} (built meanwhile)", 1.0, plugin, key))
            return Environment.from_record(record)
        record = build_environment(
            requirements,
            key=key,
            store=store,
            host=info,
            settings=settings,
            find_links=find_links,
            plugin=plugin,
            progress=progress,
        )
    return Environment.from_record(record, built_now=True)

"""The typed manifest model: what the rest of synapse_nb reads once a manifest has validated."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Literal

from ..semver import SemVer
from ..units import format_duration_ms

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT_MS",
    "BatchPolicy",
    "CachePolicy",
    "Execution",
    "Interface",
    "Manifest",
    "NetworkAccess",
    "Permissions",
    "RuntimeRequirement",
    "SystemResources",
]

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_MEMORY_MB = 512

Trigger = Literal["sync", "async", "event"]


@dataclass(frozen=True)
class RuntimeRequirement:
    """``python3`` or ``python3.N``: the minimum interpreter a plugin needs."""

    major: int = 3
    minor: int | None = None

    @classmethod
    def parse(cls, text: str) -> RuntimeRequirement:
        _, _, minor = text.partition(".")
        return cls(3, int(minor) if minor else None)

    def satisfied_by(self, version: tuple[int, ...] = tuple(sys.version_info[:2])) -> bool:
        if version[0] != self.major:
            return False
        return self.minor is None or version[1] >= self.minor

    def __str__(self) -> str:
        return "python3" if self.minor is None else f"python3.{self.minor}"


@dataclass(frozen=True)
class Execution:
    trigger: Trigger = "sync"
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    entrypoint: str | None = None

    @property
    def timeout(self) -> str:
        return format_duration_ms(self.timeout_ms)


@dataclass(frozen=True)
class Interface:
    type: str
    protocol: Literal["grpc", "http", "local"]
    endpoints: dict[str, str]


@dataclass(frozen=True)
class NetworkAccess:
    domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemResources:
    gpu: bool = False
    memory_mb: int = DEFAULT_MEMORY_MB


@dataclass(frozen=True)
class Permissions:
    """``spec.permissions``, in the spec's own shape; the defaults grant nothing beyond 512 MiB of memory."""

    network_access: NetworkAccess = field(default_factory=NetworkAccess)
    system_resources: SystemResources = field(default_factory=SystemResources)

    @property
    def domains(self) -> tuple[str, ...]:
        return self.network_access.domains

    @property
    def gpu(self) -> bool:
        return self.system_resources.gpu

    @property
    def memory_mb(self) -> int:
        return self.system_resources.memory_mb


@dataclass(frozen=True)
class BatchPolicy:
    max_batch_size: int = 1
    max_delay_ms: int = 0


@dataclass(frozen=True)
class CachePolicy:
    ttl_ms: int


@dataclass(frozen=True)
class Manifest:
    """A validated ``manifest.yaml``. Build one with :func:`synapse_nb.manifest.load_manifest`."""

    name: str
    version: SemVer
    runtime: RuntimeRequirement
    execution: Execution = field(default_factory=Execution)
    interfaces: tuple[Interface, ...] = ()
    permissions: Permissions = field(default_factory=Permissions)
    events: tuple[str, ...] = ()
    batch: BatchPolicy | None = None
    cache: CachePolicy | None = None
    secrets: tuple[str, ...] = ()
    description: str = ""
    category: str | None = None
    tags: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    license: str | None = None
    homepage: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def id(self) -> str:
        """``name@version``, the identity a signature and a registry entry refer to."""
        return f"{self.name}@{self.version}"

    def endpoint_names(self) -> list[str]:
        """Every endpoint key of every interface, in manifest order."""
        return [name for iface in self.interfaces for name in iface.endpoints]

    def resolve_endpoint(self, requested: str | None) -> str | None:
        """The endpoint key that ``requested`` names (a key such as ``primary`` or a path such as
        ``/v1/analyze``); None for the default (``execute``). ``KeyError`` lists the valid names when it names
        none. ``primary`` is always valid: it is the handler's ``execute``."""
        if requested is None or requested in ("", "primary", "execute"):
            return None
        for iface in self.interfaces:
            for key, path in iface.endpoints.items():
                if requested in (key, path):
                    return None if key == "primary" else key
        raise KeyError(requested)

    def endpoint_choices(self) -> list[str]:
        """What ``--endpoint`` accepts, for error messages: ``primary``, then each key and its path."""
        choices = ["primary"]
        for iface in self.interfaces:
            for key, path in iface.endpoints.items():
                choices += [c for c in (key, path) if c not in choices]
        return choices

    def to_dict(self) -> dict[str, Any]:
        """The manifest as written (JSON-compatible), for round-tripping to YAML or JSON."""
        return self.raw

"""What a worker may do: the manifest's permission scopes combined with the host's sandbox settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import SandboxSettings
from ..manifest import Manifest
from ..manifest.model import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_MS

__all__ = ["SandboxPolicy"]


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits and grants for one worker. Build it with :meth:`from_manifest`."""

    # Defaults are the manifest's and the host settings' own, so that they are written down once.
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    pids_max: int = SandboxSettings.pids_max
    tmp_mb: int = SandboxSettings.tmp_mb
    fsize_mb: int = SandboxSettings.fsize_mb
    nofile: int = SandboxSettings.nofile
    cpu_seconds: int = SandboxSettings.cpu_seconds
    max_log_bytes: int = SandboxSettings.max_log_bytes
    teardown_timeout_ms: int = SandboxSettings.teardown_timeout_ms
    max_payload_bytes: int = SandboxSettings.max_payload_bytes
    max_output_bytes: int = SandboxSettings.max_output_bytes
    max_state_bytes: int = SandboxSettings.max_state_bytes
    idle_freeze_ms: int = SandboxSettings.idle_freeze_ms
    network_domains: tuple[str, ...] = ()
    gpu: bool = False
    # How it may be isolated: "auto" (the best this host gives) or "process" (forced); and whether the
    # rlimits-only "process" level is acceptable at all (config `sandbox.require: any`, or an explicit opt-in).
    isolation: str = "auto"
    allow_process: bool = False

    @classmethod
    def from_manifest(cls, manifest: Manifest, settings: SandboxSettings | None = None) -> SandboxPolicy:
        s = settings or SandboxSettings()
        perms = manifest.permissions
        return cls(
            memory_mb=perms.memory_mb,
            timeout_ms=manifest.execution.timeout_ms,
            pids_max=s.pids_max,
            tmp_mb=s.tmp_mb,
            fsize_mb=s.fsize_mb,
            nofile=s.nofile,
            cpu_seconds=s.cpu_seconds,
            max_log_bytes=s.max_log_bytes,
            teardown_timeout_ms=s.teardown_timeout_ms,
            max_payload_bytes=s.max_payload_bytes,
            max_output_bytes=s.max_output_bytes,
            max_state_bytes=s.max_state_bytes,
            idle_freeze_ms=s.idle_freeze_ms,
            network_domains=perms.domains,
            gpu=perms.gpu,
            isolation=s.isolation,
            allow_process=s.require == "any",
        )

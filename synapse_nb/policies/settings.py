"""What each execution policy is set to for one plugin: built-in defaults, ``policies:`` of the host config, and
the plugin's own manifest (``spec.batch``, ``spec.cache``, ``spec.execution.idempotent`` and ``.circuit``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..units import parse_duration_ms

if TYPE_CHECKING:
    from ..config import Config
    from ..manifest import Manifest

__all__ = ["CircuitSettings", "PolicySettings", "RetrySettings"]

DAY_MS = 24 * 3_600_000


@dataclass(frozen=True)
class CircuitSettings:
    """Open after ``failures`` consecutive failures, or when more than ``failure_rate`` of the last ``window`` calls
    failed; stay open ``reset_ms``, then let one probe call through (half-open)."""

    failures: int = 5
    window: int = 20
    failure_rate: float = 0.5
    reset_ms: int = 30_000


@dataclass(frozen=True)
class RetrySettings:
    """At most ``attempts`` attempts in all, ``backoff_ms`` doubling up to ``max_backoff_ms`` between them (each
    wait drawn between half and all of it: jitter), and never a new attempt after ``max_total_ms``."""

    attempts: int = 3
    backoff_ms: int = 50
    max_backoff_ms: int = 2_000
    max_total_ms: int = 60_000


@dataclass(frozen=True)
class PolicySettings:
    """Every policy of one plugin, resolved."""

    max_batch_size: int = 1
    max_delay_ms: int = 0
    cache_ttl_ms: int | None = None  # spec.cache.ttl; None: no spec.cache (handler-set TTLs still count)
    idempotent: bool = False
    circuit: CircuitSettings = field(default_factory=CircuitSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    idempotency_window_ms: int = DAY_MS
    cache_max_entries: int = 10_000
    cache_max_bytes: int = 64 << 20

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 1

    @classmethod
    def resolve(cls, manifest: Manifest, config: Config | None) -> PolicySettings:
        """Defaults < host config ``policies:`` < the manifest (a plugin tunes its own circuit)."""
        host: dict[str, Any] = config.data.get("policies", {}) if config is not None else {}
        circuit = dict(host.get("circuit", {}))
        if "reset" in circuit:
            circuit["reset_ms"] = parse_duration_ms(circuit.pop("reset"))
        own = manifest.execution.circuit
        for name in ("failures", "window", "failure_rate", "reset_ms"):
            value = getattr(own, name)
            if value is not None:
                circuit[name] = value
        retry: dict[str, Any] = {}
        for key, value in host.get("retry", {}).items():
            retry[key if key == "attempts" else f"{key}_ms"] = value if key == "attempts" else parse_duration_ms(value)
        cache_host = host.get("cache", {})
        window = host.get("idempotency", {}).get("window")
        batch = manifest.batch
        return cls(
            max_batch_size=batch.max_batch_size if batch is not None else 1,
            max_delay_ms=batch.max_delay_ms if batch is not None else 0,
            cache_ttl_ms=manifest.cache.ttl_ms if manifest.cache is not None else None,
            idempotent=manifest.execution.idempotent,
            circuit=CircuitSettings(**circuit),
            retry=RetrySettings(**retry),
            idempotency_window_ms=parse_duration_ms(window) if window else DAY_MS,
            cache_max_entries=int(cache_host.get("max_entries", cls.cache_max_entries)),
            cache_max_bytes=int(cache_host.get("max_bytes", cls.cache_max_bytes)),
        )

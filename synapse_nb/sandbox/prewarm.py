"""Pre-warmed jails: activation below nsjail's own start-up time.

Starting a jail (namespaces, cgroup placement, mounts, exec of the interpreter) is most of a cold start. So for
every jail configuration recently used in this process, a small pool keeps jails already started: the same
limits, namespaces, seccomp policy, cgroups and read-only mounts as any worker of that configuration, the guest
runtime running and waiting, but **no plugin**: ``/plugin`` is an empty placeholder. A verified plugin is handed
to one of them by mounting its snapshot read-only at ``/plugin`` (:mod:`.mounter`) before its start frame; from
then on it is an ordinary worker.

Rules:

- a pooled jail is keyed by everything its configuration depends on (the policy, the dependency environment's
  mounts, the mode) and is only ever taken for that key;
- a jail that has held a plugin is never given another (a worker is adopted once and dies with its plugin);
- the pool is bounded: ``sandbox.prewarm`` jails per key (default 1; 0 turns pre-warming off), for the
  :data:`MAX_KEYS` most recently used keys, and at most ``sandbox.prewarm_memory_mb`` of resident memory in all;
- it is filled in the background after each use, never on a caller's path;
- only where it can be done exactly as strongly as a fresh jail's bind mount: nsjail level, as root, and no
  network scopes (their egress listener is set up when the jail starts); anything else starts fresh jails;
- one-shot commands (``plugin run``, ``plugin test``) do not use it: a jail pre-started for a process that exits
  would never pay.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import threading
from typing import Any

from ..errors import SynapseError
from .host import HostInfo
from .isolation import expected_isolation
from .jail import JailLayout
from .worker import Worker, WorkerSpec

__all__ = ["MAX_KEYS", "PrewarmPool", "prewarmed"]

MAX_KEYS = 4
# A refill waits this long, so that starting the next jail never competes with the activation that just took one.
REFILL_DELAY_S = 0.25


def pool_key(spec: WorkerSpec, host: HostInfo) -> tuple[Any, ...]:
    """What a pre-warmed jail's configuration depends on (not the plugin: it holds none yet): the host facts
    (the nsjail binary, the interpreter, cgroups), the policy and the environment's mounts."""
    layout = spec.layout
    return (host, spec.policy, layout.site_dirs, layout.extra_dirs, spec.mode, spec.extra_mounts)


def _template(spec: WorkerSpec) -> WorkerSpec:
    layout = JailLayout(plugin_dir=None, site_dirs=spec.layout.site_dirs, extra_dirs=spec.layout.extra_dirs)
    return dataclasses.replace(spec, plugin="synapse-prewarm", version="0", digest="", layout=layout,
                               entrypoint=None, secrets={})  # fmt: skip


class PrewarmPool:
    """Ready jails per configuration key, refilled in the background."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[tuple[Any, ...], list[Worker]] = {}
        self._wanted: collections.OrderedDict[tuple[Any, ...], tuple[WorkerSpec, HostInfo, int, int]] = (
            collections.OrderedDict()
        )
        self._filling: set[tuple[Any, ...]] = set()
        self.started = 0  # jails pre-warmed into the pool since it was last closed (for tests and the bench)

    @staticmethod
    def eligible(spec: WorkerSpec, host: HostInfo) -> bool:
        """Can a jail for ``spec`` be pre-warmed here, exactly as strong as a fresh one?"""
        policy = spec.policy
        return (
            host.is_root
            and not policy.network_domains
            and spec.mode == "serve"
            and expected_isolation(host, policy) != "process"
        )

    def take(self, spec: WorkerSpec, host: HostInfo) -> Worker | None:
        """A ready jail for ``spec``'s configuration, adopted for its plugin, or None (then start one fresh)."""
        key = pool_key(spec, host)
        with self._lock:
            ready = self._ready.get(key, [])
            while ready:
                worker = ready.pop(0)
                if worker.alive and not worker.died_while_idle():
                    break
                worker.kill("pre-warmed jail died while waiting")
            else:
                return None
        worker.adopt(spec)
        self._refill(key)
        return worker

    def want(self, spec: WorkerSpec, host: HostInfo, *, size: int, memory_mb: int) -> None:
        """Keep ``size`` jails ready for ``spec``'s configuration from now on (the least recently used of more
        than :data:`MAX_KEYS` configurations is dropped)."""
        if size <= 0 or not self.eligible(spec, host):
            return
        key = pool_key(spec, host)
        dropped: list[Worker] = []
        with self._lock:
            self._wanted[key] = (_template(spec), host, size, memory_mb)
            self._wanted.move_to_end(key)
            while len(self._wanted) > MAX_KEYS:
                old, _ = self._wanted.popitem(last=False)
                dropped += self._ready.pop(old, [])
        for worker in dropped:
            worker.kill("pre-warmed jail no longer wanted")
        self._refill(key)

    def _resident_mb(self) -> float:
        return sum(w.rss_bytes() for ready in self._ready.values() for w in ready) / (1 << 20)

    def _refill(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            wanted = self._wanted.get(key)
            if wanted is None or key in self._filling:
                return
            _template_spec, _host, size, memory_mb = wanted
            if len(self._ready.get(key, [])) >= size or self._resident_mb() >= memory_mb:
                return
            self._filling.add(key)
        timer = threading.Timer(REFILL_DELAY_S, self._fill, args=(key,))
        timer.name, timer.daemon = "synapse-prewarm", True
        timer.start()

    def _fill(self, key: tuple[Any, ...]) -> None:
        try:
            with self._lock:
                wanted = self._wanted.get(key)
            if wanted is None:
                return
            template, host, _size, _memory = wanted
            try:
                worker = Worker(template, host)
                worker.warm_up()
            except SynapseError:  # this configuration cannot be pre-warmed here: stop trying it
                with self._lock:
                    self._wanted.pop(key, None)
                return
            with self._lock:
                if key in self._wanted:
                    self._ready.setdefault(key, []).append(worker)
                    self.started += 1
                    worker = None  # type: ignore[assignment]
            if worker is not None:
                worker.kill("pre-warmed jail no longer wanted")
        finally:
            with self._lock:
                self._filling.discard(key)
        self._refill(key)  # more than one per key, or another key waiting

    def ready(self, spec: WorkerSpec, host: HostInfo | None = None) -> int:
        """How many jails are ready for ``spec``'s configuration (on this process's host by default)."""
        from .host import detect_host

        with self._lock:
            return len(self._ready.get(pool_key(spec, host or detect_host()), []))

    def wait_ready(self, spec: WorkerSpec, timeout: float = 10.0) -> bool:
        """Wait until at least one jail is ready for ``spec`` (tests and benchmarks)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready(spec):
                return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        """Kill every ready jail and forget every key."""
        with self._lock:
            workers = [w for ready in self._ready.values() for w in ready]
            self._ready.clear()
            self._wanted.clear()
            self.started = 0
        for worker in workers:
            worker.kill("pre-warm pool closed")


prewarmed = PrewarmPool()
atexit.register(prewarmed.close)

"""The policy chain every call of a plugin goes through, around its runner (see :mod:`synapse_nb.policies`).

::

    validated input -> idempotency key (replay | claim | wait) -> response cache (hit) -> circuit (refuse | probe)
        -> attempts (retry with backoff where safe) -> [dynamic batcher] -> runner -> circuit (record)
        -> output validated by the pipeline -> cache (store with the response's TTL) -> idempotency (store outcome)

:class:`PolicyChain` holds one plugin's policies and offers the steps; :class:`~synapse_nb.invocation.Pipeline`
runs them for ``invoke``, ``invoke_batch`` and async jobs, so that every entry point (``Plugin.run``/``invoke``/
``run_batch``/``submit``, ``PluginManager.run``/``emit``, the CLI, the notebook, served requests) gets them.
With every policy at its default a call costs a dict read (the circuit) and a few attribute checks more.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import PluginTimeout, SynapseError
from ..state.base import StateStoreError
from ..state.memory import MemoryKV
from .batcher import Batcher, Request
from .cache import CacheHit, ResponseCache, canonical_json
from .circuit import CircuitBreaker, LocalCell, SharedCell
from .idempotency import Claim, IdempotencyKeys, Replay
from .response import handler_ttl, item_outcomes
from .retry import Retry
from .settings import PolicySettings

if TYPE_CHECKING:
    from ..config import Config
    from ..invocation import Execution, Runner
    from ..manifest import Manifest
    from ..state.base import KeyValue

__all__ = ["Call", "PolicyChain"]

_cells: dict[str, LocalCell] = {}
_cells_lock = threading.Lock()
_memory = MemoryKV()  # idempotency records of plugins that run without a state store


def local_cell(key: str) -> LocalCell:
    """The in-process circuit record of ``key``: every handle of one plugin in this process shares it."""
    with _cells_lock:
        cell = _cells.get(key)
        if cell is None:
            cell = _cells[key] = LocalCell()
        return cell


@dataclass(slots=True)
class Call:
    """What the policies know about one call (or one ``run_batch``) while it goes through the chain."""

    endpoint: str | None
    body: bytes
    claim: Claim | None = None
    replay: Replay | None = None
    hit: CacheHit | None = None
    cache: str | None = None  # hit | miss | bypass; None: caching is off for this plugin
    cache_key: str | None = None
    cache_ttl_ms: int | None = None
    probe: str = ""
    attempts: int = 0
    batch_size: int | None = None
    retry: Retry | None = None

    @property
    def answered(self) -> bool:
        """Answered without running: a replayed idempotency key or a cache hit."""
        return self.replay is not None or self.hit is not None


def _remaining_ms(deadline: float | None, default_ms: int, plugin: str) -> int:
    if deadline is None:
        return default_ms
    left = int((deadline - time.monotonic()) * 1000)
    if left <= 0:
        raise PluginTimeout("no time left for the handler: the call's budget was used up before it ran",
                            plugin=plugin, timeout_ms=default_ms)  # fmt: skip
    return left


class PolicyChain:
    """One plugin's execution policies and the steps of the chain."""

    def __init__(
        self,
        plugin: str,
        settings: PolicySettings,
        runner: Runner,
        *,
        identity: str,
        namespace: str,
        store: KeyValue | None = None,
        timeout_ms: int,
    ) -> None:
        self.plugin = plugin
        self.settings = settings
        self.runner = runner
        self.timeout_ms = timeout_ms
        shared = store if store is not None and store.shared else None
        cell_key = f"circuit:{identity}"
        lease = timeout_ms * settings.retry.attempts + settings.retry.max_total_ms
        self.circuit = CircuitBreaker(plugin, settings.circuit,
                                      SharedCell(shared, cell_key) if shared is not None else local_cell(cell_key),
                                      probe_lease_ms=lease)  # fmt: skip
        self.cache = ResponseCache(
            identity, settings.cache_ttl_ms, shared=shared, max_entries=settings.cache_max_entries,
            max_bytes=settings.cache_max_bytes,
        )  # fmt: skip
        self.keys = IdempotencyKeys(plugin, namespace, store if store is not None else _memory,
                                    window_ms=settings.idempotency_window_ms, lease_ms=lease)  # fmt: skip
        self.batcher = (
            Batcher(plugin, self._run_batch, max_batch_size=settings.max_batch_size, max_delay_ms=settings.max_delay_ms)
            if settings.batching
            else None
        )

    @classmethod
    def build(
        cls,
        manifest: Manifest,
        runner: Runner,
        *,
        namespace: str,
        digest: str,
        config: Config | None = None,
        store: KeyValue | None = None,
        timeout_ms: int,
    ) -> PolicyChain:
        """The chain of a plugin from its manifest and the host config; ``namespace`` is its state key
        (``name@publisher``), ``digest`` its file set's."""
        settings = PolicySettings.resolve(manifest, config)
        return cls(manifest.name, settings, runner, identity=f"{namespace}:{digest[:24]}", namespace=namespace,
                   store=store, timeout_ms=timeout_ms)  # fmt: skip

    # -- before running ----------------------------------------------------------------------------------------
    def early(self, payload: Any, endpoint: str | None, *, cache: bool) -> Call:
        """Before the input is even validated, what costs least: a cache hit (only validated inputs are ever
        cached, under the same schemas, so a hit needs no validation), then the circuit (an open one refuses
        at once). For calls without an idempotency key."""
        if not (cache and self.cache.enabled):  # the circuit first: a refusal costs next to nothing
            return Call(endpoint, b"", cache=None if cache else "bypass", probe=self.circuit.check())
        call = Call(endpoint, b"")
        try:
            canonical = canonical_json(payload)
        except (TypeError, ValueError, RecursionError):
            canonical = None  # not JSON as it stands: the input check says why, or the key comes after it
        if canonical is not None:
            call.cache_key = self.cache.key(endpoint, canonical)
            call.hit = self.cache.get(call.cache_key)
            call.cache = "hit" if call.hit is not None else "miss"
            if call.hit is not None:
                return call
        call.probe = self.circuit.check()
        return call

    def lookup(
        self, body: bytes, endpoint: str | None, *, cache: bool, idempotency_key: str | None, wait_until: float
    ) -> Call:
        """Idempotency (replay, claim, or wait for the first call's outcome), then the response cache."""
        call = Call(endpoint, body)
        use_cache = cache and self.cache.enabled
        canonical = None
        if idempotency_key is not None or use_cache:
            canonical = canonical_json(json.loads(body))
        if idempotency_key is not None and canonical is not None:
            fingerprint = hashlib.sha256((endpoint or "").encode() + b"\0" + canonical).hexdigest()
            got = self.keys.begin(idempotency_key, fingerprint, wait_until=wait_until)
            if isinstance(got, Replay):
                call.replay = got
                return call
            call.claim = got
        if not cache:
            call.cache = "bypass"
        elif use_cache and canonical is not None:
            call.cache_key = self.cache.key(endpoint, canonical)
            call.hit = self.cache.get(call.cache_key)
            call.cache = "hit" if call.hit is not None else "miss"
            if call.hit is not None and call.claim is not None:
                call.claim.succeeded(call.hit.result)
        return call

    def admit(self, call: Call) -> None:
        """The circuit: :class:`~synapse_nb.errors.CircuitOpen` while open (the key, if claimed, is given back)."""
        try:
            call.probe = self.circuit.check()
        except SynapseError:
            if call.claim is not None:
                call.claim.release()
            raise

    # -- running -----------------------------------------------------------------------------------------------
    def retry_for(self, call: Call) -> Retry | None:
        """Retries only where safe: an idempotent plugin, or a call with an idempotency key."""
        if self.settings.idempotent or call.claim is not None:
            return Retry(self.settings.retry)
        return None

    def attempt(self, call: Call, *, deadline: float | None, caller_deadline: float | None) -> Execution:
        """Run the call, retrying crashes and timeouts where that is safe (a new budget each attempt, within the
        caller's own deadline when it gave one)."""
        retry = self.retry_for(call)
        while True:
            call.attempts += 1
            try:
                return self.execute(call.body, call.endpoint, deadline=deadline, probe=call.probe)
            except SynapseError as exc:
                delay = retry.next_delay(exc, deadline=caller_deadline) if retry is not None else None
                if delay is None:
                    raise
            time.sleep(delay)
            call.probe = self.circuit.check()  # an open circuit ends the retries
            deadline = caller_deadline or time.monotonic() + self.timeout_ms / 1000

    def execute(self, body: bytes, endpoint: str | None, *, deadline: float | None, probe: str = "") -> Execution:
        """One attempt: through the dynamic batcher when batching is on, else straight to the runner; the
        circuit records its outcome."""
        if self.batcher is not None:
            return self.batcher.call(Request(body, endpoint, deadline, probe))
        return self._execute(body, endpoint, deadline, probe)

    def _execute(self, body: bytes, endpoint: str | None, deadline: float | None, probe: str) -> Execution:
        try:
            run = self.runner.execute(body, endpoint=endpoint, timeout_ms=_remaining_ms(deadline, self.timeout_ms,
                                                                                       self.plugin))  # fmt: skip
        except SynapseError as exc:
            self.circuit.record(exc, probe)
            raise
        self.circuit.record(None, probe)
        return run

    def submit(self, request: Request) -> None:
        """An async request (a job) through the batcher; its callback gets the outcome."""
        if self.batcher is None:  # pragma: no cover - the pipeline checks
            raise RuntimeError("batching is off")
        self.batcher.submit(request)

    def _run_batch(self, requests: list[Request]) -> list[Execution | SynapseError]:
        """The batcher's runner: one call for one request, else one ``execute_batch`` for all of them."""
        if len(requests) == 1:
            request = requests[0]
            try:
                run = self._execute(request.body, request.endpoint, request.deadline, request.probe)
            except SynapseError as exc:
                return [exc]
            run.batch_size = 1
            return [run]
        outcomes: list[Execution | SynapseError | None] = [None] * len(requests)
        live: list[int] = []
        now = time.monotonic()
        for i, request in enumerate(requests):
            if request.deadline is not None and request.deadline <= now:
                outcomes[i] = PluginTimeout("timed out waiting for a batch: the call's budget ran out in the queue",
                                            plugin=self.plugin, timeout_ms=self.timeout_ms)  # fmt: skip
            else:
                live.append(i)
        if live:
            deadlines = [d for d in (requests[i].deadline for i in live) if d is not None]
            timeout_ms = _remaining_ms(min(deadlines), self.timeout_ms, self.plugin) if deadlines else self.timeout_ms
            probe = next((requests[i].probe for i in live if requests[i].probe), "")
            endpoint = requests[live[0]].endpoint
            results: list[Execution | SynapseError]
            try:
                if len(live) == 1:
                    run = self.runner.execute(requests[live[0]].body, endpoint=endpoint, timeout_ms=timeout_ms)
                    run.batch_size = 1
                    results = [run]
                else:
                    bodies = [requests[i].body for i in live]
                    run = self.runner.execute_batch(bodies, endpoint=endpoint, timeout_ms=timeout_ms)
                    results = item_outcomes(run, len(live), self.plugin)
            except SynapseError as exc:
                self.circuit.record(exc, probe)
                results = [exc] * len(live)
            else:
                self.circuit.record(None, probe)
            for i, outcome in zip(live, results, strict=True):
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    # -- after running -----------------------------------------------------------------------------------------
    def response_ttl(self, call: Call, run: Execution) -> None:
        """Read the response's own TTL (a malformed one fails the call, exit 7) and decide the TTL it is cached
        with; a handler that sets a TTL switches caching on for its plugin even without ``spec.cache``."""
        own = handler_ttl(run, self.plugin)
        if call.cache == "bypass":
            return
        if own is not None and call.cache is None and own > 0:
            self.cache.enabled = True
            call.cache = "miss"
            call.cache_key = self.cache.key(call.endpoint, canonical_json(json.loads(call.body)))
        if call.cache_key is not None:
            call.cache_ttl_ms = self.cache.ttl_for(own)

    def succeeded(self, call: Call, result: Any) -> None:
        """Keep the validated result: in the cache (with its TTL), as the idempotency key's outcome."""
        if call.cache_key is not None and call.cache_ttl_ms and call.hit is None:
            self.cache.put(call.cache_key, result, call.cache_ttl_ms)
        if call.claim is not None:
            call.claim.succeeded(result)

    def failed(self, call: Call, error: SynapseError, *, executed: bool) -> None:
        """An error is never cached; it is the key's outcome when the call had started executing."""
        claim = call.claim
        if claim is None:
            return
        try:
            if executed:
                claim.failed(error)
            else:
                claim.release()
        except StateStoreError:
            pass  # the caller gets the call's own error; the claim expires after its lease

    def meta(self, call: Call) -> dict[str, Any]:
        """The policies' part of a call's ``meta``."""
        meta: dict[str, Any] = {"circuit": self.circuit.state}
        if call.cache is not None:
            meta["cache"] = call.cache
            if call.hit is not None:
                meta["cache_ttl_ms"] = call.hit.ttl_ms
            elif call.cache_ttl_ms is not None:
                meta["cache_ttl_ms"] = call.cache_ttl_ms
        if call.replay is not None:
            meta["idempotency"] = "replayed"
        elif call.claim is not None:
            meta["idempotency"] = "stored"
        if call.attempts > 1:
            meta["attempts"] = call.attempts
        if call.batch_size is not None:
            meta["batch_size"] = call.batch_size
        return meta

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()

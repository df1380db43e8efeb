"""Execution policies: the spec's best practices, applied by the host around every call of a plugin.

=====================  ==============================================================================
policy                 set by
=====================  ==============================================================================
dynamic batching       ``spec.batch: {max_batch_size, max_delay_ms}`` (:mod:`.batcher`)
response cache         ``spec.cache.ttl``; a handler's ``respond(result, cache_ttl=...)`` (:mod:`.cache`)
idempotency keys       ``run(..., idempotency_key=K)``, ``--idempotency-key`` (:mod:`.idempotency`)
circuit breaker        always on: ``spec.execution.circuit``, config ``policies.circuit`` (:mod:`.circuit`)
retries                ``spec.execution.idempotent: true`` or an idempotency key (:mod:`.retry`)
=====================  ==============================================================================

They live in the manager/invocation layer, not in the sandbox: :class:`.chain.PolicyChain` holds one plugin's
policies and :class:`~synapse_nb.invocation.Pipeline` runs its steps around the runner. Records that must
outlive a process or be shared (idempotency outcomes; with Redis or Memcached also cached responses and
circuit states) live in the state store (:class:`~synapse_nb.state.base.KeyValue`).
"""

from __future__ import annotations

from .chain import Call, PolicyChain
from .settings import CircuitSettings, PolicySettings, RetrySettings

__all__ = ["Call", "CircuitSettings", "PolicyChain", "PolicySettings", "RetrySettings"]

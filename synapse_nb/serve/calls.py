"""The one seam between a served request and the core pipeline: endpoint key, deadline, idempotency key, cache.

Both transports call :func:`invoke` / :func:`invoke_batch` (from a worker thread: the core blocks), so what a
request may ask of the core is decided here and only here:

- the endpoint is the route's *key* (``primary``), which the core maps to the handler method;
- a client deadline becomes the call's timeout when it is shorter than ``spec.execution.timeout``
  (:func:`deadline_timeout_ms`), handed to the core as ``timeout_ms=``: the worker is stopped at the deadline
  and the caller gets PluginTimeout (exit 5), not only the transport's DEADLINE_EXCEEDED;
- an idempotency key (``Idempotency-Key`` header, ``idempotency-key`` metadata), checked by
  :func:`~.headers.check_idempotency_key` (Malformed, 400, for a bad one), is handed on as
  ``idempotency_key=``: the execution policies run the call once per key and replay its outcome;
- ``Cache-Control: no-cache`` (header or metadata) is ``cache=False``: the call bypasses the response cache;
- a batch may ask for ``return_exceptions``: each failed item's error in its place, not the whole batch failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import PluginTimeout
from ..manager import PluginManager
from ..plugin import Invocation
from .headers import check_idempotency_key
from .routing import Route

if TYPE_CHECKING:
    from .service import PluginService

EDGE_MARGIN_MS = 250
ANSWER_MARGIN_MS = 50  # the error must reach the client before its own deadline fires

__all__ = [
    "Asked",
    "check_idempotency_key",
    "deadline_timeout_ms",
    "invoke",
    "invoke_batch",
    "prepare",
    "run_in_thread",
]


@dataclass(frozen=True)
class Asked:
    """What a request asks of the core besides its payload (see :mod:`.headers`)."""

    idempotency_key: str | None = None
    cache: bool = True
    return_exceptions: bool = False


def deadline_timeout_ms(remaining_s: float | None, declared_ms: int, *, plugin: str) -> int | None:
    """The call's timeout for a client deadline ``remaining_s`` seconds away: None keeps the declared one.

    The plugin gets the remaining time less :data:`ANSWER_MARGIN_MS`, the time its error needs to reach the
    client before the deadline does. A deadline that has already passed fails at once (PluginTimeout),
    without running the plugin.
    """
    if remaining_s is None:
        return None
    remaining_ms = int(remaining_s * 1000) - ANSWER_MARGIN_MS
    if remaining_ms <= 0:
        raise PluginTimeout(
            "the client's deadline had passed before the call started", plugin=plugin, timeout_ms=max(remaining_ms, 0)
        )
    return remaining_ms if remaining_ms < declared_ms else None


def invoke(manager: PluginManager, route: Route, payload: Any, *, timeout_ms: int | None, asked: Asked) -> Invocation:
    """One call of ``route`` through the core pipeline (blocking: run it in a worker thread)."""
    key = check_idempotency_key(asked.idempotency_key)
    return manager.invoke(
        route.plugin, payload, endpoint=route.key, timeout_ms=timeout_ms, cache=asked.cache, idempotency_key=key
    )


def invoke_batch(
    manager: PluginManager, route: Route, items: list[Any], *, timeout_ms: int | None, asked: Asked
) -> Invocation:
    """``items`` of ``route`` as ``execute_batch`` calls (blocking); the result is the list of results, with
    each failed item's :class:`~synapse_nb.errors.SynapseError` in its place when ``asked.return_exceptions``."""
    key = check_idempotency_key(asked.idempotency_key)
    return manager.invoke_batch(
        route.plugin,
        items,
        endpoint=route.key,
        timeout_ms=timeout_ms,
        cache=asked.cache,
        idempotency_key=key,
        return_exceptions=asked.return_exceptions,
    )


def prepare(
    service: PluginService,
    route: Route,
    payload: Any,
    *,
    remaining_s: float | None,
    asked: Asked,
    batch: bool,
) -> tuple[int | None, Callable[[], Invocation]]:
    """The call's timeout (None: the declared one) and its blocking work, counted in flight while it runs.

    The gRPC listener runs the work on its own thread (the core stops the worker at the deadline, and gRPC
    answers DEADLINE_EXCEEDED should anything else be late); the HTTP listener through :func:`run_in_thread`.
    """
    declared = service.manifest(route.plugin).execution.timeout_ms
    timeout_ms = deadline_timeout_ms(remaining_s, declared, plugin=route.plugin)
    run = invoke_batch if batch else invoke

    def work() -> Invocation:
        with service.call(route.plugin):
            return run(service.manager, route, payload, timeout_ms=timeout_ms, asked=asked)

    return timeout_ms, work


async def run_in_thread(
    service: PluginService,
    executor: Executor,
    route: Route,
    payload: Any,
    *,
    remaining_s: float | None,
    asked: Asked,
    batch: bool,
) -> Invocation:
    """Run one call (``batch``: ``payload`` is the list of items) in ``executor``, within the client's deadline.

    The HTTP listener comes through here. The call is counted in flight (shutdown and reload wait for it); when
    the deadline passes first, the caller gets PluginTimeout at the deadline.
    """
    timeout_ms, work = prepare(service, route, payload, remaining_s=remaining_s, asked=asked, batch=batch)
    future = asyncio.get_running_loop().run_in_executor(executor, work)
    if timeout_ms is None:
        return await future
    # The core's own PluginTimeout (its worker stopped) comes first; this is the net, should the call queue.
    edge_ms = timeout_ms + EDGE_MARGIN_MS
    try:
        return await asyncio.wait_for(asyncio.shield(future), edge_ms / 1000)
    except asyncio.TimeoutError:
        raise PluginTimeout(
            f"no result within the client's deadline of {timeout_ms} ms", plugin=route.plugin, timeout_ms=timeout_ms
        ) from None

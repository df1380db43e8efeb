"""One call pipeline, shared by every way a plugin runs.

::

    payload -> endpoint -> encode (JSON, size cap) -> validate input (host) -> runner -> validate output (host)
            -> count -> notify (CallEvent) -> record (I/O history) -> Invocation(result, meta)

A :class:`Runner` is what executes the validated payload: a jailed warm worker
(:class:`~synapse_nb.runners.SandboxRunner`) or this very process for debugging
(:class:`~synapse_nb.runners.InProcessRunner`). Both satisfy the same protocol and go through the same
:class:`Pipeline`, so the host-side checks, the counters, the events and the metadata cannot drift apart.
"""

from __future__ import annotations

import collections
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from .errors import CircuitOpen, PluginTimeout, SynapseError, UsageError
from .payloads import encode_payload, validate_input, validate_output
from .policies import Call, PolicyChain
from .policies.idempotency import error_from_json, error_to_json
from .policies.response import item_outcomes

if TYPE_CHECKING:
    from .manifest import Manifest
    from .sandbox.worker import StartInfo, Worker
    from .schemas import SchemaSet

__all__ = [
    "CallEvent",
    "CallRecord",
    "Execution",
    "Invocation",
    "Pipeline",
    "Runner",
    "resolve_endpoint",
]


class Invocation:
    """A call's validated result and what is known about how it was obtained (``meta``: a dict).

    ``meta`` is built when first read: ``plugin.run`` returns only the result and never pays for it.
    """

    __slots__ = ("_make", "_meta", "result")

    def __init__(self, result: Any, meta: dict[str, Any] | None = None, *,
                 make: Callable[[], dict[str, Any]] | None = None) -> None:  # fmt: skip
        self.result = result
        self._meta = meta if meta is not None or make is not None else {}
        self._make = make

    @property
    def meta(self) -> dict[str, Any]:
        if self._meta is None:
            assert self._make is not None
            self._meta, self._make = self._make(), None
        return self._meta

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Invocation):
            return NotImplemented
        return (self.result, self.meta) == (other.result, other.meta)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Invocation(result={self.result!r}, meta={self.meta!r})"


@dataclass(frozen=True)
class CallEvent:
    """One finished call, as observers see it (the manager counts them; the I/O debugger shows them).

    ``kind`` is ``call``, ``batch`` or ``job``; ``items`` how many inputs it carried; ``stage`` where it ended
    (``input``, ``execute``, ``output`` or ``done``).
    """

    plugin: str
    version: str
    kind: str
    ok: bool
    ms: float
    stage: str
    items: int = 1
    handler_ms: float = 0.0
    endpoint: str | None = None
    error: SynapseError | None = None


@dataclass
class CallRecord:
    """One call as the I/O debugger shows it: what went in, what came out, where it stopped, how long it took.

    ``stage`` is where the call ended: ``input`` (refused by the input schema), ``execute`` (the handler or the
    sandbox failed), ``output`` (refused by the output schema) or ``done``.
    """

    payload: Any
    at: float
    total_ms: float
    stage: str
    validated_input: Any = None
    raw_output: Any = None
    output: Any = None
    error: SynapseError | None = None
    queue_ms: float = 0.0
    handler_ms: float = 0.0
    stdout: str = ""
    stderr: str = ""
    version: str = ""


@dataclass
class Execution:
    """What a runner returns for one request: the raw (not yet host-validated) result and its costs."""

    result: Any
    handler_ms: float
    queue_ms: float
    total_ms: float
    stdout: str = ""
    stderr: str = ""
    started: StartInfo | None = None  # set when this request paid a cold start
    # The handler's response metadata (BaseHandler.respond, ItemError), checked on the way: {"cache_ttl_ms": N}
    # for a call, {"items": [None | {"cache_ttl_ms": N} | {"error": {"type", "message"}}, ...]} for a batch.
    meta: dict[str, Any] | None = None
    batch_size: int | None = None  # set when the dynamic batcher ran it as part of a batch of this size


class Runner(Protocol):
    """Executes already validated, encoded payloads for one plugin: sandboxed or in this process."""

    @property
    def isolation(self) -> str: ...

    @property
    def last_start(self) -> StartInfo | None: ...

    @property
    def worker(self) -> Worker | None: ...

    @property
    def stop_error(self) -> str | None: ...

    def start(self) -> StartInfo | None:
        """Make sure the plugin is started (the cold start, if not done yet)."""
        ...

    def execute(self, body: bytes, *, endpoint: str | None, timeout_ms: int | None) -> Execution: ...

    def execute_batch(self, bodies: list[bytes], *, endpoint: str | None, timeout_ms: int | None) -> Execution: ...

    def execute_many(self, bodies: list[bytes]) -> list[Execution | SynapseError | None]:
        """Independent calls, pipelined where the runner can; None for a call never reached (safe to retry)."""
        ...

    def state(self) -> dict[str, Any]: ...

    def close(self) -> dict[str, Any]:
        """Tear down (the handler's teardown runs); the final state."""
        ...


def resolve_endpoint(manifest: Manifest, requested: str | None) -> str | None:
    """The endpoint key a call goes to (None: ``execute``); :class:`UsageError` (exit 2) lists the valid ones."""
    try:
        return manifest.resolve_endpoint(requested)
    except KeyError:
        valid = ", ".join(manifest.endpoint_choices())
        raise UsageError(f"unknown endpoint {requested!r}; valid: {valid}", plugin=manifest.name) from None


_NOTHING_RAN = {"cold_start_ms": 0.0, "queue_ms": 0.0, "handler_ms": 0.0, "stdout": "", "stderr": ""}


class Pipeline:
    """The host-side steps of every call of one plugin, around its runner and its policy chain."""

    def __init__(
        self,
        manifest: Manifest,
        schemas: SchemaSet,
        runner: Runner,
        *,
        max_payload_bytes: int,
        timeout_ms: int,
        policies: PolicyChain | None = None,
    ) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self.version = str(manifest.version)
        self.schemas = schemas
        self.runner = runner
        self.max_payload_bytes = max_payload_bytes
        self.timeout_ms = timeout_ms
        self.listeners: list[Callable[[CallEvent], None]] = []
        self.calls = 0
        self.errors = 0
        self.history: collections.deque[CallRecord] | None = None
        self.base_meta: dict[str, Any] = {}
        self.extra_meta: Callable[[], dict[str, Any]] | None = None  # e.g. whether the state checkpoint was saved
        if policies is None:
            policies = PolicyChain.build(manifest, runner, namespace=f"{manifest.name}@local", digest="-",
                                         timeout_ms=timeout_ms)  # fmt: skip
        self.policies = policies

    # -- the steps ---------------------------------------------------------------------------------------------
    def encode(self, payload: Any, *, deadline: float | None = None, timeout_ms: int | None = None) -> bytes:
        """The payload as JSON, size-checked and validated on the host: exactly what the handler will see."""
        encoded = encode_payload(payload, plugin=self.name, max_bytes=self.max_payload_bytes)
        validate_input(self.schemas, json.loads(encoded), deadline=deadline, timeout_ms=timeout_ms)
        return encoded

    def check_output(self, value: Any, *, deadline: float | None = None, timeout_ms: int | None = None) -> Any:
        return validate_output(self.schemas, value, deadline=deadline, timeout_ms=timeout_ms)

    def _timeout(self, timeout_ms: int | None) -> int:
        if timeout_ms is None:
            return self.timeout_ms
        if timeout_ms <= 0:
            raise PluginTimeout("the caller's deadline had already passed", plugin=self.name, timeout_ms=0)
        return min(self.timeout_ms, timeout_ms)

    def _within_budget(self, run: Callable[[], Execution], budget_ms: int) -> Execution:
        """``run()``; a timeout names the call's whole budget (the worker only had what validation left of it)."""
        try:
            return run()
        except PluginTimeout as exc:
            if exc.timeout_ms == budget_ms or not exc.message.startswith("timed out: no result within"):
                raise
            raise PluginTimeout(
                f"timed out: no result within {budget_ms} ms (spec.execution.timeout, host-side validation "
                "included); its worker was killed",
                plugin=self.name, timeout_ms=budget_ms, details=exc.details,
            ) from None  # fmt: skip

    def _finish(
        self, kind: str, t0: float | None, stage: str, record: CallRecord | None = None, *, ms: float = 0.0,
        **fields: Any,
    ) -> None:  # fmt: skip
        """Count a finished call, notify the listeners with its :class:`CallEvent` (built only when someone
        listens), and keep its record for the I/O debugger."""
        ok = stage == "done"
        if ok:
            self.calls += 1
        else:
            self.errors += 1
        if self.listeners:
            if t0 is not None:
                ms = (time.perf_counter() - t0) * 1000
            event = CallEvent(self.name, self.version, kind, ok, ms, stage, **fields)
            for listener in list(self.listeners):
                listener(event)
        if record is not None and self.history is not None:
            self.history.append(record)

    def _record(self, payload: Any, t0: float, stage: str, run: Execution | None, **fields: Any) -> CallRecord | None:
        if self.history is None:
            return None
        record = CallRecord(payload=payload, at=time.time(), total_ms=(time.perf_counter() - t0) * 1000,
                            stage=stage, version=self.version, **fields)  # fmt: skip
        if run is not None:
            record.raw_output = run.result
            record.queue_ms, record.handler_ms = run.queue_ms, run.handler_ms
            record.stdout, record.stderr = run.stdout, run.stderr
        return record

    def meta(
        self, run: Execution | None, t0: float, *, endpoint: str | None, items: int | None = None,
        call: Call | None = None,
    ) -> Callable[[], dict[str, Any]]:  # fmt: skip
        """The call's metadata, as a function that builds it when the caller asks (what changes afterwards, the
        time and the checkpoint's fate, is read now)."""
        duration_ms = (time.perf_counter() - t0) * 1000
        extra = self.extra_meta() if self.extra_meta is not None else None

        def build() -> dict[str, Any]:
            meta = {**self.base_meta, "isolation": self.runner.isolation, "duration_ms": round(duration_ms, 3)}
            if run is not None:
                started = run.started
                meta["cold_start_ms"] = round(started.cold_start_ms, 3) if started else 0.0
                meta["queue_ms"], meta["handler_ms"] = round(run.queue_ms, 3), round(run.handler_ms, 3)
                meta["stdout"], meta["stderr"] = run.stdout, run.stderr
            else:  # answered by the policies: nothing ran
                meta.update(_NOTHING_RAN)
            if extra is not None:
                meta.update(extra)
            if endpoint is not None:
                meta["endpoint"] = endpoint
            if items is not None:
                meta["batch_size"] = items
            if call is not None:
                meta.update(self.policies.meta(call))
            return meta

        return build

    def _answered(self, call: Call, payload: Any, t0: float, kind: str, *, items: int | None = None) -> Invocation:
        """A call answered by the policies without running: a replayed idempotency key or a cache hit."""
        if call.replay is not None and not call.replay.ok and call.replay.error is not None:
            raise call.replay.error
        result = call.replay.result if call.replay is not None else call.hit.result if call.hit is not None else None
        record = None
        if self.history is not None:
            record = self._record(payload, t0, "done", None, validated_input=payload, output=result)
        self._finish(kind, t0, "done", record, items=items or 1, endpoint=call.endpoint)
        return Invocation(result, make=self.meta(None, t0, endpoint=call.endpoint, items=items, call=call))

    # -- one call ----------------------------------------------------------------------------------------------
    def invoke(
        self, payload: Any, *, endpoint: str | None = None, timeout_ms: int | None = None, cache: bool = True,
        idempotency_key: str | None = None,
    ) -> Invocation:  # fmt: skip
        """Validate ``payload`` on the host, run it through the policies and the runner, validate the result.

        ``cache=False`` bypasses the response cache; ``idempotency_key`` runs the call once per key (see
        :mod:`synapse_nb.policies.idempotency`).
        """
        t0 = time.perf_counter()
        stage = "input"
        run: Execution | None = None
        key = None
        call: Call | None = None
        chain = self.policies
        try:
            key = None if endpoint is None else resolve_endpoint(self.manifest, endpoint)
            budget_ms = self.timeout_ms if timeout_ms is None else self._timeout(timeout_ms)
            # One budget for the whole call: validation on the host counts against the call's timeout.
            deadline = time.monotonic() + budget_ms / 1000
            if idempotency_key is None:
                call = chain.early(payload, key, cache=cache)  # a cache hit or an open circuit: no validation
                if call.hit is not None:
                    stage = "execute"
                    return self._answered(call, payload, t0, "call")
            body = self.encode(payload, deadline=deadline, timeout_ms=budget_ms)
            if call is None or (call.cache is None and cache and chain.cache.enabled):
                probe = call.probe if call is not None else ""
                wait_until = time.monotonic() + chain.keys.lease_ms / 1000
                call = chain.lookup(body, key, cache=cache, idempotency_key=idempotency_key, wait_until=wait_until)
                if call.answered:
                    stage = "execute"
                    return self._answered(call, payload, t0, "call")
                stage = "execute"
                if idempotency_key is not None:
                    chain.admit(call)
                else:
                    call.probe = probe
            call.body = body
            stage = "execute"
            attempt = call
            caller = deadline if timeout_ms is not None else None
            run = self._within_budget(lambda: chain.attempt(attempt, deadline=deadline, caller_deadline=caller),
                                      budget_ms)  # fmt: skip
            call.batch_size = run.batch_size
            chain.response_ttl(call, run)
            stage = "output"
            result = self.check_output(run.result, deadline=deadline, timeout_ms=budget_ms)
            chain.succeeded(call, result)
        except SynapseError as exc:
            if isinstance(exc, CircuitOpen):
                stage = "execute"
            if call is not None and not call.answered:
                chain.failed(call, exc, executed=run is not None or stage == "output" or call.attempts > 0)
            record = None
            if self.history is not None:
                fields: dict[str, Any] = {"error": exc}
                if stage != "input" and not isinstance(exc, CircuitOpen):  # refused before (or without) validation
                    fields["validated_input"] = payload
                record = self._record(payload, t0, stage, run, **fields)
            self._finish("call", t0, stage, record, endpoint=key, error=exc)
            raise
        self._finish("call", t0, "done", self._record(payload, t0, "done", run, validated_input=payload, output=result),
                     endpoint=key, handler_ms=run.handler_ms)  # fmt: skip
        return Invocation(result, make=self.meta(run, t0, endpoint=key, call=call))

    # -- one batch ---------------------------------------------------------------------------------------------
    def invoke_batch(
        self, items: list[Any], *, endpoint: str | None = None, timeout_ms: int | None = None, cache: bool = True,
        idempotency_key: str | None = None, return_exceptions: bool = False,
    ) -> Invocation:  # fmt: skip
        """Validate every item, run them as ``execute_batch`` calls of at most ``spec.batch.max_batch_size``
        items (cached items are not run again), validate every result.

        An item whose handler returned an ``ItemError`` (or whose result fails the output schema) raises, unless
        ``return_exceptions``: then its place in the result list holds its :class:`SynapseError`.
        """
        t0 = time.perf_counter()
        stage = "input"
        key = None
        call: Call | None = None
        chain = self.policies
        runs: list[Execution] = []
        try:
            key = resolve_endpoint(self.manifest, endpoint)
            if not isinstance(items, list):
                raise UsageError(f"a batch is a list of inputs, not {type(items).__name__}", plugin=self.name)
            budget_ms = self._timeout(timeout_ms)
            deadline = time.monotonic() + budget_ms / 1000
            bodies = [self.encode(item, deadline=deadline, timeout_ms=budget_ms) for item in items]
            whole = b"[" + b",".join(bodies) + b"]"
            call = chain.lookup(whole, key, cache=False, idempotency_key=idempotency_key,
                                wait_until=time.monotonic() + chain.keys.lease_ms / 1000)  # fmt: skip
            if call.answered:
                stage = "execute"
                invocation = self._answered(call, items, t0, "batch", items=len(items))
                return _batch_replayed(invocation, self.name, return_exceptions)
            stage = "execute"
            results, hits, ttls = self._batch_results(call, items, bodies, cache, deadline, budget_ms, runs,
                                                      caller=deadline if timeout_ms is not None else None)  # fmt: skip
            stage = "output"
            first_error = next((r for r in results if isinstance(r, SynapseError)), None)
            if first_error is not None and not return_exceptions:
                raise first_error
            if call.claim is not None:
                errors = {str(i): error_to_json(r) for i, r in enumerate(results) if isinstance(r, SynapseError)}
                call.claim.succeeded({"results": [None if isinstance(r, SynapseError) else r for r in results],
                                      "errors": errors})  # fmt: skip
        except SynapseError as exc:
            if call is not None and not call.answered:
                chain.failed(call, exc, executed=stage != "input")
            self._finish("batch", t0, stage, items=len(items), endpoint=key, error=exc)
            raise
        handler_ms = sum(r.handler_ms for r in runs)
        self._finish("batch", t0, "done", items=len(items), endpoint=key, handler_ms=handler_ms)
        meta = self.meta(runs[0] if runs else None, t0, endpoint=key, items=len(items), call=call)()
        meta["handler_ms"] = round(handler_ms, 3)
        meta["chunks"] = len(runs)
        if cache and chain.cache.enabled:
            meta["cache"] = "hit" if hits == len(items) else "miss"
            meta["cache_hits"] = hits
            if ttls:
                meta["cache_ttl_ms"] = min(ttls)
        return Invocation(results, meta)

    def _batch_results(
        self, call: Call, items: list[Any], bodies: list[bytes], cache: bool, deadline: float, budget_ms: int,
        runs: list[Execution], *, caller: float | None,
    ) -> tuple[list[Any], int, list[int]]:  # fmt: skip
        """Each item's validated result or error: cached ones from the cache, the others run in chunks."""
        chain = self.policies
        results: list[Any] = [None] * len(items)
        item_calls = [chain.lookup(body, call.endpoint, cache=cache, idempotency_key=None, wait_until=deadline)
                      for body in bodies]  # fmt: skip
        todo = [i for i, c in enumerate(item_calls) if c.hit is None]
        hits = len(items) - len(todo)
        for i, c in enumerate(item_calls):
            if c.hit is not None:
                results[i] = c.hit.result
        ttls: list[int] = []
        if todo:
            chain.admit(call)
            size = chain.settings.max_batch_size if chain.settings.batching else len(todo)
            for start in range(0, len(todo), size):
                chunk = todo[start : start + size]
                chunk_call = replace(call, body=b"", claim=None)  # retries where safe, as for one call
                if call.claim is not None:
                    chunk_call.retry = chain.retry_for(call)
                chunk_bodies = [bodies[i] for i in chunk]
                run = self._within_budget(
                    functools.partial(self._run_chunk, chunk_call, chunk_bodies, deadline, caller), budget_ms
                )
                runs.append(run)
                call.attempts = max(call.attempts, chunk_call.attempts)
                for i, outcome in zip(chunk, item_outcomes(run, len(chunk), self.name), strict=True):
                    results[i] = self._item_result(item_calls[i], outcome, deadline, budget_ms, ttls)
        return results, hits, ttls

    def _run_chunk(self, call: Call, bodies: list[bytes], deadline: float, caller: float | None) -> Execution:
        """One ``execute_batch`` of a ``run_batch`` chunk, with the circuit and retries where safe."""
        chain = self.policies
        retry = call.retry or (chain.retry_for(call) if chain.settings.idempotent else None)
        while True:
            call.attempts += 1
            try:
                ms = max(1, int((deadline - time.monotonic()) * 1000))
                run = self.runner.execute_batch(bodies, endpoint=call.endpoint, timeout_ms=ms)
            except SynapseError as exc:
                chain.circuit.record(exc, call.probe)
                delay = retry.next_delay(exc, deadline=caller) if retry is not None else None
                if delay is None:
                    raise
                time.sleep(delay)
                call.probe = chain.circuit.check()
                deadline = caller or time.monotonic() + self.timeout_ms / 1000
                continue
            chain.circuit.record(None, call.probe)
            call.probe = ""
            return run

    def _item_result(
        self, item: Call, outcome: Execution | SynapseError, deadline: float, budget_ms: int, ttls: list[int]
    ) -> Any:
        """One item of a batch: its error, or its validated result (cached with its own TTL)."""
        if isinstance(outcome, SynapseError):
            return outcome
        try:
            self.policies.response_ttl(item, outcome)
            result = self.check_output(outcome.result, deadline=deadline, timeout_ms=budget_ms)
        except SynapseError as exc:
            return exc
        self.policies.succeeded(item, result)
        if item.cache_ttl_ms:
            ttls.append(item.cache_ttl_ms)
        return result

    # -- async jobs --------------------------------------------------------------------------------------------
    def prepare_job(self, payload: Any, *, cache: bool = True) -> tuple[bytes, Call, Invocation | None]:
        """A job's host-side steps before it is queued: input validation, the cache, the circuit (raising at
        once when it is open). The invocation when the cache answered it."""
        t0 = time.perf_counter()
        chain = self.policies
        try:
            call = chain.early(payload, None, cache=cache)
        except SynapseError as exc:
            self._finish("job", t0, "execute", error=exc)
            raise
        if call.hit is not None:
            return b"", call, self._answered(call, payload, t0, "job")
        call.body = self.encode(payload)
        if call.cache is None and cache and chain.cache.enabled:
            looked = chain.lookup(call.body, None, cache=cache, idempotency_key=None, wait_until=time.monotonic())
            looked.probe = call.probe
            call = looked
            if call.hit is not None:
                return call.body, call, self._answered(call, payload, t0, "job")
        return call.body, call, None

    def settle_job(self, call: Call, outcome: Execution | SynapseError, *, recorded: bool) -> Any:
        """A job's host-side steps once it ran: the circuit (unless the batcher recorded it), output validation,
        the cache; its validated result, or its error raised. Counted like a call."""
        chain = self.policies
        if isinstance(outcome, SynapseError):
            if not recorded:
                chain.circuit.record(outcome, call.probe)
            self._finish("job", None, "execute", error=outcome)
            raise outcome
        if not recorded:
            chain.circuit.record(None, call.probe)
        try:
            call.batch_size = outcome.batch_size
            chain.response_ttl(call, outcome)
            result = self.check_output(outcome.result)
        except SynapseError as exc:
            self._finish("job", None, "output", ms=outcome.total_ms, error=exc)
            raise
        chain.succeeded(call, result)
        self._finish("job", None, "done", ms=outcome.total_ms, handler_ms=outcome.handler_ms)
        return result


def _batch_replayed(invocation: Invocation, plugin: str, return_exceptions: bool) -> Invocation:
    """A replayed ``run_batch``: its stored results, with its items' stored errors in their places."""
    stored = invocation.result if isinstance(invocation.result, dict) else {}
    results: list[Any] = list(stored.get("results") or [])
    for index, error in (stored.get("errors") or {}).items():
        if str(index).isdigit() and int(index) < len(results):
            results[int(index)] = error_from_json(error, plugin)
    first = next((r for r in results if isinstance(r, SynapseError)), None)
    if first is not None and not return_exceptions:
        raise first
    invocation.result = results
    return invocation

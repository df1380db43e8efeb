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
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import PluginTimeout, SynapseError, UsageError
from .payloads import encode_payload, validate_input, validate_output

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


@dataclass
class Invocation:
    """A call's validated result and what is known about how it was obtained."""

    result: Any
    meta: dict[str, Any] = field(default_factory=dict)


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


class Pipeline:
    """The host-side steps of every call of one plugin, around its runner."""

    def __init__(
        self, manifest: Manifest, schemas: SchemaSet, runner: Runner, *, max_payload_bytes: int, timeout_ms: int
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

    def _remaining(self, deadline: float, budget_ms: int) -> int:
        """What is left of the call's budget for the worker (input validation came out of it)."""
        left = int((deadline - time.monotonic()) * 1000)
        if left <= 0:
            raise PluginTimeout(
                f"no time left for the handler: input validation used the call's budget of {budget_ms} ms",
                plugin=self.name, timeout_ms=budget_ms,
            )  # fmt: skip
        return left

    def _finish(self, event: CallEvent, record: CallRecord | None) -> None:
        if event.ok:
            self.calls += 1
        else:
            self.errors += 1
        for listener in list(self.listeners):
            listener(event)
        if record is not None and self.history is not None:
            self.history.append(record)

    def _event(self, kind: str, t0: float | None, stage: str, *, ms: float = 0.0, **fields: Any) -> CallEvent:
        if t0 is not None:
            ms = (time.perf_counter() - t0) * 1000
        return CallEvent(self.name, self.version, kind, stage == "done", ms, stage, **fields)

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

    def meta(self, run: Execution, t0: float, *, endpoint: str | None, items: int | None = None) -> dict[str, Any]:
        started = run.started
        meta = {
            **self.base_meta,
            "isolation": self.runner.isolation,
            "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
            "cold_start_ms": round(started.cold_start_ms, 3) if started else 0.0,
            "queue_ms": round(run.queue_ms, 3),
            "handler_ms": round(run.handler_ms, 3),
            "stdout": run.stdout,
            "stderr": run.stderr,
        }
        if self.extra_meta is not None:
            meta.update(self.extra_meta())
        if endpoint is not None:
            meta["endpoint"] = endpoint
        if items is not None:
            meta["batch_size"] = items
        return meta

    # -- one call ----------------------------------------------------------------------------------------------
    def invoke(self, payload: Any, *, endpoint: str | None = None, timeout_ms: int | None = None) -> Invocation:
        """Validate ``payload`` on the host, run it, validate the result on the host."""
        t0 = time.perf_counter()
        stage = "input"
        run: Execution | None = None
        key = None
        try:
            key = resolve_endpoint(self.manifest, endpoint)
            budget_ms = self._timeout(timeout_ms)
            # One budget for the whole call: validation on the host counts against the call's timeout.
            deadline = time.monotonic() + budget_ms / 1000
            body = self.encode(payload, deadline=deadline, timeout_ms=budget_ms)
            stage = "execute"
            run = self._within_budget(
                lambda: self.runner.execute(body, endpoint=key, timeout_ms=self._remaining(deadline, budget_ms)),
                budget_ms,
            )
            stage = "output"
            result = self.check_output(run.result, deadline=deadline, timeout_ms=budget_ms)
        except SynapseError as exc:
            fields: dict[str, Any] = {"error": exc}
            if stage != "input":
                fields["validated_input"] = payload
            self._finish(self._event("call", t0, stage, endpoint=key, error=exc),
                         self._record(payload, t0, stage, run, **fields))  # fmt: skip
            raise
        self._finish(
            self._event("call", t0, "done", endpoint=key, handler_ms=run.handler_ms),
            self._record(payload, t0, "done", run, validated_input=payload, output=result),
        )
        return Invocation(result, self.meta(run, t0, endpoint=key))

    def invoke_batch(
        self, items: list[Any], *, endpoint: str | None = None, timeout_ms: int | None = None
    ) -> Invocation:
        """Validate every item, run them as one batch (``execute_batch``), validate every result."""
        t0 = time.perf_counter()
        stage = "input"
        key = None
        try:
            key = resolve_endpoint(self.manifest, endpoint)
            if not isinstance(items, list):
                raise UsageError(f"a batch is a list of inputs, not {type(items).__name__}", plugin=self.name)
            budget_ms = self._timeout(timeout_ms)
            deadline = time.monotonic() + budget_ms / 1000
            bodies = [self.encode(item, deadline=deadline, timeout_ms=budget_ms) for item in items]
            stage = "execute"
            run = self._within_budget(
                lambda: self.runner.execute_batch(
                    bodies, endpoint=key, timeout_ms=self._remaining(deadline, budget_ms)
                ),
                budget_ms,
            )
            stage = "output"
            raw = run.result
            if not isinstance(raw, list) or len(raw) != len(items):
                from .errors import PluginFailed

                got = f"{len(raw)} results" if isinstance(raw, list) else type(raw).__name__
                raise PluginFailed(f"execute_batch must return a list of {len(items)} results, got {got}",
                                   plugin=self.name)  # fmt: skip
            results = [self.check_output(value, deadline=deadline, timeout_ms=budget_ms) for value in raw]
        except SynapseError as exc:
            self._finish(self._event("batch", t0, stage, items=len(items), endpoint=key, error=exc), None)
            raise
        self._finish(self._event("batch", t0, "done", items=len(items), endpoint=key, handler_ms=run.handler_ms), None)
        return Invocation(results, self.meta(run, t0, endpoint=key, items=len(items)))

    # -- pipelined jobs ----------------------------------------------------------------------------------------
    def finish_job(self, run: Execution) -> Any:
        """Host-side output validation of one pipelined job's result, counted like a call."""
        try:
            result = self.check_output(run.result)
        except SynapseError as exc:
            self._finish(self._event("job", None, "output", ms=run.total_ms, error=exc), None)
            raise
        self._finish(self._event("job", None, "done", ms=run.total_ms, handler_ms=run.handler_ms), None)
        return result

    def fail_job(self, error: SynapseError) -> None:
        """Count a job that failed in the runner (the dispatcher hands its error to the job)."""
        self._finish(self._event("job", None, "execute", error=error), None)

"""A plugin activated in the sandbox: the object ``synapse_nb.load(path)`` returns.

Activation takes a read-only, content-addressed snapshot of the folder (hashing while copying), validates the
snapshot (manifest, schemas, requirements, tests/), checks the interpreter, resolves the dependency environment
(the kernel's when it satisfies requirements.txt, else a cached or newly built one: :mod:`synapse_nb.environments`)
and starts a warm jailed worker (cold start) that mounts it read-only. Every call then goes through the host-side
checks of :mod:`synapse_nb.payloads` around one round trip to the worker. A worker that dies or times out is
killed and replaced; the plugin's state continues from the last checkpoint.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .anatomy import PluginFolder, display_path, validate_folder
from .config import Config, SandboxSettings, load_config
from .environments import (
    Environment,
    ProgressCallback,
    lookup_environment,
    plan_environment,
    resolve_environment,
)
from .errors import SandboxError, SynapseError
from .fileset import Snapshot
from .jobs import Dispatcher, Job
from .manifest import Manifest, load_manifest
from .payloads import encode_payload, validate_input, validate_output
from .requirements import load_requirements
from .sandbox.host import HostInfo, detect_host
from .sandbox.jail import JailConfig, JailLayout, build_jail
from .sandbox.policy import SandboxPolicy
from .sandbox.pool import WorkerSlot, acquire_slot, release_slot, slot_key
from .sandbox.proxy import EgressEvent, recent_egress_events
from .sandbox.worker import CallResult, StartInfo, Worker, WorkerSpec
from .signing import SignatureCheck, check_activation, take_snapshot
from .state.base import SessionNamespace, StateStore
from .state.checkpoint import Checkpointer

__all__ = ["CallRecord", "Invocation", "Plugin", "load"]


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


@dataclass
class Invocation:
    """A call's validated result and what is known about how it was obtained."""

    result: Any
    meta: dict[str, Any] = field(default_factory=dict)


class Plugin:
    """A plugin whose worker runs under nsjail. Use :func:`load` to create one."""

    def __init__(
        self,
        folder: str | Path,
        *,
        state: dict[str, Any] | None = None,
        config: Config | None = None,
        host: HostInfo | None = None,
        activate: bool = True,
        insecure_allow_unsigned: bool = False,
        warn: Callable[[str], None] | None = None,
        store: StateStore | None = None,
        wheelhouse: str | Path | None = None,
        progress: ProgressCallback | None = None,
        allow_process_isolation: bool = False,
    ) -> None:
        self.source = Path(folder)
        # The dependency environment: found before the jail starts early, else resolved (maybe built) after
        # verification; ``wheelhouse`` installs offline, ``progress`` receives the build's events.
        self.environment: Environment | None = None
        self.wheelhouse, self.progress = wheelhouse, progress
        self._plan_environment_only = not activate  # inspection (sandbox-config, doctor) never builds one
        self.store = store
        self._explicit_state = state
        self.listeners: list[Callable[[Plugin, str, dict[str, Any]], None]] = []
        self.config = config or load_config()
        settings = self.config.sandbox
        if allow_process_isolation:  # the explicit opt-in to rlimits-only workers (= config sandbox.require: any)
            settings = replace(settings, require="any")
        self.host = host or detect_host(settings.nsjail)
        shown = display_path(folder)
        # The snapshot is what the worker mounts and what is verified: no window between check and use.
        self.snapshot: Snapshot = take_snapshot(self.source, allow_unsigned=insecure_allow_unsigned)
        early = self._early_spec(settings, shown) if activate else None
        slot: WorkerSlot | None = None
        if early is not None:
            # Start the jail now and verify while it comes up; plugin code runs only after verification.
            slot = acquire_slot(early, self.host, self._initial_state())
        try:
            if slot is not None:
                slot.prepare()  # inside the try: a refused or failed spawn releases the slot
            self.signature: SignatureCheck = check_activation(
                self.snapshot, allow_unsigned=insecure_allow_unsigned, display=self.source, warn=warn
            )
            self.folder: PluginFolder = validate_folder(self.snapshot.path, check_import=False, display=shown)
            self.manifest: Manifest = self.folder.manifest
            self.name = self.manifest.name
            self._check_runtime()
            self.policy = SandboxPolicy.from_manifest(self.manifest, settings)
            self.spec = self._worker_spec()
        except BaseException:
            if slot is not None:
                release_slot(slot)
            raise
        if slot is None or slot_key(self.spec) != slot.key:
            if slot is not None:
                release_slot(slot)
            slot = acquire_slot(self.spec, self.host, self._initial_state())
        self.slot: WorkerSlot = slot
        self.checkpointer: Checkpointer | None = None
        if store is not None:
            self.checkpointer = Checkpointer(
                store, self.name, str(self.manifest.version), on_error=lambda exc: self._notify("checkpoint", error=exc)
            )
            slot.on_state = self.checkpointer.save
            slot.session = SessionNamespace(store, self.name)
        self.calls = 0
        self.errors = 0
        self._released = False
        self._jobs: Dispatcher | None = None
        self.history: collections.deque[CallRecord] | None = None  # see keep_history()
        if activate:
            try:
                self.activate()
            except BaseException:
                self._released = True
                release_slot(self.slot)  # a worker that never started must not keep the slot
                raise

    def _initial_state(self) -> dict[str, Any] | None:
        """Explicit ``state=``, else the saved state of this plugin name in the store."""
        if self._explicit_state is not None or self.store is None:
            return self._explicit_state
        return self.store.load_state(self.name)

    def _notify(self, what: str, **detail: Any) -> None:
        for listener in list(self.listeners):
            listener(self, what, detail)

    def _early_spec(self, settings: SandboxSettings, shown: str) -> WorkerSpec | None:
        """The worker spec from the snapshot's manifest alone, or None if it does not load (reported later)."""
        try:
            manifest = load_manifest(self.snapshot.path, display=display_path(shown, "manifest.yaml"))
        except SynapseError:
            return None
        if not manifest.runtime.satisfied_by(self.host.python_version):
            return None
        self.manifest, self.name = manifest, manifest.name
        self.policy = SandboxPolicy.from_manifest(manifest, settings)
        try:
            requirements = load_requirements(self.snapshot.path)
        except SynapseError:
            return None
        self.environment = lookup_environment(requirements, config=self.config, host=self.host)
        if self.environment is None:
            return None  # to be built, after verification (building runs the dependencies' build scripts)
        return self._worker_spec()

    def _worker_spec(self) -> WorkerSpec:
        return WorkerSpec(
            plugin=self.name,
            version=str(self.manifest.version),
            digest=self.snapshot.digest,
            layout=JailLayout(
                plugin_dir=self.snapshot.path, site_dirs=self._env.site_dirs, extra_dirs=self._env.extra_dirs
            ),
            policy=self.policy,
            entrypoint=self.manifest.execution.entrypoint,
            secrets={k: os.environ[k] for k in self.manifest.secrets if k in os.environ},
        )

    def activate(self) -> StartInfo | None:
        """Start the warm worker now (the cold start), unless one is running; returns its StartInfo."""
        return self.slot.worker()[1]

    def jail_config(self) -> JailConfig:
        """The exact nsjail configuration this plugin's workers run under (file descriptors are placeholders)."""
        return build_jail(self.policy, self.spec.layout, self.host, name=self.name)

    # -- activation --------------------------------------------------------------------------------------------
    def _check_runtime(self) -> None:
        if not self.manifest.runtime.satisfied_by(self.host.python_version):
            have = "python{}.{}".format(*self.host.python_version)
            raise SandboxError(
                f"needs runtime {self.manifest.runtime}, but this kernel runs {have}; "
                "run it from a kernel with a newer interpreter",
                plugin=self.name,
            )
        if self.environment is None and self._plan_environment_only:
            self.environment = plan_environment(self.folder.requirements, config=self.config, host=self.host)
        elif self.environment is None:
            self.environment = resolve_environment(
                self.folder.requirements,
                plugin=self.name,
                wheelhouse=self.wheelhouse,
                progress=self.progress,
                config=self.config,
                host=self.host,
            )

    @property
    def _env(self) -> Environment:
        if self.environment is None:
            raise SandboxError("no dependency environment was resolved before the worker spec", plugin=self.name)
        return self.environment

    @property
    def isolation(self) -> str:
        return self.slot.isolation

    @property
    def network_events(self) -> list[EgressEvent]:
        """This plugin's refused egress attempts in this process (every worker's), oldest first."""
        return recent_egress_events(self.name)

    @property
    def last_start(self) -> StartInfo | None:
        return self.slot.last_start

    # -- calls -------------------------------------------------------------------------------------------------
    def _meta(self, worker: Worker, call: CallResult, started: StartInfo | None, t0: float) -> dict[str, Any]:
        return {
            "plugin": self.name,
            "version": str(self.manifest.version),
            "isolation": worker.isolation,
            "runtime": "python{}.{}".format(*self.host.python_version),
            "digest": self.snapshot.digest,
            **self.signature.to_meta(),
            "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
            "cold_start_ms": round(started.cold_start_ms, 3) if started else 0.0,
            "queue_ms": round(call.queue_ms, 3),
            "handler_ms": round(call.handler_ms, 3),
            "stdout": call.stdout,
            "stderr": call.stderr,
            **({"state_saved": self.checkpointer.saved} if self.checkpointer is not None else {}),
        }

    def _do(self, send: Callable[[Worker], CallResult]) -> tuple[Worker, CallResult, StartInfo | None]:
        try:
            done = self.slot.run(send)
        except SynapseError as exc:
            self._failed(exc, 0.0)
            raise
        return done

    def _failed(self, exc: SynapseError, ms: float) -> None:
        self.errors += 1
        if self.listeners:
            self._notify("call", ms=ms, error=exc)

    def _encode(self, payload: Any) -> bytes:
        """The payload as JSON, size-checked and validated on the host: exactly what the handler will see."""
        encoded = encode_payload(payload, plugin=self.name, max_bytes=self.policy.max_payload_bytes)
        validate_input(self.folder.schemas, json.loads(encoded))
        return encoded

    def keep_history(self, calls: int = 32) -> None:
        """Record the last ``calls`` calls in :attr:`history` (input, raw and validated output, timings, logs)."""
        self.history = collections.deque(self.history or (), maxlen=calls) if calls > 0 else None

    def _remember(self, payload: Any, started: float, call: CallResult | None, **fields: Any) -> None:
        if self.history is not None:
            record = CallRecord(
                payload=payload, at=time.time(), total_ms=(time.perf_counter() - started) * 1000, **fields
            )
            if call is not None:
                record.raw_output = call.result
                record.queue_ms, record.handler_ms = call.queue_ms, call.handler_ms
                record.stdout, record.stderr = call.stdout, call.stderr
            self.history.append(record)

    def _call(self, payload: Any, endpoint: str | None) -> tuple[Any, Worker, CallResult, StartInfo | None]:
        """Host-side input checks, one round trip, host-side output check."""
        t0 = time.perf_counter()
        try:
            encoded = self._encode(payload)
        except SynapseError as exc:
            self._failed(exc, 0.0)
            self._remember(payload, t0, None, error=exc, stage="input")
            raise
        try:
            worker, call, started = self._do(lambda w: w.call(encoded, endpoint=endpoint))
        except SynapseError as exc:
            self._remember(payload, t0, None, validated_input=payload, error=exc, stage="execute")
            raise
        try:
            result = validate_output(self.folder.schemas, call.result)
        except SynapseError as exc:
            self._failed(exc, call.total_ms)
            self._remember(payload, t0, call, validated_input=payload, error=exc, stage="output")
            raise
        self.calls += 1
        if self.listeners:
            self._notify("call", ms=(time.perf_counter() - t0) * 1000, error=None, handler_ms=call.handler_ms)
        self._remember(payload, t0, call, validated_input=payload, output=result, stage="done")
        return result, worker, call, started

    def submit(self, payload: Any) -> Job:
        """Queue one call and return its :class:`~synapse_nb.jobs.Job` at once (input validated now)."""
        encoded = self._encode(payload)
        if self._jobs is None:
            self._jobs = Dispatcher(self.name, self._run_many, self._finish_job)
        return self._jobs.submit(encoded)

    def _run_many(self, payloads: list[bytes]) -> list[CallResult | SynapseError | None]:
        return self.slot.run_many(payloads)[1]

    def _finish_job(self, call: CallResult) -> Any:
        try:
            result = validate_output(self.folder.schemas, call.result)
        except SynapseError as exc:
            self._failed(exc, call.total_ms)
            raise
        self.calls += 1
        if self.listeners:
            self._notify("call", ms=call.total_ms, error=None, handler_ms=call.handler_ms)
        return result

    def invoke(self, payload: Any, *, endpoint: str | None = None) -> Invocation:
        """Validate ``payload`` on the host, run it in the worker, validate the result on the host."""
        t0 = time.perf_counter()
        result, worker, call, started = self._call(payload, endpoint)
        return Invocation(result, self._meta(worker, call, started, t0))

    def run(self, payload: Any, *, endpoint: str | None = None) -> Any:
        """The validated result of one call."""
        return self._call(payload, endpoint)[0]

    def invoke_batch(self, items: list[Any], *, endpoint: str | None = None) -> Invocation:
        """Validate every item, run them as one batch (``execute_batch``), validate every result."""
        t0 = time.perf_counter()
        encoded = [encode_payload(item, plugin=self.name, max_bytes=self.policy.max_payload_bytes) for item in items]
        for body in encoded:
            validate_input(self.folder.schemas, json.loads(body))
        worker, call, started = self._do(lambda w: w.call_batch(encoded, endpoint=endpoint))
        results = call.result if isinstance(call.result, list) else []
        for value in results:
            validate_output(self.folder.schemas, value)
        return Invocation(results, self._meta(worker, call, started, t0))

    def run_batch(self, items: list[Any], *, endpoint: str | None = None) -> list[Any]:
        result: list[Any] = self.invoke_batch(items, endpoint=endpoint).result
        return result

    # -- state and teardown ------------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """The last checkpointed ``self.state`` of the handler."""
        return dict(self.slot.state)

    @property
    def worker(self) -> Worker | None:
        return self.slot.current

    def teardown(self) -> dict[str, Any]:
        """Let go of the worker (the last handle runs the handler's teardown); returns the state to preserve."""
        if self._released:
            return dict(self.slot.state)
        self._released = True
        if self._jobs is not None:
            self._jobs.close()
        final = release_slot(self.slot)
        if self.checkpointer is not None:
            self.checkpointer.save(final)
            self.checkpointer.flush()  # raises if the store is still unreachable; the state stays in memory
        return final

    def __enter__(self) -> Plugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def load(path: str | Path, **kwargs: Any) -> Plugin:
    """Activate the plugin folder at ``path`` in the sandbox."""
    return Plugin(path, **kwargs)

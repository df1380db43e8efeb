"""A plugin activated in the sandbox: the object ``synapse_nb.load(path)`` returns.

Activation takes a read-only, content-addressed snapshot of the folder (hashing while copying), validates the
snapshot (manifest, schemas, requirements, tests/), checks that the interpreter and the kernel environment
satisfy the plugin, and starts a warm jailed worker (cold start). Every call then goes through the host-side
checks of :mod:`synapse_nb.payloads` around one round trip to the worker. A worker that dies or times out is
killed and replaced; the plugin's state continues from the last checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .anatomy import PluginFolder, display_path, validate_folder
from .config import Config, SandboxSettings, load_config
from .environments.kernel import unsatisfied
from .errors import SandboxError, SynapseError
from .fileset import Snapshot
from .manifest import Manifest, load_manifest
from .payloads import encode_payload, validate_input, validate_output
from .sandbox.host import HostInfo, detect_host
from .sandbox.jail import JailConfig, JailLayout, build_jail
from .sandbox.policy import SandboxPolicy
from .sandbox.pool import WorkerSlot, acquire_slot, release_slot, slot_key
from .sandbox.worker import CallResult, StartInfo, Worker, WorkerSpec
from .signing import SignatureCheck, check_activation, take_snapshot

__all__ = ["Invocation", "Plugin", "load"]


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
    ) -> None:
        self.source = Path(folder)
        self.config = config or load_config()
        settings = self.config.sandbox
        self.host = host or detect_host(settings.nsjail)
        shown = display_path(folder)
        # The snapshot is what the worker mounts and what is verified: no window between check and use.
        self.snapshot: Snapshot = take_snapshot(self.source, allow_unsigned=insecure_allow_unsigned)
        early = self._early_spec(settings, shown) if activate else None
        slot: WorkerSlot | None = None
        if early is not None:
            # Start the jail now and verify while it comes up; plugin code runs only after verification.
            slot = acquire_slot(early, self.host, state)
            slot.prepare()
        try:
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
            slot = acquire_slot(self.spec, self.host, state)
        self.slot: WorkerSlot = slot
        self.calls = 0
        self.errors = 0
        self._released = False
        if activate:
            self.activate()

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
        return self._worker_spec()

    def _worker_spec(self) -> WorkerSpec:
        return WorkerSpec(
            plugin=self.name,
            version=str(self.manifest.version),
            digest=self.snapshot.digest,
            layout=JailLayout(
                plugin_dir=self.snapshot.path, site_dirs=self.host.site_dirs, extra_dirs=self.host.extra_dirs
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
        missing = unsatisfied(self.folder.requirements)
        if missing:
            listed = ", ".join(line.text for line in missing)
            raise SandboxError(
                f"requirements not satisfied by this environment: {listed} (requirements.txt:{missing[0].line}); "
                "install them in the kernel's environment",
                plugin=self.name,
            )

    @property
    def isolation(self) -> str:
        return self.slot.isolation

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
        }

    def _do(self, send: Callable[[Worker], CallResult]) -> tuple[Worker, CallResult, StartInfo | None]:
        try:
            done = self.slot.run(send)
        except SynapseError:
            self.errors += 1
            raise
        self.calls += 1
        return done

    def _call(self, payload: Any, endpoint: str | None) -> tuple[Any, Worker, CallResult, StartInfo | None]:
        """Host-side input checks, one round trip, host-side output check."""
        encoded = encode_payload(payload, plugin=self.name, max_bytes=self.policy.max_payload_bytes)
        schemas = self.folder.schemas
        validate_input(schemas, json.loads(encoded))  # exactly what the handler will see
        worker, call, started = self._do(lambda w: w.call(encoded, endpoint=endpoint))
        try:
            result = validate_output(schemas, call.result)
        except SynapseError:
            self.errors += 1
            raise
        return result, worker, call, started

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
        return release_slot(self.slot)

    def __enter__(self) -> Plugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()


def load(path: str | Path, **kwargs: Any) -> Plugin:
    """Activate the plugin folder at ``path`` in the sandbox."""
    return Plugin(path, **kwargs)

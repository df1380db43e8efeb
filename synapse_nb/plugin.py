"""A plugin handle: what ``synapse_nb.load(path)`` returns, whichever runner executes it.

A :class:`Plugin` is an :class:`~synapse_nb.activation.Activation` (what the activation pipeline established:
snapshot, signature, manifest, schemas, policy, environment) plus a :class:`~synapse_nb.invocation.Runner`
(a jailed warm worker, or this process in debug mode) and the one :class:`~synapse_nb.invocation.Pipeline`
every call goes through. :func:`load` activates a folder without a manager; ``synapse_nb.load`` and
:class:`~synapse_nb.manager.PluginManager` use the same pipeline and register the handle.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .activation import Activation, ActivationOptions, activate, jail_config
from .errors import SynapseError
from .invocation import CallEvent, CallRecord, Invocation, Pipeline, Runner
from .jobs import Dispatcher, Job
from .runners import SandboxRunner
from .sandbox.jail import JailConfig
from .sandbox.proxy import EgressEvent, recent_egress_events
from .state.base import SessionNamespace, SessionQuota
from .state.checkpoint import Checkpointer

if TYPE_CHECKING:
    from .anatomy import PluginFolder
    from .config import Config
    from .environments import Environment
    from .fileset import Snapshot
    from .manifest import Manifest
    from .sandbox.host import HostInfo
    from .sandbox.policy import SandboxPolicy
    from .sandbox.worker import StartInfo, Worker, WorkerSpec
    from .schemas import SchemaSet
    from .signing import SignatureCheck
    from .state.base import StateStore

__all__ = ["CallRecord", "Invocation", "Plugin", "load"]


class Plugin:
    """An activated plugin. Create one with :func:`load` (or ``synapse_nb.load``); not by calling the class."""

    def __init__(self, activation: Activation, runner: Runner, *, store: StateStore | None = None) -> None:
        self.activation = activation
        self.runner = runner
        self.store = store
        folder = activation.folder
        if folder is None:
            raise SynapseError("a plugin handle needs a validated folder", plugin=activation.name)
        self.pipeline = Pipeline(
            activation.manifest,
            folder.schemas,
            runner,
            max_payload_bytes=activation.policy.max_payload_bytes,
            timeout_ms=activation.policy.timeout_ms,
        )
        self.pipeline.base_meta = self._base_meta()
        self.checkpointer: Checkpointer | None = None
        self._jobs: Dispatcher | None = None
        self._released = False

    def _base_meta(self) -> dict[str, Any]:
        a = self.activation
        signature = a.signature.to_meta() if a.signature is not None else {"signed": False}
        return {
            "plugin": a.name,
            "version": str(a.manifest.version),
            "runtime": "python{}.{}".format(*a.host.python_version),
            "digest": a.snapshot.digest,
            **signature,
        }

    # -- what it is --------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.activation.name

    @property
    def manifest(self) -> Manifest:
        return self.activation.manifest

    @property
    def version(self) -> str:
        return str(self.activation.manifest.version)

    @property
    def source(self) -> Path:
        return self.activation.source

    @property
    def snapshot(self) -> Snapshot:
        return self.activation.snapshot

    @property
    def digest(self) -> str:
        return self.activation.snapshot.digest

    @property
    def folder(self) -> PluginFolder:
        folder = self.activation.folder
        if folder is None:  # pragma: no cover - checked in __init__
            raise SynapseError("not validated", plugin=self.name)
        return folder

    @property
    def schemas(self) -> SchemaSet:
        return self.folder.schemas

    @property
    def signature(self) -> SignatureCheck | None:
        return self.activation.signature

    @property
    def publisher(self) -> str:
        return self.activation.publisher

    @property
    def policy(self) -> SandboxPolicy:
        return self.activation.policy

    @property
    def config(self) -> Config:
        return self.activation.config

    @property
    def host(self) -> HostInfo:
        return self.activation.host

    @property
    def environment(self) -> Environment | None:
        return self.activation.environment

    @property
    def spec(self) -> WorkerSpec | None:
        return self.activation.spec

    @property
    def isolation(self) -> str:
        return self.runner.isolation

    @property
    def worker(self) -> Worker | None:
        return self.runner.worker

    @property
    def last_start(self) -> StartInfo | None:
        return self.runner.last_start

    @property
    def network_events(self) -> list[EgressEvent]:
        """This plugin's refused egress attempts in this process (every worker's), oldest first."""
        return recent_egress_events(self.name)

    @property
    def listeners(self) -> list[Callable[[CallEvent], None]]:
        """Called with a :class:`~synapse_nb.invocation.CallEvent` after every call, batch and job."""
        return self.pipeline.listeners

    @property
    def calls(self) -> int:
        return self.pipeline.calls

    @property
    def errors(self) -> int:
        return self.pipeline.errors

    @property
    def history(self) -> collections.deque[CallRecord] | None:
        return self.pipeline.history

    def logs(self) -> dict[str, tuple[str, int]]:
        """The running worker's raw streams: name -> (the last bytes kept, as text; how many were written).

        ``stdout`` and ``stderr`` are what the plugin wrote straight to its file descriptors (per-call output is
        in each call's ``meta`` and :attr:`history`), ``sandbox`` is nsjail's own log. Empty without a worker.
        """
        worker = self.runner.worker
        if worker is None:
            return {}
        return {name: (ring.text(), ring.total) for name, ring in worker.logs.rings().items()}

    def keep_history(self, calls: int = 32) -> None:
        """Record the last ``calls`` calls in :attr:`history` (input, raw and validated output, timings, logs)."""
        old = self.pipeline.history
        self.pipeline.history = collections.deque(old or (), maxlen=calls) if calls > 0 else None

    def jail_config(self) -> JailConfig:
        """The exact nsjail configuration this plugin's workers run under (file descriptors are placeholders)."""
        return jail_config(self.activation)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def activate(self) -> StartInfo | None:
        """Start the plugin now (the cold start), unless it runs already; its StartInfo when it started."""
        started = self.runner.start()
        if started is not None and self.store is not None and self.publisher != "unsigned":
            self.store.note_version(self.activation.state_key, self.version)  # see activation: downgrades
        return started

    # -- calls -------------------------------------------------------------------------------------------------
    def invoke(self, payload: Any, *, endpoint: str | None = None, timeout_ms: int | None = None) -> Invocation:
        """Validate ``payload`` on the host, run it, validate the result on the host; with its metadata.

        ``endpoint`` names an endpoint of ``spec.interfaces`` by key or path (default: ``execute``);
        ``timeout_ms`` shortens the call's timeout (a caller's deadline), never lengthens it.
        """
        return self.pipeline.invoke(payload, endpoint=endpoint, timeout_ms=timeout_ms)

    def run(self, payload: Any, *, endpoint: str | None = None, timeout_ms: int | None = None) -> Any:
        """The validated result of one call."""
        return self.pipeline.invoke(payload, endpoint=endpoint, timeout_ms=timeout_ms).result

    def invoke_batch(
        self, items: list[Any], *, endpoint: str | None = None, timeout_ms: int | None = None
    ) -> Invocation:
        """Validate every item, run them as one batch (``execute_batch``), validate every result."""
        return self.pipeline.invoke_batch(items, endpoint=endpoint, timeout_ms=timeout_ms)

    def run_batch(self, items: list[Any], *, endpoint: str | None = None, timeout_ms: int | None = None) -> list[Any]:
        result: list[Any] = self.pipeline.invoke_batch(items, endpoint=endpoint, timeout_ms=timeout_ms).result
        return result

    def submit(self, payload: Any) -> Job:
        """Queue one call and return its :class:`~synapse_nb.jobs.Job` at once (input validated now)."""
        encoded = self.pipeline.encode(payload)
        if self._jobs is None:
            self._jobs = Dispatcher(
                self.name, self.runner.execute_many, self.pipeline.finish_job, self.pipeline.fail_job
            )
        return self._jobs.submit(encoded)

    # -- state and teardown ------------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """The last checkpointed ``self.state`` of the handler."""
        return self.runner.state()

    @property
    def released(self) -> bool:
        return self._released

    def teardown(self) -> dict[str, Any]:
        """Let go of the plugin (the last handle runs the handler's teardown); returns the state to preserve."""
        if self._released:
            return self.runner.state()
        self._released = True
        if self._jobs is not None:
            self._jobs.close()
        final = self.runner.close()
        if self.checkpointer is not None:
            self.checkpointer.save(final)
            self.checkpointer.flush()  # raises if the store is still unreachable; the state stays in memory
        return final

    def __enter__(self) -> Plugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def __repr__(self) -> str:
        return f"<Plugin {self.name} {self.version} ({self.isolation})>"


def sandboxed(
    source: str | Path, options: ActivationOptions, *, store: StateStore | None = None, start: bool = True
) -> Plugin:
    """Run the activation pipeline for ``source`` and wrap it in a handle with a sandboxed runner."""
    plan, slot = activate(source, options)
    runner = SandboxRunner(slot)
    plugin = Plugin(plan, runner, store=store)
    if store is not None:
        plugin.checkpointer = Checkpointer(
            store,
            plan.state_key,
            str(plan.manifest.version),
            on_error=_checkpoint_warning(options),
        )
        slot.on_state = plugin.checkpointer.save
        checkpointer = plugin.checkpointer
        plugin.pipeline.extra_meta = lambda: {"state_saved": checkpointer.saved}
        sessions = plan.config.sessions
        quota = SessionQuota(sessions.max_keys, sessions.max_bytes, sessions.default_ttl_s)
        slot.session = SessionNamespace(store, plan.state_key, quota)
    if start:
        t0 = time.perf_counter()
        try:
            plugin.activate()
        except BaseException:
            runner.close()  # a worker that never started must not keep the slot
            raise
        plan.timings["start"] = round((time.perf_counter() - t0) * 1000, 3)
    return plugin


def _checkpoint_warning(options: ActivationOptions) -> Callable[[Exception], None] | None:
    """What to do when a state checkpoint cannot be saved (the checkpointer keeps it and retries)."""
    if options.on_checkpoint_error is not None:
        return options.on_checkpoint_error
    warn = options.warn
    if warn is None:
        return None
    return lambda exc: warn(f"state checkpoint not saved, will retry: {exc}")


def load(
    path: str | Path,
    *,
    state: dict[str, Any] | None = None,
    config: Config | None = None,
    host: HostInfo | None = None,
    insecure_allow_unsigned: bool = False,
    allow_process_isolation: bool = False,
    allow_downgrade: bool = False,
    warn: Callable[[str], None] | None = None,
    store: StateStore | None = None,
    wheelhouse: str | Path | None = None,
    progress: Any = None,
) -> Plugin:
    """Activate the plugin folder at ``path`` in the sandbox, without a manager (see ``synapse_nb.load``)."""
    options = ActivationOptions(
        config=config, host=host, insecure_allow_unsigned=insecure_allow_unsigned,
        allow_process_isolation=allow_process_isolation, allow_downgrade=allow_downgrade, warn=warn,
        wheelhouse=wheelhouse, progress=progress, store=store, state=state,
    )  # fmt: skip
    return sandboxed(path, options, store=store)

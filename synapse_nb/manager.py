"""The PluginManager: the spec's five lifecycle stages, one state machine per plugin.

::

    DISCOVERED -> VALIDATED -> ACTIVATING -> ACTIVE (idle | executing) -> TEARING_DOWN -> STOPPED
         \\____________\\______________\\_______________\\______________________\\____> FAILED(reason)

1. Discovery: plugin folders given as paths, searched recursively (at most :data:`MAX_DEPTH` levels down,
   skipping hidden and environment folders), the project's ``synapse-plugins/``, config ``plugins.paths`` and
   the installed plugins under ``$SYNAPSE_HOME/plugins``. An invalid folder is listed as FAILED with its
   located error; a scan never crashes.
2. Validation: manifest, schemas, requirements, the handler (statically: nothing is imported on the host) and
   the signature, before anything runs.
3. Activation: :func:`synapse_nb.activation.activate`, the once-through pipeline (snapshot, plan, early
   spawn, verify, validate, publisher, environment, worker spec, slot), then the warm worker and the handler's
   ``setup``; its stages move the record through VALIDATED and ACTIVATING, and the activation time is recorded.
   Loading a folder again returns the running handle when its file set is unchanged, and replaces it when it
   changed: the version number must allow the changes (:mod:`synapse_nb.compat`), and the state carries over
   unless a change needs a major release.
4. Execution: ``run`` (sync), ``submit`` (async :class:`~synapse_nb.jobs.Job`), ``emit`` (event fan-out).
5. Teardown: the handler's ``teardown``, the final state saved to the store (SQLite or Redis).

Every transition is a :class:`LifecycleEvent` delivered to :meth:`PluginManager.subscribe` observers, and
:meth:`PluginManager.status` summarises everything as a pandas DataFrame.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import enum
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .activation import Activation, ActivationOptions
from .anatomy import PluginFolder, display_path, validate_folder
from .config import Config, load_config
from .errors import InvalidError, PluginTimeout, SignatureError, SynapseError, UsageError
from .invocation import CallEvent, Invocation, Runner
from .manifest import MANIFEST_FILE
from .plugin import Plugin, sandboxed
from .state import StateStore, open_store

if TYPE_CHECKING:
    import pandas as pd

    from .fileset import Snapshot
    from .jobs import Job
    from .signing import TrustStore, Verification

__all__ = ["EventDelivery", "LifecycleEvent", "ManagedPlugin", "PluginManager", "Stage", "default_manager"]

PROJECT_PLUGINS = "synapse-plugins"
LATENCY_SAMPLES = 1000
MAX_DEPTH = 4  # discovery: how many folder levels below a given path
SKIPPED_FOLDERS = frozenset({"node_modules", "site-packages", "__pycache__", "venv", "env", "envs", "cache"})


class Stage(str, enum.Enum):
    """Where a plugin is in its lifecycle."""

    DISCOVERED = "DISCOVERED"
    VALIDATED = "VALIDATED"
    ACTIVATING = "ACTIVATING"
    ACTIVE = "ACTIVE"
    TEARING_DOWN = "TEARING_DOWN"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


_ALLOWED = {
    Stage.DISCOVERED: {Stage.VALIDATED, Stage.FAILED},
    Stage.VALIDATED: {Stage.ACTIVATING, Stage.VALIDATED, Stage.FAILED, Stage.DISCOVERED},
    Stage.ACTIVATING: {Stage.ACTIVE, Stage.FAILED},
    Stage.ACTIVE: {Stage.ACTIVE, Stage.TEARING_DOWN, Stage.FAILED},
    Stage.TEARING_DOWN: {Stage.STOPPED, Stage.FAILED},
    Stage.STOPPED: {Stage.DISCOVERED, Stage.VALIDATED, Stage.ACTIVATING},
    Stage.FAILED: {Stage.DISCOVERED, Stage.VALIDATED, Stage.ACTIVATING, Stage.TEARING_DOWN, Stage.STOPPED},
}


@dataclass(frozen=True)
class LifecycleEvent:
    """One transition: ``plugin`` moved from ``previous`` to ``stage`` after ``duration_ms`` in ``previous``."""

    plugin: str
    stage: Stage
    previous: Stage | None
    timestamp: float
    duration_ms: float
    detail: str = ""
    activity: str = ""  # for ACTIVE: "idle" or "executing"
    kind: str = "stage"  # "stage": a lifecycle transition; "circuit": the circuit breaker changed state
    circuit: str = ""  # for kind "circuit": the new state, "closed", "open" or "half-open"

    def to_json(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "stage": self.stage.value,
            "previous": self.previous.value if self.previous else None,
            "timestamp": self.timestamp,
            "duration_ms": round(self.duration_ms, 3),
            "detail": self.detail,
            "activity": self.activity,
            "kind": self.kind,
            "circuit": self.circuit,
        }


@dataclass(frozen=True)
class EventDelivery:
    """What one subscriber did with an emitted event: its result, or its error."""

    plugin: str
    ok: bool
    result: Any = None
    error: SynapseError | None = None


@dataclass
class ManagedPlugin:
    """The manager's record of one plugin."""

    name: str
    path: Path
    stage: Stage = Stage.DISCOVERED
    version: str = ""
    since: float = field(default_factory=time.monotonic)
    folder: PluginFolder | None = None
    verification: Verification | None = None
    plugin: Plugin | None = None
    error: SynapseError | None = None
    activation_ms: float | None = None
    calls: int = 0
    errors: int = 0
    in_flight: int = 0
    latencies: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=LATENCY_SAMPLES))
    history: list[LifecycleEvent] = field(default_factory=list)

    @property
    def topics(self) -> tuple[str, ...]:
        return self.folder.manifest.events if self.folder else ()

    @property
    def trigger(self) -> str:
        return self.folder.manifest.execution.trigger if self.folder else "sync"

    def p50_ms(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[(len(ordered) - 1) // 2]


def _candidates(path: Path, depth: int = MAX_DEPTH) -> list[Path]:
    """Plugin folders at or below ``path``: a folder with a manifest is a plugin (its sub-folders are its own);
    otherwise its sub-folders are searched, at most ``depth`` levels down, skipping hidden folders, virtual
    environments and caches (a folder holding ``pyvenv.cfg``)."""
    if (path / MANIFEST_FILE).is_file():
        return [path]
    if depth <= 0 or (path / "pyvenv.cfg").exists():
        return []
    try:
        children = sorted(
            p for p in path.iterdir()
            if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and p.name not in SKIPPED_FOLDERS
        )  # fmt: skip
    except OSError:
        return []
    return [found for child in children for found in _candidates(child, depth - 1)]


class PluginManager:
    """Discovers, validates, activates, runs and tears down plugins; one state machine each."""

    def __init__(
        self,
        *,
        config: Config | None = None,
        store: StateStore | None = None,
        insecure_allow_unsigned: bool = False,
        warn: Callable[[str], None] | None = None,
        progress: Callable[[Any], None] | None = None,
        allow_process_isolation: bool = False,
        allow_downgrade: bool = False,
        runner_factory: Callable[[Activation], Runner] | None = None,
        prewarm: bool = True,
    ) -> None:
        self.config = config or load_config()
        # The explicit opt-in to rlimits-only workers where nsjail cannot run (see sandbox.isolation).
        self.allow_process_isolation = allow_process_isolation
        self.progress = progress  # dependency environment builds report here (see environments.progress)
        self._store = store
        self.insecure_allow_unsigned = insecure_allow_unsigned
        self.allow_downgrade = allow_downgrade
        # A seam for tests and other hosts: builds the runner of a prepared (verified, validated) activation
        # instead of the sandbox's warm worker, e.g. a fake runner for lifecycle tests on hosts without nsjail.
        self.runner_factory = runner_factory
        self.prewarm = prewarm  # pre-warmed jails (sandbox.prewarm); one-shot commands turn them off
        self.warn = warn
        self.plugins: dict[str, ManagedPlugin] = {}
        self._by_path: dict[Path, ManagedPlugin] = {}
        self._trust: TrustStore | None = None
        self._observers: list[Callable[[LifecycleEvent], None]] = []
        self._lock = threading.RLock()
        _managers.add(self)
        from .eventlog import attach  # lifecycle and calls -> $SYNAPSE_HOME/events.db (JupyterLab's live view)

        self._eventlog = attach(self)  # not an observer: calls stay free of idle/executing events

    # -- observation -------------------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[LifecycleEvent], None]) -> Callable[[], None]:
        """Call ``callback`` for every lifecycle event; returns a function that unsubscribes it."""
        self._observers.append(callback)
        return lambda: self._observers.remove(callback) if callback in self._observers else None

    def _move(self, record: ManagedPlugin, stage: Stage, detail: str = "", activity: str = "") -> None:
        if stage not in _ALLOWED[record.stage] and stage != record.stage:
            raise UsageError(f"{record.name}: cannot go from {record.stage.value} to {stage.value}")
        now = time.monotonic()
        event = LifecycleEvent(
            plugin=record.name,
            stage=stage,
            previous=record.stage,
            timestamp=time.time(),
            duration_ms=(now - record.since) * 1000,
            detail=detail,
            activity=activity,
        )
        if stage != record.stage:
            record.since = now
        record.stage = stage
        record.history.append(event)
        del record.history[:-200]
        for observer in list(self._observers):
            observer(event)
        if self._eventlog is not None:
            self._eventlog(event)

    def _circuit_moved(self, record: ManagedPlugin, old: str, new: str, why: str) -> None:
        """A circuit transition of an active plugin, as a lifecycle event of kind ``circuit``."""
        detail = f"circuit {old} -> {new}" + (f": {why}" if why and new != "closed" else "")
        event = LifecycleEvent(
            plugin=record.name, stage=record.stage, previous=record.stage, timestamp=time.time(), duration_ms=0.0,
            detail=detail, activity="executing" if record.in_flight else "idle", kind="circuit", circuit=new,
        )  # fmt: skip
        record.history.append(event)
        del record.history[:-200]
        for observer in list(self._observers):
            observer(event)

    def _fail(self, record: ManagedPlugin, error: SynapseError) -> None:
        record.error = error
        self._move(record, Stage.FAILED, detail=str(error))

    @property
    def store(self) -> StateStore:
        """The state store (opened on first use: SQLite under SYNAPSE_HOME unless config ``state`` says else)."""
        if self._store is None:
            self._store = open_store(config=self.config)
        return self._store

    # -- discovery and validation ------------------------------------------------------------------------------
    def default_paths(self) -> list[Path]:
        """Config ``plugins.paths``, the project's ``synapse-plugins/`` (those that exist) and the active version
        of every installed plugin (``$SYNAPSE_HOME/plugins/NAME/VERSION``, see ``synapse-cli plugin install``)."""
        from .registry.installed import installed_plugin_folders

        paths = [Path(p).expanduser() for p in self.config.data.get("plugins", {}).get("paths", [])]
        paths.append(Path.cwd() / PROJECT_PLUGINS)
        return [p for p in paths if p.is_dir()] + installed_plugin_folders()

    def discover(self, *paths: str | Path, validate: bool = True) -> list[ManagedPlugin]:
        """Find plugin folders under ``paths`` (default: :meth:`default_paths`) and validate each one."""
        from .signing import TrustStore

        found: list[ManagedPlugin] = []
        self._trust = TrustStore.load()  # read once per scan, not once per plugin
        try:
            for root in [Path(p) for p in paths] or self.default_paths():
                for folder in _candidates(root):
                    record = self._record_for(folder)
                    found.append(record)
                    if validate:
                        self.validate(record.name)
        finally:
            self._trust = None
        return found

    def _record_for(self, folder: Path) -> ManagedPlugin:
        # The name is the manifest's when it can be read quickly; the folder name otherwise (until validated).
        resolved = folder.resolve()
        name = resolved.name
        with self._lock:
            known = self._by_path.get(resolved)
            if known is not None:
                return known
            key = name
            suffix = 2
            while key in self.plugins:
                key = f"{name}~{suffix}"
                suffix += 1
            record = ManagedPlugin(name=key, path=folder)
            self.plugins[key] = record
            self._by_path[resolved] = record
        self._move(record, Stage.DISCOVERED, detail=str(folder))
        return record

    def validate(self, name: str) -> ManagedPlugin:
        """Manifest, schemas, requirements, handler compile, tests/ and signature; FAILED with the reason."""
        record = self.get(name)
        try:
            folder = validate_folder(record.path, display=display_path(record.path))
            record.folder = folder
            record.version = str(folder.manifest.version)
            self._rename(record, folder.manifest.name)
            record.verification = self._verify(record, folder)
        except SynapseError as exc:
            self._fail(record, exc)
            return record
        record.error = None
        signer = record.verification.signer_subject if record.verification else "unsigned"
        self._move(record, Stage.VALIDATED, detail=f"{record.name} {record.version}, {signer}")
        return record

    def _verify(self, record: ManagedPlugin, folder: PluginFolder) -> Verification | None:
        from .signing import verify_folder

        try:
            return verify_folder(record.path, manifest=folder.manifest, trust=self._trust)
        except SignatureError:
            if self.insecure_allow_unsigned:
                return None
            raise

    def _rename(self, record: ManagedPlugin, name: str) -> None:
        """Key the record by the manifest's name once it is known (two folders may not share one name)."""
        if record.name == name:
            return
        with self._lock:
            other = self.plugins.get(name)
            if other is not None and other is not record:
                raise InvalidError(f"plugin name {name!r} is already used by {display_path(other.path)}", plugin=name)
            self.plugins.pop(record.name, None)
            record.name = name
            self.plugins[name] = record

    # -- activation --------------------------------------------------------------------------------------------
    def get(self, name: str) -> ManagedPlugin:
        try:
            return self.plugins[name]
        except KeyError:
            known = ", ".join(sorted(self.plugins)) or "none"
            raise UsageError(f"no plugin named {name!r} (known: {known}); discover or load it first") from None

    def _options(self) -> ActivationOptions:
        return ActivationOptions(
            config=self.config, insecure_allow_unsigned=self.insecure_allow_unsigned,
            allow_process_isolation=self.allow_process_isolation, allow_downgrade=self.allow_downgrade,
            warn=self.warn, progress=self.progress, store=self.store, prewarm=self.prewarm,
        )  # fmt: skip

    def activate(self, name: str, *, debug: bool = False) -> Plugin:
        """Start (or return) the plugin's warm worker; ``debug=True`` runs it in this process, unsandboxed."""
        record = self.get(name)
        with self._lock:
            if record.stage is Stage.ACTIVE and record.plugin is not None:
                return record.plugin
        return self._activate(record, debug=debug)

    def _activate(self, record: ManagedPlugin, *, debug: bool) -> Plugin:
        """The activation pipeline, its stages mapped onto the record's lifecycle."""
        t0 = time.perf_counter()

        def on_stage(stage: str, plan: Activation) -> None:
            if stage == "plan":
                self._rename(record, plan.name)
            elif stage == "publisher":
                record.version = str(plan.manifest.version)
                signer = plan.signature.verification if plan.signature is not None else None
                who = signer.signer_subject if signer is not None else "unsigned"
                self._move(record, Stage.VALIDATED, detail=f"{record.name} {record.version}, {who}")
                self._move(record, Stage.ACTIVATING)

        def on_checkpoint_error(exc: Exception) -> None:
            record.error = exc if isinstance(exc, SynapseError) else SynapseError(str(exc), plugin=record.name)
            if self.warn is not None:
                self.warn(f"{record.name}: state checkpoint not saved, will retry: {exc}")

        options = self._options()
        options.on_stage = on_stage
        options.on_checkpoint_error = on_checkpoint_error
        try:
            if record.stage not in (Stage.DISCOVERED, Stage.STOPPED, Stage.FAILED, Stage.VALIDATED):
                raise UsageError(f"{record.name}: cannot activate while {record.stage.value}")
            plugin = self._start(record, options, debug=debug)
        except SynapseError as exc:
            self._fail(record, exc)
            raise
        record.plugin = plugin
        record.folder = plugin.folder
        record.version = plugin.version
        record.verification = plugin.signature.verification if plugin.signature is not None else None
        record.activation_ms = (time.perf_counter() - t0) * 1000
        record.error = None
        plugin.listeners.append(self._on_call)
        plugin.policies.circuit.listeners.append(lambda old, new, why: self._circuit_moved(record, old, new, why))
        if plugin.isolation == "process" and self.warn is not None:
            self.warn(f"{record.name} runs at the process level: rlimits only, NOT a sandbox (see synapse-cli doctor)")
        self._move(
            record,
            Stage.ACTIVE,
            detail=f"{plugin.name} {plugin.version} activated in {record.activation_ms:.1f} ms ({plugin.isolation})",
            activity="idle",
        )
        return plugin

    def _start(self, record: ManagedPlugin, options: ActivationOptions, *, debug: bool) -> Plugin:
        if self.runner_factory is not None and not debug:
            from .activation import prepare

            plan = prepare(record.path, options)
            plugin = Plugin(plan, self.runner_factory(plan), store=self.store)
            plugin.activate()
            return plugin
        if debug:
            from .inprocess import load_in_process

            return load_in_process(record.path, options, store=self.store)
        return sandboxed(record.path, options, store=self.store)

    def load(self, path: str | Path, *, debug: bool = False) -> Plugin:
        """Discover, validate and activate the plugin folder at ``path``; returns its handle.

        Loading a folder that is active already returns the running handle when its files are unchanged (same
        digest, same mode), and otherwise replaces it: the old version is torn down (state saved) and the new one
        activated; its state carries over unless a change needs a major release (it may change the state's shape).
        A new version number that does not allow its changes (a bump too small, a lower version without
        ``allow_downgrade``, a breaking change under the same version) raises
        :class:`~synapse_nb.compat.CompatibilityError` (exit 3) and the running version stays.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise UsageError(f"{str(folder)!r} is not a plugin folder (no such directory)")
        record = self._record_for(folder)
        running = record.plugin
        if running is not None and running.released:  # torn down through its handle, not through the manager
            record.plugin = None
            if record.stage is Stage.ACTIVE:
                self._move(record, Stage.TEARING_DOWN)
                self._move(record, Stage.STOPPED, detail="torn down by its handle")
            running = None
        if running is not None and record.stage is Stage.ACTIVE:
            from .inprocess import InProcessPlugin
            from .signing import take_snapshot

            same_mode = isinstance(running, InProcessPlugin) == debug
            snapshot = take_snapshot(folder, allow_unsigned=True)
            if same_mode and snapshot.digest == running.digest:
                return running
            self._replace(record, running, snapshot)
        return self._activate(record, debug=debug)

    def _replace(self, record: ManagedPlugin, old: Plugin, new: Snapshot) -> None:
        """Tear down the running version before its folder's new content is activated, unless the new version
        number does not allow its changes (:class:`~synapse_nb.compat.CompatibilityError`, exit 3) or is lower
        than the running one (exit 4, ``downgrade``, as at activation): then the old one stays."""
        from .activation import downgrade_error
        from .compat import check_snapshot_replacement

        verdict = None
        if new.digest != old.digest:  # the running version's snapshot, never its folder (rewritten in place)
            verdict = check_snapshot_replacement(
                old.snapshot, old.activation.manifest, new, shown=display_path(record.path), allow_downgrade=True
            )
            if verdict is not None and verdict.bump_made == "downgrade" and not self.allow_downgrade:
                raise downgrade_error(record.name, verdict.new_version, verdict.old_version,
                                      "the version of {name!r} running now")  # fmt: skip
        self.teardown(record.name)
        if verdict is not None and not verdict.compatible:
            # A change that needs a major release may change the shape of self.state: it starts fresh.
            self.store.save_state(old.activation.state_key, str(old.version), {})

    def isolation(self) -> tuple[str, str]:
        """The level plugins will actually run at here, and why: ``nsjail``, ``nsjail-nocgroup`` or ``process``
        (forced by ``sandbox.isolation: process``, or the host cannot run nsjail). Starts a trial jail once."""
        from .sandbox.host import detect_host
        from .sandbox.isolation import LEVELS, probe

        settings = self.config.sandbox
        if settings.isolation == "process":
            return "process", "forced by sandbox.isolation: process in $SYNAPSE_HOME/config; " + LEVELS["process"]
        caps = probe(detect_host(settings.nsjail))
        why = LEVELS[caps.level] if caps.level != "process" else f"this host cannot run nsjail ({caps.reason})"
        return caps.level, why

    # -- execution ---------------------------------------------------------------------------------------------
    def _on_call(self, event: CallEvent) -> None:
        record = self.plugins.get(event.plugin)
        if record is None:
            return
        if event.ok:
            record.calls += event.items
            record.latencies.append(event.ms)
        else:
            record.errors += 1
            record.error = event.error

    def _active(self, name: str) -> Plugin:
        record = self.get(name)
        if record.stage is Stage.ACTIVE and record.plugin is not None:
            return record.plugin
        return self.activate(name)

    def run(
        self, name: str, payload: Any, *, endpoint: str | None = None, cache: bool = True,
        idempotency_key: str | None = None,
    ) -> Any:  # fmt: skip
        """Run one call and return its validated result (waits for it, whatever the trigger)."""
        return self.invoke(name, payload, endpoint=endpoint, cache=cache, idempotency_key=idempotency_key).result

    def invoke(
        self, name: str, payload: Any, *, endpoint: str | None = None, timeout_ms: int | None = None,
        cache: bool = True, idempotency_key: str | None = None,
    ) -> Invocation:  # fmt: skip
        """One call with its metadata (see :meth:`Plugin.invoke <synapse_nb.plugin.Plugin.invoke>`)."""
        plugin = self._active(name)
        record = self.plugins[plugin.name]
        self._busy(record, +1)
        try:
            return plugin.invoke(payload, endpoint=endpoint, timeout_ms=timeout_ms, cache=cache,
                                 idempotency_key=idempotency_key)  # fmt: skip
        finally:
            self._busy(record, -1)

    def _busy(self, record: ManagedPlugin, delta: int) -> None:
        before = record.in_flight
        record.in_flight += delta
        if self._observers and (before == 0) != (record.in_flight == 0):
            self._move(record, Stage.ACTIVE, activity="executing" if record.in_flight else "idle")

    def invoke_batch(
        self, name: str, items: list[Any], *, endpoint: str | None = None, timeout_ms: int | None = None,
        cache: bool = True, idempotency_key: str | None = None, return_exceptions: bool = False,
    ) -> Invocation:  # fmt: skip
        """A batch of calls with its metadata (see :meth:`Plugin.invoke_batch
        <synapse_nb.plugin.Plugin.invoke_batch>`); counted as executing while it runs, like :meth:`invoke`."""
        plugin = self._active(name)
        record = self.plugins[plugin.name]
        self._busy(record, +1)
        try:
            return plugin.invoke_batch(
                items,
                endpoint=endpoint,
                timeout_ms=timeout_ms,
                cache=cache,
                idempotency_key=idempotency_key,
                return_exceptions=return_exceptions,
            )
        finally:
            self._busy(record, -1)

    def run_batch(
        self, name: str, items: list[Any], *, endpoint: str | None = None, cache: bool = True,
        idempotency_key: str | None = None, return_exceptions: bool = False,
    ) -> list[Any]:  # fmt: skip
        """A batch of calls (see :meth:`Plugin.run_batch <synapse_nb.plugin.Plugin.run_batch>`)."""
        result: list[Any] = self.invoke_batch(name, items, endpoint=endpoint, cache=cache,
                                              idempotency_key=idempotency_key,
                                              return_exceptions=return_exceptions).result  # fmt: skip
        return result

    def submit(self, name: str, payload: Any, *, cache: bool = True, idempotency_key: str | None = None) -> Job:
        """Queue one call (async trigger); returns a :class:`~synapse_nb.jobs.Job` at once."""
        return self._active(name).submit(payload, cache=cache, idempotency_key=idempotency_key)

    def circuit_state(self, name: str) -> str:
        """The circuit breaker's state of an active plugin: ``closed``, ``open`` or ``half-open`` (read from the
        shared store when it is Redis or Memcached); ``closed`` for a plugin that is not active. What a health
        check follows (gRPC health: SERVING unless ``open``)."""
        record = self.get(name)
        plugin = record.plugin
        if plugin is None or record.stage is not Stage.ACTIVE:
            return "closed"
        return plugin.policies.circuit.current()

    def subscribers(self, topic: str) -> list[ManagedPlugin]:
        """Validated or active plugins with ``trigger: event`` that listen to ``topic``."""
        live = {Stage.VALIDATED, Stage.ACTIVE, Stage.STOPPED}
        return [r for r in self.plugins.values() if topic in r.topics and r.stage in live and r.trigger == "event"]

    def emit(self, topic: str, payload: Any, *, timeout: float | None = None) -> list[EventDelivery]:
        """Deliver ``payload`` to every subscriber of ``topic`` (in parallel) and collect each outcome.

        An event with no subscribers returns an empty list.
        """
        deliveries: list[EventDelivery] = []
        pending: list[tuple[str, Job]] = []
        for record in self.subscribers(topic):
            try:
                pending.append((record.name, self.submit(record.name, payload)))
            except SynapseError as exc:
                deliveries.append(EventDelivery(record.name, False, error=exc))
        for name, job in pending:
            try:
                deliveries.append(EventDelivery(name, True, result=job.result(timeout)))
            except SynapseError as exc:
                deliveries.append(EventDelivery(name, False, error=exc))
            except TimeoutError:
                late = PluginTimeout(f"no outcome within {timeout} s of the event", plugin=name,
                                     timeout_ms=int((timeout or 0) * 1000))  # fmt: skip
                deliveries.append(EventDelivery(name, False, error=late))
        return deliveries

    # -- teardown ----------------------------------------------------------------------------------------------
    def teardown(self, name: str) -> dict[str, Any]:
        """Run the handler's teardown and save its state; returns the state."""
        record = self.get(name)
        plugin = record.plugin
        if plugin is None or record.stage not in (Stage.ACTIVE, Stage.FAILED):
            return {}
        self._move(record, Stage.TEARING_DOWN)
        try:
            state = plugin.teardown()
        except SynapseError as exc:
            record.plugin = None
            self._fail(record, exc)
            raise
        record.plugin = None
        stop_error = plugin.runner.stop_error
        if stop_error:
            record.error = SynapseError(f"{stop_error}; the state of the last checkpoint was kept", plugin=record.name)
            self._move(record, Stage.STOPPED, detail=str(record.error))
        else:
            self._move(record, Stage.STOPPED, detail="state saved")
        return state

    def teardown_all(self) -> None:
        """Tear every active plugin down (errors are recorded on their records, not raised)."""
        for name in list(self.plugins):
            record = self.plugins.get(name)
            if record is not None and record.plugin is not None:
                with contextlib.suppress(SynapseError):  # recorded on the record as FAILED
                    self.teardown(name)

    # -- status ------------------------------------------------------------------------------------------------
    def status(self) -> pd.DataFrame:
        """One row per plugin: name, version, stage, isolation, signer, calls, errors, p50 latency, last error,
        the response cache's hit rate (None before any lookup) and the circuit's state."""
        import pandas as pd

        rows = []
        for r in self.plugins.values():
            plugin = r.plugin
            stage = r.stage.value
            if r.stage is Stage.ACTIVE:
                stage += " (executing)" if r.in_flight else " (idle)"
            rows.append(
                {
                    "name": r.name,
                    "version": r.version,
                    "stage": stage,
                    "isolation": plugin.isolation if plugin is not None else "",
                    "signer": r.verification.signer_subject if r.verification else "",
                    "calls": r.calls,
                    "errors": r.errors,
                    "p50_ms": r.p50_ms(),
                    "activation_ms": r.activation_ms,
                    "last_error": str(r.error) if r.error else "",
                    "cache_hit_rate": plugin.policies.cache.hit_rate if plugin is not None else None,
                    "circuit": plugin.policies.circuit.state if plugin is not None else "",
                }
            )
        columns = ["name", "version", "stage", "isolation", "signer", "calls", "errors", "p50_ms", "activation_ms",
                   "last_error", "cache_hit_rate", "circuit"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)


_managers: weakref.WeakSet[PluginManager] = weakref.WeakSet()
_default: PluginManager | None = None
_default_home: str | None = None
_default_lock = threading.Lock()


def default_manager() -> PluginManager:
    """The process-wide manager behind ``synapse_nb.load`` and ``synapse_nb.status``: one per ``SYNAPSE_HOME``
    (its configuration, trust store and state live there), so pointing ``SYNAPSE_HOME`` elsewhere takes effect."""
    global _default, _default_home
    from .paths import synapse_home

    home = str(synapse_home())
    with _default_lock:
        if _default is None or home != _default_home:
            _default, _default_home = PluginManager(), home
        return _default


@atexit.register
def _teardown_everything() -> None:
    # Teardown of everything at interpreter exit, so that state is saved even without an explicit teardown.
    if os.environ.get("SYNAPSE_NO_ATEXIT_TEARDOWN"):
        return
    for manager in list(_managers):
        manager.teardown_all()

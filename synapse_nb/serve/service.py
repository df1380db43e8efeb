"""What a server serves, independent of the transport: activated plugins, their routes, health and reloads.

:class:`PluginService` activates each target through a :class:`~synapse_nb.manager.PluginManager` exactly as
``synapse-cli plugin run`` does (snapshot, signature verified, validated, sandboxed warm worker): a PATH is
loaded, a NAME is found by ``PluginManager.discover()``. It keeps the :class:`~.routing.RouteTable` in step
with the manager (a plugin replaced by a notebook cell or by :meth:`PluginService.reload` is re-routed), counts
calls in flight so that shutdown and reload can wait for them, and tells the transports when a plugin's health
changes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..anatomy import validate_folder
from ..errors import SynapseError, UsageError
from ..fileset import scan_folder
from ..inprocess import InProcessPlugin
from ..manager import LifecycleEvent, ManagedPlugin, PluginManager, Stage
from ..manifest import Manifest
from ..plugin import Plugin
from ..policies.circuit import CLOSED, HALF_OPEN, OPEN
from ..schemas import INPUT_SCHEMA, OUTPUT_SCHEMA
from .routing import RouteTable, served_listeners

if TYPE_CHECKING:
    from ..compat import Contract

__all__ = ["PluginService", "check_replacement", "plugin_serving"]


def plugin_serving(record: ManagedPlugin | None, circuit: str = CLOSED) -> bool:
    """Whether a served plugin answers SERVING to health checks: known, not FAILED, and its circuit not open.

    ``circuit`` is the breaker's state as health sees it (:meth:`PluginService.circuit`): ``open`` while calls
    are refused; an open circuit whose next probe is due counts as ``half-open`` (SERVING), so that a load
    balancer that follows health sends the probe that can close it.
    """
    return record is not None and record.stage is not Stage.FAILED and circuit != OPEN


def _same_name(old: str, new: str) -> None:
    if old != new:
        raise UsageError(f"{old}: the folder now declares the name {new!r}; restart the server to serve it")


def check_replacement(old: Contract, new: Contract, *, allow_downgrade: bool = False) -> str | None:
    """May ``new`` (a changed folder) replace ``old`` (the served version, read from its snapshot)?

    The compat verdict decides (:func:`synapse_nb.compat.check_replacement`): a version number that does not
    allow the changes raises :class:`~synapse_nb.compat.CompatibilityError` (an ``InvalidError``), and a new name
    a :class:`UsageError`, which keep ``old`` serving. Returns a note to report: that the state starts afresh
    when a change needs a major release, and what the new version asks for that the old did not.
    """
    from ..compat import check_replacement as compat_check

    _same_name(old.name, new.name)
    v = compat_check(old, new, allow_downgrade=allow_downgrade)
    notes = []
    if not v.compatible:
        notes.append(f"{v.blocking[0]} needs a major release: its state starts fresh")
    if v.asks_for_more:
        notes.append("asks for more: " + "; ".join(v.asks_for_more))
    return "; ".join(notes) or None


class PluginService:
    """The served plugins: activation, routes, calls in flight, health, reload and teardown."""

    def __init__(
        self,
        manager: PluginManager,
        targets: Sequence[str | Path],
        *,
        expose_local: bool = False,
        owns_plugins: bool = True,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.manager = manager
        self.targets = list(targets)
        self.expose_local = expose_local
        # A CLI server tears its plugins down when it stops; a notebook's server leaves them to the notebook.
        self.owns_plugins = owns_plugins
        self.warn = warn or (lambda _text: None)
        self.names: list[str] = []
        self.routes = RouteTable()
        # The listeners running ("grpc", "http"), set by the server: what listings say is reachable.
        self.listeners: set[str] = {"grpc", "http"}
        self._cond = threading.Condition()
        self._in_flight: dict[str, int] = {}
        self._replacing: set[str] = set()
        self._health_listeners: list[Callable[[str, bool], None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._probe_timers: dict[str, threading.Timer] = {}
        self._closed = False

    # -- activation --------------------------------------------------------------------------------------------
    def activate(self) -> None:
        """Activate every target and build the route table (UsageError for conflicting or unknown targets)."""
        if not self.targets:
            raise UsageError("name at least one plugin to serve: a plugin folder, or a name found by discovery")
        names: list[str] = []
        for target in self.targets:
            name = self._activate(target)
            if name not in names:
                names.append(name)
        self.names = names
        self.routes = self._build_routes()
        if not served_listeners(self.routes.routes):
            raise UsageError(
                "nothing to serve: " + "; ".join(self.routes.notes or ["the plugins declare no interfaces"])
            )
        self._unsubscribe = self.manager.subscribe(self._on_event)

    def _activate(self, target: str | Path) -> str:
        """A name the manager knows (a notebook's plugin), a plugin folder, or a name found by discovery."""
        name = str(target)
        path = Path(target)
        if name in self.manager.plugins:
            plugin = self.manager.activate(name)
        elif path.is_dir():
            plugin = self.manager.load(path)
        else:
            self.manager.discover()
            if name not in self.manager.plugins:
                searched = ", ".join(str(p) for p in self.manager.default_paths()) or "no discovery paths exist"
                raise UsageError(
                    f"{name!r} is neither a plugin folder nor a plugin found by discovery (searched: {searched}; "
                    "config plugins.paths and ./synapse-plugins)"
                )
            plugin = self.manager.activate(name)
        if isinstance(plugin, InProcessPlugin):
            raise UsageError(
                f"{plugin.name}: runs in debug mode (in-process, unsandboxed); only sandboxed plugins are served"
            )
        return plugin.name

    def manifest(self, name: str) -> Manifest:
        """The served plugin's current manifest (the last validated version of its folder)."""
        record = self.manager.get(name)
        if record.folder is None:
            raise UsageError(f"{name}: has not been validated")
        return record.folder.manifest

    def _build_routes(self) -> RouteTable:
        return RouteTable.build({name: self.manifest(name) for name in self.names}, expose_local=self.expose_local)

    def _on_event(self, event: LifecycleEvent) -> None:
        if event.plugin not in self.names:
            return
        if event.stage is Stage.ACTIVE and event.previous is Stage.ACTIVATING:
            try:  # a new version (a notebook cell changed, a reload): its manifest may route differently
                self.routes = self._build_routes()
            except SynapseError as exc:
                self.warn(f"{event.plugin}: kept the previous routes: {exc}")
        self.notify_health(event.plugin)

    # -- health ------------------------------------------------------------------------------------------------
    def on_health(self, listener: Callable[[str, bool], None]) -> None:
        """Call ``listener(plugin, serving)`` whenever a served plugin's health may have changed."""
        self._health_listeners.append(listener)

    def circuit(self, name: str) -> str:
        """The circuit state health follows (``manager.circuit_state``); ``open`` becomes ``half-open`` once the
        next probe is due (the record says open until a call takes the probe)."""
        try:
            state = self.manager.circuit_state(name)
        except SynapseError:  # not known (any more): the stage says NOT_SERVING
            return CLOSED
        if state == OPEN and self._probe_in_ms(name) <= 0:
            return HALF_OPEN
        return state

    def _probe_in_ms(self, name: str) -> int:
        """Milliseconds until an open circuit lets its next probe through (0: now)."""
        record = self.manager.plugins.get(name)
        plugin = record.plugin if record is not None else None
        if plugin is None:
            return 0
        until = int(plugin.policies.circuit.snapshot().get("until", 0))
        return max(0, until - int(time.time() * 1000))

    def serving(self, name: str) -> bool:
        return plugin_serving(self.manager.plugins.get(name), self.circuit(name))

    def notify_health(self, name: str) -> None:
        circuit = self.circuit(name)
        serving = plugin_serving(self.manager.plugins.get(name), circuit)
        if circuit == OPEN:
            self._recheck_at_probe(name)
        for listener in list(self._health_listeners):
            listener(name, serving)

    def _recheck_at_probe(self, name: str) -> None:
        """Health again when the open circuit's next probe is due: nothing else happens then (no call arrives
        while health says NOT_SERVING), and it must go SERVING for the probe to come."""
        wait_s = self._probe_in_ms(name) / 1000 + 0.01
        with self._cond:
            if self._closed:
                return
            old = self._probe_timers.pop(name, None)
            if old is not None:
                old.cancel()
            timer = threading.Timer(wait_s, self.notify_health, args=(name,))
            timer.daemon = True
            self._probe_timers[name] = timer
        timer.start()

    def health(self) -> dict[str, bool]:
        return {name: self.serving(name) for name in self.names}

    # -- calls -------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def call(self, name: str) -> Iterator[None]:
        """Count one call of ``name`` in flight (a reload of ``name`` waits for it; new calls wait for the reload)."""
        with self._cond:
            while name in self._replacing:
                self._cond.wait()
            self._in_flight[name] = self._in_flight.get(name, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight[name] -= 1
                self._cond.notify_all()

    def in_flight(self) -> int:
        with self._cond:
            return sum(self._in_flight.values())

    def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for every call in flight to finish; returns how many are left."""
        with self._cond:
            self._cond.wait_for(lambda: not any(self._in_flight.values()), timeout=max(timeout, 0.0))
            return sum(self._in_flight.values())

    @contextlib.contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        with self._cond:
            self._replacing.add(name)
            self._cond.wait_for(lambda: not self._in_flight.get(name))
        try:
            yield
        finally:
            with self._cond:
                self._replacing.discard(name)
                self._cond.notify_all()

    # -- listing -----------------------------------------------------------------------------------------------
    def listing(self) -> list[dict[str, Any]]:
        """Each served plugin: name, version, interfaces (and the listeners each is served over), schemas."""
        out = []
        for name in self.names:
            record = self.manager.get(name)
            if record.folder is None:
                continue
            manifest = record.folder.manifest
            schemas = record.folder.schemas.schemas
            interfaces = []
            for interface in manifest.interfaces:
                routes = [r for r in self.routes.routes if r.plugin == name and r.path in interface.endpoints.values()]
                over = sorted({o for r in routes for o in r.served_over} & self.listeners)
                interfaces.append(
                    {"type": interface.type, "protocol": interface.protocol, "endpoints": dict(interface.endpoints),
                     "served_over": over}
                )  # fmt: skip
            out.append(
                {
                    "name": name,
                    "version": str(manifest.version),
                    "serving": self.serving(name),
                    "circuit": self.circuit(name),
                    "interfaces": interfaces,
                    "schemas": {"input": schemas.get(INPUT_SCHEMA, True), "output": schemas.get(OUTPUT_SCHEMA, True)},
                }
            )
        return out

    # -- reload and teardown -----------------------------------------------------------------------------------
    def reload(self) -> list[str]:
        """Re-read every served plugin's folder (SIGHUP): a new digest replaces the running version.

        The new files are validated and their signature verified *before* the running version is touched; if
        they do not pass, the running version keeps serving. Calls in flight finish on the old version, calls
        arriving meanwhile wait for the new one. Returns one line per plugin saying what happened.
        """
        lines = []
        for name in list(self.names):
            try:
                lines.append(self._reload_one(name))
            except SynapseError as exc:
                lines.append(f"{name}: reload failed: {exc}")
        try:
            self.routes = self._build_routes()
        except SynapseError as exc:
            lines.append(f"kept the previous routes: {exc}")
        return lines

    def _reload_one(self, name: str) -> str:
        record = self.manager.get(name)
        plugin = record.plugin
        digest = scan_folder(record.path).digest
        if isinstance(plugin, Plugin) and plugin.digest == digest:
            return f"{name}: unchanged ({digest[:12]})"
        old = self.manifest(name)
        try:
            folder = validate_folder(record.path)
            if not self.manager.insecure_allow_unsigned:
                from ..signing import verify_folder

                verify_folder(record.path, manifest=folder.manifest)
            _same_name(old.name, folder.manifest.name)
            note = None
            if isinstance(plugin, Plugin):  # the served version, from its snapshot: the folder was rewritten
                from ..compat import Contract

                note = check_replacement(
                    Contract.running(plugin.snapshot, plugin.manifest),
                    Contract.from_folder(record.path, manifest=folder.manifest),
                    allow_downgrade=self.manager.allow_downgrade,
                )
        except SynapseError as exc:
            return f"{name}: kept {old.version}: the changed folder is refused: {exc}"
        with self._exclusive(name):
            # The manager replaces the running version: its teardown runs, its state carries over.
            new = self.manager.load(record.path)
        extra = f"; {note}" if note else ""
        return f"{name}: replaced {old.version} with {new.manifest.version} ({digest[:12]}){extra}"

    def close(self) -> None:
        """Stop following the manager; tear the plugins down (state saved) when this service owns them."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._cond:
            self._closed = True
            timers, self._probe_timers = list(self._probe_timers.values()), {}
        for timer in timers:
            timer.cancel()
        if self.owns_plugins:
            self.manager.teardown_all()  # each handler's teardown; final state saved (errors go on the records)

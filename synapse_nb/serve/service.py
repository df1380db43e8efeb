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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..anatomy import validate_folder
from ..errors import SynapseError, UsageError
from ..fileset import scan_folder
from ..inprocess import InProcessPlugin
from ..manager import LifecycleEvent, ManagedPlugin, PluginManager, Stage
from ..manifest import Manifest
from ..plugin import Plugin
from ..schemas import INPUT_SCHEMA, OUTPUT_SCHEMA
from .routing import RouteTable, served_listeners

__all__ = ["PluginService", "check_replacement", "plugin_serving"]


def plugin_serving(record: ManagedPlugin | None) -> bool:
    """Whether a served plugin answers SERVING to health checks: known and not FAILED.

    The hook for the execution policies: when the circuit breaker lands, a plugin whose circuit is open is
    NOT_SERVING too (``and record.circuit != "open"``), and health follows it through :meth:`PluginService.
    notify_health`, which the breaker calls on every circuit transition.
    """
    return record is not None and record.stage is not Stage.FAILED


def check_replacement(old: Manifest, new: Manifest) -> str | None:
    """The seam for the compatibility rules (``plugin compat``, another issue): may ``new`` replace ``old``?

    Raise an :class:`~synapse_nb.errors.InvalidError` to keep ``old`` serving; return a note to report. Until
    the compatibility rules exist, every replacement with the same name is accepted.
    """
    if old.name != new.name:
        raise UsageError(f"{old.name}: the folder now declares the name {new.name!r}; restart the server to serve it")
    if new.version.major != old.version.major:
        return f"major version {old.version.major} -> {new.version.major}: its state starts fresh"
    return None


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

    def serving(self, name: str) -> bool:
        return plugin_serving(self.manager.plugins.get(name))

    def notify_health(self, name: str) -> None:
        serving = self.serving(name)
        for listener in list(self._health_listeners):
            listener(name, serving)

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
            note = check_replacement(old, folder.manifest)
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
        if self.owns_plugins:
            self.manager.teardown_all()  # each handler's teardown; final state saved (errors go on the records)

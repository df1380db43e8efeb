"""The Jupyter server extension: synapse_nb's REST API under ``/synapse/api/`` for the JupyterLab extension.

Enabled on install (``labextension/jupyter-config/jupyter_server_config.d/synapse_nb.json``, installed with the
wheel); ``jupyter server extension list`` shows it. It lists the server root's plugins and the installed ones, runs
the plugin panel's actions (validate, sign, verify, test, run) and streams the event log to the sidebar (see
:mod:`.handlers`).

Loading it costs a few milliseconds: nothing is discovered, validated or probed until a browser asks.
Settings (``jupyter_server_config.py`` or ``--SynapseServer.discovery_max_depth=3``)::

    c.SynapseServer.discovery_max_depth = 4      # folders below the root searched for plugins
    c.SynapseServer.discovery_max_plugins = 500  # plugins listed at most
    c.SynapseServer.discovery_timeout = 2.0      # seconds spent discovering at most
    c.SynapseServer.installed_dir = ""           # installed plugins (default $SYNAPSE_HOME/plugins)
    c.SynapseServer.test_timeout = 600.0         # seconds a plugin's tests may take
    c.SynapseServer.poll_interval = 0.1          # seconds between two reads of the event log
    c.SynapseServer.workers = 4                  # threads for validation, signatures and sandboxed calls
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from traitlets import Float, Int, Unicode
from traitlets.config import Configurable

__all__ = ["SynapseExtension", "SynapseServer"]

STATUS_TTL_S = 60.0


class SynapseServer(Configurable):
    """Settings of the synapse_nb server extension."""

    discovery_max_depth = Int(4, min=1, help="Folder depth below the server root searched for plugins.").tag(
        config=True
    )
    discovery_max_plugins = Int(500, min=1, help="Plugins listed at most (the sidebar says when more exist).").tag(
        config=True
    )
    discovery_timeout = Float(2.0, min=0.05, help="Seconds discovery may take before it lists what it found.").tag(
        config=True
    )
    installed_dir = Unicode("", help="Folder of installed plugins (default: $SYNAPSE_HOME/plugins).").tag(config=True)
    test_timeout = Float(600.0, min=1.0, help="Seconds `synapse-cli plugin test` may run for the Test button.").tag(
        config=True
    )
    poll_interval = Float(0.1, min=0.01, max=2.0, help="Seconds between two reads of the event log.").tag(config=True)
    workers = Int(4, min=1, help="Threads for validation, signature checks and sandboxed calls.").tag(config=True)


class SynapseExtension:
    """What the handlers share: settings, the workspace, the server's plugin runner and the live hub."""

    def __init__(self, config: SynapseServer, root_dir: str) -> None:
        from ..eventlog import EventLog
        from .actions import Runner
        from .live import LiveHub
        from .workspace import DiscoveryLimits, Workspace

        self.config = config
        limits = DiscoveryLimits(config.discovery_max_depth, config.discovery_max_plugins, config.discovery_timeout)
        self.workspace = Workspace(root_dir, installed=config.installed_dir or None, limits=limits)
        self.runner = Runner()
        self.log = EventLog()
        self.hub = LiveHub(self.log, interval_s=config.poll_interval)
        self.executor = ThreadPoolExecutor(config.workers, thread_name_prefix="synapse-server")
        self._status: tuple[float, dict[str, Any]] | None = None
        self._status_lock = threading.Lock()

    def status(self) -> dict[str, Any]:
        """How plugins are isolated on this server (probed once a minute), and what is available."""
        from ..config import ConfigError, load_config
        from ..sandbox.host import detect_host
        from ..sandbox.isolation import LEVELS, OPT_IN, probe
        from . import registry

        with self._status_lock:
            if self._status is not None and time.monotonic() - self._status[0] < STATUS_TTL_S:
                return self._status[1]
            try:
                settings = load_config().sandbox
            except ConfigError as exc:
                return {"level": "unknown", "allowed": False, "warning": f"configuration error: {exc}",
                        "registry": registry.available(), "root": str(self.workspace.root)}  # fmt: skip
            host = detect_host(settings.nsjail)
            caps = probe(host)
            level = "process" if settings.isolation == "process" else caps.level
            allowed = level != "process" or settings.require == "any"
            warning = None
            if level == "process":
                warning = (
                    f"plugins are NOT sandboxed here: {LEVELS['process']} ({caps.reason})"
                    if allowed
                    else f"nsjail cannot run here ({caps.reason}); plugins are refused until you opt in: {OPT_IN}"
                )
            status = {
                "level": level,
                "description": LEVELS.get(level, ""),
                "allowed": allowed,
                "warning": warning,
                "nsjail": str(host.nsjail) if host.nsjail else None,
                "checks": [c.to_json() for c in caps.checks],
                "registry": registry.available(),
                "root": str(self.workspace.root),
                "installed_dir": str(self.workspace.installed),
            }
            self._status = (time.monotonic(), status)
            return status

    def history(self, plugin: str, version: str) -> dict[str, Any]:
        """Recent calls of this version and the benchmark sweeps of every version, from the event log."""
        if not plugin or not self.log.path.exists():
            return {"calls": [], "benchmarks": []}
        calls = [e.to_json() for e in self.log.history(plugin, version or None, limit=50)]
        benchmarks = [e.to_json() for e in self.log.benchmarks(plugin)]
        return {"calls": calls, "benchmarks": benchmarks}

    async def close(self) -> None:
        await self.hub.close()
        self.executor.submit(self.runner.close)
        self.executor.shutdown(wait=False)
        self.log.close()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "synapse_nb.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the handlers (called by jupyter_server at start; keep it light)."""
    from .handlers import handlers

    settings = SynapseServer(parent=serverapp)
    extension = SynapseExtension(settings, serverapp.root_dir)
    web_app = serverapp.web_app
    web_app.settings["synapse_nb"] = extension
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    base_url = web_app.settings["base_url"]
    serverapp.log.info("synapse_nb: REST API at %ssynapse/api/ (root %s)", base_url, serverapp.root_dir)


async def _unload_jupyter_server_extension(serverapp: Any) -> None:
    """Stop the event stream and tear down the plugins the server ran (their state is saved)."""
    extension = serverapp.web_app.settings.get("synapse_nb")
    if extension is not None:
        await extension.close()

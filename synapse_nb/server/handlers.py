"""The REST handlers under ``/synapse/api/`` and the live events WebSocket.

Every route needs an authenticated user (``@tornado.web.authenticated``: 403 without a token or login
cookie) and is checked by the server's authorizer (``@authorized``, resource ``synapse``); POSTs carry the
XSRF token as any jupyter_server API does (JupyterLab's ServerConnection sends it). Blocking work (validation,
signature checks, sandboxed calls) runs in a thread pool, never on the server's event loop.

========================================  =====================================================================
``GET  /synapse/api/status``              how plugins are isolated here, registry availability, the root
``GET  /synapse/api/plugins``             every plugin (workspace and installed), with its live state
``GET  /synapse/api/plugin?scope&path``   one plugin: manifest, problems, signature, schemas, permissions, history
``POST /synapse/api/actions/ACTION``      ``validate``, ``sign``, ``verify``, ``test``, ``run``; body
                                          ``{"scope", "path", "payload", "endpoint"}``
``POST /synapse/api/diagnostics``         ``{"path", "text"}``: located problems of a manifest.yaml being edited
``GET  /synapse/api/registry/search``     ``?q=&category=`` (501 until the registry package exists)
``POST /synapse/api/registry/install``    ``{"spec"}`` (501 until the registry package exists)
``WS   /synapse/api/events``              ``{"type": "state"|"event", ...}`` messages from the event log
========================================  =====================================================================

Errors are ``{"ok": false, "error": {"code", "exit_code", "message"}}`` with one-line messages; a request that
is wrong (bad JSON, unknown plugin, a path outside the root) gets a 4xx status, while an action that ran and
failed (invalid payload, failing tests) answers 200 with ``ok: false``, exactly as the CLI's ``--json`` does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web, websocket

from ..errors import SynapseError, UsageError
from . import actions, registry
from .workspace import NotFound, Refused, manifest_diagnostics

if TYPE_CHECKING:
    from . import SynapseExtension

__all__ = ["handlers"]

ACTIONS = ("validate", "sign", "verify", "test", "run")
MAX_BODY_BYTES = 16 << 20
F = TypeVar("F", bound=Callable[..., Any])
# Running, testing or installing a plugin executes code (sandboxed): the authorizer sees action "execute".
authorized_execute = cast("Callable[[F], F]", authorized("execute"))


def _error(code: str, exit_code: int, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "exit_code": exit_code, "message": message}}


class _Base(APIHandler):
    auth_resource = "synapse"

    @property
    def ext(self) -> SynapseExtension:
        extension: SynapseExtension = self.settings["synapse_nb"]
        return extension

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str, allow_nan=False))

    def refuse(self, exc: SynapseError) -> None:
        status = 403 if isinstance(exc, Refused) else 404 if isinstance(exc, NotFound) else 400
        self.reply({"ok": False, "error": exc.to_json()}, status)

    def body(self) -> dict[str, Any]:
        raw = self.request.body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise UsageError(f"request body is {len(raw)} bytes, over the {MAX_BODY_BYTES} byte limit")
        try:
            data = json.loads(raw or b"{}")
        except ValueError as exc:
            raise UsageError(f"request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"request body must be a JSON object, got {type(data).__name__}")
        return data

    def target(self, scope: Any, path: Any) -> tuple[str, Path]:
        if not isinstance(scope, str) or not isinstance(path, str) or not path:
            raise UsageError("name the plugin with 'scope' (workspace or installed) and 'path' (a relative path)")
        return scope, self.ext.workspace.resolve(scope, path)

    async def blocking(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.ext.executor, fn, *args)


class StatusHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        status = await self.blocking(self.ext.status)
        self.reply(status)


class PluginsHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        quick = self.get_query_argument("quick", "0") not in ("0", "", "false")
        listing = await self.blocking(lambda: self.ext.workspace.list(quick=quick))
        await self.blocking(self.ext.hub.bootstrap)
        live = self.ext.hub.states.states()
        by_name = {s["plugin"]: s for key, s in live.items() if key.startswith("name:")}
        for plugin in listing["plugins"]:
            plugin["live"] = live.get(plugin["abspath"]) or by_name.get(plugin["name"])
        listing["cursor"] = self.ext.hub.cursor
        self.reply(listing)


class PluginHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        try:
            scope = self.get_query_argument("scope", "workspace")
            scope, folder = self.target(scope, self.get_query_argument("path", ""))
        except SynapseError as exc:
            self.refuse(exc)
            return
        detail = await self.blocking(self.ext.workspace.detail, scope, folder)
        detail["history"] = await self.blocking(self.ext.history, detail.get("name", ""), detail.get("version", ""))
        detail["live"] = self.ext.hub.states.state(str(folder))
        self.reply(detail)


class ActionHandler(_Base):
    @web.authenticated
    @authorized_execute
    async def post(self, action: str) -> None:
        if action not in ACTIONS:
            self.reply(_error("usage", 2, f"unknown action {action!r}; use one of: {', '.join(ACTIONS)}"), 404)
            return
        try:
            body = self.body()
            scope, folder = self.target(body.get("scope", "workspace"), body.get("path"))
            if action == "sign" and scope != "workspace":
                raise Refused("installed plugins keep the signature they were installed with; sign your own copy")
        except SynapseError as exc:
            self.refuse(exc)
            return
        workspace = self.ext.workspace
        shown = workspace.relative(scope, folder)
        if action == "validate":
            result = await self.blocking(actions.validate, folder, shown)
        elif action == "sign":
            result = await self.blocking(actions.sign, folder)
        elif action == "verify":
            result = await self.blocking(actions.verify, folder)
        elif action == "test":
            result = await actions.run_test(folder, timeout_s=self.ext.config.test_timeout)
        else:
            if "payload" not in body:
                self.refuse(UsageError("'payload' is missing: the JSON input of the call"))
                return
            endpoint = body.get("endpoint")
            if endpoint is not None and not isinstance(endpoint, str):
                self.refuse(UsageError("'endpoint' must be a string (an endpoint name or path)"))
                return
            result = await self.blocking(self.ext.runner.run, folder, body["payload"], endpoint)
        workspace.forget(folder)
        self.reply(result)


class DiagnosticsHandler(_Base):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            body = self.body()
            path = body.get("path")
            scope = body.get("scope", "workspace")
            if not isinstance(path, str) or not path.endswith("manifest.yaml"):
                raise UsageError("'path' must name a manifest.yaml relative to the server root")
            folder = self.ext.workspace.resolve(scope, str(Path(path).parent), need_plugin=False)
            text = body.get("text")
            if text is None:
                text = await self.blocking(_read_manifest, folder / "manifest.yaml")
            if not isinstance(text, str):
                raise UsageError("'text' must be the manifest's text (a string)")
        except SynapseError as exc:
            self.refuse(exc)
            return
        problems = await self.blocking(lambda: manifest_diagnostics(text, file=path))
        self.reply({"ok": not problems, "path": path, "problems": problems})


def _read_manifest(path: Path) -> str:
    from ..manifest.load import MAX_MANIFEST_BYTES

    try:
        with path.open("rb") as fh:
            return fh.read(MAX_MANIFEST_BYTES + 1).decode("utf-8", "replace")
    except OSError as exc:
        raise NotFound(f"cannot read {path.name}: {exc.strerror}") from None


class RegistrySearchHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        if not registry.available():
            self.reply(_error("registry", 9, registry.UNAVAILABLE), 501)
            return
        query = self.get_query_argument("q", "")
        category = self.get_query_argument("category", None)
        self.reply(await registry.search(query, category))


class RegistryInstallHandler(_Base):
    @web.authenticated
    @authorized_execute
    async def post(self) -> None:
        if not registry.available():
            self.reply(_error("registry", 9, registry.UNAVAILABLE), 501)
            return
        try:
            spec = self.body().get("spec")
            if not isinstance(spec, str) or not spec.strip():
                raise UsageError("'spec' must name a plugin: NAME[@RANGE] or a .synapse archive path")
        except SynapseError as exc:
            self.refuse(exc)
            return
        self.reply(await registry.install(spec.strip()))


class EventsSocket(WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    """Pushes ``state`` and ``event`` messages while the browser listens (authenticated like kernel sockets)."""

    auth_resource = "synapse"

    async def pre_get(self) -> None:
        user = self.current_user
        allowed = self.authorizer.is_authorized(self, user, "read", "synapse")
        if asyncio.iscoroutine(allowed):
            allowed = await allowed
        if not allowed:
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.pre_get()
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    async def open(self, *args: Any, **kwargs: Any) -> None:
        super().open()  # WebSocketMixin: keep-alive pings
        self._ext: SynapseExtension = self.settings["synapse_nb"]
        # The cursor is set before "hello": every row appended after the browser connected reaches it.
        await asyncio.get_running_loop().run_in_executor(self._ext.executor, self._ext.hub.bootstrap)
        self._ext.hub.add(self._push)
        self.write_message(json.dumps({"type": "hello", "cursor": self._ext.hub.cursor}))

    def _push(self, message: dict[str, Any]) -> None:
        self.write_message(json.dumps(message, default=str))

    def on_message(self, message: str | bytes) -> None:
        pass  # the stream is one-way

    def on_close(self) -> None:
        ext = getattr(self, "_ext", None)
        if ext is not None:
            ext.hub.remove(self._push)


def handlers(base_url: str) -> list[tuple[str, type, dict[str, Any]]]:
    """The URL patterns of the extension under ``base_url``."""
    from jupyter_server.utils import url_path_join

    api = url_path_join(base_url, "synapse", "api")
    return [
        (url_path_join(api, "status"), StatusHandler, {}),
        (url_path_join(api, "plugins"), PluginsHandler, {}),
        (url_path_join(api, "plugin"), PluginHandler, {}),
        (url_path_join(api, "actions", r"([\w-]+)"), ActionHandler, {}),
        (url_path_join(api, "diagnostics"), DiagnosticsHandler, {}),
        (url_path_join(api, "registry", "search"), RegistrySearchHandler, {}),
        (url_path_join(api, "registry", "install"), RegistryInstallHandler, {}),
        (url_path_join(api, "events"), EventsSocket, {}),
    ]

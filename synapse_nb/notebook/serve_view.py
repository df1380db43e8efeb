"""``%synapse serve NAME... [--grpc :0] [--http :0]`` and ``%synapse serve --stop``, for the magics to dispatch.

A notebook serves the plugins it defined in the background of its kernel: the server runs on a thread of its
own (:class:`~synapse_nb.serve.server.BackgroundServer`), calls go through the notebook's own manager (so a
re-run ``%%synapse_plugin`` cell is served at once, re-routed if its endpoints changed), and the kernel stays
free. Notebook plugins declare ``protocol: local`` interfaces, so the server exposes local interfaces: over
both gRPC and HTTP unless one listener is asked for. Listeners default to free ports on 127.0.0.1. What it
shows: the addresses, a ``grpcurl`` and a ``curl`` line to copy, and the ``synapse_nb.connect(...)`` call.

Stopping the server (``--stop``, unloading the extension, the kernel exiting) drains calls in flight; the
plugins stay active in the notebook.
"""

from __future__ import annotations

import atexit
import html
import shlex
import weakref
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..textsafe import escape_terminal
from .cellplugin import NotebookSession

__all__ = ["ServingView", "serve_command", "stop_serving"]

STOP_GRACE_S = 5.0
_servers: weakref.WeakKeyDictionary[NotebookSession, Any] = weakref.WeakKeyDictionary()
_USAGE = "%synapse serve NAME... [--grpc HOST:PORT] [--http HOST:PORT] [--token-file F] | %synapse serve --stop"


@dataclass
class ServingView:
    """What ``%synapse serve`` returns: the addresses and the commands to copy (text and HTML)."""

    plugins: list[str]
    urls: dict[str, str]
    commands: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def connect_lines(self) -> list[str]:
        name = f", plugin={self.plugins[0]!r}" if len(self.plugins) > 1 else ""
        return [f"synapse_nb.connect({url!r}{name})" for url in self.urls.values()]

    def lines(self) -> list[str]:
        out = [f"serving {', '.join(self.plugins)} in the background of this kernel"]
        out += [f"  {over:<4} {url}" for over, url in self.urls.items()]
        out += [f"  try: {command}" for command in self.commands]
        out += [f"  from Python: {line}" for line in self.connect_lines]
        out += [f"  warning: {text}" for text in self.warnings]
        out.append("  stop: %synapse serve --stop")
        return out

    def __repr__(self) -> str:
        return escape_terminal("\n".join(self.lines()))  # example payloads come from the plugin's schema

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(over)}</td><td><code>{html.escape(url)}</code></td></tr>"
            for over, url in self.urls.items()
        )
        copy = "\n".join([*self.commands, *self.connect_lines])
        notes = "".join(f"<div>warning: {html.escape(w)}</div>" for w in self.warnings)
        return (
            f"<div><b>serving {html.escape(', '.join(self.plugins))}</b> in the background of this kernel"
            f"<table>{rows}</table><pre>{html.escape(copy)}</pre>{notes}"
            "<div>stop: <code>%synapse serve --stop</code></div></div>"
        )


def _parse(rest: str) -> tuple[list[str], dict[str, str | bool]]:
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise UsageError(f"%synapse serve: {exc} (usage: {_USAGE})") from None
    names: list[str] = []
    options: dict[str, str | bool] = {}
    valued = {"--grpc", "--http", "--token-file"}
    flags = {"--stop", "--insecure-no-auth"}
    i = 0
    while i < len(words):
        word = words[i]
        if word in valued:
            if i + 1 >= len(words):
                raise UsageError(f"%synapse serve: {word} needs a value (usage: {_USAGE})")
            options[word] = words[i + 1]
            i += 2
            continue
        if word in flags:
            options[word] = True
        elif word.startswith("-"):
            raise UsageError(f"%synapse serve: unknown option {word!r} (usage: {_USAGE})")
        else:
            names.append(word)
        i += 1
    return names, options


def serve_command(session: NotebookSession, rest: str) -> ServingView | None:
    """The ``%synapse serve ...`` line (everything after ``serve``): start, show, or ``--stop`` the server."""
    names, options = _parse(rest)
    if options.get("--stop"):
        if names or len(options) > 1:
            raise UsageError("%synapse serve --stop takes nothing else")
        stopped = stop_serving(session)
        print("synapse: server stopped" if stopped else "synapse: no server is running in this notebook")
        return None
    if not names:
        raise UsageError(f"%synapse serve: name the plugin(s) to serve (usage: {_USAGE})")
    running = _servers.get(session)
    if running is not None and running.running:
        if sorted(running.service.names) == sorted(session.plugin(n).name for n in names) and not options:
            return _view(running, [])
        urls = ", ".join(running.urls().values())
        raise UsageError(f"a server is already running in this notebook ({urls}): %synapse serve --stop first")
    return _view(*_start(session, names, options))


def _start(session: NotebookSession, names: list[str], options: dict[str, str | bool]) -> tuple[Any, list[str]]:
    from ..serve.auth import Address, parse_address, read_token_file
    from ..serve.server import BackgroundServer, ServeOptions, plan_listeners
    from ..serve.service import PluginService

    for name in names:
        session.plugin(name)  # a clear error for a name this notebook does not know
    grpc = parse_address(str(options["--grpc"]), option="--grpc") if "--grpc" in options else None
    http = parse_address(str(options["--http"]), option="--http") if "--http" in options else None
    token, warnings = read_token_file(str(options["--token-file"])) if "--token-file" in options else (None, [])
    service = PluginService(session.manager, names, expose_local=True, owns_plugins=False, warn=warnings.append)
    service.activate()
    free = Address("127.0.0.1", 0)
    grpc, http, planned = plan_listeners(service.routes, grpc, http, defaults=(free, free))
    warnings += [*service.routes.notes, *planned]
    server = BackgroundServer(
        service,
        ServeOptions(grpc=grpc, http=http, token=token, insecure_no_auth=bool(options.get("--insecure-no-auth"))),
        warn=warnings.append,
    ).start()
    _servers[session] = server
    return server, warnings


def _view(server: Any, warnings: list[str]) -> ServingView:
    from ..serve.describe import example_commands

    urls = server.urls()
    hint = "$SYNAPSE_TOKEN" if server.server.auth.required else None
    commands = example_commands(server.service, urls, token_hint=hint)
    return ServingView(list(server.service.names), urls, commands, warnings)


def stop_serving(session: NotebookSession, grace: float = STOP_GRACE_S) -> bool:
    """Stop the notebook's server (calls in flight finish; the plugins stay active). False if none ran."""
    server = _servers.pop(session, None)
    if server is None or not server.running:
        return False
    server.stop(grace)
    return True


@atexit.register
def _stop_everything() -> None:
    # Before the managers' own atexit teardown (registered earlier, so run later): stop accepting first.
    for session in list(_servers):
        stop_serving(session, grace=1.0)

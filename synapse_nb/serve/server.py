"""A server: the gRPC and HTTP listeners of one :class:`~.service.PluginService` on one asyncio loop.

:class:`Server` runs in the caller's loop (``synapse-cli serve`` in the main thread, which owns the signals:
SIGTERM/SIGINT stop it gracefully, SIGHUP reloads the plugins); :class:`BackgroundServer` runs one on a
thread of its own (a notebook kernel, tests). Plugin calls run on a thread pool, since the core blocks.

Graceful shutdown, in order: health goes NOT_SERVING; both listeners stop accepting (new connections are
refused, new calls on open connections get UNAVAILABLE / 503) and let the calls in flight finish for up to the
grace period; the service waits for the worker threads of those calls; then the plugins are torn down, their
handlers' ``teardown`` run and their state saved.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..textsafe import escape_terminal
from .auth import Address, BearerAuth, check_exposure
from .routing import RouteTable, served_listeners
from .service import PluginService

__all__ = ["DEFAULT_GRPC", "DEFAULT_HTTP", "BackgroundServer", "ServeOptions", "Server", "plan_listeners"]

DEFAULT_GRPC = Address("127.0.0.1", 50051)
DEFAULT_HTTP = Address("127.0.0.1", 8000)
DEFAULT_GRACE_S = 10.0
ENVELOPE_BYTES = 64 * 1024


@dataclass
class ServeOptions:
    """Where to listen and who may call. ``grpc``/``http`` None: that listener is not started."""

    grpc: Address | None = None
    http: Address | None = None
    token: str | None = None
    insecure_no_auth: bool = False
    grace_s: float = DEFAULT_GRACE_S
    threads: int = 64


def plan_listeners(
    routes: RouteTable, grpc: Address | None, http: Address | None, *, defaults: tuple[Address, Address]
) -> tuple[Address | None, Address | None, list[str]]:
    """The listeners to start for ``routes``: the ones asked for, else a default for each protocol needed.

    Returns them with warnings for an interface no listener serves and for a listener no interface needs.
    """
    needed = served_listeners(routes.routes)
    if grpc is None and http is None:
        return (defaults[0] if "grpc" in needed else None), (defaults[1] if "http" in needed else None), []
    warnings = []
    started = {"grpc": grpc, "http": http}
    for name, address in started.items():
        if address is None and name in needed:
            missed = sorted({f"{r.plugin} {r.path}" for r in routes.routes if r.served_over == (name,)})
            if missed:
                warnings.append(f"not serving {', '.join(missed)}: no --{name} listener")
        if address is not None and name not in needed:
            what = (
                "synapse.v1.PluginHost answers, but no endpoint" if name == "grpc" else "only /healthz and /v1/plugins"
            )
            warnings.append(f"--{name} {address}: no interface is served over {name} ({what})")
    if not any(started[name] is not None and name in needed for name in started):
        raise UsageError("nothing would be served: " + "; ".join(warnings))
    return grpc, http, warnings


class Server:
    """The listeners of one service, started and stopped inside the running event loop."""

    def __init__(
        self, service: PluginService, options: ServeOptions, *, warn: Callable[[str], None] | None = None
    ) -> None:
        self.service = service
        self.options = options
        self.warn = warn or (lambda text: print(f"warning: {escape_terminal(text)}", file=sys.stderr, flush=True))
        self.auth = BearerAuth(options.token)
        self.executor = ThreadPoolExecutor(max_workers=options.threads, thread_name_prefix="synapse-serve")
        self.grpc_port: int | None = None
        self.http_port: int | None = None
        self._grpc: Any = None
        self._http: Any = None
        self.stopped = False

    # -- addresses ---------------------------------------------------------------------------------------------
    @property
    def grpc_address(self) -> Address | None:
        if self.options.grpc is None or self.grpc_port is None:
            return None
        return Address(self.options.grpc.host, self.grpc_port)

    @property
    def http_address(self) -> Address | None:
        if self.options.http is None or self.http_port is None:
            return None
        return Address(self.options.http.host, self.http_port)

    def urls(self) -> dict[str, str]:
        """``{"grpc": "grpc://HOST:PORT", "http": "http://HOST:PORT"}`` for the listeners started."""
        out = {}
        if self.grpc_address is not None:
            out["grpc"] = f"grpc://{self.grpc_address}"
        if self.http_address is not None:
            out["http"] = f"http://{self.http_address}"
        return out

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and start the listeners asked for (UsageError when an address cannot be used)."""
        addresses = [a for a in (self.options.grpc, self.options.http) if a is not None]
        if not addresses:
            raise UsageError("no listener: pass --grpc HOST:PORT and/or --http HOST:PORT")
        self.service.listeners = {n for n, a in (("grpc", self.options.grpc), ("http", self.options.http)) if a}
        for text in check_exposure(addresses, token=self.options.token, insecure_no_auth=self.options.insecure_no_auth):
            self.warn(text)
        limits = self.service.manager.config.sandbox
        try:
            if self.options.grpc is not None:
                from .grpc_server import GrpcListener

                self._grpc = GrpcListener(
                    self.service,
                    self.auth,
                    threads=self.options.threads,
                    max_request_bytes=2 * limits.max_payload_bytes + ENVELOPE_BYTES,  # a Value outgrows its JSON
                    max_response_bytes=2 * limits.max_output_bytes + ENVELOPE_BYTES,
                    warn=self.warn,
                )
                self.grpc_port = self._grpc.bind(str(self.options.grpc))
            if self.options.http is not None:
                from .http_app import HttpListener

                self._http = HttpListener(
                    self.service, self.executor, self.auth, max_request_bytes=limits.max_payload_bytes + ENVELOPE_BYTES
                )
                self.http_port = self._http.bind(self.options.http)
        except OSError as exc:
            await self._stop_listeners(0)
            raise UsageError(f"cannot listen: {exc.strerror or exc}") from None
        if self._grpc is not None:
            self._grpc.start()
        if self._http is not None:
            await self._http.start()

    async def _stop_listeners(self, grace: float) -> None:
        stops = []
        if self._grpc is not None:
            stops.append(asyncio.get_running_loop().run_in_executor(None, self._grpc.stop, grace))
        if self._http is not None:
            stops.append(self._http.stop(grace))
        if stops:
            await asyncio.gather(*stops, return_exceptions=True)

    async def stop(self, grace: float | None = None) -> int:
        """Graceful shutdown (see the module docstring); returns the number of calls still running after it."""
        if self.stopped:
            return 0
        self.stopped = True
        grace = self.options.grace_s if grace is None else grace
        deadline = time.monotonic() + grace
        await self._stop_listeners(grace)
        loop = asyncio.get_running_loop()
        left = await loop.run_in_executor(None, self.service.drain, deadline - time.monotonic())
        await loop.run_in_executor(None, self.service.close)
        self.executor.shutdown(wait=False, cancel_futures=True)
        return left

    async def run_until_signalled(
        self,
        on_reload: Callable[[list[str]], None] | None = None,
        on_stop: Callable[[int], None] | None = None,
    ) -> int:
        """Serve until SIGTERM or SIGINT (then stop gracefully); SIGHUP reloads. Returns calls left running.

        ``on_reload`` gets the lines :meth:`PluginService.reload` returns; ``on_stop`` the number of calls in
        flight when the stop begins.
        """
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        reloading = asyncio.Lock()

        async def reload() -> None:
            async with reloading:  # one reload at a time; a second SIGHUP waits for the first
                lines = await loop.run_in_executor(None, self.service.reload)
            if on_reload is not None:
                on_reload(lines)

        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload()))
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        if on_stop is not None:
            on_stop(self.service.in_flight())
        return await self.stop()


class BackgroundServer:
    """A :class:`Server` on an event loop thread of its own: ``start()`` returns once it listens."""

    def __init__(
        self, service: PluginService, options: ServeOptions, *, warn: Callable[[str], None] | None = None
    ) -> None:
        self.server = Server(service, options, warn=warn)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def service(self) -> PluginService:
        return self.server.service

    def urls(self) -> dict[str, str]:
        return self.server.urls()

    def start(self) -> BackgroundServer:
        self._thread = threading.Thread(target=self._run, name="synapse-serve-loop", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, grace: float | None = None) -> int:
        """Stop gracefully (see :meth:`Server.stop`) and end the loop thread; returns calls left running."""
        if self.loop is None or self._thread is None or not self._thread.is_alive():
            return 0
        left = asyncio.run_coroutine_threadsafe(self.server.stop(grace), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        return left

    def reload(self) -> list[str]:
        """What SIGHUP does for ``synapse-cli serve``: re-read the plugins, replace those that changed."""
        return self.service.reload()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self.server.stopped

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

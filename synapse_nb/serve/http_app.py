"""The HTTP listener: a Starlette app served by uvicorn on a socket the server binds itself.

Routes:

- ``POST PATH`` for every endpoint served over HTTP: the JSON body is the payload, the answer
  ``{"result": ..., "meta": {...}}``; ``POST PATH:batch`` takes a JSON array and runs it as one
  ``execute_batch`` (``result`` is the array of results);
- ``GET /healthz``: ``{"status": "SERVING"|"NOT_SERVING", "plugins": {NAME: STATUS}}`` (200, or 503 when a
  plugin is not serving);
- ``GET /v1/plugins``: ``{"plugins": [{name, version, serving, interfaces, schemas}]}``.

Every error is RFC 9457 problem details (``application/problem+json``, see :mod:`.errors`). Request bodies are
read up to a bound (413 past it), must be JSON (``Content-Type: application/json`` or none), and are parsed
here with a clear 400 for anything malformed. ``Synapse-Timeout-Ms: N`` is the client's deadline, as a gRPC
deadline is; ``Idempotency-Key: K`` runs the call once per key (the answer says ``Idempotent-Replayed``);
``Cache-Control: no-cache`` bypasses the response cache; ``Synapse-Return-Exceptions: true`` makes a batch
answer each failed item's error in its place (``{"result": [...], "errors": {"INDEX": ERROR}, "meta"}``). An
open circuit is 503 with ``Retry-After`` (see :mod:`.headers`).
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from concurrent.futures import Executor
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ResourceLimitExceeded, SynapseError
from . import calls
from .auth import Address, BearerAuth
from .codec import loads
from .errors import Malformed, MethodNotAllowed, NotServed, Unauthenticated, error_json, problem_details, status_for
from .headers import cache_bypass, check_idempotency_key, flag, retry_after_ms, retry_after_s
from .routing import BATCH_SUFFIX, RESERVED_HTTP_PATHS
from .service import PluginService

__all__ = ["MAX_BATCH_ITEMS", "TIMEOUT_HEADER", "HttpListener", "create_app"]

MAX_BATCH_ITEMS = 10_000
TIMEOUT_HEADER = b"synapse-timeout-ms"
RETURN_EXCEPTIONS = b"synapse-return-exceptions"
_JSON_TYPES = ("application/json", "text/json")
_HEADERS = frozenset(
    {b"content-type", b"content-length", TIMEOUT_HEADER, b"idempotency-key", b"cache-control", RETURN_EXCEPTIONS}
)

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def problem(exc: SynapseError, instance: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The problem+json response of ``exc``."""
    status = status_for(exc)
    extra = dict(headers or {})
    if isinstance(exc, Unauthenticated):
        extra["WWW-Authenticate"] = 'Bearer realm="synapse"'
    wait_ms = retry_after_ms(exc)
    if wait_ms is not None:
        extra["Retry-After"] = str(retry_after_s(wait_ms))
    return JSONResponse(
        problem_details(exc, status, instance=instance),
        status_code=status.http,
        media_type="application/problem+json",
        headers=extra,
    )


def _header_map(scope: Scope) -> dict[bytes, bytes]:
    return {key: value for key, value in scope.get("headers", ()) if key in _HEADERS}


async def read_body(receive: Any, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > limit:
        raise ResourceLimitExceeded(
            f"the request body is {int(declared)} bytes, over the limit of {limit}",
            limit="max_request_bytes",
            value=limit,
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Malformed("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ResourceLimitExceeded(
                f"the request body is over the limit of {limit} bytes", limit="max_request_bytes", value=limit
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _deadline(headers: dict[bytes, bytes]) -> float | None:
    value = headers.get(TIMEOUT_HEADER)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise Malformed(f"header Synapse-Timeout-Ms: {value.decode('latin-1')!r} is not a whole number of milliseconds")
    return int(value) / 1000


def _text(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


def _asked(headers: dict[bytes, bytes], *, batch: bool) -> calls.Asked:
    """The idempotency key, cache bypass and (batches) return_exceptions a request's headers ask for."""
    return_exceptions = flag(_text(headers, RETURN_EXCEPTIONS), where="header Synapse-Return-Exceptions")
    if return_exceptions and not batch:
        raise Malformed("header Synapse-Return-Exceptions is for a batch (POST PATH:batch)")
    return calls.Asked(
        idempotency_key=check_idempotency_key(_text(headers, b"idempotency-key"), where="header Idempotency-Key"),
        cache=not cache_bypass(_text(headers, b"cache-control")),
        return_exceptions=return_exceptions,
    )


def _check_content_type(headers: dict[bytes, bytes]) -> None:
    content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower().decode("latin-1")
    if content_type and content_type not in _JSON_TYPES and not content_type.endswith("+json"):
        raise Malformed(f"the body must be JSON: send Content-Type: application/json (got {content_type!r})")


class _Endpoints:
    """Pure ASGI: ``POST PATH`` of every served endpoint; anything else goes on to the Starlette app.

    Plugin calls are the hot path, so they skip the framework's request objects, middleware and routing:
    what is left is the call itself (see ``bench/bench_serve.py``).
    """

    def __init__(self, app: ASGIApp, service: PluginService, executor: Executor, max_request_bytes: int) -> None:
        self.app = app
        self.service = service
        self.executor = executor
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        routes = self.service.routes.http_paths
        route, batch = routes.get(path), False
        if route is None and path.endswith(BATCH_SUFFIX):
            route, batch = routes.get(path.removesuffix(BATCH_SUFFIX)), True
        if route is None:
            await self.app(scope, receive, send)
            return
        try:
            headers = _header_map(scope)
            _check_content_type(headers)
            remaining = _deadline(headers)
            payload = loads(await read_body(receive, headers, self.max_request_bytes))
            if batch and not isinstance(payload, list):
                raise Malformed(f"POST {path} takes a JSON array of payloads (one execute_batch)")
            if batch and len(payload) > MAX_BATCH_ITEMS:
                raise ResourceLimitExceeded(
                    f"the batch has {len(payload)} items, over the limit of {MAX_BATCH_ITEMS}",
                    limit="max_batch_items",
                    value=MAX_BATCH_ITEMS,
                )
            asked = _asked(headers, batch=batch)
            invocation = await calls.run_in_thread(
                self.service, self.executor, route, payload, remaining_s=remaining, asked=asked, batch=batch
            )
        except SynapseError as exc:
            await problem(exc, path)(scope, receive, send)
            return
        answer: dict[str, Any] = {"result": invocation.result}
        if asked.return_exceptions:  # each failed item's error in its place; its result is null
            results = invocation.result
            answer["result"] = [None if isinstance(r, SynapseError) else r for r in results]
            answer["errors"] = {str(i): error_json(r) for i, r in enumerate(results) if isinstance(r, SynapseError)}
        answer["meta"] = invocation.meta
        body = json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        answer_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if asked.idempotency_key is not None:  # as Stripe's: whether this answer is the first call's, replayed
            replayed = invocation.meta.get("idempotency") == "replayed"
            answer_headers.append((b"idempotent-replayed", b"true" if replayed else b"false"))
        await send({"type": "http.response.start", "status": 200, "headers": answer_headers})
        await send({"type": "http.response.body", "body": body})


def create_app(service: PluginService, executor: Executor, auth: BearerAuth, *, max_request_bytes: int) -> ASGIApp:
    """The ASGI app serving ``service`` (wrapped in the bearer-token check when a token is configured)."""

    async def healthz(request: Request) -> Response:
        health = service.health()
        serving = all(health.values())
        body = {
            "status": "SERVING" if serving else "NOT_SERVING",
            "plugins": {name: "SERVING" if ok else "NOT_SERVING" for name, ok in health.items()},
        }
        return JSONResponse(body, status_code=200 if serving else 503)

    async def plugins(request: Request) -> Response:
        return JSONResponse({"plugins": service.listing()})

    async def elsewhere(request: Request) -> Response:
        """Whatever ``_Endpoints`` passed on: a method a path does not take, or a path nothing serves."""
        path = request.url.path
        if path in RESERVED_HTTP_PATHS:
            return problem(MethodNotAllowed(f"{path} takes GET, not {request.method}"), path, {"Allow": "GET"})
        if path in service.routes.http_paths or path.removesuffix(BATCH_SUFFIX) in service.routes.http_paths:
            allowed = MethodNotAllowed(f"{path} takes POST with a JSON body, not {request.method}")
            return problem(allowed, path, {"Allow": "POST"})
        return problem(NotServed(f"no endpoint is served at {path} over HTTP (GET /v1/plugins lists them)"), path)

    async def http_error(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return problem(MethodNotAllowed(f"{path} does not take {request.method}"), path, {"Allow": "GET"})
        if isinstance(exc, HTTPException) and exc.status_code == 404:
            return problem(NotServed(f"nothing is served at {path}"), path)
        # A bug: Starlette re-raises it after this response, and uvicorn logs the traceback on stderr.
        return problem(SynapseError(f"internal error: {type(exc).__name__}: {exc} (this is a bug)"), path)

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/plugins", plugins, methods=["GET"]),
            Route("/{path:path}", elsewhere, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: http_error},
    )
    endpoints = _Endpoints(app, service, executor, max_request_bytes)
    return _Authenticated(endpoints, auth) if auth.required else endpoints


class _Authenticated:
    """Pure ASGI: refuse (401) every HTTP request without ``Authorization: Bearer TOKEN``."""

    def __init__(self, app: ASGIApp, auth: BearerAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            presented = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
            if not self.auth.allows(presented):
                message = "a bearer token is required" if presented is None else "the bearer token is wrong"
                response = problem(Unauthenticated(f"{message} (header Authorization: Bearer TOKEN)"), scope["path"])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The serve command owns SIGTERM/SIGINT (drain, then teardown) and SIGHUP (reload): uvicorn must not.
        yield


def bind_socket(address: Address) -> socket.socket:
    """A listening TCP socket on ``address`` (port 0: a free one)."""
    infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _name, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class HttpListener:
    """uvicorn serving :func:`create_app` on one socket, inside the caller's event loop."""

    def __init__(
        self,
        service: PluginService,
        executor: Executor,
        auth: BearerAuth,
        *,
        max_request_bytes: int,
        max_concurrency: int = 1024,
    ) -> None:
        app = create_app(service, executor, auth, max_request_bytes=max_request_bytes)
        self.config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,  # never reconfigure the host's logging (a notebook kernel's)
            log_level="warning",
            access_log=False,
            limit_concurrency=max_concurrency,
            h11_max_incomplete_event_size=64 * 1024,
            server_header=False,
        )
        self.server = _Uvicorn(self.config)
        self.socket: socket.socket | None = None
        self._task: Any = None

    def bind(self, address: Address) -> int:
        self.socket = bind_socket(address)
        port: int = self.socket.getsockname()[1]
        return port

    async def start(self) -> None:
        import asyncio

        if self.socket is None:
            raise RuntimeError("bind() first")
        self._task = asyncio.ensure_future(self.server.serve(sockets=[self.socket]))
        while not self.server.started and not self._task.done():
            await asyncio.sleep(0.005)
        if self._task.done():
            self._task.result()  # raises what stopped it

    async def stop(self, grace: float) -> None:
        """Stop accepting, let requests in flight finish for up to ``grace`` seconds."""
        config: Any = self.server.config  # uvicorn declares int seconds; asyncio takes a float as well
        config.timeout_graceful_shutdown = max(grace, 0.001)
        self.server.should_exit = True
        if self._task is not None:
            await self._task

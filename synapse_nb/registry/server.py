"""``synapse-cli registry serve DIR``: the registry's HTTP API (Starlette on uvicorn).

::

    GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (issuer, token endpoint, grant, scopes)
    POST /oauth/token                               client-credentials grant (form-encoded; HTTP Basic or form
                                                    client authentication), RFC 6749 4.4 and 5.1/5.2
    GET  /index.json                                the signed index (ETag; If-None-Match answers 304)
    GET  /blobs/sha256/<hex>                        an archive, by the sha256 of its bytes
    PUT  /api/v1/plugins/<name>/<version>           publish (body: the .synapse archive; scope publish)
    POST /api/v1/plugins/<name>/<version>/yank      {"yanked": true|false, "reason": "..."} (scope publish)
    GET  /api/v1/whoami                             the token's client and scopes

Reading needs a token with the ``read`` scope unless the clients file says ``anonymous_read: true`` (or there
is no clients file at all: then the registry is read-only and public). Errors are JSON ``{"error": {"code",
"message"}}`` (OAuth errors use RFC 6749's ``{"error", "error_description"}``); nothing ever echoes a token.
Verification and storage run in worker threads; an upload is read up to the size limit and no further.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import socket
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from ..errors import InvalidError, SignatureError, SynapseError, UsageError
from .store import Conflict, NotFound, RegistryStore
from .tokens import SCOPES, AuthSettings, OAuthError, Principal, TokenService

__all__ = ["RegistryServer", "create_app", "open_store"]

_SHA = re.compile(r"^[0-9a-f]{64}$")
MAX_FORM_BYTES = 16 << 10


def create_app(store: RegistryStore, settings: AuthSettings, *, max_upload_bytes: int = 100 << 20) -> Any:
    """The Starlette application serving ``store`` with ``settings`` for authentication."""
    try:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
        from starlette.responses import FileResponse, JSONResponse, Response
        from starlette.routing import Route
    except ImportError as exc:  # pragma: no cover - the extra is part of dev
        raise ImportError(
            "the registry server needs Starlette and uvicorn: pip install 'synapse-nb[registry]'"
        ) from exc

    tokens = TokenService(settings)

    def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)

    def principal_of(request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return tokens.authenticate(token.strip())

    def require(request: Request, scope: str) -> Principal | Response:
        if scope == "read" and (settings.anonymous_read or not settings.enabled):
            return Principal("anonymous", frozenset({"read"}))
        if not settings.enabled:
            return error(401, "unauthorized", "this registry accepts no publishers (start it with --clients FILE)")
        sent = bool(request.headers.get("authorization"))
        principal = principal_of(request)
        if principal is None:
            why = "invalid or expired bearer token" if sent else "a bearer token is required"
            challenge = 'Bearer error="invalid_token"' if sent else "Bearer"
            return error(401, "unauthorized", why, {"WWW-Authenticate": challenge})
        if scope not in principal.scopes:
            return error(
                403,
                "insufficient_scope",
                f"the token of {principal.client_id!r} lacks the {scope!r} scope",
                {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return principal

    async def metadata(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": base,
                "token_endpoint": f"{base}/oauth/token",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": list(SCOPES),
                "response_types_supported": [],
            }
        )

    def oauth_error(exc: OAuthError) -> Response:
        headers = {"Cache-Control": "no-store"}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="synapse-registry"'
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description}, status_code=exc.status, headers=headers
        )

    async def token(request: Request) -> Response:
        body = await _read_body(request, MAX_FORM_BYTES)
        if body is None:
            return oauth_error(OAuthError("invalid_request", "request too large"))
        try:
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=False).items()}
            client_id, secret = _client_credentials(request.headers.get("authorization", ""), form)
            if form.get("grant_type") != "client_credentials":
                raise OAuthError("unsupported_grant_type", "only grant_type=client_credentials is supported")
            answer = tokens.issue(client_id, secret, form.get("scope"))
        except OAuthError as exc:
            return oauth_error(exc)
        except UnicodeDecodeError:
            return oauth_error(OAuthError("invalid_request", "the form is not UTF-8"))
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def index(request: Request) -> Response:
        allowed = require(request, "read")
        if isinstance(allowed, Response):
            return allowed
        data = await run_in_threadpool(store.index_bytes)
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type="application/json", headers=headers)

    async def blob(request: Request) -> Response:
        allowed = require(request, "read")
        if isinstance(allowed, Response):
            return allowed
        sha = request.path_params["sha"]
        path = store.blob_path(sha)
        if not _SHA.match(sha) or not path.is_file():
            return error(404, "not_found", f"no archive with sha256 {sha[:64]!r}")
        return FileResponse(path, media_type="application/vnd.synapse.archive+zip")

    async def publish(request: Request) -> Response:
        allowed = require(request, "publish")
        if isinstance(allowed, Response):
            return allowed
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_upload_bytes:
            return error(413, "too_large", f"archive is over the {max_upload_bytes >> 20} MiB upload limit")
        data = await _read_body(request, max_upload_bytes)
        if data is None:
            return error(413, "too_large", f"archive is over the {max_upload_bytes >> 20} MiB upload limit")
        name, version = request.path_params["name"], request.path_params["version"]
        try:
            status, answer = await run_in_threadpool(store.publish, data, name, version, allowed.client_id)
        except Conflict as exc:
            return error(409, "conflict", str(exc))
        except SignatureError as exc:
            return error(422, f"signature:{exc.reason}", f"refused by the registry's trust store: {exc}")
        except (InvalidError, UsageError) as exc:
            return error(422, "invalid", str(exc))
        return JSONResponse(answer, status_code=status)

    async def yank(request: Request) -> Response:
        allowed = require(request, "publish")
        if isinstance(allowed, Response):
            return allowed
        body = await _read_body(request, MAX_FORM_BYTES)
        try:
            import json

            payload = json.loads(body or b"{}")
            yanked = payload.get("yanked", True) if isinstance(payload, dict) else None
            if not isinstance(yanked, bool):
                raise ValueError("'yanked' must be true or false")
            reason = str(payload.get("reason", ""))
            name, version = request.path_params["name"], request.path_params["version"]
            answer = await run_in_threadpool(lambda: store.yank(name, version, yanked=yanked, reason=reason))
        except NotFound as exc:
            return error(404, "not_found", str(exc))
        except ValueError as exc:
            return error(400, "bad_request", str(exc))
        return JSONResponse(answer)

    async def whoami(request: Request) -> Response:
        principal = principal_of(request)
        if principal is None:
            return error(
                401, "unauthorized", "invalid, expired or missing bearer token", {"WWW-Authenticate": "Bearer"}
            )
        return JSONResponse(principal.to_json())

    async def root(request: Request) -> Response:
        return JSONResponse({"registry": "synapse", "api_version": 1, "index": "index.json"})

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, SynapseError):
            return error(500, exc.code, str(exc))
        return error(500, "internal", "internal error")

    routes = [
        Route("/", root),
        Route("/.well-known/oauth-authorization-server", metadata),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/index.json", index),
        Route("/blobs/sha256/{sha}", blob),
        Route("/api/v1/plugins/{name}/{version}", publish, methods=["PUT", "POST"]),
        Route("/api/v1/plugins/{name}/{version}/yank", yank, methods=["POST"]),
        Route("/api/v1/whoami", whoami),
    ]
    return Starlette(routes=routes, exception_handlers={Exception: on_error})


async def _read_body(request: Any, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past ``limit`` (never buffered beyond it)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _client_credentials(header: str, form: dict[str, str]) -> tuple[str, str]:
    """(client_id, secret) from HTTP Basic (client_secret_basic) or the form (client_secret_post)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "malformed HTTP Basic credentials", 401) from exc
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed HTTP Basic credentials", 401)
        return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    raise OAuthError("invalid_client", "client authentication is required (HTTP Basic or form)", 401)


class RegistryServer:
    """uvicorn serving a registry app on ``host:port`` (0: a free port), in the foreground or a thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False) -> None:
        try:
            import uvicorn
        except ImportError as exc:  # pragma: no cover - the extra is part of dev
            raise ImportError("the registry server needs uvicorn: pip install 'synapse-nb[registry]'") from exc
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", access_log=access_log, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C)."""
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 15.0) -> RegistryServer:
        """Serve in a background thread; returns once the server accepts connections."""
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the registry server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def open_store(folder: Path | str) -> RegistryStore:
    """The store in ``folder`` (created on first use)."""
    return RegistryStore(Path(folder))

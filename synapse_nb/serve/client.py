"""``synapse_nb.connect(URL)``: a served plugin with the same ``run``/``run_batch``/``invoke`` as a local one.

::

    plugin = synapse_nb.connect("grpc://127.0.0.1:50051")          # or "http://127.0.0.1:8000"
    plugin.run({"text": "great"})                                  # the validated result
    plugin.invoke({"text": "great"}).meta["duration_ms"]           # result and metadata
    plugin.run_batch([{"text": "a"}, {"text": "b"}])               # one execute_batch on the server

A server that serves several plugins needs ``plugin=NAME``; a server started with ``--token-file`` needs
``token=`` (or ``token_file=``). ``timeout`` (seconds) is each call's deadline: the server shortens the
plugin's own timeout to it. Errors are raised as the same :mod:`synapse_nb.errors` classes, with the same exit
codes, as the local call would raise; a server that cannot be reached is a RegistryError (exit 9).

Each call takes the keyword arguments of a local plugin's: ``timeout_ms`` (shortens this call's deadline),
``cache=False`` (sent as ``cache-control: no-cache``: the server bypasses its response cache),
``idempotency_key=K`` (sent as ``Idempotency-Key``/``idempotency-key``: the server runs the call once per key)
and, for batches, ``return_exceptions=True`` (each failed item's error in its place, rebuilt as the same class).

Over gRPC, payloads travel as exact JSON text (``payload_json``); over HTTP as the request body. The gRPC
transport needs the ``grpc`` extra; the HTTP one only the standard library.
"""

from __future__ import annotations

import http.client
import json
import select
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import PluginFailed, PluginTimeout, RegistryError, SynapseError, UsageError
from ..plugin import Invocation
from .auth import read_token_file
from .errors import FALLBACK_BY_GRPC, FALLBACK_BY_HTTP, error_from_wire
from .headers import CACHE_CONTROL, IDEMPOTENCY_KEY, NO_CACHE, check_idempotency_key

__all__ = ["CallOptions", "RemotePlugin", "connect"]

DEFAULT_CONNECT_TIMEOUT_S = 10.0
ANSWER_MARGIN_S = 1.0


@dataclass(frozen=True)
class CallOptions:
    """What one call asks of the server besides its payload (the local API's keyword arguments)."""

    timeout_s: float | None = None  # this call's deadline (None: none)
    cache: bool = True
    idempotency_key: str | None = None
    return_exceptions: bool = False


class _Transport(Protocol):
    timeout: float | None

    def plugins(self) -> list[dict[str, Any]]: ...

    def invoke(self, plugin: str, endpoint: str, payload: Any, *, batch: bool, options: CallOptions) -> Invocation: ...

    def close(self) -> None: ...


def connect(
    url: str,
    *,
    plugin: str | None = None,
    token: str | None = None,
    token_file: str | Path | None = None,
    timeout: float | None = None,
) -> RemotePlugin:
    """A handle on a plugin served by ``synapse-cli serve`` (or ``%synapse serve``) at ``url``.

    ``url`` is ``grpc://HOST:PORT`` or ``http://HOST:PORT``. The server is asked which plugins it serves at
    once, so a wrong address, token or plugin name fails here, not at the first call.
    """
    if token is None and token_file is not None:
        token, _warnings = read_token_file(token_file)
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("grpc", "http") or not parsed.hostname or parsed.port is None:
        raise UsageError(f"cannot connect to {url!r}: expected grpc://HOST:PORT or http://HOST:PORT")
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    transport: _Transport
    if parsed.scheme == "grpc":
        transport = _GrpcTransport(f"{host}:{parsed.port}", token, timeout)
    else:
        transport = _HttpTransport(parsed.hostname, parsed.port, token, timeout)
    try:
        listing = transport.plugins()
        names = [entry["name"] for entry in listing]
        if plugin is None:
            if len(names) != 1:
                raise UsageError(f"{url} serves {len(names)} plugins ({', '.join(names) or 'none'}): pass plugin=NAME")
            plugin = names[0]
        info = next((entry for entry in listing if entry["name"] == plugin), None)
        if info is None:
            raise UsageError(f"{url} does not serve {plugin!r} (it serves: {', '.join(names) or 'nothing'})")
    except BaseException:
        transport.close()
        raise
    return RemotePlugin(url, info, transport, over=parsed.scheme)


class RemotePlugin:
    """A plugin on a server: ``run``, ``invoke``, ``run_batch`` and ``invoke_batch`` as on a local plugin."""

    def __init__(self, url: str, info: dict[str, Any], transport: _Transport, *, over: str) -> None:
        self.url = url
        self.info = info
        self.over = over
        self._transport = transport

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def version(self) -> str:
        return str(self.info["version"])

    @property
    def interfaces(self) -> list[dict[str, Any]]:
        return list(self.info.get("interfaces", []))

    @property
    def schemas(self) -> dict[str, Any]:
        return dict(self.info.get("schemas", {}))

    def endpoint_path(self, endpoint: str | None) -> str:
        """The path of ``endpoint`` (key or path; None: the first one served over this transport)."""
        for interface in self.interfaces:
            if self.over not in interface.get("served_over", []):
                continue
            for key, path in interface.get("endpoints", {}).items():
                if endpoint in (None, key, path):
                    return str(path)
        served = [
            f"{k} ({p})"
            for i in self.interfaces
            if self.over in i.get("served_over", [])
            for k, p in i["endpoints"].items()
        ]
        what = f"no endpoint {endpoint!r}" if endpoint else "no endpoint"
        raise UsageError(
            f"{self.name}: {what} is served over {self.over} at {self.url} (have: {', '.join(served) or 'none'})"
        )

    def _options(
        self, timeout_ms: int | None, cache: bool, idempotency_key: str | None, return_exceptions: bool = False
    ) -> CallOptions:
        timeout_s = self._transport.timeout
        if timeout_ms is not None:
            if timeout_ms <= 0:
                raise PluginTimeout("the caller's deadline had already passed", plugin=self.name, timeout_ms=0)
            timeout_s = min(timeout_s, timeout_ms / 1000) if timeout_s is not None else timeout_ms / 1000
        key = check_idempotency_key(idempotency_key, where="idempotency_key")
        return CallOptions(timeout_s, bool(cache), key, bool(return_exceptions))

    def invoke(
        self, payload: Any, *, endpoint: str | None = None, timeout_ms: int | None = None, cache: bool = True,
        idempotency_key: str | None = None,
    ) -> Invocation:  # fmt: skip
        """One call: the validated result and its metadata (keyword arguments as a local plugin's ``invoke``)."""
        options = self._options(timeout_ms, cache, idempotency_key)
        return self._transport.invoke(self.name, self.endpoint_path(endpoint), payload, batch=False, options=options)

    def run(
        self, payload: Any, *, endpoint: str | None = None, timeout_ms: int | None = None, cache: bool = True,
        idempotency_key: str | None = None,
    ) -> Any:  # fmt: skip
        """The validated result of one call."""
        return self.invoke(
            payload, endpoint=endpoint, timeout_ms=timeout_ms, cache=cache, idempotency_key=idempotency_key
        ).result

    def invoke_batch(
        self, items: list[Any], *, endpoint: str | None = None, timeout_ms: int | None = None, cache: bool = True,
        idempotency_key: str | None = None, return_exceptions: bool = False,
    ) -> Invocation:  # fmt: skip
        """``items`` as ``execute_batch`` calls on the server; the result is the list of results (with each failed
        item's error in its place when ``return_exceptions``, else the first one raised)."""
        if not isinstance(items, list):
            raise UsageError(f"a batch is a list of inputs, not {type(items).__name__}", plugin=self.name)
        options = self._options(timeout_ms, cache, idempotency_key, return_exceptions)
        if not items:
            return Invocation([], {})
        return self._transport.invoke(self.name, self.endpoint_path(endpoint), list(items), batch=True,
                                      options=options)  # fmt: skip

    def run_batch(
        self, items: list[Any], *, endpoint: str | None = None, timeout_ms: int | None = None, cache: bool = True,
        idempotency_key: str | None = None, return_exceptions: bool = False,
    ) -> list[Any]:  # fmt: skip
        """The results of a batch (see :meth:`invoke_batch`)."""
        result: list[Any] = self.invoke_batch(
            items, endpoint=endpoint, timeout_ms=timeout_ms, cache=cache, idempotency_key=idempotency_key,
            return_exceptions=return_exceptions,
        ).result  # fmt: skip
        return result

    def close(self) -> None:
        """Close the connection (the server and its plugin keep running)."""
        self._transport.close()

    def __enter__(self) -> RemotePlugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemotePlugin {self.name} {self.version} at {self.url}>"


# -- gRPC ------------------------------------------------------------------------------------------------------
class _GrpcTransport:
    def __init__(self, target: str, token: str | None, timeout: float | None) -> None:
        try:
            import grpc
        except ImportError:
            raise ImportError("connecting over gRPC needs the grpc extra: pip install 'synapse-nb[grpc]'") from None
        from .proto.synapse.v1 import plugin_host_pb2 as pb

        self.grpc = grpc
        self.pb = pb
        self.target = target
        self.timeout = timeout
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.channel = grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        )
        prefix = "/synapse.v1.PluginHost/"
        self._invoke = self.channel.unary_unary(
            prefix + "Invoke",
            request_serializer=pb.InvokeRequest.SerializeToString,
            response_deserializer=pb.InvokeResponse.FromString,
        )
        self._batch = self.channel.stream_stream(
            prefix + "InvokeBatch",
            request_serializer=pb.InvokeRequest.SerializeToString,
            response_deserializer=pb.InvokeResponse.FromString,
        )
        self._list = self.channel.unary_unary(
            prefix + "ListPlugins",
            request_serializer=pb.ListPluginsRequest.SerializeToString,
            response_deserializer=pb.ListPluginsResponse.FromString,
        )

    def _error(self, error: Any) -> SynapseError:
        from grpc_status import rpc_status

        code = error.code() if hasattr(error, "code") else None
        name = code.name if code is not None else "UNKNOWN"
        fallback = FALLBACK_BY_GRPC.get(name, SynapseError)
        message = f"{error.details() or name} (gRPC {name} from {self.target})"
        try:
            status = rpc_status.from_call(error)
        except ValueError:
            status = None
        if status is not None:
            from google.rpc import error_details_pb2

            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info) and info.domain == "synapse.io":
                    return error_from_wire(info.metadata.get("error"), fallback=fallback, message=message)
        if name == "UNAVAILABLE":
            message = f"cannot reach {self.target} over gRPC: {error.details()}"
        return error_from_wire(None, fallback=fallback, message=message)

    def plugins(self) -> list[dict[str, Any]]:
        from .codec import from_value

        try:
            response = self._list(
                self.pb.ListPluginsRequest(), timeout=self.timeout or DEFAULT_CONNECT_TIMEOUT_S, metadata=self.metadata
            )
        except self.grpc.RpcError as error:
            raise self._error(error) from None
        return [
            {
                "name": p.name,
                "version": p.version,
                "interfaces": [
                    {
                        "type": i.type,
                        "protocol": i.protocol,
                        "endpoints": dict(i.endpoints),
                        "served_over": list(i.served_over),
                    }
                    for i in p.interfaces
                ],
                "schemas": {"input": from_value(p.input_schema), "output": from_value(p.output_schema)},
            }
            for p in response.plugins
        ]

    def invoke(self, plugin: str, endpoint: str, payload: Any, *, batch: bool, options: CallOptions) -> Invocation:
        from .codec import from_value

        pb = self.pb
        metadata = self.metadata
        if options.idempotency_key is not None:
            metadata += ((IDEMPOTENCY_KEY, options.idempotency_key),)
        if not options.cache:
            metadata += ((CACHE_CONTROL, NO_CACHE),)
        try:
            if batch:
                first = [
                    pb.InvokeRequest(plugin=plugin, endpoint=endpoint, payload_json=_dumps(payload[0]),
                                     return_exceptions=options.return_exceptions)
                ]  # fmt: skip
                rest = (pb.InvokeRequest(payload_json=_dumps(item)) for item in payload[1:])
                responses = list(self._batch(_chain(first, rest), timeout=options.timeout_s, metadata=metadata))
            else:
                request = pb.InvokeRequest(plugin=plugin, endpoint=endpoint, payload_json=_dumps(payload))
                responses = [self._invoke(request, timeout=options.timeout_s, metadata=metadata)]
        except self.grpc.RpcError as error:
            raise self._error(error) from None
        results = [_item(r, plugin) for r in responses]
        meta = {k: from_value(v) for k, v in responses[0].meta.fields.items()} if responses else {}
        return Invocation(results if batch else results[0], meta)

    def close(self) -> None:
        self.channel.close()


def _item(response: Any, plugin: str) -> Any:
    """One response's result, or (a batch with return_exceptions) its item's error, rebuilt."""
    if response.WhichOneof("output") == "error_json":
        return error_from_wire(response.error_json, fallback=PluginFailed, plugin=plugin)
    return json.loads(response.result_json)


def _chain(first: list[Any], rest: Iterator[Any]) -> Iterator[Any]:
    yield from first
    yield from rest


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        from ..errors import ValidationError

        raise ValidationError(f"input is not JSON: {exc}", pointer="", direction="input") from None


# -- HTTP ------------------------------------------------------------------------------------------------------
class _HttpTransport:
    """HTTP/1.1 with one keep-alive connection per thread (the standard library's http.client)."""

    def __init__(self, host: str, port: int, token: str | None, timeout: float | None) -> None:
        self.host, self.port = host, port
        self.timeout = timeout
        self.base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if readable:  # the server closed this idle keep-alive connection: never send a call into it
                conn.close()
        # The server answers 504 at the deadline; the socket waits a little longer to read that answer.
        wait = timeout + ANSWER_MARGIN_S if timeout is not None else None
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=wait)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        else:
            conn.timeout = wait
            if conn.sock is not None:
                conn.sock.settimeout(wait)
        return conn

    def _request(
        self, method: str, path: str, body: bytes | None = None, *, extra: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:  # fmt: skip
        conn = self._connection(timeout)
        headers = dict(self.headers)
        if timeout is not None:
            headers["Synapse-Timeout-Ms"] = str(max(1, int(timeout * 1000)))
        headers.update(extra or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except TimeoutError:
            conn.close()
            raise PluginTimeout(f"no answer from {self.base}{path} within {timeout} s") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RegistryError(f"cannot reach {self.base}{path}: {exc}") from None
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = None
        if response.status >= 400:
            error = decoded.get("error") if isinstance(decoded, dict) else None
            fallback = FALLBACK_BY_HTTP.get(response.status, SynapseError)
            message = f"HTTP {response.status} {response.reason} from {self.base}{path}"
            raise error_from_wire(error, fallback=fallback, message=message)
        if not isinstance(decoded, dict):
            raise RegistryError(f"{self.base}{path} did not answer with a JSON object")
        return response.status, decoded

    def plugins(self) -> list[dict[str, Any]]:
        _status, body = self._request("GET", "/v1/plugins", timeout=self.timeout)
        plugins = body.get("plugins")
        if not isinstance(plugins, list):
            raise RegistryError(f"{self.base}/v1/plugins did not list plugins")
        return plugins

    def invoke(self, plugin: str, endpoint: str, payload: Any, *, batch: bool, options: CallOptions) -> Invocation:
        path = endpoint + ":batch" if batch else endpoint
        extra = {}
        if options.idempotency_key is not None:
            extra["Idempotency-Key"] = options.idempotency_key
        if not options.cache:
            extra["Cache-Control"] = NO_CACHE
        if options.return_exceptions:
            extra["Synapse-Return-Exceptions"] = "true"
        quoted = urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~")
        _status, body = self._request("POST", quoted, _dumps(payload).encode(), extra=extra, timeout=options.timeout_s)
        result = body.get("result")
        errors = body.get("errors")
        if options.return_exceptions and isinstance(result, list) and isinstance(errors, dict):
            for index, error in errors.items():
                if str(index).isdigit() and int(index) < len(result):
                    result[int(index)] = error_from_wire(error, fallback=PluginFailed, plugin=plugin)
        return Invocation(result, body.get("meta") or {})

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

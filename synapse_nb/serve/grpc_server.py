"""The gRPC listener: ``synapse.v1.PluginHost``, each endpoint path as a method of its own, health, reflection.

On one ``grpc`` server (the synchronous one: a plugin call blocks, so each call runs on one of the server's
threads from start to end, with no hand-off between an event loop and a worker thread):

- ``synapse.v1.PluginHost`` (``proto/synapse/v1/plugin_host.proto``): ``Invoke``, ``InvokeBatch`` (a stream of
  items run as one ``execute_batch``) and ``ListPlugins``;
- every served endpoint whose path is a gRPC method path (``/v1/analyze``: method ``analyze`` of service
  ``v1``) as that method: request ``google.protobuf.Value`` (the payload), response
  ``synapse.v1.InvokeResponse``; the services are described to reflection by a descriptor pool built from the
  route table, so ``grpcurl -d '{"text": "hi"}' HOST:PORT v1/analyze`` works;
- ``grpc.health.v1.Health``: ``""`` (every served plugin), ``synapse.v1.PluginHost`` and one service per
  plugin name, following :func:`~.service.plugin_serving` (the lifecycle stage and the circuit breaker: an
  open circuit is NOT_SERVING); NOT_SERVING for all once shutdown begins;
- ``grpc.reflection.v1alpha.ServerReflection``.

Requests are parsed here (never by gRPC's deserializers), so a malformed protobuf is a clear INVALID_ARGUMENT
and the server keeps serving. A client deadline becomes the plugin's timeout (:mod:`.calls`); metadata
``idempotency-key`` and ``cache-control: no-cache`` go to the execution policies (:mod:`.headers`). Errors are
``google.rpc.Status`` with a ``google.rpc.ErrorInfo`` detail (see :mod:`.errors`), and, for an open circuit,
``retry-after`` (seconds) and ``grpc-retry-pushback-ms`` trailing metadata. With a token, an interceptor
refuses every call that does not carry it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, struct_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from ..errors import ResourceLimitExceeded, SynapseError
from ..plugin import Invocation
from . import calls
from .auth import BearerAuth
from .codec import from_value, loads, to_struct, to_value
from .errors import ERROR_DOMAIN, Malformed, Unauthenticated, error_json, status_for
from .headers import CACHE_CONTROL, IDEMPOTENCY_KEY, cache_bypass, check_idempotency_key, retry_after_ms, retry_after_s
from .proto.synapse.v1 import plugin_host_pb2 as pb
from .routing import Route, RouteTable
from .service import PluginService

__all__ = ["SERVICE_NAME", "GrpcListener", "descriptor_pool_for", "rich_status"]

SERVICE_NAME = "synapse.v1.PluginHost"
MAX_BATCH_ITEMS = 10_000
MAX_ERROR_JSON = 3000  # bytes: trailing metadata is capped at 8 KiB by default on the client
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# The files every pool holds, dependencies first.
_BASE_FILES = (struct_pb2.DESCRIPTOR, pb.DESCRIPTOR, health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR)


def rich_status(exc: SynapseError) -> grpc.Status:
    """``exc`` as a ``google.rpc.Status``: the mapped code, the one-line message, an ErrorInfo detail."""
    data = error_json(exc)
    text = json.dumps(data, default=str)
    if len(text) > MAX_ERROR_JSON:  # keep the message and the attributes; drop the long lists
        data = {k: v for k, v in data.items() if k not in ("details", "problems")}
        data["message"] = str(data.get("message", ""))[:1000]
        text = json.dumps(data, default=str)
    info = error_details_pb2.ErrorInfo(
        reason=exc.code.upper().replace("-", "_"),
        domain=ERROR_DOMAIN,
        metadata={"exit_code": str(exc.exit_code), "error": text},
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    code = grpc.StatusCode[status_for(exc).grpc]
    status = rpc_status.to_status(status_pb2.Status(code=code.value[0], message=str(exc)[:1000], details=[detail]))
    wait_ms = retry_after_ms(exc)
    if wait_ms is None:
        return status
    # An open circuit: when to try again, in seconds (as HTTP's Retry-After) and as gRPC's own retry pushback.
    extra = (("retry-after", str(retry_after_s(wait_ms))), ("grpc-retry-pushback-ms", str(max(wait_ms, 1))))
    return _Status(status.code, status.details, (*status.trailing_metadata, *extra))


class _Status(grpc.Status):  # type: ignore[misc]
    """A ``grpc.Status`` (what ``abort_with_status`` takes) with trailing metadata of our own."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[tuple[str, Any], ...]) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _abort(context: grpc.ServicerContext, exc: SynapseError) -> NoReturn:
    context.abort_with_status(rich_status(exc))
    raise AssertionError("abort_with_status returned")  # pragma: no cover - it always raises


def _metadata(context: grpc.ServicerContext, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else None
    return None


def _parse(message: Any, data: bytes, what: str) -> Any:
    try:
        return message.FromString(data)
    except (DecodeError, RuntimeError) as exc:  # RuntimeError: upb's recursion limit
        raise Malformed(f"the request is not a valid {what} protobuf message: {exc}") from None


def descriptor_pool_for(routes: RouteTable) -> tuple[descriptor_pool.DescriptorPool, list[str]]:
    """A pool describing the route services (``v1`` with method ``analyze``...) and the server's own."""
    pool = descriptor_pool.DescriptorPool()
    for file in _BASE_FILES:
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.Add(proto)
    services: dict[str, list[Route]] = {}
    for route in routes.grpc_paths.values():
        service, _method = route.grpc_method or ("", "")
        services.setdefault(service, []).append(route)
    for service, members in services.items():
        package, _, short = service.rpartition(".")
        proto = descriptor_pb2.FileDescriptorProto(
            name=f"synapse/routes/{service}.proto",
            package=package,
            syntax="proto3",
            dependency=[struct_pb2.DESCRIPTOR.name, pb.DESCRIPTOR.name],
        )
        described = proto.service.add(name=short)
        for route in members:
            described.method.add(
                name=(route.grpc_method or ("", ""))[1],
                input_type=".google.protobuf.Value",
                output_type=".synapse.v1.InvokeResponse",
            )
        try:
            pool.Add(proto)
        except (TypeError, ValueError) as exc:
            paths = ", ".join(r.path for r in members)
            raise Malformed(f"cannot describe gRPC service {service!r} ({paths}) to reflection: {exc}") from None
    names = [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME, *services]
    return pool, names


class _Reflection:
    """Server reflection over the current route table (rebuilt when the routes change)."""

    def __init__(self, service: PluginService, warn: Callable[[str], None]) -> None:
        self.service = service
        self.warn = warn
        self._routes: RouteTable | None = None
        self._servicer: Any = None
        self.refresh()

    def refresh(self) -> None:
        routes = self.service.routes
        if routes is self._routes:
            return
        try:
            pool, names = descriptor_pool_for(routes)
        except Malformed as exc:
            if self._servicer is None:
                raise
            self.warn(f"reflection keeps the previous services: {exc}")
            return
        self._servicer = reflection.ReflectionServicer(names, pool=pool)
        self._routes = routes

    def ServerReflectionInfo(self, request_iterator: Any, context: Any) -> Iterator[Any]:
        self.refresh()
        yield from self._servicer.ServerReflectionInfo(request_iterator, context)


class _Auth(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call without ``authorization: Bearer TOKEN`` metadata (UNAUTHENTICATED)."""

    def __init__(self, auth: BearerAuth) -> None:
        self.auth = auth

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        presented = next((v for k, v in details.invocation_metadata or () if k == "authorization"), None)
        if self.auth.allows(presented):
            return continuation(details)

        def refuse(_request: Any, context: grpc.ServicerContext) -> None:
            message = "a bearer token is required" if presented is None else "the bearer token is wrong"
            _abort(context, Unauthenticated(f"{message} (metadata authorization: Bearer TOKEN)"))

        handler = continuation(details)
        if handler is not None and handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse)
        if handler is not None and handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(refuse)
        if handler is not None and handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)


class _Routes(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Each served endpoint path that is a gRPC method path, looked up in the current route table per call."""

    def __init__(self, listener: GrpcListener) -> None:
        self.listener = listener
        self._routes: RouteTable | None = None
        self._handlers: dict[str, Any] = {}

    def service(self, details: Any) -> Any:
        routes = self.listener.service.routes
        if routes is not self._routes:  # a reload or a redefined notebook plugin: build the handlers again
            self._handlers = {path: self._handler(route) for path, route in routes.grpc_paths.items()}
            self._routes = routes
        return self._handlers.get(details.method)

    def _handler(self, route: Route) -> Any:
        listener = self.listener

        def call(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                payload = from_value(_parse(struct_pb2.Value, request, "google.protobuf.Value"))
                invocation = listener.call(route, payload, context, batch=False)
            except SynapseError as exc:
                _abort(context, exc)
            return bytes(_response(invocation.result, invocation.meta, as_json=False).SerializeToString())

        return grpc.unary_unary_rpc_method_handler(call)


def _response(result: Any, meta: dict[str, Any] | None, *, as_json: bool) -> pb.InvokeResponse:
    response = pb.InvokeResponse()
    if as_json:
        response.result_json = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    else:
        to_value(result, response.result)
    if meta:
        to_struct(meta, response.meta)
    return response


def _payload(request: pb.InvokeRequest) -> tuple[Any, bool]:
    kind = request.WhichOneof("input")
    if kind == "payload_json":
        return loads(request.payload_json, what="payload_json"), True
    if kind == "payload":
        return from_value(request.payload), False
    raise Malformed("the request has no payload: set payload (a google.protobuf.Value) or payload_json (JSON text)")


class GrpcListener:
    """The ``grpc`` server of one :class:`~.service.PluginService`, on a thread pool of its own."""

    def __init__(
        self,
        service: PluginService,
        auth: BearerAuth,
        *,
        max_request_bytes: int,
        max_response_bytes: int,
        threads: int = 64,
        max_concurrent_rpcs: int = 1024,
        warn: Callable[[str], None] = lambda _text: None,
    ) -> None:
        self.service = service
        self.max_request_bytes = max_request_bytes
        self.health = health.HealthServicer()
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="synapse-grpc")
        self.server = grpc.server(
            self.pool,
            interceptors=[_Auth(auth)] if auth.required else [],
            options=[
                ("grpc.max_receive_message_length", max_request_bytes),
                ("grpc.max_send_message_length", max_response_bytes),
                ("grpc.so_reuseport", 0),  # never share a port with another server by accident
            ],
            maximum_concurrent_rpcs=max_concurrent_rpcs,
        )
        host = grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Invoke": grpc.unary_unary_rpc_method_handler(self._invoke),
                "InvokeBatch": grpc.stream_stream_rpc_method_handler(self._invoke_batch),
                "ListPlugins": grpc.unary_unary_rpc_method_handler(self._list_plugins),
            },
        )
        self.server.add_generic_rpc_handlers([host, _Routes(self)])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(_Reflection(service, warn), self.server)

    def bind(self, address: str) -> int:
        """Listen on ``address`` (``HOST:PORT``); returns the bound port."""
        try:
            port: int = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {address}: {exc}") from None
        if not port:
            raise OSError(f"cannot listen on {address}")
        return port

    def start(self) -> None:
        self.server.start()
        self.health.set(SERVICE_NAME, _SERVING)
        for name in self.service.names:
            self._set_health(name, self.service.serving(name))
        self.service.on_health(self._set_health)  # the health servicer is thread-safe

    def _set_health(self, name: str, serving: bool) -> None:
        self.health.set(name, _SERVING if serving else _NOT_SERVING)
        self.health.set("", _SERVING if all(self.service.health().values()) else _NOT_SERVING)

    def stop(self, grace: float) -> None:
        """NOT_SERVING everywhere, refuse new calls, let calls in flight finish for up to ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- calls -------------------------------------------------------------------------------------------------
    def call(
        self, route: Route, payload: Any, context: grpc.ServicerContext, *, batch: bool, return_exceptions: bool = False
    ) -> Invocation:
        """Run ``payload`` (a list of items for a batch) on this thread, within the client's deadline, with the
        idempotency key and cache bypass its metadata asks for."""
        asked = calls.Asked(
            idempotency_key=check_idempotency_key(
                _metadata(context, IDEMPOTENCY_KEY), where="metadata idempotency-key"
            ),
            cache=not cache_bypass(_metadata(context, CACHE_CONTROL)),
            return_exceptions=return_exceptions,
        )
        _timeout_ms, work = calls.prepare(
            self.service, route, payload, remaining_s=context.time_remaining(), asked=asked, batch=batch
        )
        return work()

    def _invoke(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            message = _parse(pb.InvokeRequest, request, "synapse.v1.InvokeRequest")
            route = self.service.routes.resolve(message.plugin, message.endpoint, over="grpc")
            payload, as_json = _payload(message)
            invocation = self.call(route, payload, context, batch=False)
        except SynapseError as exc:
            _abort(context, exc)
        return bytes(_response(invocation.result, invocation.meta, as_json=as_json).SerializeToString())

    def _invoke_batch(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        try:
            route: Route | None = None
            as_json = False
            return_exceptions = False
            items: list[Any] = []
            total = 0
            for raw in requests:
                total += len(raw)
                if total > self.max_request_bytes:
                    raise ResourceLimitExceeded(
                        f"the batch is over {self.max_request_bytes} bytes",
                        limit="max_request_bytes",
                        value=self.max_request_bytes,
                    )
                if len(items) >= MAX_BATCH_ITEMS:
                    raise ResourceLimitExceeded(
                        f"the batch has more than {MAX_BATCH_ITEMS} items",
                        limit="max_batch_items",
                        value=MAX_BATCH_ITEMS,
                    )
                message = _parse(pb.InvokeRequest, raw, "synapse.v1.InvokeRequest")
                if route is None:
                    route = self.service.routes.resolve(message.plugin, message.endpoint, over="grpc")
                    return_exceptions = message.return_exceptions
                elif (message.plugin and message.plugin != route.plugin) or (
                    message.endpoint and message.endpoint not in (route.key, route.path)
                ):
                    raise Malformed(
                        f"item {len(items)} of the batch names {message.plugin or route.plugin}/{message.endpoint}; "
                        f"every item of a batch goes to {route.plugin}/{route.key}"
                    )
                payload, as_json = _payload(message)
                items.append(payload)
            if route is None:
                return
            invocation = self.call(route, items, context, batch=True, return_exceptions=return_exceptions)
        except SynapseError as exc:
            _abort(context, exc)
        for i, result in enumerate(invocation.result):
            meta = invocation.meta if i == 0 else None
            if isinstance(result, SynapseError):  # asked for with return_exceptions: this item's error in its place
                failed = pb.InvokeResponse(error_json=json.dumps(error_json(result), default=str))
                if meta:
                    to_struct(meta, failed.meta)
                yield bytes(failed.SerializeToString())
            else:
                yield bytes(_response(result, meta, as_json=as_json).SerializeToString())

    def _list_plugins(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            _parse(pb.ListPluginsRequest, request, "synapse.v1.ListPluginsRequest")
        except SynapseError as exc:
            _abort(context, exc)
        response = pb.ListPluginsResponse()
        for entry in self.service.listing():
            info = response.plugins.add(name=entry["name"], version=entry["version"])
            for interface in entry["interfaces"]:
                info.interfaces.add(
                    type=interface["type"],
                    protocol=interface["protocol"],
                    endpoints=interface["endpoints"],
                    served_over=interface["served_over"],
                )
            to_value(entry["schemas"]["input"], info.input_schema)
            to_value(entry["schemas"]["output"], info.output_schema)
        return bytes(response.SerializeToString())

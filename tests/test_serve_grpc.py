"""The gRPC listener of a real server on loopback: the spec's /v1/analyze, PluginHost, health, reflection, errors."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status

from synapse_nb.serve.codec import from_value, to_value
from synapse_nb.serve.proto.synapse.v1 import plugin_host_pb2 as pb

from .conftest import EXAMPLE
from .serve_helpers import background_server, make_probe, module_home, settle

TOKEN = "s3cret-token-for-tests-0123456789"
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """sentiment-analyzer (the spec's manifest, unchanged) and the probe plugin, served over gRPC."""
    from synapse_nb.signing import sign_folder

    with module_home(tmp_path_factory) as home:
        example = home / "sentiment-analyzer"
        shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("__pycache__"))
        sign_folder(example)
        probe = make_probe(home)
        with background_server([example, probe], http=False) as running:
            yield running


@pytest.fixture(scope="module")
def channel(server: Any) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.urls()["grpc"].removeprefix("grpc://")) as ch:
        yield ch


def value(obj: Any) -> bytes:
    return bytes(to_value(obj, struct_pb2.Value()).SerializeToString())


def call_path(channel: grpc.Channel, path: str, payload: Any, **kw: Any) -> pb.InvokeResponse:
    method = channel.unary_unary(path, request_serializer=None, response_deserializer=pb.InvokeResponse.FromString)
    return method(value(payload), **kw)


def invoke(channel: grpc.Channel, request: pb.InvokeRequest, **kw: Any) -> pb.InvokeResponse:
    method = channel.unary_unary(
        "/synapse.v1.PluginHost/Invoke",
        request_serializer=pb.InvokeRequest.SerializeToString,
        response_deserializer=pb.InvokeResponse.FromString,
    )
    return method(request, **kw)


def refused(call: Callable[[], Any], code: grpc.StatusCode) -> grpc.RpcError:
    """The error ``call()`` fails with, after checking its status code."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == code
    return caught.value


def error_info(error: grpc.RpcError) -> dict[str, Any]:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.domain == "synapse.io"
    data: dict[str, Any] = json.loads(info.metadata["error"])
    assert info.metadata["exit_code"] == str(data["exit_code"])
    return data


def test_the_spec_sentiment_analyzer_answers_v1_analyze_over_grpc(channel: grpc.Channel) -> None:
    response = call_path(channel, "/v1/analyze", {"text": "I love this plugin system. The old one was terrible!"})
    assert from_value(response.result) == {"result": [0.8, -0.9]}
    meta = from_value(struct_pb2.Value(struct_value=response.meta))
    assert meta["plugin"] == "sentiment-analyzer"
    assert meta["version"] == "1.2.0"
    assert meta["signed"] is True


def test_plugin_host_invoke_takes_a_value_or_exact_json(channel: grpc.Channel) -> None:
    by_value = pb.InvokeRequest(plugin="probe", endpoint="primary")
    to_value({"id": 7, "n": 2.5}, by_value.payload)
    answer = from_value(invoke(channel, by_value).result)
    assert answer == {"id": 7, "method": "execute", "n": 2.5}
    assert isinstance(answer["id"], int)  # an integral double comes back as an int, as from JSON
    by_json = pb.InvokeRequest(plugin="probe", endpoint="/probe.v1.Probe/Run", payload_json='{"id": 9007199254740993}')
    assert json.loads(invoke(channel, by_json).result_json)["id"] == 9007199254740993  # exact beyond 2**53


def test_the_endpoint_key_reaches_the_handler(channel: grpc.Channel) -> None:
    answer = from_value(call_path(channel, "/probe.v1.Probe/Run", {"id": 1}).result)
    assert answer["method"] == "execute"  # primary -> execute


def test_an_http_endpoint_is_not_reachable_over_grpc(channel: grpc.Channel) -> None:
    request = pb.InvokeRequest(plugin="probe", endpoint="alt", payload_json="{}")
    error = refused(lambda: invoke(channel, request), grpc.StatusCode.NOT_FOUND)
    assert "served over http, not grpc" in error.details()


def test_invoke_without_plugin_name_is_refused_when_two_are_served(channel: grpc.Channel) -> None:
    error = refused(lambda: invoke(channel, pb.InvokeRequest(payload_json="{}")), grpc.StatusCode.NOT_FOUND)
    assert "serves 2 plugins" in error.details()


def test_invoke_batch_streams_one_response_per_item_in_order(channel: grpc.Channel) -> None:
    method = channel.stream_stream(
        "/synapse.v1.PluginHost/InvokeBatch",
        request_serializer=pb.InvokeRequest.SerializeToString,
        response_deserializer=pb.InvokeResponse.FromString,
    )
    requests = [pb.InvokeRequest(plugin="probe", payload_json=json.dumps({"id": 0}))]
    requests += [pb.InvokeRequest(payload_json=json.dumps({"id": i})) for i in range(1, 5)]
    responses = list(method(iter(requests)))
    assert [json.loads(r.result_json)["id"] for r in responses] == [0, 1, 2, 3, 4]
    assert responses[0].meta.fields["plugin"].string_value == "probe"


def test_invoke_batch_with_return_exceptions_answers_each_failed_item_in_its_place(channel: grpc.Channel) -> None:
    method = channel.stream_stream(
        "/synapse.v1.PluginHost/InvokeBatch",
        request_serializer=pb.InvokeRequest.SerializeToString,
        response_deserializer=pb.InvokeResponse.FromString,
    )

    def requests(return_exceptions: bool) -> Iterator[pb.InvokeRequest]:
        yield pb.InvokeRequest(plugin="probe", payload_json='{"id": 0}', return_exceptions=return_exceptions)
        yield pb.InvokeRequest(payload_json='{"op": "raise"}')
        yield pb.InvokeRequest(payload_json='{"id": 2}')

    error = refused(lambda: list(method(requests(False))), grpc.StatusCode.INTERNAL)
    assert error_info(error)["code"] == "plugin-failed"
    responses = list(method(requests(True)))
    assert [r.WhichOneof("output") for r in responses] == ["result_json", "error_json", "result_json"]
    assert json.loads(responses[2].result_json)["id"] == 2
    failed = json.loads(responses[1].error_json)
    assert (failed["class"], failed["exit_code"], failed["plugin"]) == ("PluginFailed", 7, "probe")
    assert responses[0].meta.fields["batch_size"].number_value == 3


def test_list_plugins_names_versions_interfaces_and_schemas(channel: grpc.Channel) -> None:
    method = channel.unary_unary(
        "/synapse.v1.PluginHost/ListPlugins",
        request_serializer=pb.ListPluginsRequest.SerializeToString,
        response_deserializer=pb.ListPluginsResponse.FromString,
    )
    plugins = {p.name: p for p in method(pb.ListPluginsRequest()).plugins}
    assert plugins["sentiment-analyzer"].version == "1.2.0"
    (iface,) = plugins["sentiment-analyzer"].interfaces
    assert (iface.protocol, dict(iface.endpoints)) == ("grpc", {"primary": "/v1/analyze"})
    assert list(iface.served_over) == ["grpc"]
    assert from_value(plugins["sentiment-analyzer"].input_schema)["required"] == ["text"]
    assert [list(i.served_over) for i in plugins["probe"].interfaces] == [["grpc"], []]  # no HTTP listener here


def test_health_is_serving_for_the_server_and_each_plugin(channel: grpc.Channel) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    for service in ("", "synapse.v1.PluginHost", "sentiment-analyzer", "probe"):
        assert check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
    refused(lambda: check(health_pb2.HealthCheckRequest(service="no-such-plugin")), grpc.StatusCode.NOT_FOUND)


def reflect(channel: grpc.Channel, request: reflection_pb2.ServerReflectionRequest) -> Any:
    method = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return next(iter(method(iter([request]))))


def test_reflection_lists_and_describes_the_endpoint_paths_as_methods(channel: grpc.Channel) -> None:
    listed = reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {s.name for s in listed.list_services_response.service}
    assert {"synapse.v1.PluginHost", "grpc.health.v1.Health", "v1", "probe.v1.Probe"} <= names
    found = reflect(channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol="v1"))
    raw = found.file_descriptor_response.file_descriptor_proto
    files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in raw]
    (service,) = [s for f in files for s in f.service if s.name == "v1"]
    (method,) = service.method
    assert (method.name, method.input_type, method.output_type) == (
        "analyze",
        ".google.protobuf.Value",
        ".synapse.v1.InvokeResponse",
    )


@pytest.mark.parametrize(
    ("payload", "code", "exit_code", "error_code"),
    [
        ({"op": "nope"}, grpc.StatusCode.INVALID_ARGUMENT, 3, "invalid"),
        ({"op": "raise"}, grpc.StatusCode.INTERNAL, 7, "plugin-failed"),
        ({"op": "crash"}, grpc.StatusCode.ABORTED, 7, "plugin-failed"),
        ({"op": "sleep", "ms": 1500}, grpc.StatusCode.DEADLINE_EXCEEDED, 5, "timeout"),
        ({"op": "big", "bytes": 70_000}, grpc.StatusCode.RESOURCE_EXHAUSTED, 6, "limit"),
    ],
    ids=["invalid-input", "raised", "crashed", "plugin-timeout", "output-too-large"],
)
def test_each_error_class_is_a_mapped_status_with_the_error_attached(
    channel: grpc.Channel, payload: dict[str, Any], code: grpc.StatusCode, exit_code: int, error_code: str
) -> None:
    error = refused(lambda: call_path(channel, "/probe.v1.Probe/Run", payload), code)
    data = error_info(error)
    assert (data["exit_code"], data["code"], data["plugin"]) == (exit_code, error_code, "probe")
    assert error.details() == data["message"]
    assert "\n" not in error.details()
    # the server and the plugin keep serving
    assert from_value(call_path(channel, "/probe.v1.Probe/Run", {"id": 5}).result)["id"] == 5


def test_the_payload_size_limit_is_resource_exhausted(channel: grpc.Channel, server: Any) -> None:
    limit = server.service.manager.config.sandbox.max_payload_bytes
    request = pb.InvokeRequest(plugin="probe", payload_json=json.dumps({"id": "x" * (limit + 1)}))
    error = refused(lambda: invoke(channel, request), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert error_info(error)["limit"] == "max_payload_bytes"


def test_a_client_deadline_answers_deadline_exceeded_at_the_deadline(channel: grpc.Channel, server: Any) -> None:
    refused(
        lambda: call_path(channel, "/probe.v1.Probe/Run", {"op": "sleep", "ms": 800}, timeout=0.2),
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    settle(server)
    assert from_value(call_path(channel, "/probe.v1.Probe/Run", {"id": 6}, timeout=5).result)["id"] == 6


@pytest.mark.parametrize(
    ("path", "data"),
    [("/probe.v1.Probe/Run", b"\xff\xff\xff"), ("/synapse.v1.PluginHost/Invoke", b"\x0a\x05ab")],
    ids=["value", "invoke-request"],
)
def test_a_malformed_protobuf_is_invalid_argument_and_the_server_keeps_serving(
    channel: grpc.Channel, path: str, data: bytes
) -> None:
    method = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    error = refused(lambda: method(data), grpc.StatusCode.INVALID_ARGUMENT)
    assert "is not a valid" in error.details()
    assert error_info(error)["exit_code"] == 3
    assert from_value(call_path(channel, "/v1/analyze", {"text": "good"}).result) == {"result": [0.6]}


def test_a_payload_nested_too_deep_is_refused(channel: grpc.Channel) -> None:
    nested: Any = 1
    for _ in range(150):  # payload_json: the JSON decoder's bound (128)
        nested = [nested]
    request = pb.InvokeRequest(plugin="probe", payload_json=json.dumps({"id": 1, "n": nested}))
    error = refused(lambda: invoke(channel, request), grpc.StatusCode.INVALID_ARGUMENT)
    assert "nested deeper than 128 levels" in error.details()


def test_an_idempotency_key_in_metadata_is_honoured(channel: grpc.Channel) -> None:
    key = [("idempotency-key", f"grpc-{uuid.uuid4()}")]
    first = call_path(channel, "/probe.v1.Probe/Run", {"id": 11}, metadata=key)
    again = call_path(channel, "/probe.v1.Probe/Run", {"id": 11}, metadata=key)
    assert first.result == again.result
    assert from_value(first.result) == {"id": 11, "method": "execute", "n": None}
    assert first.meta.fields["idempotency"].string_value == "stored"
    assert again.meta.fields["idempotency"].string_value == "replayed"
    # The same key with another payload: INVALID_ARGUMENT, exit 3, as the core says it (422 over HTTP).
    error = refused(
        lambda: call_path(channel, "/probe.v1.Probe/Run", {"id": 12}, metadata=key), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "reused with a different payload" in error.details()
    assert error_info(error)["exit_code"] == 3
    # PluginHost/Invoke reads it too (the same plugin, endpoint and payload: the same call).
    request = pb.InvokeRequest(plugin="probe", payload_json='{"id": 11}')
    assert invoke(channel, request, metadata=key).meta.fields["idempotency"].string_value == "replayed"


@pytest.mark.parametrize(("key", "said"), [("", "is empty"), ("x" * 256, "is 256 characters long")])
def test_a_malformed_idempotency_key_is_invalid_argument(channel: grpc.Channel, key: str, said: str) -> None:
    metadata = [("idempotency-key", key)]
    error = refused(lambda: call_path(channel, "/probe.v1.Probe/Run", {"id": 1}, metadata=metadata), INVALID)
    assert f"metadata idempotency-key {said}" in error.details()
    assert error_info(error)["exit_code"] == 3


def test_an_unknown_method_is_unimplemented(channel: grpc.Channel) -> None:
    refused(lambda: call_path(channel, "/v1/nothing", {}), grpc.StatusCode.UNIMPLEMENTED)


def test_with_a_token_every_call_needs_it(tmp_path: Path) -> None:
    probe = make_probe(tmp_path)
    with (
        background_server([probe], token=TOKEN, http=False) as running,
        grpc.insecure_channel(running.urls()["grpc"].removeprefix("grpc://")) as ch,
    ):
        for metadata in ([], [("authorization", "Bearer wrong-token-wrong-token")]):
            error = refused(
                lambda m=metadata: call_path(ch, "/probe.v1.Probe/Run", {"id": 1}, metadata=m), UNAUTHENTICATED
            )
            assert error_info(error)["exit_code"] == 9
        check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None, response_deserializer=None)
        refused(lambda: check(b""), UNAUTHENTICATED)
        good = [("authorization", f"Bearer {TOKEN}")]
        assert from_value(call_path(ch, "/probe.v1.Probe/Run", {"id": 2}, metadata=good).result)["id"] == 2


def test_a_client_deadline_becomes_the_plugins_timeout(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call_path(channel, "/probe.v1.Probe/Run", {"op": "sleep", "ms": 900}, timeout=0.4)
    data = error_info(caught.value)  # the core's own PluginTimeout, not only the transport's deadline
    assert data["exit_code"] == 5
    assert "worker was killed" in data["message"]
    assert int(data["value"].removesuffix("ms")) < 400

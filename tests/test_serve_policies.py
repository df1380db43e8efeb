"""The execution policies through a real server on loopback, over gRPC and HTTP: idempotency keys run a call once,
the response cache answers hits (and a client can bypass it), and health follows the circuit breaker."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2

from synapse_nb.serve.codec import from_value, to_value
from synapse_nb.serve.proto.synapse.v1 import plugin_host_pb2 as pb

from .serve_helpers import background_server, make_counter, make_probe, module_home

PROTOCOLS = ["grpc", "http"]
RESET_S = 3.0  # the breaker's reset window: long enough to look at the open circuit on a loaded machine
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A counter (state: how many calls ran), a probe with a response cache, and a probe whose circuit opens
    after two crashes."""
    with module_home(tmp_path_factory) as home:
        plugins = [
            make_counter(home),
            make_probe(home, "cached", spec={"cache": {"ttl": "60s"}}),
            make_probe(home, "breaker", execution={"circuit": {"failures": 2, "reset": f"{RESET_S}s"}}),
        ]
        with background_server(plugins) as running:
            yield running


@pytest.fixture(scope="module")
def channel(server: Any) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.urls()["grpc"].removeprefix("grpc://")) as ch:
        yield ch


Answer = tuple[int | grpc.StatusCode, dict[str, str], Any]  # status, headers or metadata, {"result", "meta"}


def http_post(server: Any, path: str, payload: Any, headers: dict[str, str] | None = None) -> Answer:
    host, port = server.urls()["http"].removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", path, json.dumps(payload), {"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        body = json.loads(response.read())
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def grpc_call(channel: grpc.Channel, path: str, payload: Any, metadata: list[tuple[str, str]] | None = None) -> Answer:
    method = channel.unary_unary(path, request_serializer=None, response_deserializer=pb.InvokeResponse.FromString)
    request = bytes(to_value(payload, struct_pb2.Value()).SerializeToString())
    try:
        response = method(request, metadata=metadata or [], timeout=30)
    except grpc.RpcError as error:
        trailers = {k: v for k, v in error.trailing_metadata() or () if isinstance(v, str)}
        return error.code(), trailers, error.details()
    meta = from_value(struct_pb2.Value(struct_value=response.meta))
    return grpc.StatusCode.OK, {}, {"result": from_value(response.result), "meta": meta}


Caller = Callable[..., Answer]


@pytest.fixture(params=PROTOCOLS)
def call(request: pytest.FixtureRequest, server: Any, channel: grpc.Channel) -> Caller:
    """``call(plugin, payload, key=None, no_cache=False)`` over one protocol, at the plugin's path for it."""
    over = request.param

    def caller(plugin: str, payload: Any, *, key: str | None = None, no_cache: bool = False) -> Answer:
        if over == "http":
            headers = {"Idempotency-Key": key} if key else {}
            if no_cache:
                headers["Cache-Control"] = "no-cache"
            path = "/v1/count" if plugin == "counter" else f"/{plugin}/run"
            return http_post(server, path, payload, headers)
        metadata = [("idempotency-key", key)] if key else []
        if no_cache:
            metadata.append(("cache-control", "no-cache"))
        path = "/counter/Count" if plugin == "counter" else f"/{plugin}.v1.Probe/Run"
        return grpc_call(channel, path, payload, metadata)

    caller.over = over  # type: ignore[attr-defined]
    return caller


OK = (200, grpc.StatusCode.OK)


# -- idempotency keys -------------------------------------------------------------------------------------------


def test_a_counting_plugin_called_twice_with_one_key_runs_once(call: Caller) -> None:
    key = str(uuid.uuid4())
    status, _, first = call("counter", {"id": "once"}, key=key)
    assert status in OK
    status, _, again = call("counter", {"id": "once"}, key=key)
    assert status in OK
    assert again["result"] == first["result"]
    assert (first["meta"]["idempotency"], again["meta"]["idempotency"]) == ("stored", "replayed")
    _status, _, after = call("counter", {"id": "once"})  # no key: it runs, and counts one more than the first
    assert after["result"]["n"] == first["result"]["n"] + 1


def test_one_key_with_another_payload_is_refused_and_runs_nothing(call: Caller) -> None:
    key = str(uuid.uuid4())
    _status, _, first = call("counter", {"id": "a"}, key=key)
    status, _, detail = call("counter", {"id": "b"}, key=key)
    assert status in (422, grpc.StatusCode.INVALID_ARGUMENT)
    text = detail["detail"] if isinstance(detail, dict) else detail
    assert f"idempotency key '{key}' reused with a different payload" in text
    _status, _, after = call("counter", {"id": "c"})
    assert after["result"]["n"] == first["result"]["n"] + 1  # the refused call never ran


def test_concurrent_calls_with_one_key_run_once(call: Caller) -> None:
    key = str(uuid.uuid4())
    answers: list[Answer] = []
    lock = threading.Lock()

    def one() -> None:
        answer = call("counter", {"id": "together", "ms": 150}, key=key)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 6
    assert all(status in OK for status, _, _ in answers)
    assert len({json.dumps(body["result"]) for _, _, body in answers}) == 1  # every caller: the one outcome
    assert sorted(body["meta"]["idempotency"] for _, _, body in answers) == ["replayed"] * 5 + ["stored"]
    n = answers[0][2]["result"]["n"]
    assert call("counter", {"id": "after"})[2]["result"]["n"] == n + 1


# -- the response cache ----------------------------------------------------------------------------------------


def test_a_plugin_with_spec_cache_is_answered_from_the_cache(call: Caller) -> None:
    payload = {"id": f"{call.over}-{uuid.uuid4()}"}  # type: ignore[attr-defined]
    status, _, first = call("cached", payload)
    assert (status in OK, first["meta"]["cache"]) == (True, "miss")
    status, _, hit = call("cached", payload)
    assert (status in OK, hit["meta"]["cache"]) == (True, "hit")
    assert hit["result"] == first["result"]
    assert 0 < hit["meta"]["cache_ttl_ms"] <= 60_000
    assert hit["meta"]["handler_ms"] == 0.0  # nothing ran


def test_cache_control_no_cache_bypasses_the_cache_and_never_fills_it(call: Caller) -> None:
    payload = {"id": f"{call.over}-{uuid.uuid4()}"}  # type: ignore[attr-defined]
    for _ in range(2):
        status, _, bypassed = call("cached", payload, no_cache=True)
        assert (status in OK, bypassed["meta"]["cache"]) == (True, "bypass")
    assert call("cached", payload)[2]["meta"]["cache"] == "miss"  # the bypassed calls stored nothing
    assert call("cached", payload, no_cache=True)[2]["meta"]["cache"] == "bypass"  # nor read the stored one


# -- the circuit breaker and health -----------------------------------------------------------------------------


def grpc_health(channel: grpc.Channel, service: str) -> int:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    status: int = check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
    return status


def http_get(server: Any, path: str) -> tuple[int, Any]:
    host, port = server.urls()["http"].removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_health_follows_the_circuit_open_then_closed_by_a_probe(server: Any, channel: grpc.Channel) -> None:
    assert grpc_health(channel, "breaker") == SERVING
    for _ in range(2):  # two crashes in a row open it
        assert grpc_call(channel, "/breaker.v1.Probe/Run", {"op": "crash"})[0] == grpc.StatusCode.ABORTED
    # Open: NOT_SERVING everywhere health is asked, and calls refused at once with when to come back.
    assert server.service.manager.circuit_state("breaker") == "open"
    assert grpc_health(channel, "breaker") == NOT_SERVING
    assert grpc_health(channel, "") == NOT_SERVING
    assert grpc_health(channel, "counter") == SERVING
    status, health = http_get(server, "/healthz")
    assert (status, health["plugins"]["breaker"], health["plugins"]["counter"]) == (503, "NOT_SERVING", "SERVING")
    listed = {p["name"]: p for p in http_get(server, "/v1/plugins")[1]["plugins"]}
    assert (listed["breaker"]["serving"], listed["breaker"]["circuit"]) == (False, "open")
    code, trailers, detail = grpc_call(channel, "/breaker.v1.Probe/Run", {"id": 1})
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "circuit open: 2 consecutive failures" in detail
    assert 1 <= int(trailers["retry-after"]) <= RESET_S
    assert 0 < int(trailers["grpc-retry-pushback-ms"]) <= RESET_S * 1000
    status, headers, problem = http_post(server, "/breaker/run", {"id": 1})
    assert (status, problem["error"]["code"], problem["error"]["exit_code"]) == (503, "circuit-open", 8)
    assert 1 <= int(headers["retry-after"]) <= RESET_S
    assert problem["error"]["retry_after_ms"] <= RESET_S * 1000
    # Once the next probe is due, health says SERVING (so that a balancer sends it) without any call.
    deadline = time.monotonic() + RESET_S + 5
    while grpc_health(channel, "breaker") != SERVING and time.monotonic() < deadline:
        time.sleep(0.05)
    assert grpc_health(channel, "breaker") == SERVING
    assert http_get(server, "/healthz")[0] == 200
    # The probe succeeds: the circuit closes.
    code, _, answer = grpc_call(channel, "/breaker.v1.Probe/Run", {"id": 2})
    assert (code, answer["result"]["id"], answer["meta"]["circuit"]) == (grpc.StatusCode.OK, 2, "closed")
    assert server.service.manager.circuit_state("breaker") == "closed"
    assert grpc_health(channel, "breaker") == SERVING
    assert grpc_health(channel, "") == SERVING

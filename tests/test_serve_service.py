"""The served set: reloads that re-route, health that follows the lifecycle, the listener plan, the seams."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.errors import PluginTimeout, UsageError
from synapse_nb.manifest import parse_manifest
from synapse_nb.serve.auth import Address
from synapse_nb.serve.calls import check_idempotency_key, deadline_timeout_ms
from synapse_nb.serve.errors import Unsupported
from synapse_nb.serve.routing import RouteTable
from synapse_nb.serve.server import plan_listeners
from synapse_nb.serve.service import check_replacement

from .serve_helpers import background_server, make_counter

GRPC, HTTP = Address("127.0.0.1", 50051), Address("127.0.0.1", 8000)


def get(url: str, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        body = json.dumps(payload).encode() if payload is not None else None
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_reload_replaces_a_changed_plugin_and_routes_its_new_paths(tmp_path: Path) -> None:
    folder = make_counter(tmp_path)
    with background_server([folder], grpc=False) as server:
        url = server.urls()["http"]
        assert get(url, "POST", "/v1/count", {})[1]["result"] == {"n": 1, "id": None, "version": "1.0.0"}
        assert server.reload() == [
            f"counter: unchanged ({server.service.manager.get('counter').plugin.snapshot.digest[:12]})"
        ]
        make_counter(tmp_path, version="1.1.0")
        manifest = folder / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("/v1/count", "/v2/count"))
        from synapse_nb.signing import sign_folder

        sign_folder(folder)
        (line,) = server.reload()
        assert line.startswith("counter: replaced 1.0.0 with 1.1.0")
        assert get(url, "POST", "/v2/count", {})[1]["result"] == {"n": 2, "id": None, "version": "1.1.0"}
        assert get(url, "POST", "/v1/count", {})[0] == 404


def test_a_replacement_that_fails_to_start_is_not_serving(tmp_path: Path) -> None:
    folder = make_counter(tmp_path)
    with background_server([folder]) as server:
        handler = folder / "handler.py"
        handler.write_text(handler.read_text() + "\n    def setup(self, context):\n        raise RuntimeError('no')\n")
        from synapse_nb.signing import sign_folder

        sign_folder(folder)
        (line,) = server.reload()
        assert line.startswith("counter: reload failed:")
        status, body = get(server.urls()["http"], "GET", "/healthz")
        assert (status, body["plugins"]) == (503, {"counter": "NOT_SERVING"})
        import grpc
        from grpc_health.v1 import health_pb2

        with grpc.insecure_channel(server.urls()["grpc"].removeprefix("grpc://")) as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            for service in ("counter", ""):
                answer = check(health_pb2.HealthCheckRequest(service=service))
                assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING


def table(*interfaces: tuple[str, str]) -> RouteTable:
    doc = {
        "apiVersion": "synapse.io/v1",
        "kind": "AIPlugin",
        "metadata": {"name": "p", "version": "1.0.0"},
        "spec": {
            "runtime": "python3",
            "interfaces": [
                {"type": "t", "protocol": p, "endpoints": {f"e{i}": path}} for i, (p, path) in enumerate(interfaces)
            ],
        },
    }
    return RouteTable.build({"p": parse_manifest(json.dumps(doc))})


def test_listeners_default_to_what_the_interfaces_need() -> None:
    assert plan_listeners(table(("grpc", "/a/B")), None, None, defaults=(GRPC, HTTP)) == (GRPC, None, [])
    assert plan_listeners(table(("http", "/a")), None, None, defaults=(GRPC, HTTP)) == (None, HTTP, [])
    both = table(("grpc", "/a/B"), ("http", "/b"))
    assert plan_listeners(both, None, None, defaults=(GRPC, HTTP)) == (GRPC, HTTP, [])


def test_a_listener_asked_for_is_used_and_what_it_leaves_out_is_said() -> None:
    both = table(("grpc", "/a/B"), ("http", "/b"))
    grpc, http_, warnings = plan_listeners(both, None, HTTP, defaults=(GRPC, HTTP))
    assert (grpc, http_) == (None, HTTP)
    assert warnings == ["not serving p /a/B: no --grpc listener"]
    _grpc, _http, warnings = plan_listeners(table(("grpc", "/a/B")), GRPC, HTTP, defaults=(GRPC, HTTP))
    assert warnings == ["--http 127.0.0.1:8000: no interface is served over http (only /healthz and /v1/plugins)"]
    with pytest.raises(UsageError, match="nothing would be served"):
        plan_listeners(table(("grpc", "/a/B")), None, HTTP, defaults=(GRPC, HTTP))


def test_a_deadline_shortens_the_timeout_only_when_it_is_shorter() -> None:
    assert deadline_timeout_ms(None, 1500, plugin="p") is None
    assert deadline_timeout_ms(10.0, 1500, plugin="p") is None
    assert deadline_timeout_ms(0.5, 1500, plugin="p") == 450  # less the time the answer needs to get back
    with pytest.raises(PluginTimeout, match="deadline had passed"):
        deadline_timeout_ms(0.01, 1500, plugin="p")


def test_an_idempotency_key_is_refused_not_ignored() -> None:
    check_idempotency_key(None)
    check_idempotency_key("")
    with pytest.raises(Unsupported, match="Idempotency-Key is not supported"):
        check_idempotency_key("k")


def test_a_replacement_must_keep_the_name() -> None:
    def manifest(name: str, version: str) -> Any:
        doc = {"apiVersion": "synapse.io/v1", "kind": "AIPlugin", "metadata": {"name": name, "version": version},
               "spec": {"runtime": "python3"}}  # fmt: skip
        return parse_manifest(json.dumps(doc))

    assert check_replacement(manifest("a", "1.0.0"), manifest("a", "1.1.0")) is None
    note = check_replacement(manifest("a", "1.0.0"), manifest("a", "2.0.0"))
    assert note == "major version 1 -> 2: its state starts fresh"
    with pytest.raises(UsageError, match="now declares the name 'b'"):
        check_replacement(manifest("a", "1.0.0"), manifest("b", "1.0.0"))


def test_a_debug_plugin_is_never_served(tmp_path: Path) -> None:
    from synapse_nb.manager import PluginManager
    from synapse_nb.serve.service import PluginService

    folder = make_counter(tmp_path)
    manager = PluginManager()
    manager.load(folder, debug=True)
    try:
        with pytest.raises(UsageError, match=r"runs in debug mode .* only sandboxed plugins are served"):
            PluginService(manager, ["counter"]).activate()
    finally:
        manager.teardown_all()

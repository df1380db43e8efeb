"""The served set: reloads that re-route, health that follows the lifecycle, the listener plan, the seams."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.compat import CompatibilityError, Contract
from synapse_nb.errors import CircuitOpen, PluginTimeout, UsageError
from synapse_nb.manifest import parse_manifest
from synapse_nb.serve.auth import Address
from synapse_nb.serve.calls import check_idempotency_key, deadline_timeout_ms
from synapse_nb.serve.errors import Malformed
from synapse_nb.serve.headers import cache_bypass, retry_after_ms, retry_after_s
from synapse_nb.serve.routing import RouteTable
from synapse_nb.serve.server import plan_listeners
from synapse_nb.serve.service import check_replacement, plugin_serving

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
        make_counter(tmp_path, version="2.0.0", sign=False)  # a changed endpoint path is a major change
        manifest = folder / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("/v1/count", "/v2/count"))
        from synapse_nb.signing import sign_folder

        sign_folder(folder)
        (line,) = server.reload()
        assert line.startswith("counter: replaced 1.0.0 with 2.0.0")
        # A new major version starts its state afresh (it may have changed shape).
        assert get(url, "POST", "/v2/count", {})[1]["result"] == {"n": 1, "id": None, "version": "2.0.0"}
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


def test_an_idempotency_key_is_checked_and_handed_on() -> None:
    assert check_idempotency_key(None) is None
    assert check_idempotency_key("k") == "k"
    uuid = "0b5d3c9e-8f1a-4c1e-9f55-3a2d1e0c7b11"
    assert check_idempotency_key(uuid) == uuid
    assert check_idempotency_key("x" * 255) == "x" * 255
    with pytest.raises(Malformed, match="Idempotency-Key is empty"):
        check_idempotency_key("")
    with pytest.raises(Malformed, match="256 characters long, over the limit of 255"):
        check_idempotency_key("x" * 256)
    with pytest.raises(Malformed, match=r"holds '\\n': an idempotency key is printable ASCII"):
        check_idempotency_key("a\nb")
    with pytest.raises(Malformed, match="holds 'é'"):
        check_idempotency_key("clé")
    with pytest.raises(Malformed, match="starts or ends with a space"):
        check_idempotency_key(" k")


def test_cache_control_no_cache_or_no_store_bypasses_the_cache_and_nothing_else_does() -> None:
    assert not cache_bypass(None)
    assert not cache_bypass("")
    assert cache_bypass("no-cache")
    assert cache_bypass("No-Store")
    assert cache_bypass("max-age=0, no-cache")
    assert not cache_bypass("max-age=60")  # a directive this server does not implement is ignored (RFC 9111)
    assert not cache_bypass("no-transform")


def test_retry_after_is_whole_seconds_rounded_up_and_only_for_an_open_circuit() -> None:
    opened = CircuitOpen("circuit open", plugin="p", retry_after_ms=1200)
    assert retry_after_ms(opened) == 1200
    assert retry_after_s(1200) == 2
    assert retry_after_s(0) == 1  # half-open: a probe is in flight; never "retry at once"
    assert retry_after_ms(PluginTimeout("t", plugin="p", timeout_ms=5)) is None


def test_health_is_not_serving_while_the_circuit_is_open() -> None:
    from synapse_nb.manager import ManagedPlugin, Stage

    record = ManagedPlugin(name="p", path=Path("."), stage=Stage.ACTIVE)
    assert plugin_serving(record, "closed")
    assert plugin_serving(record, "half-open")
    assert not plugin_serving(record, "open")
    assert not plugin_serving(None)
    record.stage = Stage.FAILED
    assert not plugin_serving(record, "closed")


def counter_version(root: Path, version: str, *, path: str = "/v1/count", name: str = "counter") -> Contract:
    folder = make_counter(root, version=version, sign=False)
    manifest = folder / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("/v1/count", path).replace("name: counter", f"name: {name}"))
    return Contract.from_folder(folder)


def test_a_replacement_is_judged_by_the_compat_verdict(tmp_path: Path) -> None:
    old = counter_version(tmp_path / "old", "1.0.0")
    assert check_replacement(old, counter_version(tmp_path / "patch", "1.0.1")) is None
    note = check_replacement(old, counter_version(tmp_path / "major", "2.0.0", path="/v2/count"))
    assert note is not None
    assert note.endswith("needs a major release: its state starts fresh")
    assert "/v1/count" in note
    with pytest.raises(CompatibilityError, match=r"needs a major bump, .* use version 2\.0\.0"):
        check_replacement(old, counter_version(tmp_path / "minor", "1.1.0", path="/v2/count"))
    with pytest.raises(CompatibilityError, match=r"0\.9\.0 is lower than 1\.0\.0"):
        check_replacement(old, counter_version(tmp_path / "lower", "0.9.0"))
    assert check_replacement(old, counter_version(tmp_path / "back", "0.9.0"), allow_downgrade=True) is None
    with pytest.raises(UsageError, match="now declares the name 'b'"):
        check_replacement(old, counter_version(tmp_path / "renamed", "1.0.0", name="b"))


def test_a_reload_whose_version_does_not_allow_its_changes_keeps_the_old_one_serving(
    tmp_path: Path, synapse_home: Path
) -> None:
    import shutil

    from synapse_nb.signing import sign_folder

    folder = make_counter(tmp_path)
    with background_server([folder], grpc=False) as server:
        url = server.urls()["http"]
        assert get(url, "POST", "/v1/count", {})[1]["result"]["n"] == 1
        make_counter(tmp_path, version="1.1.0", sign=False)
        manifest = folder / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("/v1/count", "/v2/count"))
        # Signed elsewhere (a CI machine): this home's history, which the sign-time gate reads, never saw 1.0.0.
        shutil.rmtree(synapse_home / "history")
        sign_folder(folder)
        (line,) = server.reload()
        assert line.startswith("counter: kept 1.0.0: the changed folder is refused: ")
        assert line.endswith("1.0.0 -> 1.1.0 is a minor bump; use version 2.0.0")
        assert get(url, "POST", "/v1/count", {})[1]["result"] == {"n": 2, "id": None, "version": "1.0.0"}


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

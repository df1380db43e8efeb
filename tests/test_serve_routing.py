"""The route table: which gRPC method and HTTP path reaches which endpoint key of which plugin."""

from __future__ import annotations

import json
from typing import Any

import pytest

from synapse_nb.errors import UsageError
from synapse_nb.manifest import parse_manifest
from synapse_nb.serve.errors import NotServed
from synapse_nb.serve.routing import RouteTable, grpc_method


def manifest(name: str, *interfaces: tuple[str, dict[str, str]]) -> Any:
    doc = {
        "apiVersion": "synapse.io/v1",
        "kind": "AIPlugin",
        "metadata": {"name": name, "version": "1.0.0"},
        "spec": {
            "runtime": "python3",
            "interfaces": [{"type": "nlp", "protocol": p, "endpoints": e} for p, e in interfaces],
        },
    }
    return parse_manifest(json.dumps(doc))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/analyze", ("v1", "analyze")),
        ("/acme.nlp.Sentiment/Analyze", ("acme.nlp.Sentiment", "Analyze")),
        ("/v1/nlp/analyze", None),
        ("/v1/analyze-text", None),
        ("/v1.analyze", None),
        ("/1v/analyze", None),
        ("/v1/", None),
    ],
)
def test_grpc_method_accepts_only_service_slash_method_paths(path: str, expected: tuple[str, str] | None) -> None:
    assert grpc_method(path) == expected


def test_the_spec_example_is_served_as_the_grpc_method_v1_analyze() -> None:
    table = RouteTable.build(
        {"sentiment-analyzer": manifest("sentiment-analyzer", ("grpc", {"primary": "/v1/analyze"}))}
    )
    route = table.grpc_paths["/v1/analyze"]
    assert (route.plugin, route.key, route.served_over) == ("sentiment-analyzer", "primary", ("grpc",))
    assert table.http_paths == {}
    assert table.resolve("", "", over="grpc") is route
    assert table.resolve("sentiment-analyzer", "/v1/analyze", over="grpc") is route


def test_a_path_that_is_no_grpc_method_is_reachable_through_invoke_only() -> None:
    table = RouteTable.build({"p": manifest("p", ("grpc", {"primary": "/v1/nlp/analyze"}))})
    assert table.grpc_paths == {}
    assert "call it through synapse.v1.PluginHost/Invoke with endpoint 'primary'" in table.notes[0]
    assert table.resolve("p", "primary", over="grpc").path == "/v1/nlp/analyze"


def test_local_interfaces_are_served_over_both_listeners_only_when_exposed() -> None:
    manifests = {"cell": manifest("cell", ("local", {"primary": "/v1/cell"}))}
    hidden = RouteTable.build(manifests)
    assert hidden.routes[0].served_over == ()
    assert "--expose-local" in hidden.notes[0]
    with pytest.raises(NotServed, match="served over no listener"):
        hidden.resolve("cell", "primary", over="grpc")
    exposed = RouteTable.build(manifests, expose_local=True)
    assert set(exposed.grpc_paths) == set(exposed.http_paths) == {"/v1/cell"}


def test_two_plugins_claiming_one_path_are_refused_naming_both() -> None:
    manifests = {
        "a": manifest("a", ("http", {"primary": "/v1/run"})),
        "b": manifest("b", ("http", {"go": "/v1/run"})),
    }
    with pytest.raises(UsageError, match=r"b's endpoint 'go' \(/v1/run\): HTTP path /v1/run is already served for a's"):
        RouteTable.build(manifests)


def test_a_path_and_its_batch_twin_belong_together() -> None:
    manifests = {
        "a": manifest("a", ("http", {"primary": "/v1/run"})),
        "b": manifest("b", ("http", {"primary": "/v1/run:batch"})),
    }
    with pytest.raises(UsageError, match="already served for a's endpoint 'primary'"):
        RouteTable.build(manifests)


def test_the_same_path_on_different_listeners_is_fine() -> None:
    table = RouteTable.build(
        {"a": manifest("a", ("grpc", {"primary": "/v1/run"})), "b": manifest("b", ("http", {"primary": "/v1/run"}))}
    )
    assert table.grpc_paths["/v1/run"].plugin == "a"
    assert table.http_paths["/v1/run"].plugin == "b"


@pytest.mark.parametrize(
    ("protocol", "path", "message"),
    [
        ("http", "/healthz", "reserved by the server"),
        ("http", "/v1/plugins", "reserved by the server"),
        ("grpc", "/grpc.health.v1.Health/Check", "service grpc.health.v1.Health is reserved"),
        ("grpc", "/synapse.v1.PluginHost/Invoke", "service synapse.v1.PluginHost is reserved"),
    ],
)
def test_the_servers_own_paths_are_reserved(protocol: str, path: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        RouteTable.build({"a": manifest("a", (protocol, {"primary": path}))})


def test_resolve_says_what_is_served_instead() -> None:
    table = RouteTable.build(
        {
            "a": manifest("a", ("grpc", {"primary": "/v1/a"}), ("http", {"web": "/web/a"})),
            "b": manifest("b", ("grpc", {"primary": "/v1/b"})),
        }
    )
    with pytest.raises(NotServed, match=r"serves 2 plugins \(a, b\): name one"):
        table.resolve("", "", over="grpc")
    with pytest.raises(NotServed, match=r"plugin 'c' is not served here \(served: a, b\)"):
        table.resolve("c", "", over="grpc")
    with pytest.raises(NotServed, match="endpoint 'web' is served over http, not grpc"):
        table.resolve("a", "web", over="grpc")
    with pytest.raises(NotServed, match=r"no endpoint 'nope' is served over grpc \(have: primary \(/v1/a\)\)"):
        table.resolve("a", "nope", over="grpc")
    assert table.resolve("a", "", over="http").key == "web"

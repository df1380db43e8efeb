"""synapse_nb.connect(): a served plugin called like a local one, errors raised as the same classes and codes."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import synapse_nb
from synapse_nb.errors import (
    InvalidError,
    PluginCrashed,
    PluginFailed,
    PluginTimeout,
    RegistryError,
    ResourceLimitExceeded,
    UsageError,
    ValidationError,
)

from .conftest import EXAMPLE
from .serve_helpers import background_server, make_probe, module_home, settle

PROTOCOLS = ["grpc", "http"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The probe, and the spec's sentiment-analyzer once more with its interface switched to HTTP."""
    from synapse_nb.signing import sign_folder

    with module_home(tmp_path_factory) as home:
        example = home / "sentiment-analyzer"
        shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("__pycache__"))
        manifest = example / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("protocol: grpc", "protocol: http"))
        sign_folder(example)
        with background_server([make_probe(home), example]) as running:
            yield running


@pytest.fixture(params=PROTOCOLS)
def probe(request: pytest.FixtureRequest, server: Any) -> Iterator[Any]:
    with synapse_nb.connect(server.urls()[request.param], plugin="probe") as handle:
        yield handle


def test_an_http_interface_serves_the_sentiment_analyzer_at_v1_analyze(server: Any) -> None:
    with synapse_nb.connect(server.urls()["http"], plugin="sentiment-analyzer") as plugin:
        assert plugin.endpoint_path(None) == "/v1/analyze"
        assert plugin.run({"text": "Great. Awful."}) == {"result": [0.8, -0.9]}


def test_run_invoke_and_run_batch_work_as_on_a_local_plugin(probe: Any) -> None:
    assert probe.name == "probe"
    assert probe.version == "1.0.0"
    assert probe.run({"id": 1})["id"] == 1
    invocation = probe.invoke({"id": 2, "n": 0.5})
    assert invocation.result["n"] == 0.5
    assert invocation.meta["plugin"] == "probe"
    assert invocation.meta["isolation"]
    assert [r["id"] for r in probe.run_batch([{"id": i} for i in range(5)])] == [0, 1, 2, 3, 4]
    assert probe.run_batch([]) == []


def test_large_integers_cross_exactly(probe: Any) -> None:
    assert probe.run({"id": 2**63 + 1})["id"] == 2**63 + 1


def test_the_endpoint_is_chosen_by_key_or_path_among_those_served_over_the_transport(probe: Any) -> None:
    key, path, method = (
        ("primary", "/probe.v1.Probe/Run", "execute") if probe.over == "grpc" else ("alt", "/probe/run", "alt")
    )
    assert probe.run({"id": 1}, endpoint=key)["method"] == method
    assert probe.run({"id": 1}, endpoint=path)["method"] == method
    other = "alt" if probe.over == "grpc" else "primary"
    with pytest.raises(UsageError, match=f"no endpoint '{other}' is served over {probe.over}"):
        probe.run({"id": 1}, endpoint=other)


@pytest.mark.parametrize(
    ("payload", "error", "exit_code"),
    [
        ({"op": "nope"}, ValidationError, 3),
        ({"op": "raise"}, PluginFailed, 7),
        ({"op": "crash"}, PluginCrashed, 7),
        ({"op": "sleep", "ms": 1500}, PluginTimeout, 5),
        ({"op": "big", "bytes": 70_000}, ResourceLimitExceeded, 6),
    ],
    ids=["invalid", "raised", "crashed", "timeout", "limit"],
)
def test_errors_are_raised_as_the_same_classes_with_the_same_exit_codes(
    probe: Any, payload: dict[str, Any], error: type[Exception], exit_code: int
) -> None:
    with pytest.raises(error) as caught:
        probe.run(payload)
    assert type(caught.value) is error
    assert caught.value.exit_code == exit_code  # type: ignore[attr-defined]
    assert caught.value.plugin == "probe"  # type: ignore[attr-defined]
    assert str(caught.value).startswith("probe: ")


def test_error_attributes_survive_the_wire(probe: Any) -> None:
    with pytest.raises(ValidationError, match=r"input_schema\.json") as invalid:
        probe.run({"op": "nope"})
    assert (invalid.value.pointer, invalid.value.direction) == ("/op", "input")
    with pytest.raises(PluginFailed) as failed:
        probe.run({"op": "raise"})
    assert failed.value.exc_type == "ValueError"
    assert "handler.py" in (failed.value.location or "")
    with pytest.raises(ResourceLimitExceeded) as limited:
        probe.run({"op": "big", "bytes": 70_000})
    assert (limited.value.limit, limited.value.value) == ("max_output_bytes", 65536)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_timeout_is_the_calls_deadline(server: Any, protocol: str) -> None:
    with synapse_nb.connect(server.urls()[protocol], plugin="probe", timeout=0.25) as plugin:
        with pytest.raises(PluginTimeout) as caught:
            plugin.run({"op": "sleep", "ms": 700})
        assert caught.value.exit_code == 5
    settle(server)
    with synapse_nb.connect(server.urls()[protocol], plugin="probe", timeout=10) as plugin:
        assert plugin.run({"id": 3})["id"] == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_naming_no_plugin_on_a_server_of_two_is_a_usage_error(server: Any, protocol: str) -> None:
    with pytest.raises(UsageError, match=r"serves 2 plugins \(probe, sentiment-analyzer\): pass plugin=NAME"):
        synapse_nb.connect(server.urls()[protocol])
    with pytest.raises(UsageError, match="does not serve 'nope'"):
        synapse_nb.connect(server.urls()[protocol], plugin="nope")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1", "grpc://127.0.0.1", "localhost:50051"])
def test_a_url_that_is_not_grpc_or_http_host_port_is_a_usage_error(url: str) -> None:
    with pytest.raises(UsageError, match="expected grpc://HOST:PORT or http://HOST:PORT"):
        synapse_nb.connect(url)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_server_that_is_not_there_is_a_registry_error(protocol: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryError, match="cannot reach") as caught:
        synapse_nb.connect(f"{protocol}://127.0.0.1:{port}", timeout=2)
    assert caught.value.exit_code == 9


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_token_is_sent_on_every_call(tmp_path: Path, protocol: str) -> None:
    token = "connect-token-0123456789abcdef"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    with background_server([make_probe(tmp_path)], token=token) as running:
        url = running.urls()[protocol]
        with pytest.raises(RegistryError, match="bearer token is required") as caught:
            synapse_nb.connect(url)
        assert caught.value.exit_code == 9
        with pytest.raises(RegistryError, match="bearer token is wrong"):
            synapse_nb.connect(url, token="not-it-not-it-not-it")
        with synapse_nb.connect(url, token_file=token_file) as plugin:
            assert plugin.run({"id": 5})["id"] == 5


# -- the keyword arguments of a local plugin's calls ------------------------------------------------------------


def test_cache_false_bypasses_the_servers_response_cache(probe: Any) -> None:
    assert probe.invoke({"id": 1}, cache=False).meta["cache"] == "bypass"
    assert probe.invoke_batch([{"id": 1}, {"id": 2}], cache=False).meta["cache"] == "bypass"
    assert "cache" not in probe.invoke({"id": 1}).meta  # the probe has no spec.cache: nothing to say


def test_an_idempotency_key_runs_the_call_once_and_replays_it(probe: Any) -> None:
    key = f"client-{probe.over}-{uuid.uuid4()}"
    first = probe.invoke({"id": 31}, idempotency_key=key)
    again = probe.invoke({"id": 31}, idempotency_key=key)
    assert again.result == first.result
    assert (first.meta["idempotency"], again.meta["idempotency"]) == ("stored", "replayed")
    with pytest.raises(InvalidError, match="reused with a different payload") as caught:
        probe.run({"id": 32}, idempotency_key=key)
    assert caught.value.exit_code == 3
    batch_key = key + "-batch"
    assert probe.run_batch([{"id": 1}, {"id": 2}], idempotency_key=batch_key) == probe.run_batch(
        [{"id": 1}, {"id": 2}], idempotency_key=batch_key
    )
    assert probe.invoke_batch([{"id": 1}, {"id": 2}], idempotency_key=batch_key).meta["idempotency"] == "replayed"


@pytest.mark.parametrize(
    ("key", "said"), [("", "is empty"), ("k" * 256, "is 256 characters long"), ("clé", "holds 'é'")]
)
def test_a_malformed_idempotency_key_is_refused_before_it_is_sent(probe: Any, key: str, said: str) -> None:
    with pytest.raises(InvalidError, match=f"idempotency_key {said}") as caught:
        probe.run({"id": 1}, idempotency_key=key)
    assert caught.value.exit_code == 3


def test_return_exceptions_puts_each_failed_items_error_in_its_place(probe: Any) -> None:
    items = [{"id": 0}, {"op": "refuse"}, {"id": 2}]
    with pytest.raises(PluginFailed, match="probe was asked to refuse this item"):
        probe.run_batch(items)
    first, failed, last = probe.run_batch(items, return_exceptions=True)
    assert (first["id"], last["id"]) == (0, 2)
    # As a local run_batch(..., return_exceptions=True) gives it: the same class, message and attributes.
    assert type(failed) is PluginFailed
    assert (failed.exit_code, failed.plugin, failed.exc_type) == (7, "probe", "ItemError")
    assert str(failed) == "probe: ItemError: probe was asked to refuse this item"


def test_timeout_ms_shortens_one_calls_deadline(server: Any, probe: Any) -> None:
    with pytest.raises(PluginTimeout):
        probe.run({"op": "sleep", "ms": 700}, timeout_ms=250)
    settle(server)
    with pytest.raises(PluginTimeout, match="deadline had already passed"):
        probe.run({"id": 1}, timeout_ms=0)
    assert probe.run({"id": 4}, timeout_ms=10_000)["id"] == 4


def test_a_remote_plugin_can_be_benchmarked_like_a_local_one(probe: Any) -> None:
    from synapse_nb.benchmark import run_benchmark

    table = run_benchmark(probe, {"id": 1}, batch_sizes=(1, 4), repeat=3, warmup=1)
    assert list(table["batch_size"]) == [1, 4]
    assert list(table["error_rate"]) == [0.0, 0.0]  # benchmark.py sends cache=False: a remote handle takes it

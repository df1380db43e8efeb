"""``synapse-cli serve`` as users run it: listening lines, graceful shutdown with calls in flight, SIGHUP reload."""

from __future__ import annotations

import concurrent.futures
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import synapse_nb
from synapse_nb.cli import main
from synapse_nb.errors import RegistryError, SynapseError

from .sandbox_helpers import state_key
from .serve_helpers import CliServer, make_counter, make_probe


def test_serve_refuses_a_non_loopback_address_without_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", str(tmp_path / "never-activated"), "--http", "0.0.0.0:0"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to listen on 0.0.0.0:0 (not loopback) without a token")
    assert "--token-file" in err


def test_serve_names_a_target_it_cannot_find(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "no-such-plugin", "--grpc", ":0"]) == 2
    assert "'no-such-plugin' is neither a plugin folder nor a plugin found by discovery" in capsys.readouterr().err


def test_serve_prints_where_it_listens_and_what_to_try(tmp_path: Path) -> None:
    probe = make_probe(tmp_path)
    with CliServer([str(probe), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"]) as server:
        assert set(server.urls) == {"grpc", "http"}
        text = "\n".join(server.lines)
        assert "serving probe 1.0.0" in text
        assert "grpc  /probe.v1.Probe/Run -> probe primary" in text
        assert "http  POST /probe/run -> probe alt" in text
        assert "try: grpcurl -plaintext -d '{}'" in text
        assert f"try: curl -sS -H 'content-type: application/json' -d '{{}}' {server.urls['http']}/probe/run" in text
        with synapse_nb.connect(server.urls["grpc"]) as plugin:
            assert plugin.run({"id": 1})["id"] == 1
        assert server.stop() == 0


def test_sigterm_drains_calls_in_flight_then_tears_down_with_state_saved(tmp_path: Path) -> None:
    counter = make_counter(tmp_path)
    server = CliServer([str(counter), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0"])
    with server:
        handles = [synapse_nb.connect(server.urls[p]) for p in ("grpc", "http") for _ in range(3)]

        def call(i: int) -> Any:
            try:
                return handles[i].run({"id": i, "ms": 250})
            except SynapseError as exc:
                return exc

        with concurrent.futures.ThreadPoolExecutor(len(handles)) as pool:
            futures = [pool.submit(call, i) for i in range(len(handles))]
            time.sleep(0.3)  # the first is running in the worker, the others wait their turn
            server.send(signal.SIGTERM)
            line = server.wait_for("stopping:", timeout=10)
            assert "calls in flight" in line
            refused = None
            for _ in range(50):  # new calls are refused while the accepted ones finish
                try:
                    synapse_nb.connect(server.urls["http"], timeout=2)
                except RegistryError as exc:
                    refused = exc
                    break
                time.sleep(0.02)
            assert refused is not None, "a new connection was still accepted during the drain"
            results = [f.result(timeout=30) for f in futures]
        assert all(isinstance(r, dict) for r in results), results
        assert sorted(r["id"] for r in results) == list(range(len(handles)))  # each answered once, none crossed
        assert sorted(r["n"] for r in results) == list(range(1, len(handles) + 1))
        server.wait_for("stopped: plugins torn down, state saved", timeout=30)
        assert server.proc.wait(timeout=30) == 0
    from synapse_nb.state import open_store

    assert open_store().load_state(state_key("counter")) == {"n": len(handles)}


def test_sighup_replaces_a_changed_plugin_and_keeps_it_when_the_change_is_not_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "synapse-plugins"
    make_counter(plugins)
    monkeypatch.chdir(tmp_path)  # the name is found by discovery in ./synapse-plugins
    with CliServer(["counter", "--http", "127.0.0.1:0"]) as server:
        plugin = synapse_nb.connect(server.urls["http"])
        assert plugin.run({})["version"] == "1.0.0"
        make_counter(plugins, version="1.1.0")
        server.send(signal.SIGHUP)
        line = server.wait_for("reload: counter", timeout=30, stream="stderr")
        assert "replaced 1.0.0 with 1.1.0" in line
        answer = plugin.run({})
        assert (answer["version"], answer["n"]) == ("1.1.0", 2)  # the state carried over
        make_counter(plugins, version="1.2.0", sign=False)  # changed files, stale signature
        server.send(signal.SIGHUP)
        line = server.wait_for("reload: counter", timeout=30, stream="stderr")
        assert "kept 1.1.0: the changed folder is refused" in line
        assert plugin.run({})["version"] == "1.1.0"
        plugin.close()
        assert server.stop(signal.SIGINT) == 0

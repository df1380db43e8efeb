"""Execution policies under the real sandbox, through the Python API and the CLI: response TTLs set by the handler,
dynamic batching into a handler's execute_batch, per-item errors, hostile response metadata, idempotency keys
across processes sharing Redis, the circuit breaker shared through Redis, retries, Memcached sessions, and
``synapse-cli event emit``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.cli import main
from synapse_nb.errors import CircuitOpen, PluginCrashed, PluginFailed, ResourceLimitExceeded
from synapse_nb.manager import PluginManager

from .conftest import MemcachedServer, RedisServer
from .sandbox_helpers import require_nsjail, write_plugin

Make = Callable[..., Path]

COUNTER = """
time.sleep(data.get("sleep", 0))
self.state["n"] = self.state.get("n", 0) + 1
return {"n": self.state["n"]}
"""

VECTORISED = (
    """
return {"y": data["x"] * 2}
""",
    """
def execute_batch(self, items):
    from synapse_nb.sdk import ItemError
    self.state["batches"] = self.state.get("batches", 0) + 1
    self.state["largest"] = max(self.state.get("largest", 0), len(items))
    return [ItemError(f"negative: {item['x']}") if item["x"] < 0 else {"y": item["x"] * 2} for item in items]
""",
)


def with_spec(folder: Path, lines: str, *, execution: str = "") -> Path:
    """Add ``lines`` under ``spec`` (and ``execution`` under ``spec.execution``) of a write_plugin folder; re-sign."""
    from synapse_nb.signing import sign_folder

    manifest = folder / "manifest.yaml"
    text = manifest.read_text()
    if execution:
        text = text.replace("  execution:\n", "  execution:\n" + execution)
    manifest.write_text(text.rstrip("\n") + "\n" + lines)
    sign_folder(folder)
    return folder


@pytest.fixture
def make(tmp_path: Path) -> Make:
    require_nsjail()
    counter = iter(range(1000))

    def factory(body: str, *, spec: str = "", execution: str = "", **kwargs: Any) -> Path:
        name = str(kwargs.pop("name", f"p{next(counter)}"))
        folder = write_plugin(tmp_path / "plugins" / name, body, name=name, **kwargs)
        return with_spec(folder, spec, execution=execution) if spec or execution else folder

    return factory


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    m = PluginManager()
    yield m
    m.teardown_all()


def cli(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``synapse-cli ARGS`` in a separate process (its own kernel, as another user's would be)."""
    env = {**os.environ, "SYNAPSE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "synapse_nb", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)  # fmt: skip


# -- the response cache -----------------------------------------------------------------------------------------


def test_a_handler_sets_the_ttl_of_its_own_response(make: Make, manager: PluginManager) -> None:
    body = (
        "self.state['runs'] = self.state.get('runs', 0) + 1\n"
        "return self.respond({'q': data['q']}, cache_ttl=data['ttl'])"
    )
    plugin = manager.load(make(body, name="ttl", spec="  cache: {ttl: 1h}\n"))
    first = plugin.invoke({"q": 1, "ttl": "400ms"})
    hit = plugin.invoke({"q": 1, "ttl": "400ms"})
    assert (first.meta["cache"], first.meta["cache_ttl_ms"], hit.meta["cache"]) == ("miss", 400, "hit")
    assert hit.result == {"q": 1}
    assert plugin.invoke({"q": 2, "ttl": 0}).meta["cache_ttl_ms"] == 0  # not cached
    assert plugin.invoke({"q": 2, "ttl": 0}).meta["cache"] == "miss"
    time.sleep(0.45)
    assert plugin.invoke({"q": 1, "ttl": "400ms"}).meta["cache"] == "miss"
    assert plugin.state["runs"] == 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return self.respond(1, cache_ttl='forever')", r"respond\(\): cache_ttl='forever' is not a duration"),
        ("return self.respond(1, cache_ttl=10**40)", r"cache_ttl=10+ is outside 0 s .. 30 days"),
        ("return self.respond(1, cache_ttl=[60])", "cache_ttl must be a duration such as '60s' or seconds, not list"),
        ("r = self.respond(1)\nr.cache_ttl_ms = 'x' * 10**6\nreturn r", "Response.cache_ttl_ms must be an integer"),
        ("from synapse_nb.sdk import ItemError\nreturn ItemError('only in a batch')", "ItemError: only in a batch"),
    ],
)
def test_malformed_cache_metadata_from_the_sdk_is_a_clear_plugin_error(
    make: Make, manager: PluginManager, body: str, message: str
) -> None:
    plugin = manager.load(make(body, name="sdk-misuse"))
    with pytest.raises(PluginFailed, match=message) as caught:
        plugin.run({})
    assert caught.value.exit_code == 7


FORGE_META = """
import struct
if data.get("forge"):
    body = json.dumps({"id": data["id"], "ok": True, "result": {"n": 0}, "meta": data["forge"]}).encode()
    os.write(int(sys.argv[2]), struct.pack(">I", len(body)) + body)
    time.sleep(5)
return {"n": data.get("n")}
"""


@pytest.mark.parametrize(
    "meta",
    [
        {"cache_ttl_ms": -1},
        {"cache_ttl_ms": 1e30},
        {"cache_ttl_ms": "60s"},
        {"cache_ttl_ms": 10**40},
        {"cache_ttl_ms": 5, "also": 1},
        {"items": "x"},
        {"items": [{"error": {"type": "T", "message": "m" * 100_000}}]},
        {"items": [None] * 200_001},
        "not an object",
    ],
)
def test_hostile_response_metadata_on_the_channel_is_a_protocol_violation(
    make: Make, manager: PluginManager, meta: Any
) -> None:
    plugin = manager.load(make(FORGE_META, name="meta-forger", spec="  cache: {ttl: 1h}\n"))
    worker = plugin.worker
    assert worker is not None
    with pytest.raises(PluginCrashed, match=r"protocol violation on the worker channel: .*meta") as caught:
        plugin.run({"forge": meta, "id": worker._next_id})
    assert caught.value.exit_code == 7
    assert plugin.run({"n": 3}) == {"n": 3}  # a fresh worker
    assert plugin.invoke({"n": 3}).meta["cache"] == "hit"


def test_hostile_metadata_is_exit_7_never_1_from_the_cli(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make(FORGE_META, name="cli-meta-forger")
    payload = json.dumps({"forge": {"cache_ttl_ms": "x" * 1000}, "id": 1})
    assert main(["plugin", "run", str(folder), "--input", payload]) == 7
    err = capsys.readouterr().err
    assert "protocol violation" in err
    assert "internal error" not in err


# -- dynamic batching in the jail -------------------------------------------------------------------------------


def test_concurrent_calls_reach_the_handlers_execute_batch_and_errors_stay_per_item(
    make: Make, manager: PluginManager
) -> None:
    run, batch = VECTORISED
    folder = make(run, name="vector", extra_methods=batch, spec="  batch: {max_batch_size: 16, max_delay_ms: 30}\n")
    plugin = manager.load(folder)
    outcomes: list[Any] = [None] * 48
    barrier = threading.Barrier(48)

    def call(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = plugin.invoke({"x": -i if i % 7 == 3 else i})
        except PluginFailed as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, outcome in enumerate(outcomes):
        if i % 7 == 3:
            assert isinstance(outcome, PluginFailed)
            assert f"negative: -{i}" in str(outcome)
        else:
            assert outcome.result == {"y": 2 * i}
    state = plugin.state
    assert state["largest"] <= 16
    assert state["batches"] < 48


def test_run_batch_is_chunked_and_async_jobs_are_coalesced(make: Make, manager: PluginManager) -> None:
    run, batch = VECTORISED
    folder = make(run, name="chunks", extra_methods=batch, spec="  batch: {max_batch_size: 8, max_delay_ms: 10}\n")
    plugin = manager.load(folder)
    assert plugin.run_batch([{"x": i} for i in range(20)]) == [{"y": 2 * i} for i in range(20)]
    assert plugin.state == {"batches": 3, "largest": 8}
    jobs = [plugin.submit({"x": i}) for i in range(40)]
    assert [j.result(timeout=30) for j in jobs] == [{"y": 2 * i} for i in range(40)]
    assert plugin.state["batches"] < 3 + 40


# -- idempotency keys -------------------------------------------------------------------------------------------


def test_a_counter_run_three_times_from_the_cli_with_one_key_counts_once(make: Make, synapse_home: Path) -> None:
    folder = make(COUNTER, name="counter")
    runs = [cli("plugin", "run", str(folder), "--input", "{}", "--idempotency-key", "pay-42", "--json",
                home=synapse_home) for _ in range(3)]  # fmt: skip
    outs = [json.loads(r.stdout) for r in runs]
    assert [o["result"] for o in outs] == [{"n": 1}] * 3
    assert [o["meta"]["idempotency"] for o in outs] == ["stored", "replayed", "replayed"]
    again = cli("plugin", "run", str(folder), "--input", "{}", "--json", home=synapse_home)
    assert json.loads(again.stdout)["result"] == {"n": 2}  # counted once, not three times
    other = cli("plugin", "run", str(folder), "--input", '{"x": 1}', "--idempotency-key", "pay-42", home=synapse_home)
    assert other.returncode == 3
    assert "idempotency key 'pay-42' reused with a different payload" in other.stderr


@pytest.mark.slow
def test_two_processes_sharing_redis_run_a_key_once(make: Make, synapse_home: Path, redis_server: RedisServer) -> None:
    (synapse_home / "config").write_text(f"state: {redis_server.url}\n")
    folder = make(COUNTER, name="shared-counter")
    args = ("plugin", "run", str(folder), "--input", '{"sleep": 1.5}', "--idempotency-key", "K", "--json")
    results: list[Any] = [None, None]

    def run(i: int) -> None:
        results[i] = cli(*args, home=synapse_home)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outs = [json.loads(r.stdout) for r in results]
    assert [o["result"] for o in outs] == [{"n": 1}, {"n": 1}]
    assert sorted(o["meta"]["idempotency"] for o in outs) == ["replayed", "stored"]
    after = cli("plugin", "run", str(folder), "--input", "{}", "--json", home=synapse_home)
    assert json.loads(after.stdout)["result"] == {"n": 2}


# -- the circuit breaker ----------------------------------------------------------------------------------------


def test_crashes_open_the_circuit_for_the_next_cli_process_through_redis(
    make: Make, synapse_home: Path, redis_server: RedisServer
) -> None:
    (synapse_home / "config").write_text(f"state: {redis_server.url}\n")
    folder = make("os._exit(3)", name="crasher", execution="    circuit: {failures: 2, reset: 60s}\n")
    for _ in range(2):
        assert cli("plugin", "run", str(folder), "--input", "{}", home=synapse_home).returncode == 7
    refused = cli("plugin", "run", str(folder), "--input", "{}", "--json", home=synapse_home)
    assert refused.returncode == 8
    error = json.loads(refused.stdout)["error"]
    assert (error["code"], error["circuit"]) == ("circuit-open", "open")
    assert 0 < error["retry_after_ms"] <= 60_000
    assert "circuit open: 2 consecutive failures" in refused.stderr
    assert "next probe at" in refused.stderr


def test_a_real_crash_loop_opens_the_circuit_then_a_probe_closes_it(make: Make, manager: PluginManager) -> None:
    body = "if data.get('crash'):\n    os._exit(3)\nreturn {'ok': True}"
    plugin = manager.load(make(body, name="flaky", execution="    circuit: {failures: 3, reset: 300ms}\n"))
    for _ in range(3):
        with pytest.raises(PluginCrashed):
            plugin.run({"crash": True})
    with pytest.raises(CircuitOpen):
        plugin.run({})
    assert manager.circuit_state("flaky") == "open"
    time.sleep(0.35)
    assert plugin.invoke({}).meta["circuit"] == "closed"


# -- retries ----------------------------------------------------------------------------------------------------


CRASH_ONCE = """
if not self.context.session.get("crashed"):
    self.context.session.set("crashed", True)
    os._exit(3)
return {"pid": os.getpid() > 0}
"""


def test_an_idempotent_plugin_survives_a_crashed_worker(make: Make, manager: PluginManager) -> None:
    plugin = manager.load(make(CRASH_ONCE, name="retried", execution="    idempotent: true\n"))
    invocation = plugin.invoke({})
    assert invocation.result == {"pid": True}
    assert invocation.meta["attempts"] == 2


def test_an_idempotent_plugin_is_retried_from_the_cli(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make(CRASH_ONCE, name="cli-retried", execution="    idempotent: true\n")
    assert main(["plugin", "run", str(folder), "--input", "{}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["result"], out["meta"]["attempts"]) == ({"pid": True}, 2)


def test_memory_limits_are_never_retried(make: Make, manager: PluginManager) -> None:
    body = "self.context.session.set('tries', (self.context.session.get('tries') or 0) + 1)\nx = bytearray(200 << 20)"
    plugin = manager.load(make(body, name="hog", memory_mb=64, execution="    idempotent: true\n"))
    with pytest.raises(ResourceLimitExceeded):
        plugin.run({})
    assert plugin.policies.circuit.state == "closed"
    from synapse_nb.state.base import SessionNamespace

    assert SessionNamespace(manager.store, plugin.activation.state_key).get("tries") == 1


# -- Memcached sessions -----------------------------------------------------------------------------------------


SESSION = """
seen = self.context.session.get("seen") or []
seen.append(data["v"])
self.context.session.set("seen", seen)
if data.get("big"):
    self.context.session.set("big", "x" * data["big"])
return {"seen": seen}
"""


def test_context_session_works_on_memcached_with_its_quota(
    make: Make, synapse_home: Path, memcached_server: MemcachedServer
) -> None:
    (synapse_home / "config").write_text(f"state: {memcached_server.url}\nsessions: {{max_bytes: 4096}}\n")
    folder = make(SESSION, name="memo")
    first = PluginManager()
    try:
        assert first.load(folder).run({"v": 1}) == {"seen": [1]}
        assert first.run("memo", {"v": 2}) == {"seen": [1, 2]}
        with pytest.raises(ResourceLimitExceeded, match=r"context\.session is full"):
            first.run("memo", {"v": 3, "big": 10_000})
    finally:
        first.teardown_all()
    second = PluginManager()  # another kernel, another worker: the same session
    try:
        assert second.load(folder).run({"v": 4}) == {"seen": [1, 2, 3, 4]}
        assert type(second.store).__name__ == "MemcachedStore"
    finally:
        second.teardown_all()


# -- the command line -------------------------------------------------------------------------------------------


def test_plugin_run_batch_reads_json_lines_and_writes_one_line_per_input(
    make: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, batch = VECTORISED
    folder = make(run, name="cli-batch", extra_methods=batch, spec="  batch: {max_batch_size: 4}\n")
    lines = tmp_path / "in.jsonl"
    lines.write_text("\n".join(json.dumps({"x": x}) for x in (1, 2, -3, 4, 5, 6)) + "\n\n")
    assert main(["plugin", "run", str(folder), "--batch", "--input", f"@{lines}"]) == 7
    captured = capsys.readouterr()
    out = [json.loads(line) for line in captured.out.splitlines()]
    assert [o["ok"] for o in out] == [True, True, False, True, True, True]
    assert [o.get("result") for o in out] == [{"y": 2}, {"y": 4}, None, {"y": 8}, {"y": 10}, {"y": 12}]
    assert out[2]["error"]["code"] == "plugin-failed"
    assert "negative: -3" in out[2]["error"]["message"]
    assert "1 of 6 inputs failed; the first, input 3" in captured.err
    array = tmp_path / "in.json"
    array.write_text(json.dumps([{"x": 1}, {"x": 2}], indent=2))
    assert main(["plugin", "run", str(folder), "--batch", "--input", f"@{array}"]) == 0
    assert [json.loads(line)["result"] for line in capsys.readouterr().out.splitlines()] == [{"y": 2}, {"y": 4}]


def test_plugin_run_flags_show_the_policies_in_meta(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make("return {'n': 1}", name="flags", spec="  cache: {ttl: 1h}\n")
    assert main(["plugin", "run", str(folder), "--input", "{}", "--json", "--no-cache"]) == 0
    meta = json.loads(capsys.readouterr().out)["meta"]
    assert (meta["cache"], meta["circuit"]) == ("bypass", "closed")
    assert main(["plugin", "run", str(folder), "--input", "{}", "--json", "--idempotency-key", "k1"]) == 0
    meta = json.loads(capsys.readouterr().out)["meta"]
    assert (meta["cache"], meta["cache_ttl_ms"], meta["idempotency"]) == ("miss", 3_600_000, "stored")


def test_event_emit_delivers_to_every_subscriber(
    make: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make("return {'audit': data['order']}", name="audit", trigger="event", topics=("orders.created",))
    make("return {'mail': data['order']}", name="mailer", trigger="event", topics=("orders.created", "x.y"))
    make("raise RuntimeError('fails')", name="broken", trigger="event", topics=("orders.failed",))
    plugins = str(tmp_path / "plugins")
    args = ["event", "emit", "orders.created", "--input", '{"order": 7}', "--plugins", plugins, "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert sorted((d["plugin"], d["result"]) for d in out["deliveries"]) == [
        ("audit", {"audit": 7}), ("mailer", {"mail": 7}),
    ]  # fmt: skip
    assert main(["event", "emit", "orders.failed", "--input", "{}", "--plugins", plugins]) == 7
    assert "broken: RuntimeError: fails" in capsys.readouterr().err
    assert main(["event", "emit", "nobody.listens", "--input", "{}", "--plugins", plugins]) == 0
    assert "no valid plugin with trigger: event subscribes to 'nobody.listens'" in capsys.readouterr().err
    assert main(["event", "emit", "bad topic!", "--input", "{}"]) == 2
    for timeout in ("nan", "-1", "inf"):
        assert main(["event", "emit", "orders.created", "--input", "{}", "--timeout", timeout]) == 2

"""The PluginManager under the real sandbox: lifecycle events, discovery, triggers, state and status."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.errors import ManifestError, PluginFailed, SignatureError, ValidationError
from synapse_nb.manager import LifecycleEvent, PluginManager, Stage
from synapse_nb.state import open_store

from .conftest import RedisServer
from .sandbox_helpers import require_nsjail, state_key, write_plugin

Make = Callable[..., Path]

COUNTER = "self.state['n'] = self.state.get('n', 0) + 1\nreturn {'n': self.state['n']}"


@pytest.fixture
def make(tmp_path: Path) -> Make:
    require_nsjail()
    counter = iter(range(1000))

    def factory(body: str, **kwargs: object) -> Path:
        name = str(kwargs.pop("name", f"p{next(counter)}"))
        return write_plugin(tmp_path / "plugins" / name, body, name=name, **kwargs)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def manager() -> PluginManager:
    m = PluginManager()
    yield m  # type: ignore[misc]
    m.teardown_all()


def test_the_five_stages_are_events_with_durations(make: Make, manager: PluginManager) -> None:
    events: list[LifecycleEvent] = []
    manager.subscribe(events.append)
    plugin = manager.load(make("return {'ok': True}", name="life"))
    assert manager.run("life", {}) == {"ok": True}
    assert plugin.run({}) == {"ok": True}
    manager.teardown("life")
    stages = [e.stage for e in events if not e.activity or e.stage is not Stage.ACTIVE or e.detail]
    assert stages == [Stage.DISCOVERED, Stage.VALIDATED, Stage.ACTIVATING, Stage.ACTIVE, Stage.TEARING_DOWN,
                      Stage.STOPPED]  # fmt: skip
    activation = next(e for e in events if e.previous is Stage.ACTIVATING)
    assert activation.duration_ms > 0
    assert "activated in" in activation.detail
    assert [e.activity for e in events if e.stage is Stage.ACTIVE] == ["idle", "executing", "idle"]


def test_discovery_lists_invalid_folders_as_failed_without_stopping(
    make: Make, manager: PluginManager, tmp_path: Path
) -> None:
    make("return {}", name="good-one")
    make("return {}", name="unsigned-one", sign=False)
    broken = make("return {}", name="broken-one")
    (broken / "manifest.yaml").write_text("apiVersion: synapse.io/v1\nkind: AIPlugin\nmetadata: [1, 2]\n")
    garbage = tmp_path / "plugins" / "garbage"
    garbage.mkdir()
    (garbage / "manifest.yaml").write_bytes(os.urandom(512))
    records = {r.name: r for r in manager.discover(tmp_path / "plugins")}
    assert records["good-one"].stage is Stage.VALIDATED
    assert isinstance(records["unsigned-one"].error, SignatureError)
    assert records["unsigned-one"].stage is Stage.FAILED
    broken_error = records["broken-one"].error
    assert isinstance(broken_error, ManifestError)
    assert "manifest.yaml:1:1: /: missing required key 'spec'" in str(broken_error)
    assert any("manifest.yaml:3:11: /metadata: expected a mapping" in str(p) for p in broken_error.problems)
    assert records["garbage"].stage is Stage.FAILED
    status = manager.status().set_index("name")
    assert status.loc["good-one", "stage"] == "VALIDATED"
    assert status.loc["broken-one", "stage"] == "FAILED"
    assert "manifest.yaml:1:1" in status.loc["broken-one", "last_error"]


def test_status_reports_calls_errors_latency_isolation_and_signer(make: Make, manager: PluginManager) -> None:
    manager.load(make("if data.get('fail'):\n    raise ValueError('no')\nreturn {}", name="stat"))
    for _ in range(5):
        manager.run("stat", {})
    with pytest.raises(PluginFailed):
        manager.run("stat", {"fail": True})
    row = manager.status().set_index("name").loc["stat"]
    assert row["stage"] == "ACTIVE (idle)"
    assert row["isolation"] == "nsjail"
    assert row["signer"].startswith("CN=")
    assert (row["calls"], row["errors"]) == (5, 1)
    assert 0 < row["p50_ms"] < 1000
    assert "ValueError: no" in row["last_error"]


def test_async_jobs_are_awaitable_and_have_results(make: Make, manager: PluginManager) -> None:
    manager.load(make("return {'n': data['n']}", name="asy", trigger="async"))
    job = manager.submit("asy", {"n": 1})
    assert job.result(timeout=10) == {"n": 1}

    async def gather() -> list[object]:
        return await asyncio.gather(*(manager.submit("asy", {"n": i}) for i in range(20)))

    assert asyncio.run(gather()) == [{"n": i} for i in range(20)]


def test_a_thousand_jobs_in_flight_each_deliver_exactly_once(make: Make, manager: PluginManager) -> None:
    manager.load(make("return {'n': data['n']}", name="many", trigger="async"))
    delivered: list[int] = []
    jobs = [manager.submit("many", {"n": i}) for i in range(1000)]
    for job in jobs:
        job.add_done_callback(lambda j: delivered.append(j.result()["n"]))
    assert [job.result(timeout=30)["n"] for job in jobs] == list(range(1000))
    time.sleep(0.05)
    assert sorted(delivered) == list(range(1000))


def test_submit_validates_the_input_at_once(make: Make, manager: PluginManager) -> None:
    schema = {"type": "object", "required": ["n"]}
    folder = make("return {}", name="strict")
    (folder / "schemas" / "input_schema.json").write_text(json.dumps(schema))
    from synapse_nb.signing import sign_folder

    sign_folder(folder)
    manager.load(folder)
    with pytest.raises(ValidationError, match="'n' is a required property"):
        manager.submit("strict", {})


def test_a_job_that_times_out_fails_and_later_jobs_still_run(make: Make, manager: PluginManager) -> None:
    manager.load(make("time.sleep(data['s'])\nreturn {'s': data['s']}", name="slow", timeout="300ms"))
    jobs = [manager.submit("slow", {"s": s}) for s in (0, 2, 0, 0)]
    assert jobs[0].result(timeout=10) == {"s": 0}
    with pytest.raises(Exception, match="no result within 300 ms"):
        jobs[1].result(timeout=10)
    assert [j.result(timeout=10) for j in jobs[2:]] == [{"s": 0}, {"s": 0}]


def test_events_fan_out_to_subscribers_and_collect_each_outcome(
    make: Make, manager: PluginManager, tmp_path: Path
) -> None:
    make("return {'who': 'a', 'got': data}", name="sub-a", trigger="event", topics=("orders.created",))
    make("raise RuntimeError('b is broken')", name="sub-b", trigger="event", topics=("orders.created",))
    make("return {'who': 'c'}", name="sub-c", trigger="event", topics=("orders.deleted",))
    make("return {'who': 'sync'}", name="not-event")
    manager.discover(tmp_path / "plugins")
    deliveries = {d.plugin: d for d in manager.emit("orders.created", {"id": 1})}
    assert set(deliveries) == {"sub-a", "sub-b"}
    assert deliveries["sub-a"].ok
    assert deliveries["sub-a"].result == {"who": "a", "got": {"id": 1}}
    assert not deliveries["sub-b"].ok
    assert "RuntimeError: b is broken" in str(deliveries["sub-b"].error)
    assert manager.emit("nobody.listens", {}) == []


def test_state_is_restored_at_the_next_activation(make: Make) -> None:
    folder = make(COUNTER, name="counter")
    first = PluginManager()
    first.load(folder)
    assert [first.run("counter", {}) for _ in range(3)] == [{"n": 1}, {"n": 2}, {"n": 3}]
    first.teardown("counter")
    second = PluginManager()
    second.load(folder)
    assert second.run("counter", {}) == {"n": 4}
    second.teardown("counter")


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_counter_run_twice_from_the_cli_returns_1_then_2(
    make: Make, backend: str, synapse_home: Path, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    if backend == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        (synapse_home / "config").write_text(f"state: {server.url}\n")
    folder = make(COUNTER, name="counter")
    outputs = []
    for _ in range(2):
        assert main(["plugin", "run", str(folder), "--input", "{}", "--json"]) == 0
        outputs.append(json.loads(capsys.readouterr().out)["result"])
    assert outputs == [{"n": 1}, {"n": 2}]
    if backend == "redis":
        assert open_store(server.url).load_state(state_key("counter")) == {"n": 2}


def test_a_crash_loses_at_most_the_call_in_flight(make: Make) -> None:
    folder = make(COUNTER, name="crashy")
    manager = PluginManager()
    plugin = manager.load(folder)
    for _ in range(3):
        manager.run("crashy", {})
    worker = plugin.worker  # type: ignore[union-attr]
    os.kill(worker.guest_pid(), signal.SIGKILL)  # the host kernel kills the worker: no teardown ran
    time.sleep(0.05)
    fresh = PluginManager()  # a new process would see exactly this store
    fresh.load(folder)
    assert fresh.run("crashy", {}) == {"n": 4}
    fresh.teardown_all()
    manager.teardown_all()


def test_a_teardown_that_hangs_is_bounded_and_keeps_the_last_checkpoint(make: Make, synapse_home: Path) -> None:
    (synapse_home / "config").write_text("sandbox:\n  teardown_timeout_ms: 300\n")
    hang = "def teardown(self):\n    self.state['n'] = -1\n    time.sleep(30)\n"
    folder = make(COUNTER, name="hangs", extra_methods=hang)
    manager = PluginManager()
    manager.load(folder)
    manager.run("hangs", {})
    manager.run("hangs", {})
    t0 = time.perf_counter()
    assert manager.teardown("hangs") == {"n": 2}
    assert time.perf_counter() - t0 < 3
    assert "teardown did not finish within 300 ms" in manager.get("hangs").history[-1].detail
    assert open_store().load_state(state_key("hangs")) == {"n": 2}


def test_a_teardown_that_raises_keeps_the_last_checkpoint(make: Make) -> None:
    folder = make(COUNTER, name="raises", extra_methods="def teardown(self):\n    raise RuntimeError('nope')\n")
    manager = PluginManager()
    manager.load(folder)
    manager.run("raises", {})
    assert manager.teardown("raises") == {"n": 1}
    assert "teardown raised RuntimeError: nope" in manager.get("raises").history[-1].detail


def test_two_managers_share_one_sqlite_store(make: Make) -> None:
    a, b = PluginManager(), PluginManager()
    a.load(make(COUNTER, name="left"))
    b.load(make(COUNTER, name="right"))
    for _ in range(3):
        a.run("left", {})
        b.run("right", {})
    a.teardown_all()
    b.teardown_all()
    store = open_store()
    assert (store.load_state(state_key("left")), store.load_state(state_key("right"))) == ({"n": 3}, {"n": 3})


def test_context_session_is_shared_across_calls_and_workers(make: Make) -> None:
    body = """
    if "put" in data:
        self.context.session.set("user", data["put"], ttl=data.get("ttl"))
        return {"stored": True}
    return {"user": self.context.session.get("user", "nobody")}
    """
    folder = make(body, name="sessions")
    manager = PluginManager()
    manager.load(folder)
    manager.run("sessions", {"put": {"id": 42}})
    assert manager.run("sessions", {}) == {"user": {"id": 42}}
    manager.teardown("sessions")
    again = PluginManager()
    again.load(folder)
    assert again.run("sessions", {}) == {"user": {"id": 42}}  # a new worker, same store
    again.run("sessions", {"put": "brief", "ttl": 0.2})
    time.sleep(0.3)
    assert again.run("sessions", {}) == {"user": "nobody"}
    again.teardown_all()


def test_redis_going_away_mid_run_is_reported_and_nothing_is_dropped(
    make: Make, redis_server: RedisServer, synapse_home: Path
) -> None:
    (synapse_home / "config").write_text(f"state: {redis_server.url}\n")
    warnings: list[str] = []
    manager = PluginManager(warn=warnings.append)
    manager.load(make(COUNTER, name="resilient"))
    assert manager.run("resilient", {}) == {"n": 1}
    redis_server.stop()
    invocation = manager.invoke("resilient", {})
    assert invocation.result == {"n": 2}  # the call itself succeeds
    assert invocation.meta["state_saved"] is False
    assert "state checkpoint not saved, will retry" in warnings[0]
    assert "unavailable" in manager.status().set_index("name").loc["resilient", "last_error"]
    redis_server.start()
    assert manager.run("resilient", {}) == {"n": 3}  # the next checkpoint reaches the store again
    manager.teardown("resilient")
    assert open_store(redis_server.url).load_state(state_key("resilient")) == {"n": 3}


def test_teardown_while_the_store_is_down_raises_and_keeps_the_state(
    make: Make, redis_server: RedisServer, synapse_home: Path
) -> None:
    (synapse_home / "config").write_text(f"state: {redis_server.url}\n")
    manager = PluginManager()
    plugin = manager.load(make(COUNTER, name="kept"))
    manager.run("kept", {})
    redis_server.stop()
    manager.run("kept", {})
    from synapse_nb.state import StateStoreError

    with pytest.raises(StateStoreError, match="not saved") as info:
        manager.teardown("kept")
    assert info.value.exit_code == 9
    assert plugin.state == {"n": 2}
    assert manager.get("kept").stage is Stage.FAILED


def test_the_python_api_load_and_status(make: Make) -> None:
    import synapse_nb

    plugin = synapse_nb.load(make(COUNTER, name="api"))
    assert plugin.run({}) == {"n": 1}
    assert plugin.run_batch([{}, {}]) == [{"n": 2}, {"n": 3}]
    assert plugin.state == {"n": 3}
    assert plugin.manifest.name == "api"
    status = synapse_nb.status()
    assert "api" in set(status["name"])
    assert plugin.teardown() == {"n": 3}


def test_debug_mode_runs_in_process_with_identical_results(make: Make, example_plugin: Path) -> None:
    manager = PluginManager(insecure_allow_unsigned=True)
    sandboxed = manager.load(example_plugin)
    text = {"text": "I love it. It is not bad. Terrible!"}
    jailed = sandboxed.run(text)
    manager.teardown_all()
    debug = PluginManager(insecure_allow_unsigned=True).load(example_plugin, debug=True)
    assert debug.isolation == "in-process (unsandboxed)"
    assert debug.run(text) == jailed

    async def inside_a_running_loop() -> object:  # as in a notebook: the handler's own loop must not nest
        return debug.run(text)

    assert asyncio.run(inside_a_running_loop()) == jailed
    debug.teardown()

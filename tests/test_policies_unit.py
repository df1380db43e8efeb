"""Execution policies through the Python API with a scripted runner (no jail): batching, cache, idempotency keys,
circuit breaker and retries, with many threads and asyncio tasks. The real sandbox is in test_policies.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.activation import Activation
from synapse_nb.errors import (
    CircuitOpen,
    InvalidError,
    PluginCrashed,
    PluginFailed,
    PluginTimeout,
    ResourceLimitExceeded,
    ValidationError,
)
from synapse_nb.manager import LifecycleEvent, PluginManager
from synapse_nb.plugin import Plugin
from synapse_nb.policies.circuit import CircuitBreaker, LocalCell
from synapse_nb.policies.retry import Retry
from synapse_nb.policies.settings import CircuitSettings, RetrySettings
from synapse_nb.state import open_store

from .policy_helpers import ScriptedRunner, policy_plugin

Make = Callable[..., Path]


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    runners: list[ScriptedRunner] = []

    def factory(plan: Activation) -> ScriptedRunner:
        runner = ScriptedRunner(plan)
        runners.append(runner)
        return runner

    m = PluginManager(runner_factory=factory)
    m.runners = runners  # type: ignore[attr-defined]
    yield m
    m.teardown_all()


def runner_of(plugin: Plugin) -> ScriptedRunner:
    runner = plugin.runner
    assert isinstance(runner, ScriptedRunner)
    return runner


def in_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """``fn(i)`` in ``n`` threads started together; each one's result or exception, in order."""
    out: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


# -- dynamic batching -------------------------------------------------------------------------------------------


def test_concurrent_calls_are_coalesced_and_each_caller_gets_its_own_result(
    make_plugin: Make, manager: PluginManager
) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 8, max_delay_ms: 20}\n"))
    results = in_threads(64, lambda i: plugin.invoke({"i": i}))
    assert [r.result for r in results] == [{"echo": {"i": i}} for i in range(64)]
    sizes = runner_of(plugin).executions
    assert sum(sizes) == 64
    assert max(sizes) == 8  # never more than max_batch_size
    assert len(sizes) < 64  # coalesced
    assert {r.meta["batch_size"] for r in results} <= set(sizes)


def test_asyncio_jobs_are_coalesced_and_each_gets_its_own_result(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 16, max_delay_ms: 20}\n"))

    async def main() -> list[Any]:
        return await asyncio.gather(*(plugin.submit({"i": i}) for i in range(200)))

    assert asyncio.run(main()) == [{"echo": {"i": i}} for i in range(200)]
    sizes = runner_of(plugin).executions
    assert sum(sizes) == 200
    assert max(sizes) <= 16
    assert len(sizes) < 200


def test_threads_and_jobs_mixed_never_cross_results(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 8, max_delay_ms: 0}\n"))
    jobs = [plugin.submit({"job": i}) for i in range(100)]
    calls = in_threads(32, lambda i: plugin.run({"call": i}))
    assert calls == [{"echo": {"call": i}} for i in range(32)]
    assert [j.result(timeout=10) for j in jobs] == [{"echo": {"job": i}} for i in range(100)]


def test_an_item_error_fails_only_its_own_caller(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 64, max_delay_ms: 50}\n"))
    outcomes = in_threads(20, lambda i: plugin.run({"item_error": f"bad {i}"} if i % 5 == 0 else {"i": i}))
    for i, outcome in enumerate(outcomes):
        if i % 5 == 0:
            assert isinstance(outcome, PluginFailed)
            assert f"ItemError: bad {i}" in str(outcome)
            assert outcome.exit_code == 7
        else:
            assert outcome == {"echo": {"i": i}}


def test_a_crashed_batch_fails_each_of_its_callers_and_later_calls_run(
    make_plugin: Make, manager: PluginManager
) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 64, max_delay_ms: 100}\n"))
    outcomes = in_threads(10, lambda i: plugin.run({"crash": True} if i == 3 else {"i": i}))
    batch_of_crash = [o for o in outcomes if isinstance(o, PluginCrashed)]
    assert batch_of_crash  # the crash's batch failed, each caller with the error
    assert all(isinstance(o, PluginCrashed) or o == {"echo": {"i": i}} for i, o in enumerate(outcomes))
    assert plugin.run({"after": 1}) == {"echo": {"after": 1}}


def test_requests_for_different_endpoints_are_never_in_one_batch(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 64, max_delay_ms: 50}\n"))
    outcomes = in_threads(24, lambda i: plugin.run({"i": i}, endpoint="analyze" if i % 2 else None))
    for i, outcome in enumerate(outcomes):
        assert outcome == ({"echo": {"i": i}, "endpoint": "analyze"} if i % 2 else {"echo": {"i": i}})


def test_a_lone_caller_waits_for_company_at_most_max_delay(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 4, max_delay_ms: 300}\n"))
    first = threading.Thread(target=plugin.run, args=({"i": 0},))
    first.start()
    time.sleep(0.05)
    assert plugin.run({"i": 1}) == {"echo": {"i": 1}}  # arrived within the first one's delay: same batch
    first.join()
    assert runner_of(plugin).executions == [2]


def test_run_batch_honours_max_batch_size_by_chunking(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 4}\n"))
    invocation = plugin.invoke_batch([{"i": i} for i in range(10)])
    assert invocation.result == [{"echo": {"i": i}} for i in range(10)]
    assert runner_of(plugin).executions == [4, 4, 2]
    assert invocation.meta["chunks"] == 3
    assert invocation.meta["batch_size"] == 10


def test_run_batch_item_errors_raise_or_take_their_place(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  batch: {max_batch_size: 4}\n"))
    items = [{"i": 0}, {"item_error": "no"}, {"i": 2}]
    with pytest.raises(PluginFailed, match="ItemError: no"):
        plugin.run_batch(items)
    results = plugin.run_batch(items, return_exceptions=True)
    assert results[0] == {"echo": {"i": 0}}
    assert results[2] == {"echo": {"i": 2}}
    assert isinstance(results[1], PluginFailed)


# -- response cache ---------------------------------------------------------------------------------------------


def test_the_cache_serves_hits_until_the_ttl_and_reports_it(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  cache: {ttl: 300ms}\n"))
    first = plugin.invoke({"q": 1})
    second = plugin.invoke({"q": 1})
    bypass = plugin.invoke({"q": 1}, cache=False)
    assert (first.meta["cache"], second.meta["cache"], bypass.meta["cache"]) == ("miss", "hit", "bypass")
    assert first.meta["cache_ttl_ms"] == 300
    assert 0 < second.meta["cache_ttl_ms"] <= 300
    assert runner_of(plugin).payloads == [{"q": 1}, {"q": 1}]  # the hit did not run
    time.sleep(0.35)
    assert plugin.invoke({"q": 1}).meta["cache"] == "miss"
    assert manager.status().set_index("name").loc["policy-plugin", "cache_hit_rate"] == pytest.approx(1 / 3)


def test_the_key_is_the_canonical_input_and_the_endpoint(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  cache: {ttl: 60s}\n"))
    plugin.run({"a": 1, "b": [1, 2]})
    assert plugin.invoke({"b": [1, 2], "a": 1}).meta["cache"] == "hit"  # key order does not matter
    assert plugin.invoke({"a": 1, "b": [2, 1]}).meta["cache"] == "miss"
    assert plugin.invoke({"a": 1, "b": [1, 2]}, endpoint="analyze").meta["cache"] == "miss"


def test_a_handler_ttl_overrides_the_default_and_zero_means_not_cached(
    make_plugin: Make, manager: PluginManager
) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  cache: {ttl: 60s}\n"))
    assert plugin.invoke({"ttl": 5000}).meta["cache_ttl_ms"] == 5000
    assert plugin.invoke({"ttl": 5000}).meta["cache"] == "hit"
    assert plugin.invoke({"ttl": 0}).meta["cache_ttl_ms"] == 0
    assert plugin.invoke({"ttl": 0}).meta["cache"] == "miss"


def test_a_handler_ttl_turns_caching_on_without_spec_cache(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    assert "cache" not in plugin.invoke({"plain": 1}).meta
    assert plugin.invoke({"ttl": 60_000}).meta["cache"] == "miss"
    assert plugin.invoke({"ttl": 60_000}).meta["cache"] == "hit"


def test_errors_are_never_cached(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  cache: {ttl: 60s}\n"))
    for _ in range(2):
        with pytest.raises(PluginFailed):
            plugin.run({"fail": True})
    assert len(runner_of(plugin).payloads) == 2


def test_a_cached_result_cannot_be_changed_by_the_caller(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  cache: {ttl: 60s}\n"))
    plugin.run({"q": "x"})["echo"]["q"] = "mutated"
    plugin.run({"q": "x"})["echo"]["q"] = "mutated again"
    assert plugin.run({"q": "x"}) == {"echo": {"q": "x"}}


def test_run_batch_runs_only_the_items_not_cached(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  cache: {ttl: 60s}\n"))
    plugin.run({"i": 1})
    invocation = plugin.invoke_batch([{"i": 0}, {"i": 1}, {"i": 2}])
    assert invocation.result == [{"echo": {"i": i}} for i in range(3)]
    assert invocation.meta["cache_hits"] == 1
    assert runner_of(plugin).executions == [1, 2]
    assert plugin.invoke_batch([{"i": 0}, {"i": 1}, {"i": 2}]).meta["cache"] == "hit"


@pytest.mark.parametrize(
    ("meta", "why"),
    [
        ({"cache_ttl_ms": "60s"}, "must be {'cache_ttl_ms': N}"),
        ({"cache_ttl_ms": -1}, "must be {'cache_ttl_ms': N}"),
        ({"items": []}, "must be {'cache_ttl_ms': N}"),
        ({"cache_ttl_ms": 1, "x": 2}, "must be {'cache_ttl_ms': N}"),
    ],
)
def test_malformed_response_metadata_fails_the_call_clearly(
    make_plugin: Make, manager: PluginManager, meta: Any, why: str
) -> None:
    plugin = manager.load(policy_plugin(make_plugin, spec="  cache: {ttl: 60s}\n"))
    with pytest.raises(PluginFailed, match="response metadata of one call " + why.replace("must be ", "must be ")):
        plugin.run({"meta": meta})
    assert plugin.run({"ok": 1}) == {"echo": {"ok": 1}}


@pytest.mark.parametrize("server", ["redis_server", "memcached_server"])
def test_a_shared_store_shares_hits_between_two_managers(
    make_plugin: Make, request: pytest.FixtureRequest, server: str
) -> None:
    url = request.getfixturevalue(server).url
    folder = policy_plugin(make_plugin, spec="  cache: {ttl: 60s}\n")
    managers = [PluginManager(store=open_store(url), runner_factory=ScriptedRunner) for _ in range(2)]
    try:
        first, second = (m.load(folder) for m in managers)
        assert first.invoke({"q": 1}).meta["cache"] == "miss"
        hit = second.invoke({"q": 1})
        assert (hit.meta["cache"], hit.result) == ("hit", {"echo": {"q": 1}})
        assert runner_of(second).payloads == []
    finally:
        for m in managers:
            m.teardown_all()


# -- idempotency keys -------------------------------------------------------------------------------------------


def test_a_counter_run_three_times_with_one_key_counts_once(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    invocations = [plugin.invoke({"count": True}, idempotency_key="order-1") for _ in range(3)]
    assert [i.result for i in invocations] == [{"n": 1}] * 3
    assert [i.meta["idempotency"] for i in invocations] == ["stored", "replayed", "replayed"]
    assert runner_of(plugin).counter == 1
    assert plugin.run({"count": True}, idempotency_key="order-2") == {"n": 2}


def test_a_key_reused_with_another_payload_is_exit_3(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    plugin.run({"count": True}, idempotency_key="k")
    with pytest.raises(InvalidError, match="idempotency key 'k' reused with a different payload") as caught:
        plugin.run({"count": True, "extra": 1}, idempotency_key="k")
    assert caught.value.exit_code == 3
    with pytest.raises(InvalidError, match="reused with a different payload"):
        plugin.run({"count": True}, idempotency_key="k", endpoint="analyze")


def test_concurrent_duplicates_execute_once_and_all_get_the_outcome(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    outcomes = in_threads(16, lambda _i: plugin.invoke({"count": True, "sleep": 0.2}, idempotency_key="dup"))
    assert [o.result for o in outcomes] == [{"n": 1}] * 16
    assert sorted(o.meta["idempotency"] for o in outcomes) == ["replayed"] * 15 + ["stored"]
    assert runner_of(plugin).counter == 1


def test_jobs_with_one_key_execute_once(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    jobs = [plugin.submit({"count": True, "sleep": 0.05}, idempotency_key="job-key") for _ in range(5)]
    assert [j.result(timeout=10) for j in jobs] == [{"n": 1}] * 5
    assert runner_of(plugin).counter == 1


def test_a_failed_outcome_is_replayed_without_running_again(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    for _ in range(3):
        with pytest.raises(PluginFailed, match="asked to fail"):
            plugin.run({"fail": True}, idempotency_key="f")
    assert len(runner_of(plugin).payloads) == 1


def test_invalid_input_records_nothing_for_the_key(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    with pytest.raises(ValidationError):
        plugin.run([1], idempotency_key="fresh")  # type: ignore[arg-type]
    assert plugin.run({"count": True}, idempotency_key="fresh") == {"n": 1}


def test_keys_are_shared_by_processes_through_the_sqlite_store(make_plugin: Make) -> None:
    folder = policy_plugin(make_plugin)
    managers = [PluginManager(runner_factory=ScriptedRunner) for _ in range(2)]
    try:
        first, second = (m.load(folder) for m in managers)
        assert first.run({"count": True}, idempotency_key="shared") == {"n": 1}
        assert second.invoke({"count": True}, idempotency_key="shared").meta["idempotency"] == "replayed"
        assert runner_of(second).counter == 0
    finally:
        for m in managers:
            m.teardown_all()


def test_run_batch_with_a_key_replays_the_whole_batch(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    items = [{"count": True}, {"item_error": "no"}, {"count": True}]
    first = plugin.run_batch(items, idempotency_key="b", return_exceptions=True)
    again = plugin.run_batch(items, idempotency_key="b", return_exceptions=True)
    assert first[0] == again[0] == {"n": 1}
    assert first[2] == again[2] == {"n": 2}
    assert isinstance(again[1], PluginFailed)
    assert "no" in str(again[1])
    assert runner_of(plugin).counter == 2


# -- circuit breaker --------------------------------------------------------------------------------------------


def test_five_consecutive_crashes_open_the_circuit_and_calls_fail_at_once(
    make_plugin: Make, manager: PluginManager
) -> None:
    events: list[LifecycleEvent] = []
    manager.subscribe(events.append)
    plugin = manager.load(policy_plugin(make_plugin, execution="    circuit: {reset: 200ms}\n"))
    for _ in range(5):
        with pytest.raises(PluginCrashed):
            plugin.run({"crash": True})
    with pytest.raises(CircuitOpen, match=r"circuit open: 5 consecutive failures.*next probe at \d\d:\d\d:\d\d") as c:
        plugin.run({"ok": 1})
    assert (c.value.exit_code, c.value.code, c.value.circuit) == (8, "circuit-open", "open")
    assert 0 < c.value.retry_after_ms <= 200
    assert len(runner_of(plugin).payloads) == 5  # refused without running
    assert manager.circuit_state("policy-plugin") == "open"
    assert manager.status().set_index("name").loc["policy-plugin", "circuit"] == "open"
    time.sleep(0.25)
    assert plugin.invoke({"ok": 1}).meta["circuit"] == "closed"  # the probe succeeded
    circuit = [(e.kind, e.circuit) for e in events if e.kind == "circuit"]
    assert circuit == [("circuit", "open"), ("circuit", "half-open"), ("circuit", "closed")]
    assert "5 consecutive failures" in next(e.detail for e in events if e.circuit == "open")


def test_a_failure_rate_over_half_of_the_window_opens_it(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, execution="    circuit: {failures: 100, window: 10}\n"))
    for i in range(10):
        payload = {"timeout": True} if i % 2 else {"ok": i}
        with contextlib.suppress(PluginTimeout):
            plugin.run(payload)
    assert plugin.policies.circuit.state == "closed"  # 5 of 10: not over half
    with pytest.raises(PluginTimeout):
        plugin.run({"timeout": True})  # 6 of the last 10
    with pytest.raises(CircuitOpen, match="6 of the last 10 calls failed"):
        plugin.run({"ok": 1})


def test_raising_handlers_and_invalid_input_do_not_open_it(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    for _ in range(10):
        with pytest.raises(PluginFailed):
            plugin.run({"fail": True})
        with pytest.raises(ValidationError):
            plugin.run("not an object")
    assert plugin.run({"ok": 1}) == {"echo": {"ok": 1}}
    assert plugin.policies.circuit.state == "closed"


def test_half_open_lets_exactly_one_probe_through(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, execution="    circuit: {failures: 1, reset: 100ms}\n"))
    with pytest.raises(PluginCrashed):
        plugin.run({"crash": True})
    time.sleep(0.15)
    outcomes = in_threads(8, lambda _i: plugin.run({"sleep": 0.2}))
    assert sum(o == {"echo": {"sleep": 0.2}} for o in outcomes) == 1
    refused = [o for o in outcomes if isinstance(o, CircuitOpen)]
    assert len(refused) == 7
    assert all("half-open" in str(o) for o in refused)
    assert plugin.policies.circuit.state == "closed"


def test_a_failed_probe_opens_the_circuit_again(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, execution="    circuit: {failures: 2, reset: 100ms}\n"))
    for _ in range(2):
        with pytest.raises(PluginCrashed):
            plugin.run({"crash": True})
    time.sleep(0.15)
    with pytest.raises(ResourceLimitExceeded):
        plugin.run({"limit": True})
    with pytest.raises(CircuitOpen, match="the probe failed: limit"):
        plugin.run({"ok": 1})


def test_jobs_are_refused_at_once_while_the_circuit_is_open(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, execution="    circuit: {failures: 3, reset: 60s}\n"))
    jobs = [plugin.submit({"crash": True}) for _ in range(3)]
    for job in jobs:
        with pytest.raises(PluginCrashed):
            job.result(timeout=5)
    with pytest.raises(CircuitOpen):
        plugin.submit({"ok": 1})
    deliveries = manager.emit("nothing-subscribes", {})
    assert deliveries == []


def test_the_state_machine_counts_by_the_settings() -> None:
    breaker = CircuitBreaker("p", CircuitSettings(failures=3, window=4, failure_rate=0.5, reset_ms=50), LocalCell())
    crash = PluginCrashed("died", plugin="p")
    seen: list[tuple[str, str]] = []
    breaker.listeners.append(lambda old, new, _why: seen.append((old, new)))
    for error in (crash, None, crash, crash):  # 3 of 4 failed: over half of a full window
        assert breaker.check() == ""
        breaker.record(error)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.check()
    time.sleep(0.06)
    probe = breaker.check()
    assert probe
    assert breaker.state == "half-open"
    breaker.record(None, "not-the-probe")  # a late call's success does not close it
    assert breaker.state == "half-open"
    breaker.record(None, probe)
    assert seen == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


@pytest.mark.parametrize("server", ["redis_server", "memcached_server"])
def test_a_shared_circuit_opens_for_every_manager_on_the_store(
    make_plugin: Make, request: pytest.FixtureRequest, server: str
) -> None:
    url = request.getfixturevalue(server).url
    folder = policy_plugin(make_plugin, execution="    circuit: {failures: 4, reset: 60s}\n")
    managers = [PluginManager(store=open_store(url), runner_factory=ScriptedRunner) for _ in range(2)]
    try:
        first, second = (m.load(folder) for m in managers)
        for plugin in (first, second, first, second):  # the failures of both processes add up
            with pytest.raises(PluginCrashed):
                plugin.run({"crash": True})
        with pytest.raises(CircuitOpen):
            first.run({"ok": 1})
        with pytest.raises(CircuitOpen):
            second.run({"ok": 1})
        assert managers[1].circuit_state("policy-plugin") == "open"
    finally:
        for m in managers:
            m.teardown_all()


# -- retries ----------------------------------------------------------------------------------------------------


def test_an_idempotent_plugin_is_retried_after_crashes(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, execution="    idempotent: true\n"))
    invocation = plugin.invoke({"crash_first": 2, "id": "a"})
    assert invocation.result == {"echo": {"crash_first": 2, "id": "a"}}
    assert invocation.meta["attempts"] == 3
    with pytest.raises(PluginCrashed):
        plugin.run({"crash_first": 5, "id": "b"})  # 3 attempts at most
    assert runner_of(plugin).attempts["b"] == 3


def test_a_plugin_that_is_not_idempotent_is_never_retried(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin))
    with pytest.raises(PluginCrashed):
        plugin.run({"crash_first": 1, "id": "a"})
    assert runner_of(plugin).attempts["a"] == 1
    assert plugin.run({"crash_first": 1, "id": "b"}, idempotency_key="with-key") == {
        "echo": {"crash_first": 1, "id": "b"}
    }  # a key makes the call safe to retry
    assert runner_of(plugin).attempts["b"] == 2


def test_raising_handlers_are_never_retried_even_when_idempotent(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, execution="    idempotent: true\n"))
    with pytest.raises(PluginFailed):
        plugin.run({"fail": True})
    assert len(runner_of(plugin).payloads) == 1


def test_idempotent_jobs_and_batches_are_retried_too(make_plugin: Make, manager: PluginManager) -> None:
    plugin = manager.load(policy_plugin(make_plugin, execution="    idempotent: true\n"))
    job = plugin.submit({"crash_first": 1, "id": "job"})
    assert job.result(timeout=10) == {"echo": {"crash_first": 1, "id": "job"}}
    assert plugin.run_batch([{"crash_first": 1, "id": "batch"}, {"x": 1}]) == [
        {"echo": {"crash_first": 1, "id": "batch"}}, {"echo": {"x": 1}},
    ]  # fmt: skip


def test_retry_backoff_grows_with_jitter_and_is_bounded() -> None:
    import random

    retry = Retry(RetrySettings(attempts=4, backoff_ms=100, max_backoff_ms=250, max_total_ms=10_000),
                  rng=random.Random(1))  # fmt: skip
    crash = PluginCrashed("died")
    delays = [retry.next_delay(crash) for _ in range(4)]
    assert delays[3] is None  # 4 attempts in all
    assert 0.05 <= delays[0] <= 0.1
    assert 0.1 <= delays[1] <= 0.2
    assert 0.125 <= delays[2] <= 0.25
    assert Retry(RetrySettings()).next_delay(PluginFailed("raised")) is None
    short = Retry(RetrySettings(attempts=10, backoff_ms=100, max_total_ms=50))
    assert short.next_delay(crash) is None  # would start after max_total


def test_host_config_sets_defaults_and_the_manifest_wins(make_plugin: Make, synapse_home: Path) -> None:
    (synapse_home / "config").write_text("policies:\n  circuit: {failures: 2, reset: 1s}\n  retry: {attempts: 5}\n")
    from synapse_nb.config import load_config
    from synapse_nb.manifest import load_manifest
    from synapse_nb.policies import PolicySettings

    folder = policy_plugin(make_plugin, execution="    circuit: {reset: 3s}\n")
    settings = PolicySettings.resolve(load_manifest(folder), load_config())
    assert (settings.circuit.failures, settings.circuit.reset_ms, settings.retry.attempts) == (2, 3000, 5)


def test_status_lifecycle_events_carry_kind_and_circuit(make_plugin: Make, manager: PluginManager) -> None:
    manager.load(policy_plugin(make_plugin))
    event = manager.get("policy-plugin").history[-1]
    assert event.to_json()["kind"] == "stage"
    assert json.loads(json.dumps(event.to_json()))["circuit"] == ""

"""Concurrent callers of one warm worker, under the real nsjail: their requests are combined (written pipelined
by whichever caller serves the queue), every caller gets exactly its own result, the state checkpoint is the
newest, and a timeout, a crash or an interrupt in the middle leaves no caller stuck."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from synapse_nb.errors import PluginCrashed, PluginTimeout
from synapse_nb.plugin import Plugin, load

from .sandbox_helpers import require_nsjail, write_plugin

Make = Callable[..., Plugin]


@pytest.fixture(scope="module", autouse=True)
def _nsjail() -> None:
    require_nsjail()


@pytest.fixture
def make(tmp_path: Path, synapse_home: Path) -> Iterator[Make]:
    made: list[Plugin] = []

    def build(body: str, **kwargs: object) -> Plugin:
        plugin = load(write_plugin(tmp_path / f"p{len(made)}", body, **kwargs))  # type: ignore[arg-type]
        made.append(plugin)
        return plugin

    yield build
    for plugin in made:
        plugin.teardown()


COUNTER = """
if data.get("sleep"):
    time.sleep(data["sleep"])
self.state["n"] = self.state.get("n", 0) + 1
return {"n": self.state["n"], "echo": data["i"]}
"""


def test_concurrent_callers_each_get_their_own_result_and_the_newest_state_is_kept(make: Make) -> None:
    plugin = make(COUNTER)
    plugin.run({"i": -1})
    worker = plugin.worker
    assert worker is not None
    before = (worker.calls, worker.rounds)
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: plugin.run({"i": i}), range(640)))
    assert [r["echo"] for r in results] == list(range(640))  # nobody got another caller's result
    assert sorted(r["n"] for r in results) == list(range(2, 642))  # each ran once
    assert plugin.state == {"n": 641}  # the newest checkpoint, whatever order the callers finished in
    calls, rounds = worker.calls - before[0], worker.rounds - before[1]
    assert calls == 640
    assert rounds < calls  # combined: several requests per write


def test_requests_queued_behind_a_slow_call_are_sent_together(make: Make) -> None:
    plugin = make(COUNTER)
    plugin.run({"i": 0})
    worker = plugin.worker
    assert worker is not None
    slow = threading.Thread(target=plugin.run, args=({"i": 1, "sleep": 0.5},))
    slow.start()
    time.sleep(0.1)  # the slow call is in the worker; these 20 queue behind it
    rounds = worker.rounds
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: plugin.run({"i": i}), range(100, 120)))
    slow.join()
    assert [r["echo"] for r in results] == list(range(100, 120))
    assert worker.rounds - rounds <= 3  # one or two rounds for twenty requests, not twenty


def test_a_timeout_in_a_combined_round_fails_only_that_call(make: Make) -> None:
    plugin = make(COUNTER, timeout="400ms")
    plugin.run({"i": 0})
    outcomes: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            outcomes[i] = plugin.run({"i": i, "sleep": 30 if i == 5 else 0})["echo"]
        except PluginTimeout as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads)
    assert isinstance(outcomes.pop(5), PluginTimeout)
    assert outcomes == {i: i for i in range(12) if i != 5}  # the rest ran, on the worker or its replacement


def test_a_crash_in_a_combined_round_fails_only_that_call(make: Make) -> None:
    plugin = make("if data.get('die'):\n    os._exit(3)\ntime.sleep(0.01)\nreturn {'echo': data['i']}")
    plugin.run({"i": 0})
    outcomes: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            outcomes[i] = plugin.run({"i": i, "die": i == 3})["echo"]
        except PluginCrashed as exc:
            outcomes[i] = exc

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(call, range(8)))
    assert isinstance(outcomes.pop(3), PluginCrashed)
    assert outcomes == {i: i for i in range(8) if i != 3}


def test_an_interrupted_waiter_leaves_nobody_stuck(make: Make) -> None:
    plugin = make(COUNTER)
    plugin.run({"i": 0})
    slow = threading.Thread(target=plugin.run, args=({"i": 1, "sleep": 0.6},))
    slow.start()
    time.sleep(0.1)
    timer = threading.Timer(0.2, _thread.interrupt_main)  # KeyboardInterrupt while this thread waits its turn
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        plugin.run({"i": 2})
    slow.join(timeout=10)
    assert not slow.is_alive()
    with ThreadPoolExecutor(4) as pool:  # the queue is served again: no caller waits for a role nobody holds
        assert [r["echo"] for r in pool.map(lambda i: plugin.run({"i": i}), range(10, 14))] == [10, 11, 12, 13]


def test_an_interrupt_of_the_caller_serving_the_queue_kills_the_worker_not_the_others(make: Make) -> None:
    plugin = make(COUNTER)
    plugin.run({"i": 0})
    first = plugin.worker
    assert first is not None
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        plugin.run({"i": 1, "sleep": 2})  # this thread writes and waits for the reply itself
    # Its reply would arrive out of step with the next request: that worker is gone, a new one answers.
    assert first.dead_reason == "interrupted during a call"
    assert plugin.run({"i": 2})["echo"] == 2
    assert plugin.worker is not first

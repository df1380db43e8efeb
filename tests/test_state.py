"""State stores: SQLite (default) and a real Redis server; sessions with TTLs; checkpoints never dropped."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.state import StateStoreError, open_store
from synapse_nb.state.base import SessionNamespace, StateStore
from synapse_nb.state.checkpoint import Checkpointer
from synapse_nb.state.sqlite import SQLiteStore

from .conftest import RedisServer


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "state.db")
    server: RedisServer = request.getfixturevalue("redis_server")
    return open_store(server.url)


def test_state_round_trips(store: StateStore) -> None:
    assert store.load_state("counter") is None
    store.save_state("counter", "1.0.0", {"n": 1, "names": ["a"]})
    assert store.load_state("counter") == {"n": 1, "names": ["a"]}
    store.save_state("counter", "1.0.1", {"n": 2})
    assert store.load_state("counter") == {"n": 2}


def test_sessions_are_namespaced_and_expire(store: StateStore) -> None:
    a, b = SessionNamespace(store, "plugin-a"), SessionNamespace(store, "plugin-b")
    a.set("user", {"id": 7})
    a.set("short", "soon gone", ttl=0.2)
    assert a.get("user") == {"id": 7}
    assert b.get("user") is None
    assert b.get("user", "default") == "default"
    assert a.get("short") == "soon gone"
    time.sleep(0.35)
    assert a.get("short") is None
    a.delete("user")
    assert a.get("user") is None


def test_values_that_are_not_json_are_refused(store: StateStore) -> None:
    with pytest.raises(StateStoreError, match="is not JSON-serialisable"):
        store.save_state("p", "1.0.0", {"s": {1, 2}})


def test_the_default_store_is_sqlite_under_synapse_home(synapse_home: Path) -> None:
    store = open_store()
    assert store.url == f"sqlite://{synapse_home / 'state.db'}"


def test_an_unknown_store_url_is_a_clear_error() -> None:
    with pytest.raises(StateStoreError, match="unsupported state store 'memcached://x'"):
        open_store("memcached://x")


def test_two_stores_share_one_sqlite_file(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")

    def write(store: SQLiteStore, name: str) -> None:
        for i in range(200):
            store.save_state(name, "1.0.0", {"i": i})

    threads = [threading.Thread(target=write, args=(s, n)) for s, n in ((first, "a"), (second, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert first.load_state("b") == {"i": 199}
    assert second.load_state("a") == {"i": 199}


def test_a_redis_outage_keeps_the_checkpoint_pending_until_it_returns(redis_server: RedisServer) -> None:
    store = open_store(redis_server.url)
    errors: list[Any] = []
    keeper = Checkpointer(store, "counter", "1.0.0", on_error=errors.append)
    assert keeper.save({"n": 1})
    redis_server.stop()
    assert not keeper.save({"n": 2})
    assert not keeper.saved
    assert "unavailable while saving state" in str(errors[0])
    with pytest.raises(StateStoreError, match=r"state of 'counter' not saved: .* kept in memory"):
        keeper.flush()
    redis_server.start()
    keeper.flush()
    assert keeper.saved
    assert store.load_state("counter") == {"n": 2}

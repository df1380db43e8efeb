"""State stores: SQLite (default) and a real Redis server; sessions with TTLs; checkpoints never dropped."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.errors import ResourceLimitExceeded
from synapse_nb.state import StateStoreError, open_store
from synapse_nb.state.base import SessionNamespace, SessionQuota, StateStore
from synapse_nb.state.checkpoint import Checkpointer
from synapse_nb.state.sqlite import SQLiteStore

from .conftest import MemcachedServer, RedisServer


@pytest.fixture(params=["sqlite", "redis", "memcached"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "state.db")
    server: RedisServer | MemcachedServer = request.getfixturevalue(f"{request.param}_server")
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
    with pytest.raises(StateStoreError, match="unsupported state store 'mongodb://x'"):
        open_store("mongodb://x")


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


@pytest.fixture(params=["sqlite", "redis", "memcached"])
def two_clients(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StateStore, StateStore]:
    """Two independent clients of one store (as two processes would have)."""
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "state.db"), SQLiteStore(tmp_path / "state.db")
    server: RedisServer | MemcachedServer = request.getfixturevalue(f"{request.param}_server")
    return open_store(server.url), open_store(server.url)


def test_the_highest_version_is_kept_on_every_store(store: StateStore) -> None:
    assert store.highest_version("p@x") is None
    store.note_version("p@x", "1.2.0")
    store.note_version("p@x", "1.10.0")
    store.note_version("p@x", "1.9.9")
    assert store.highest_version("p@x") == "1.10.0"


def test_a_session_quota_counts_keys_and_bytes_on_every_store(store: StateStore) -> None:
    quota = SessionQuota(max_keys=3, max_bytes=40, default_ttl_s=60)
    session = SessionNamespace(store, "quota@pub", quota)
    for key in ("a", "b", "c"):
        session.set(key, "xx")
    session.set("a", "yy")  # replacing a key does not count twice
    with pytest.raises(ResourceLimitExceeded, match=r"4 keys would exceed sessions\.max_keys=3"):
        session.set("d", "x")
    session.delete("c")
    session.set("d", "x")
    with pytest.raises(ResourceLimitExceeded, match=r"would exceed sessions\.max_bytes=40"):
        session.set("a", "z" * 40)
    assert SessionNamespace(store, "other@pub", quota).get("a") is None


def test_expired_session_values_leave_the_quota_on_every_store(store: StateStore) -> None:
    session = SessionNamespace(store, "ttl@pub", SessionQuota(max_keys=2, max_bytes=1000, default_ttl_s=60))
    session.set("short", 1, ttl=0.2)
    session.set("long", 2)
    time.sleep(0.35)
    session.set("new", 3)  # "short" expired: two live keys
    assert (session.get("short"), session.get("long"), session.get("new")) == (None, 2, 3)


def test_two_clients_cannot_exceed_a_quota_together(two_clients: tuple[StateStore, StateStore]) -> None:
    quota = SessionQuota(max_keys=20, max_bytes=1 << 20, default_ttl_s=60)
    refused: list[int] = []

    def fill(store: StateStore, offset: int) -> None:
        session = SessionNamespace(store, "race@pub", quota)
        for i in range(20):
            try:
                session.set(f"k{offset + i}", i)
            except ResourceLimitExceeded:
                refused.append(offset + i)

    threads = [threading.Thread(target=fill, args=(store, n * 100)) for n, store in enumerate(two_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refused) == 20
    session = SessionNamespace(two_clients[0], "race@pub", quota)
    assert sum(session.get(f"k{n * 100 + i}") is not None for n in (0, 1) for i in range(20)) == 20


def test_policy_records_add_once_swap_only_from_the_expected_value_and_expire(store: StateStore) -> None:
    assert store.kv_get("idem:x") is None
    assert store.kv_add("idem:x", "pending", 5000)
    assert not store.kv_add("idem:x", "other", 5000)
    assert not store.kv_cas("idem:x", "not-this", "done", 5000)
    assert store.kv_cas("idem:x", "pending", "done", 5000)
    assert store.kv_get("idem:x") == "done"
    assert store.kv_cas("idem:y", None, "fresh", 5000)
    assert not store.kv_cas("idem:y", None, "again", 5000)
    store.kv_set("idem:short", "soon gone", 200)
    assert store.kv_get("idem:short") == "soon gone"
    time.sleep(0.35)
    assert store.kv_get("idem:short") is None
    assert store.kv_add("idem:short", "reclaimed", 5000)
    store.kv_delete("idem:x")
    assert store.kv_get("idem:x") is None
    long_key = "k" * 2000 + " with spaces \u00e9"
    store.kv_set(long_key, "v", 5000)
    assert store.kv_get(long_key) == "v"


def test_one_of_many_concurrent_adds_wins_across_clients(two_clients: tuple[StateStore, StateStore]) -> None:
    winners: list[int] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        if two_clients[n % 2].kv_add("idem:race", f"owner-{n}", 5000):
            winners.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert two_clients[1].kv_get("idem:race") == f"owner-{winners[0]}"


def test_memcached_refuses_a_value_over_its_item_size_clearly(memcached_server: MemcachedServer) -> None:
    store = open_store(memcached_server.url)
    with pytest.raises(StateStoreError, match=r"memcached://127\.0\.0\.1:\d+ .*too large.*-I 16m|8388608 byte limit"):
        store.save_state("big", "1.0.0", {"blob": "x" * (17 << 20)})


def test_an_unreachable_memcached_is_a_state_store_error_naming_it() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = open_store(f"memcached://127.0.0.1:{port}")
    with pytest.raises(StateStoreError, match=rf"memcached://127\.0\.0\.1:{port} unavailable while loading state"):
        store.load_state("x")


@pytest.mark.parametrize("url", ["memcached://", "memcached://host:notaport", "memcached://h:1/path"])
def test_a_malformed_memcached_url_is_refused(url: str) -> None:
    with pytest.raises(StateStoreError, match="memcached"):
        open_store(url)

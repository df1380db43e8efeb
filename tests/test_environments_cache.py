"""The environment store: keys, atomic commits, locks and garbage collection (no jail needed)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from synapse_nb.environments import EnvironmentStore, environment_key
from synapse_nb.environments.cache import ENV_FORMAT, RECORD, SITE
from synapse_nb.requirements import parse_requirements

DAY = 86400.0


def fake_env(store: EnvironmentStore, requirements: str, *, used_days_ago: float = 0.0) -> str:
    """A committed environment as a build leaves it (a record and a site-packages), last used some days ago."""
    reqs = parse_requirements(requirements)
    key = environment_key(reqs)
    staging = store.staging(key)
    (staging / SITE).mkdir()
    (staging / SITE / "mod.py").write_text("X = 1\n")
    record = {"format": ENV_FORMAT, "key": key, "requirements": [r.normalized for r in reqs], "created": time.time()}
    (staging / RECORD).write_text(json.dumps(record))
    store.commit(staging, key)
    when = time.time() - used_days_ago * DAY
    os.utime(store.path(key) / ".last-used", (when, when))
    return key


def test_the_key_ignores_order_spelling_and_duplicates_but_not_versions() -> None:
    a = environment_key(parse_requirements("numpy>=1.26\npandas==2.2\n"))
    b = environment_key(parse_requirements("Pandas == 2.2  # comment\nNumPy >= 1.26\npandas==2.2\n"))
    c = environment_key(parse_requirements("numpy>=1.26\npandas==2.1\n"))
    assert a == b
    assert a != c
    assert len(a) == 32
    assert set(a) <= set("0123456789abcdef")


def test_the_key_depends_on_the_interpreter_and_the_platform() -> None:
    reqs = parse_requirements("numpy\n")
    keys = {
        environment_key(reqs, interpreter="cpython-3.11", platform="linux-x86_64-glibc2.36"),
        environment_key(reqs, interpreter="cpython-3.12", platform="linux-x86_64-glibc2.36"),
        environment_key(reqs, interpreter="cpython-3.11", platform="linux-aarch64-glibc2.36"),
    }
    assert len(keys) == 3


def test_a_staging_folder_is_never_taken_for_an_environment(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "envs")
    key = environment_key(parse_requirements("x==1\n"))
    staging = store.staging(key)
    (staging / SITE).mkdir()
    (staging / RECORD).write_text(json.dumps({"format": ENV_FORMAT, "key": key}))
    assert store.get(key) is None  # only the rename makes it visible
    assert store.keys() == []
    store.commit(staging, key)
    record = store.get(key)
    assert record is not None
    assert record.site_dir == store.path(key) / SITE


def test_a_record_of_another_format_or_key_is_ignored(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "envs")
    key = "0" * 32
    store.path(key).mkdir(parents=True)
    (store.path(key) / RECORD).write_text(json.dumps({"format": ENV_FORMAT + 1, "key": key}))
    assert store.get(key) is None
    (store.path(key) / RECORD).write_text(json.dumps({"format": ENV_FORMAT, "key": "1" * 32}))
    assert store.get(key) is None
    (store.path(key) / RECORD).write_text("{not json")
    assert store.get(key) is None


def test_the_lock_is_exclusive_between_threads_and_can_be_tried(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "envs")
    order: list[str] = []

    def wait() -> None:
        with store.lock("k" * 32):
            order.append("waiter")

    with store.lock("k" * 32):
        with store.lock("k" * 32, blocking=False) as got:
            assert got is False
        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.1)
        order.append("holder")
    waiter.join(5)
    assert order == ["holder", "waiter"]


def test_gc_removes_what_was_not_used_within_keep_days_and_keeps_the_rest(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "envs")
    old = fake_env(store, "old==1\n", used_days_ago=40)
    recent = fake_env(store, "recent==1\n", used_days_ago=2)
    dry = store.gc(keep_days=30, dry_run=True)
    assert dry.removed == [old]
    assert store.get(old) is not None  # a dry run removes nothing
    report = store.gc(keep_days=30)
    assert report.removed == [old]
    assert report.freed_bytes > 0
    assert "used 2.0 days ago" in report.kept[recent]
    assert store.keys() == [recent]
    assert store.gc(keep_days=1).removed == [recent]


def test_gc_keeps_an_environment_whose_lock_is_held(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "envs")
    key = fake_env(store, "busy==1\n", used_days_ago=99)
    with store.lock(key):
        report = store.gc(keep_days=0)
    assert report.kept == {key: "locked by a build in progress"}
    assert store.gc(keep_days=0).removed == [key]


def test_gc_removes_leftovers_of_killed_builds_but_not_a_build_in_progress(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "envs")
    dead = environment_key(parse_requirements("dead==1\n"))
    live = environment_key(parse_requirements("live==1\n"))
    store.staging(dead)
    building = store.staging(live)
    with store.lock(live):
        report = store.gc(keep_days=30)
    assert report.staging_removed == 1
    assert [p.name.split("-")[1] for p in store.root.glob(".staging-*")] == [live]
    assert building.exists()


def test_a_use_is_recorded_by_touch(tmp_path: Path) -> None:
    store = EnvironmentStore(tmp_path / "envs")
    key = fake_env(store, "x==1\n", used_days_ago=10)
    before = store.get(key)
    store.touch(key)
    after = store.get(key)
    assert before is not None
    assert after is not None
    assert after.last_used - before.last_used == pytest.approx(10 * DAY, abs=60)

"""The event log: rows from every manager in $SYNAPSE_HOME/events.db, cursors, history, bounds, the writer."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from synapse_nb import eventlog
from synapse_nb.config import Config, ConfigError, load_config
from synapse_nb.errors import ValidationError
from synapse_nb.eventlog import Event, EventLog, record_benchmark
from synapse_nb.manager import PluginManager

from .sandbox_helpers import require_nsjail, write_plugin


def test_since_returns_rows_after_the_cursor_oldest_first(synapse_home: Path) -> None:
    log = EventLog()
    first = log.append("lifecycle", "a", version="1.0.0", stage="VALIDATED")
    second = log.append("lifecycle", "a", version="1.0.0", stage="ACTIVE", data={"isolation": "nsjail"})
    assert log.path == synapse_home / "events.db"
    rows = log.since(0)
    assert [r.id for r in rows] == [first, second]
    assert [r.stage for r in log.since(first)] == ["ACTIVE"]
    assert log.since(second) == []
    assert log.latest() == second
    assert rows[1].data == {"isolation": "nsjail"}
    assert rows[1].pid == os.getpid()


def test_since_filters_kinds_and_respects_the_limit() -> None:
    log = EventLog()
    for i in range(5):
        log.append("call", "a", data={"ms": i})
    log.append("lifecycle", "a", stage="STOPPED")
    assert [r.kind for r in log.since(0, kinds=["lifecycle"])] == ["lifecycle"]
    assert len(log.since(0, limit=3)) == 3


def test_the_file_is_private_and_in_wal_mode() -> None:
    log = EventLog()
    log.append("lifecycle", "a", stage="DISCOVERED")
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    import sqlite3

    with sqlite3.connect(log.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_history_is_newest_first_per_plugin_and_version() -> None:
    log = EventLog()
    log.append("call", "a", version="1.0.0", data={"ms": 1})
    log.append("call", "a", version="2.0.0", data={"ms": 2})
    log.append("call", "b", version="1.0.0", data={"ms": 3})
    log.append("call", "a", version="2.0.0", data={"ms": 4})
    assert [r.data["ms"] for r in log.history("a")] == [4, 2, 1]
    assert [r.data["ms"] for r in log.history("a", "2.0.0")] == [4, 2]
    assert log.history("a", kinds=["bench"]) == []


def test_pruning_keeps_the_newest_rows_and_ids_keep_growing() -> None:
    log = EventLog(max_rows=10)
    log.append_many([eventlog._Row(time.time(), "call", "a", data={"i": i}) for i in range(30)])
    assert log.count() == 10  # the first write of a process prunes
    log.append_many([eventlog._Row(time.time(), "call", "a", data={"i": i}) for i in range(30, 40)])
    assert log.count() == 20
    assert log.prune() == 10
    rows = log.since(0)
    assert [r.data["i"] for r in rows] == list(range(30, 40))
    newer = log.append("call", "a", data={"i": 40})
    assert newer > rows[-1].id  # AUTOINCREMENT: a reader's cursor never sees an old id again


def test_pruning_drops_rows_older_than_max_days() -> None:
    log = EventLog(max_days=1)
    now = time.time()
    log.append("call", "a", ts=now - 3 * 86_400, data={"i": "old"})
    log.append("call", "a", ts=now - 2 * 86_400, data={"i": "old"})
    log.append("call", "a", ts=now, data={"i": "new"})
    log.prune()  # the first write of a process prunes too: what is left is what counts
    assert [r.data["i"] for r in log.since(0)] == ["new"]


def test_pruning_everything_old_leaves_an_empty_log() -> None:
    log = EventLog(max_days=1)
    log.append("call", "a", ts=time.time() - 5 * 86_400)
    log.prune()
    assert log.count() == 0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_rows must be >= 1"):
        EventLog(max_rows=0)


def test_the_events_config_section_is_checked(synapse_home: Path) -> None:
    (synapse_home / "config").write_text("events:\n  max_rows: 10\n")
    with pytest.raises(ConfigError, match="/events/max_rows"):
        load_config()
    (synapse_home / "config").write_text("events:\n  max_rows: 1000\n  max_days: 7\n  enabled: false\n")
    settings = eventlog.EventSettings.from_config(load_config())
    assert settings == eventlog.EventSettings(enabled=False, max_rows=1000, max_days=7)


def test_two_processes_append_to_one_file(synapse_home: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from synapse_nb.eventlog import EventLog
        log = EventLog()
        for i in range(200):
            log.append("call", sys.argv[1], data={"i": i})
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("p1", "p2")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    rows = EventLog().since(0, limit=1000)
    assert len(rows) == 400
    assert {r.plugin for r in rows} == {"p1", "p2"}
    assert len({r.pid for r in rows}) == 2
    assert [r.id for r in rows] == sorted(r.id for r in rows)


def test_many_calls_in_one_flush_keep_the_newest_and_summarise_the_rest() -> None:
    log = EventLog()
    raw = [(log, "a", "1.0.0", "/p", 1000.0 + i, float(i), None, None) for i in range(300)]
    raw.append((log, "a", "1.0.0", "/p", 2000.0, 5.0, 1.0, ValidationError("bad", pointer="/x")))
    rows = eventlog._summarise([eventlog._call_row(r) for r in raw])
    kinds = [row.kind for _log, row in rows]
    assert kinds.count("call") == eventlog.CALL_ROWS_PER_FLUSH
    summary = next(row for _log, row in rows if row.kind == "calls")
    assert summary.data["count"] == 301 - eventlog.CALL_ROWS_PER_FLUSH
    assert summary.data["ms_max"] == 300 - eventlog.CALL_ROWS_PER_FLUSH
    failed = next(row for _log, row in rows if row.data.get("error"))
    assert failed.data["error"] == "invalid"
    assert failed.data["handler_ms"] == 1.0


def test_benchmarks_keep_the_newest_sweep_of_each_version() -> None:
    config = Config(data={})
    record_benchmark("a", "1.0.0", [{"batch_size": 1, "p50_ms": 2.0}], isolation="nsjail", config=config)
    record_benchmark("a", "1.0.0", [{"batch_size": 1, "p50_ms": 1.5}], isolation="nsjail", config=config)
    record_benchmark("a", "1.1.0", [{"batch_size": 1, "p50_ms": float("nan")}], config=config)
    assert eventlog.flush()
    sweeps = EventLog().benchmarks("a")
    assert [(s.version, s.data["rows"][0]["p50_ms"]) for s in sweeps] == [("1.0.0", 1.5), ("1.1.0", None)]


def test_a_disabled_log_records_nothing(synapse_home: Path) -> None:
    record_benchmark("a", "1.0.0", [{"batch_size": 1}], config=Config(data={"events": {"enabled": False}}))
    PluginManager(config=Config(data={"events": {"enabled": False}})).discover(synapse_home)
    assert eventlog.flush()
    assert not (synapse_home / "events.db").exists()


def test_an_unwritable_log_never_breaks_the_manager(synapse_home: Path, tmp_path: Path) -> None:
    (synapse_home / "events.db").mkdir()  # sqlite cannot open a directory
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.yaml").write_text("kind: AIPlugin\n")
    failures = eventlog._writer.failures
    manager = PluginManager()
    [record] = manager.discover(tmp_path / "broken")
    assert record.stage.value == "FAILED"
    assert eventlog.flush()
    assert eventlog._writer.failures > failures
    assert "events.db" in eventlog._writer.last_failure


def test_a_manager_records_its_lifecycle_and_calls(tmp_path: Path) -> None:
    require_nsjail()
    schema = {"type": "object", "required": ["n"]}
    folder = write_plugin(tmp_path / "echo", "return {'n': len(data)} if data else {}", name="echo",
                          output_schema=schema)  # fmt: skip
    manager = PluginManager()
    try:
        manager.load(folder)
        assert manager.run("echo", {"a": 1}) == {"n": 1}
        with pytest.raises(ValidationError, match="output"):
            manager.run("echo", {})
    finally:
        manager.teardown_all()
    assert eventlog.flush()
    rows = EventLog().since(0)
    lifecycle = [r for r in rows if r.kind == "lifecycle"]
    assert [r.stage for r in lifecycle] == ["DISCOVERED", "VALIDATED", "ACTIVATING", "ACTIVE", "TEARING_DOWN",
                                            "STOPPED"]  # fmt: skip
    active = lifecycle[3]
    assert active.path == str(folder.resolve())
    assert active.version == "1.0.0"
    assert active.data["isolation"].startswith("nsjail")
    assert active.data["signer"].startswith("CN=")
    assert active.source == eventlog.EventLog().source  # python, or server when jupyter_server is loaded
    ok, failed = [r for r in rows if r.kind == "call"]
    assert ok.data["ms"] > 0
    assert "error" not in ok.data
    assert ok.version == "1.0.0"
    assert failed.data["error"] == "invalid"
    assert "output" in failed.data["message"]


def test_events_outlive_the_process_that_wrote_them(tmp_path: Path) -> None:
    require_nsjail()
    folder = write_plugin(tmp_path / "echo", "return {'ok': True}", name="echo")
    script = f"import synapse_nb; synapse_nb.load({str(folder)!r}).run({{}})"  # no teardown, no flush: atexit does it
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    rows = EventLog().since(0)
    assert [r.stage for r in rows if r.kind == "lifecycle"][-2:] == ["TEARING_DOWN", "STOPPED"]
    assert [r.kind for r in rows].count("call") == 1
    assert isinstance(rows[0], Event)

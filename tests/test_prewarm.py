"""Pre-warmed jails (issue 19): a pooled jail is a fresh jail started earlier, nothing more and nothing less."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.cli import main
from synapse_nb.config import Config
from synapse_nb.errors import ResourceLimitExceeded
from synapse_nb.plugin import load
from synapse_nb.sandbox.prewarm import MAX_KEYS, prewarmed

from .sandbox_helpers import require_nsjail, write_plugin

# Everything a plugin can observe about its jail, except what differs between any two jails (pids, times).
INSPECT = r"""
import resource
mounts = []
for line in open("/proc/self/mountinfo"):
    fields = line.split()
    sep = fields.index("-")
    point, options, fstype = fields[4], fields[5], fields[sep + 1]
    mounts.append((point, options, fstype if point != "/plugin" else "(snapshot)"))
status = {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/self/status") if ":" in l)}
try:
    open("/plugin/x", "w")
    plugin_writable = True
except OSError as exc:
    plugin_writable = exc.errno
return {
    "mounts": sorted(set(mounts)),
    "env": dict(os.environ),
    "uid": [os.getuid(), os.geteuid(), os.getgid()],
    "caps": [status["CapInh"], status["CapPrm"], status["CapEff"], status["CapBnd"], status["CapAmb"]],
    "seccomp": status["Seccomp"],
    "no_new_privs": status["NoNewPrivs"],
    "cwd": os.getcwd(),
    "plugin": sorted(os.listdir("/plugin")),
    "plugin_writable": plugin_writable,
    "sys_path": [p for p in sys.path if not p.startswith("/plugin")],
    "rlimits": [resource.getrlimit(getattr(resource, n)) for n in ("RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CPU")],
    "hostname": os.uname().nodename,
    "isolation": self.context.isolation,
}
"""


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    require_nsjail()
    prewarmed.close()
    yield
    prewarmed.close()


def _pooled_load(folder: Path, **kwargs: Any) -> Any:
    """Load ``folder`` once (a fresh jail, which asks the pool to keep one ready), wait for the pool, load again."""
    first = load(folder, **kwargs)
    spec = first.spec
    first.teardown()
    assert prewarmed.wait_ready(spec), "the pool did not fill"
    plugin = load(folder, **kwargs)
    assert plugin.last_start is not None
    assert plugin.last_start.prewarmed, "the second activation should use the pre-warmed jail"
    return plugin


def test_a_pooled_jail_contains_exactly_what_a_fresh_one_does(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "inspect", INSPECT, name="inspector")
    fresh = load(folder, config=Config(data={"sandbox": {"prewarm": 0}}))
    assert fresh.last_start is not None
    assert not fresh.last_start.prewarmed
    seen_fresh = fresh.run({})
    fresh.teardown()
    pooled = _pooled_load(folder)
    seen_pooled = pooled.run({})
    pooled.teardown()
    assert seen_pooled == seen_fresh
    assert seen_pooled["plugin_writable"] in (13, 30)  # EACCES/EROFS: read-only, as in a fresh jail
    assert seen_pooled["uid"] == [65534, 65534, 65534]
    assert seen_pooled["cwd"] == "/plugin"
    assert "handler.py" in seen_pooled["plugin"]


def test_a_pooled_jail_is_never_given_a_second_plugin(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "pid", "return {'ok': True}", name="pids")
    plugin = _pooled_load(folder)
    worker = plugin.worker
    assert worker is not None
    first_pid = worker.guest_pid()
    plugin.teardown()
    assert not worker.alive  # it died with its plugin
    assert prewarmed.wait_ready(plugin.spec)
    again = load(folder)
    try:
        assert again.last_start is not None
        assert again.last_start.prewarmed
        assert again.worker is not None
        assert again.worker is not worker
        assert again.worker.guest_pid() != first_pid  # another jail
        assert again.run({}) == {"ok": True}
    finally:
        again.teardown()


def test_a_pooled_jail_is_only_taken_for_the_policy_it_was_started_with(tmp_path: Path) -> None:
    small = write_plugin(tmp_path / "small", "return {}", name="small", memory_mb=128)
    big = write_plugin(tmp_path / "big", "return {}", name="big", memory_mb=256)
    _pooled_load(small).teardown()
    other = load(big)
    try:
        assert other.last_start is not None
        assert not other.last_start.prewarmed
    finally:
        other.teardown()


def test_limits_hold_in_a_pooled_jail(tmp_path: Path) -> None:
    hog = write_plugin(tmp_path / "hog", "data = bytearray(400 << 20)\nreturn {'n': len(data)}", name="hog",
                       memory_mb=128)  # fmt: skip
    plugin = _pooled_load(hog)
    try:
        with pytest.raises(ResourceLimitExceeded, match="memory_mb=128"):
            plugin.run({})
    finally:
        plugin.teardown()


def test_the_pool_is_bounded_and_can_be_turned_off(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "unpooled", "return {}", name="unpooled")
    off = Config(data={"sandbox": {"prewarm": 0}})
    plugin = load(folder, config=off)
    plugin.teardown()
    assert prewarmed.ready(plugin.spec) == 0
    assert prewarmed.started == 0
    two = Config(data={"sandbox": {"prewarm": 2}})
    plugin = load(folder, config=two)
    spec = plugin.spec
    plugin.teardown()
    assert prewarmed.wait_ready(spec)
    import time

    deadline = time.monotonic() + 10
    while prewarmed.ready(spec) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.6)  # a third would be started by now if the bound did not hold
    assert prewarmed.ready(spec) == 2
    for i in range(MAX_KEYS + 1):  # more configurations than the pool keeps: the oldest is dropped
        extra = write_plugin(tmp_path / f"k{i}", "return {}", name=f"k{i}", memory_mb=64 + 16 * i)
        load(extra).teardown()
    assert prewarmed.ready(spec) == 0


def test_one_shot_plugin_run_starts_no_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_plugin(tmp_path / "once", "return {'ok': True}", name="once")
    assert main(["plugin", "run", str(folder), "--input", "{}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == {"ok": True}
    assert prewarmed.started == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("open('/etc/shadow').read()", "PermissionError|FileNotFoundError"),
        ("open('/plugin/handler.py', 'a').write('x')", "Errno 13|Errno 30"),
        ("open('/opt/synapse/lib/synapse_nb/x.py', 'w').write('x')", "Errno 13|Errno 30"),
        ("import socket; socket.create_connection(('1.1.1.1', 80), timeout=1)", "OSError|Network is unreachable"),
    ],
    ids=["host-secrets", "write-plugin", "write-runtime", "network"],
)
def test_hostile_plugins_are_contained_in_a_pooled_jail(tmp_path: Path, body: str, expected: str) -> None:
    folder = write_plugin(tmp_path / "h", body + "\nreturn {}", name="hostile-pooled")
    plugin = _pooled_load(folder)
    try:
        with pytest.raises(Exception, match=expected):
            plugin.run({})
        assert os.path.exists("/etc/shadow")  # nothing on the host was touched
    finally:
        plugin.teardown()

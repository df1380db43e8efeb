"""Sandbox benchmarks: cold start, warm call latency and worker memory, each against a same-run baseline.

- cold start: ``load(path).run(payload)`` for a no-op plugin, against the floor of the *same* jail (same
  nsjail configuration, same cgroup placement) running ``python -c "import json"`` until it signals;
- warm call p50/p99: a no-op call with host-side input and output validation, against a
  ``concurrent.futures.ProcessPoolExecutor`` round trip of the same function and a raw pipe echo to a Python
  child (the practical floor); and, for information, the jail round trip alone (the worker's request without the
  host-side pipeline) against the same echo;
- memory: RSS of a warm no-op worker's interpreter;
- where nsjail's start-up goes: the floor with network namespace, loopback and cgroups switched off in turn
  (informational rows, no target).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from synapse_nb.config import Config
from synapse_nb.plugin import load
from synapse_nb.sandbox.jail import JailLayout, build_jail, guest_paths
from synapse_nb.sandbox.launch import Launch
from synapse_nb.sandbox.prewarm import prewarmed
from synapse_nb.signing import sign_folder

from .common import Rounds, Row, cold_start, interleaved, percentile, scratch_home

NOOP_HANDLER = """\
from synapse_nb.sdk import BaseHandler


class Noop(BaseHandler):
    def execute(self, validated_data):
        return {"ok": True}
"""
MANIFEST = """\
apiVersion: synapse.io/v1
kind: AIPlugin
metadata:
  name: noop
  version: 1.0.0
spec:
  runtime: python3
  execution:
    timeout: 5s
"""
INPUT_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
OUTPUT_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
PAYLOAD = {"text": "hello world"}


def make_noop(root: Path) -> Path:
    folder = root / "noop"
    (folder / "schemas").mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_noop.py").write_text("def test_noop(plugin):\n    assert plugin.run({'text': 'x'})\n")
    (folder / "manifest.yaml").write_text(MANIFEST)
    (folder / "handler.py").write_text(NOOP_HANDLER)
    (folder / "requirements.txt").write_text("")
    (folder / "schemas" / "input_schema.json").write_text(json.dumps(INPUT_SCHEMA))
    (folder / "schemas" / "output_schema.json").write_text(json.dumps(OUTPUT_SCHEMA))
    sign_folder(folder)  # activation verifies the signature: part of every cold start
    return folder


def noop(payload: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


# -- cold start ------------------------------------------------------------------------------------------------
def floor_start(
    plugin: Any,
    code: str = "import json",
    *,
    layout: JailLayout | None = None,
    prepared: bool = True,
    newnet: bool = True,
    lo: bool = True,
) -> float:
    """ms until ``code`` has run inside the plugin's own jail (same configuration and mounts, or ``layout``'s),
    then written one byte on a pipe. The environment's site directories are added first, as the guest does.

    Started exactly as workers are: from a launcher already placed in fresh cgroups (``prepared``, outside the
    timed region, as a worker's launcher is prepared in the background), or placed on the spot.
    """
    host = plugin.host
    layout = layout or plugin.spec.layout
    t_unprepared = time.perf_counter()
    launch = Launch(host, use_cgroups=host.cgroups.available)
    if launch.cgroup is not None:
        launch.cgroup.limit(memory_bytes=plugin.policy.memory_mb << 20, pids_max=plugin.policy.pids_max)
    request_fd, reply_fd, log_fd = launch.child_fds
    config = build_jail(plugin.policy, layout, host, request_fd=request_fd, reply_fd=reply_fd, log_fd=log_fd)
    sites = "".join(f"site.addsitedir({d!r}); " for d in guest_paths(layout)[0])  # where the jail mounts them
    program = f"import os; {'import site; ' + sites if sites else ''}{code}; os.write({reply_fd}, b'x')"
    fields = []
    for key, value in config.fields:
        if key == "exec_bin":
            value = [("path", str(host.python)), *[("arg", a) for a in ("-I", "-S", "-B", "-c", program)]]
        if key == "clone_newnet":
            value = newnet
        fields.append((key, value))
    if not lo:
        fields.append(("iface_no_lo", True))
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as fh:
        fh.write(dataclasses.replace(config, fields=fields).to_text())
    if prepared:
        time.sleep(0.05)  # let the launcher finish joining its cgroups, as a background-prepared one has
    t0 = time.perf_counter() if prepared else t_unprepared
    launch.go(Path(fh.name))
    got = os.read(launch.rep_r, 1)
    elapsed = (time.perf_counter() - t0) * 1000
    if launch.proc is not None:
        launch.proc.wait()
    os.unlink(fh.name)
    launch.discard()
    if got != b"x":
        raise SystemExit(f"the floor program did not run in the jail: {code!r}")
    return elapsed


# -- warm calls ------------------------------------------------------------------------------------------------
ECHO_CHILD = textwrap.dedent(
    """
    import os, sys
    r, w = int(sys.argv[1]), int(sys.argv[2])
    while True:
        data = os.read(r, 65536)
        if not data:
            break
        os.write(w, data)
    """
)


class RawEcho:
    """A Python child echoing what it reads on a pipe: the practical floor of a round trip to another process."""

    def __init__(self) -> None:
        r1, self.w = os.pipe()
        self.r, w2 = os.pipe()
        self.child = subprocess.Popen([sys.executable, "-I", "-S", "-c", ECHO_CHILD, str(r1), str(w2)],
                                      pass_fds=(r1, w2))  # fmt: skip
        os.close(r1)
        os.close(w2)
        self.msg = json.dumps(PAYLOAD).encode()

    def __call__(self) -> None:
        os.write(self.w, self.msg)
        os.read(self.r, 65536)

    def close(self) -> None:
        os.close(self.w)
        self.child.wait()
        os.close(self.r)


def warm_rows(folder: Path, quick: bool) -> list[Row]:
    """Warm calls, the raw pipe echo and a ProcessPoolExecutor round trip, sampled interleaved in rounds; and
    the freezer's cost: the same calls on a worker that never freezes (``idle_freeze_ms`` very large)."""
    from synapse_nb.config import Config

    plugin = load(folder)
    unfrozen = load(folder, config=Config(data={"sandbox": {"idle_freeze_ms": 3_600_000}}))
    echo = RawEcho()
    rss = plugin.worker.rss_bytes() if plugin.worker else 0
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
            worker = plugin.worker
            assert worker is not None
            fns = {
                "call": lambda: plugin.run(PAYLOAD),
                "echo": echo,
                "trip": lambda: worker.call(json.dumps(PAYLOAD).encode()),
                "pool": lambda: pool.submit(noop, PAYLOAD).result(),
                "unfrozen": lambda: unfrozen.run(PAYLOAD),
            }
            rounds, per_round = (5, 400) if quick else (15, 1500)
            p50 = interleaved(fns, rounds=rounds, per_round=per_round, statistic=lambda xs: percentile(xs, 50))
            p99 = interleaved(fns, rounds=rounds, per_round=per_round, statistic=lambda xs: percentile(xs, 99))
        idle = idle_call_rounds(plugin, unfrozen, rounds=3 if quick else 7)
    finally:
        echo.close()
        plugin.teardown()
        unfrozen.teardown()
    return [
        p50.row("sandbox", "warm call p50", "call", "pool", "ProcessPoolExecutor p50", 0.8),
        p99.row("sandbox", "warm call p99", "call", "pool", "ProcessPoolExecutor p99", 0.8),
        p50.row("sandbox", "warm call p50", "call", "echo", "raw pipe echo p50", 1.5),
        p99.row("sandbox", "warm call p99", "call", "echo", "raw pipe echo p99", 2.0),
        p50.row("sandbox", "jail round trip alone p50 (info)", "trip", "echo", "raw pipe echo p50", None),
        p50.row("sandbox", "warm call p50 with the idle freezer", "call", "unfrozen", "same, never frozen", 1.1),
        idle.row("sandbox", "first call after 100 ms idle (thaw)", "frozen", "unfrozen", "same, never frozen", None),
        Row("sandbox", "warm no-op worker RSS", rss / (1 << 20), 30.0, "target 30 MiB", 1.0, unit="MiB"),
    ]


def idle_call_rounds(plugin: Any, unfrozen: Any, *, rounds: int) -> Rounds:
    """The first call after an idle pause long enough to freeze the worker (it is thawed first), against the same
    call on a worker that is never frozen; the pause itself is not timed."""
    values: dict[str, list[float]] = {"frozen": [], "unfrozen": []}
    for _ in range(rounds):
        taken: dict[str, list[float]] = {"frozen": [], "unfrozen": []}
        for _ in range(20):
            for name, target in (("frozen", plugin), ("unfrozen", unfrozen)):
                time.sleep(0.1)
                t0 = time.perf_counter()
                target.run(PAYLOAD)
                taken[name].append((time.perf_counter() - t0) * 1000)
        for name in values:
            values[name].append(statistics.median(taken[name]))
    return Rounds(values)


def run(quick: bool = False) -> list[Row]:
    with scratch_home("bench_sandbox", jail=True) as home:
        folder = make_noop(home)
        plugin = load(folder)  # warms imports and the bytecode of the guest runtime
        plugin.run(PAYLOAD)
        plugin.teardown()
        rounds = 7 if quick else 25
        fresh = Config(data={"sandbox": {"prewarm": 0}})
        warm = load(folder)  # a pre-warmed jail is kept ready for this configuration from now on
        spec = warm.spec
        warm.teardown()
        values: dict[str, list[float]] = {
            "ours": [],
            "pooled": [],
            "floor": [],
            "cgroup placement on the critical path": [],
            "no network namespace": [],
            "no loopback": [],
        }
        for _ in range(rounds):  # interleaved, so that machine noise hits both alike
            values["floor"].append(floor_start(plugin))
            values["ours"].append(cold_start(folder, PAYLOAD, config=fresh))
            if not prewarmed.wait_ready(spec):
                raise SystemExit("the pre-warm pool did not fill")
            time.sleep(0.05)  # as when a notebook's next activation comes: the pool is ready and idle
            values["pooled"].append(cold_start(folder, PAYLOAD))
            values["cgroup placement on the critical path"].append(floor_start(plugin, prepared=False))
            values["no network namespace"].append(floor_start(plugin, newnet=False))
            values["no loopback"].append(floor_start(plugin, lo=False))
        cold = Rounds(values)
        rows = [
            cold.row(
                "sandbox",
                "cold start (load + first result), fresh jail",
                "ours",
                "floor",
                "same jail, python -c 'import json'",
                1.5,
            ),
            cold.row(
                "sandbox",
                "cold start, a pre-warmed jail ready",
                "pooled",
                "floor",
                "same jail, python -c 'import json'",
                0.6,
            ),
            Row(
                "sandbox",
                "cold start, a pre-warmed jail ready (absolute)",
                cold.median("pooled"),
                10.0,
                "target 10 ms",
                1.0,
            ),
            *warm_rows(folder, quick),
        ]
        for name in list(values)[3:]:
            rows.append(cold.row("nsjail start-up", f"floor with {name}", name, "floor", "floor (full jail)", None))
        return rows

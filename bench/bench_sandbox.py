"""Sandbox benchmarks: cold start, warm call latency and worker memory, each against a same-run baseline.

- cold start: ``load(path).run(payload)`` for a no-op plugin, against the floor of the *same* jail (same
  nsjail configuration, same cgroup placement) running ``python -c "import json"`` until it signals;
- warm call p50/p99: a no-op call with host-side input and output validation, against a
  ``concurrent.futures.ProcessPoolExecutor`` round trip of the same function and a raw pipe echo to a Python
  child (the practical floor);
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

from synapse_nb.plugin import load
from synapse_nb.sandbox.jail import JailLayout, build_jail, guest_paths
from synapse_nb.sandbox.launch import Launch
from synapse_nb.signing import sign_folder

from .common import Row, cold_start, percentile, scratch_home

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


def raw_echo(n: int) -> list[float]:
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    child = subprocess.Popen([sys.executable, "-I", "-S", "-c", ECHO_CHILD, str(r1), str(w2)], pass_fds=(r1, w2))
    os.close(r1)
    os.close(w2)
    msg = json.dumps(PAYLOAD).encode()
    samples = []
    for i in range(n + 200):
        t0 = time.perf_counter()
        os.write(w1, msg)
        os.read(r2, 65536)
        if i >= 200:
            samples.append((time.perf_counter() - t0) * 1000)
    os.close(w1)
    child.wait()
    os.close(r2)
    return sorted(samples)


def pool_round_trip(n: int) -> list[float]:
    samples = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        for i in range(n + 200):
            t0 = time.perf_counter()
            pool.submit(noop, PAYLOAD).result()
            if i >= 200:
                samples.append((time.perf_counter() - t0) * 1000)
    return sorted(samples)


def warm_calls(folder: Path, n: int) -> tuple[list[float], int]:
    plugin = load(folder)
    samples = []
    for i in range(n + 200):
        t0 = time.perf_counter()
        plugin.run(PAYLOAD)
        if i >= 200:
            samples.append((time.perf_counter() - t0) * 1000)
    rss = plugin.worker.rss_bytes() if plugin.worker else 0
    plugin.teardown()
    return sorted(samples), rss


def run(quick: bool = False) -> list[Row]:
    with scratch_home("bench_sandbox", jail=True) as home:
        folder = make_noop(home)
        plugin = load(folder)  # warms imports and the bytecode of the guest runtime
        plugin.run(PAYLOAD)
        plugin.teardown()
        rounds = 7 if quick else 25
        ours, floor = [], []
        variants: dict[str, list[float]] = {
            "cgroup placement on the critical path": [],
            "no network namespace": [],
            "no loopback": [],
        }
        for _ in range(rounds):  # interleaved, so that machine noise hits both alike
            floor.append(floor_start(plugin))
            ours.append(cold_start(folder, PAYLOAD))
            variants["cgroup placement on the critical path"].append(floor_start(plugin, prepared=False))
            variants["no network namespace"].append(floor_start(plugin, newnet=False))
            variants["no loopback"].append(floor_start(plugin, lo=False))
        n = 2000 if quick else 20000
        pool = pool_round_trip(n)
        echo = raw_echo(n)
        calls, rss = warm_calls(folder, n)
        floor_ms = statistics.median(floor)
        rows = [
            Row(
                "sandbox",
                "cold start (load + first result)",
                statistics.median(ours),
                floor_ms,
                "same jail, python -c 'import json'",
                1.5,
            ),
            Row(
                "sandbox", "warm call p50", percentile(calls, 50), percentile(pool, 50), "ProcessPoolExecutor p50", 0.8
            ),
            Row(
                "sandbox", "warm call p99", percentile(calls, 99), percentile(pool, 99), "ProcessPoolExecutor p99", 0.8
            ),
            Row("sandbox", "warm call p50", percentile(calls, 50), percentile(echo, 50), "raw pipe echo p50", 2.5),
            Row("sandbox", "warm call p99", percentile(calls, 99), percentile(echo, 99), "raw pipe echo p99", 2.5),
            Row("sandbox", "warm no-op worker RSS", rss / (1 << 20), 30.0, "target 30 MiB", 1.0, unit="MiB"),
        ]
        for name, values in variants.items():
            rows.append(Row("nsjail start-up", f"floor with {name}", statistics.median(values), floor_ms,
                            "floor (full jail)", None))  # fmt: skip
        return rows

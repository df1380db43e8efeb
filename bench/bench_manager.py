"""Manager benchmarks: discovering 1,000 signed plugins, and async throughput, each against a same-run floor.

- discovery + validation + signature verification of 1,000 small signed plugins, against the floor of reading
  every manifest with ``yaml.safe_load`` and hashing every file of every plugin;
- 10,000 no-op async jobs, against the same calls made one after another on the same warm worker.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from pathlib import Path

import yaml

from synapse_nb.manager import PluginManager, Stage
from synapse_nb.plugin import load
from synapse_nb.signing import sign_folder

from .bench_sandbox import PAYLOAD, make_noop
from .common import Row, scratch_home

HANDLER = '''from synapse_nb.sdk import BaseHandler


class Handler{i}(BaseHandler):
    """Plugin number {i}."""

    def execute(self, validated_data):
        return {{"n": {i}, "text": validated_data["text"]}}
'''
MANIFEST = """apiVersion: synapse.io/v1
kind: AIPlugin
metadata:
  name: plugin-{i:04d}
  version: 1.{i}.0
  description: Benchmark plugin {i}
  tags: [bench, n{i}]
spec:
  runtime: python3
  execution:
    trigger: sync
    timeout: 2s
  interfaces:
    - type: text
      protocol: local
      endpoints:
        primary: /v1/p{i}
"""


def make_plugins(root: Path, count: int) -> list[Path]:
    folders = []
    for i in range(count):
        folder = root / f"plugin-{i:04d}"
        (folder / "schemas").mkdir(parents=True)
        (folder / "tests").mkdir()
        (folder / "manifest.yaml").write_text(MANIFEST.format(i=i))
        (folder / "handler.py").write_text(HANDLER.format(i=i))
        (folder / "requirements.txt").write_text("")
        (folder / "tests" / "test_it.py").write_text(f"def test_{i}(plugin):\n    assert plugin.run({{'text': 'x'}})\n")
        schema_in = {"type": "object", "description": f"input of {i}", "properties": {"text": {"type": "string"}}}
        schema_out = {"type": "object", "description": f"output of {i}", "properties": {"n": {"type": "integer"}}}
        (folder / "schemas" / "input_schema.json").write_text(json.dumps(schema_in))
        (folder / "schemas" / "output_schema.json").write_text(json.dumps(schema_out))
        sign_folder(folder)
        folders.append(folder)
    return folders


def floor(folders: list[Path]) -> float:
    t0 = time.perf_counter()
    for folder in folders:
        yaml.safe_load((folder / "manifest.yaml").read_bytes())
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                hashlib.sha256(path.read_bytes()).hexdigest()
    return (time.perf_counter() - t0) * 1000


def discovery(root: Path, count: int) -> float:
    t0 = time.perf_counter()
    manager = PluginManager()
    records = manager.discover(root)
    elapsed = (time.perf_counter() - t0) * 1000
    bad = [r for r in records if r.stage is not Stage.VALIDATED]
    if len(records) != count or bad:
        raise SystemExit(f"discovery benchmark: {len(bad)} plugins did not validate: {bad[:1]}")
    return elapsed


def throughput(folder: Path, n: int) -> tuple[float, float]:
    plugin = load(folder)
    for _ in range(500):
        plugin.run(PAYLOAD)
    t0 = time.perf_counter()
    for _ in range(n):
        plugin.run(PAYLOAD)
    sequential = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    jobs = [plugin.submit(PAYLOAD) for _ in range(n)]
    for job in jobs:
        job.result()
    pipelined = n / (time.perf_counter() - t0)
    plugin.teardown()
    return pipelined, sequential


def run(quick: bool = False) -> list[Row]:
    with scratch_home("bench_manager") as home:
        count = 200 if quick else 1000
        folders = make_plugins(home / "plugins", count)
        floors, ours = [], []
        for _ in range(3 if quick else 5):  # interleaved, warm page cache for both
            floors.append(floor(folders))
            ours.append(discovery(home / "plugins", count))
        n = 2000 if quick else 10_000
        rates = [throughput(make_noop(home / f"noop{i}"), n) for i in range(3)]
        pipelined = statistics.median(r[0] for r in rates)
        sequential = statistics.median(r[1] for r in rates)
        return [
            Row("manager", f"discover+validate+verify {count} plugins", statistics.median(ours),
                statistics.median(floors), "yaml.safe_load + sha256 of every file", 2.0),
            Row("manager", f"async throughput, {n} no-op jobs", pipelined, sequential, "sequential calls", 0.8,
                unit="calls/s", higher_is_better=True),
        ]  # fmt: skip

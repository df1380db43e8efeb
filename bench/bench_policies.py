"""Execution-policy benchmarks, each against a baseline measured in the same run, interleaved round by round:

- dynamic batching: 64 concurrent callers of a vectorised model wrapper (numpy) with ``spec.batch`` (64 items,
  5 ms) against the same plugin with ``max_batch_size: 1`` (target >= 5x the throughput);
- the isolation cost amortised: ``run_batch`` of 64 items in the sandbox against the same handler run in-process
  (debug mode) with the same batches (target >= 0.8x the throughput);
- a cache hit's p50 against a warm call's p50 (target <= 0.2x);
- a call refused by an open circuit against a warm call (target <= 0.1x);
- a lone call through the dynamic batcher (``max_delay_ms: 0``) against the same call without batching
  (target <= 1.05x the p50).

Policy variants of one plugin are policy chains over the same warm worker (the same file set), so that the rows
compare the policies and nothing else.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from synapse_nb.errors import CircuitOpen, PluginCrashed
from synapse_nb.inprocess import load_in_process
from synapse_nb.plugin import Plugin, load
from synapse_nb.policies import PolicyChain
from synapse_nb.signing import sign_folder

from .common import Rounds, Row, interleaved, percentile, scratch_home

DIM = 32
HIDDEN = 2048
CALLERS = 64

MODEL = f'''import numpy as np

from synapse_nb.sdk import BaseHandler


class Model(BaseHandler):
    """A vectorised two-layer model: one call of a batch costs little more than one call of one item."""

    def setup(self, context):
        rng = np.random.default_rng(0)
        self.w1 = rng.standard_normal(({DIM}, {HIDDEN})).astype(np.float32)
        self.w2 = rng.standard_normal(({HIDDEN}, {HIDDEN})).astype(np.float32) / {HIDDEN}
        self.w3 = rng.standard_normal(({HIDDEN}, 1)).astype(np.float32)

    def execute(self, data):
        return self.execute_batch([data])[0]

    def execute_batch(self, items):
        x = np.asarray([item["x"] for item in items], dtype=np.float32)
        y = np.tanh(np.tanh(x @ self.w1) @ self.w2) @ self.w3
        return [{{"score": round(float(v), 6)}} for v in y[:, 0]]
'''

NOOP = """from synapse_nb.sdk import BaseHandler


class Noop(BaseHandler):
    def execute(self, data):
        return {"score": float(len(data["text"]))}
"""

MANIFEST = """apiVersion: synapse.io/v1
kind: AIPlugin
metadata:
  name: {name}
  version: 1.0.0
spec:
  runtime: python3
  execution:
    timeout: 30s
  permissions:
    system_resources:
      memory_mb: 1024
  interfaces:
    - type: tabular
      protocol: local
      endpoints:
        primary: /v1/score
"""

INPUT = {
    "type": "object",
    "properties": {"x": {"type": "array", "items": {"type": "number"}, "minItems": DIM, "maxItems": DIM}},
    "required": ["x"],
}
NOOP_INPUT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
PAYLOAD = {"text": "hello world"}  # the latency rows' payload, as in bench_sandbox
OUTPUT = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}


def make_plugin(root: Path, name: str, handler: str, requirements: str = "", schema: Any = INPUT) -> Path:
    folder = root / name
    (folder / "schemas").mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_it.py").write_text("def test_it(plugin):\n    pass\n")
    (folder / "manifest.yaml").write_text(MANIFEST.format(name=name))
    (folder / "handler.py").write_text(handler)
    (folder / "requirements.txt").write_text(requirements)
    (folder / "schemas" / "input_schema.json").write_text(json.dumps(schema))
    (folder / "schemas" / "output_schema.json").write_text(json.dumps(OUTPUT))
    sign_folder(folder)
    return folder


def variant(plugin: Plugin, tag: str, **settings: Any) -> Plugin:
    """Another handle of ``plugin``'s folder (the same warm worker) whose policies use ``settings``."""
    other = load(plugin.source)
    chain = plugin.policies
    other.pipeline.policies = PolicyChain(
        plugin.name, replace(chain.settings, **settings), other.runner, identity=f"bench-{tag}",
        namespace=f"bench-{tag}", timeout_ms=chain.timeout_ms,
    )  # fmt: skip
    return other


def item(i: int) -> dict[str, Any]:
    return {"x": [((i * 7 + j) % 13) / 13.0 for j in range(DIM)]}


def burst(pool: concurrent.futures.ThreadPoolExecutor, plugin: Plugin, per_caller: int) -> float:
    """Items per second when CALLERS threads each make ``per_caller`` calls."""

    def caller(c: int) -> None:
        for k in range(per_caller):
            plugin.run(item(c * per_caller + k), cache=False)

    t0 = time.perf_counter()
    list(pool.map(caller, range(CALLERS)))
    return CALLERS * per_caller / (time.perf_counter() - t0)


def batching_rows(model: Plugin, quick: bool) -> list[Row]:
    batched = variant(model, "batched", max_batch_size=64, max_delay_ms=5)
    single = variant(model, "single", max_batch_size=1, max_delay_ms=0)
    rounds, per_caller = (3, 2) if quick else (9, 4)
    values: dict[str, list[float]] = {"batched": [], "single": []}
    with concurrent.futures.ThreadPoolExecutor(CALLERS) as pool:
        burst(pool, batched, 1)
        burst(pool, single, 1)
        for _ in range(rounds):
            values["batched"].append(burst(pool, batched, per_caller))
            values["single"].append(burst(pool, single, per_caller))
    rows = [
        Rounds(values).row("policies", f"{CALLERS} concurrent callers, spec.batch 64/5ms: items/s", "batched",
                           "single", "max_batch_size 1", 5.0, unit="items/s", higher_is_better=True),
    ]  # fmt: skip
    in_process = load_in_process(model.source)
    items = [item(i) for i in range(64)]
    timed = interleaved(
        {"sandbox": lambda: model.run_batch(items, cache=False), "in-process": lambda: in_process.run_batch(items)},
        rounds=3 if quick else 5, per_round=5 if quick else 15, statistic=lambda s: percentile(s, 50), warmup=3,
    )  # fmt: skip
    throughput = Rounds({name: [64_000 / ms for ms in v] for name, v in timed.values.items()})
    rows.append(throughput.row("policies", "run_batch of 64 in the sandbox: items/s", "sandbox", "in-process",
                               "same handler in-process", 0.8, unit="items/s", higher_is_better=True))  # fmt: skip
    in_process.teardown()
    for handle in (batched, single):
        handle.teardown()
    return rows


def latency_rows(noop: Plugin, quick: bool) -> list[Row]:
    cached = variant(noop, "cached", cache_ttl_ms=3_600_000)
    batcher = variant(noop, "batcher", max_batch_size=64, max_delay_ms=0)
    plain = variant(noop, "plain")
    tripped = variant(noop, "tripped")
    for _ in range(tripped.policies.settings.circuit.failures):
        tripped.policies.circuit.record(PluginCrashed("bench: a crash", plugin=noop.name))

    def refused() -> None:
        try:
            tripped.run(PAYLOAD)
        except CircuitOpen:
            return
        raise RuntimeError("the circuit should be open")

    n_rounds, per_round = (3, 100) if quick else (7, 400)
    measured = {
        "cache hit p50": ("hit", lambda: cached.run(PAYLOAD), 0.2),
        "circuit-open refusal p50": ("refused", refused, 0.1),
        "lone call through the batcher (max_delay 0) p50": ("batcher", lambda: batcher.run(PAYLOAD), 1.05),
    }
    rows = []
    for metric, (name, fn, target) in measured.items():  # each against the warm call, in its own loop
        timed = interleaved(
            {"warm": lambda: plain.run(PAYLOAD), name: fn},
            rounds=n_rounds,
            per_round=per_round,
            statistic=lambda s: percentile(s, 50),
        )
        baseline = "warm call without batching" if name == "batcher" else "warm call p50"
        rows.append(timed.row("policies", metric, name, "warm", baseline, target))
    for handle in (cached, batcher, plain, tripped):
        handle.teardown()
    return rows


def run(quick: bool = False) -> list[Row]:
    with scratch_home("bench_policies", jail=True) as root:
        model = load(make_plugin(root, "vector-model", MODEL, "numpy\n"))
        noop = load(make_plugin(root, "noop-model", NOOP, schema=NOOP_INPUT))
        try:
            return batching_rows(model, quick) + latency_rows(noop, quick)
        finally:
            model.teardown()
            noop.teardown()

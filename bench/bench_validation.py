"""Host-side validation stays fast while bounded: RE2 patterns, hashed uniqueItems, the deadline's margin.

Rows:
* a 1 MiB output with patterns and uniqueItems, validated the way the host does it (compiled fast path, else
  the bounded jsonschema classes), against stock ``jsonschema.Draft7Validator`` with Python's ``re``, on the same
  non-pathological input: target <= 1.5x. Also through the bounded jsonschema classes alone (a schema the fast
  path does not compile), so that both paths are covered.
* ``"^(a+)+$"`` against a 41-character string: absolute time (target: under 1 ms), against a benign pattern.
* the deadline's margin: how far past its deadline a validation that cannot finish in time runs (< 50 ms).
* jsonsafe.loads of the 1 MiB output against json.loads (informational).

Samples of baseline and measured are interleaved in one loop; medians of rounds, spread = (max-min)/median.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Row

NAME = "bench_validation"

ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z]{2}-[0-9]{6}$"},
        "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$"},
        "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "uniqueItems": True},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["id", "email", "tags"],
}
# uniqueItems over strings: stock jsonschema sorts those (over objects it compares every pair, which is the
# pathological case this project removes, not a fair baseline).
SCHEMA = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": ITEM},
        "ids": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]{2}-[0-9]{6}$"}, "uniqueItems": True},
    },
}
# The same constraints in a form the fast path does not compile (allOf): the bounded jsonschema classes decide.
SCHEMA_JSONSCHEMA = {"allOf": [SCHEMA]}


def _output() -> dict[str, Any]:
    rng = random.Random(11)
    items, size = [], 0
    while size < 1 << 20:
        n = len(items)
        item = {
            "id": f"ab-{n:06d}",
            "email": f"user{n}@example.org",
            "tags": sorted({"".join(rng.choices("abcdefgh", k=5)) for _ in range(4)}),
            "score": rng.random(),
        }
        items.append(item)
        size += len(json.dumps(item)) + 1
    return {"items": items, "ids": [item["id"] for item in items]}


def _interleaved(fns: list[Callable[[], Any]], rounds: int) -> list[list[float]]:
    """Per function, the median (ms) of each round; the functions take turns inside every round."""
    per: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        times: list[list[float]] = [[] for _ in fns]
        for _ in range(3):
            for i, fn in enumerate(fns):
                started = time.perf_counter()
                fn()
                times[i].append((time.perf_counter() - started) * 1000)
        for i, t in enumerate(times):
            per[i].append(statistics.median(t))
    return per


def _spread(values: list[float]) -> str:
    mid = statistics.median(values)
    return f"{(max(values) - min(values)) / mid * 100:.0f}%" if mid else "-"


def _schemas(folder: Path, output_schema: Any) -> Any:
    from synapse_nb.schemas import load_schemas

    (folder / "schemas").mkdir(parents=True, exist_ok=True)
    (folder / "schemas" / "input_schema.json").write_text("true")
    (folder / "schemas" / "output_schema.json").write_text(json.dumps(output_schema))
    return load_schemas(folder)


def run(quick: bool = False) -> list[Row]:
    import jsonschema

    from synapse_nb.errors import PluginTimeout
    from synapse_nb.jsonsafe import loads
    from synapse_nb.linregex import compile_pattern
    from synapse_nb.payloads import validate_output

    rounds = 3 if quick else 7
    output = _output()
    stock = jsonschema.Draft7Validator(SCHEMA)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="synapse-bench-validation-") as tmp:
        fast = _schemas(Path(tmp) / "fast", SCHEMA)
        slow = _schemas(Path(tmp) / "slow", SCHEMA_JSONSCHEMA)
        deadline = time.monotonic() + 3600  # a deadline far away: the ticking is part of what is measured
        if not (stock.is_valid(output) and validate_output(fast, output) and validate_output(slow, output)):
            raise RuntimeError("the benchmark's output must be valid for every validator")
        base, ours, bounded = _interleaved(
            [
                lambda: stock.is_valid(output),
                lambda: validate_output(fast, output, deadline=deadline),
                lambda: validate_output(slow, output, deadline=deadline),
            ],
            rounds,
        )
        b, o, s = statistics.median(base), statistics.median(ours), statistics.median(bounded)
        spread = f"spread {_spread(base)}/{_spread(ours)}/{_spread(bounded)}"
        rows.append(
            Row(NAME, f"validate 1 MiB output, patterns+uniqueItems ({spread})", o, b, "stock Draft7 + re", 1.5)
        )
        rows.append(Row(NAME, "same, bounded jsonschema classes only (no fast path)", s, b, "stock Draft7 + re", None))

        evil, benign = compile_pattern("^(a+)+$"), compile_pattern("^[a-z]+$")
        text = "a" * 40 + "!"
        evil_ms, benign_ms = _interleaved([lambda: evil.search(text), lambda: benign.search(text)], rounds)
        e, g = statistics.median(evil_ms), statistics.median(benign_ms)
        rows.append(Row(NAME, '"^(a+)+$" on 41 chars (ms; target < 1 ms absolute)', e, g, "^[a-z]+$", None))
        rows.append(Row(NAME, '"^(a+)+$" on 41 chars, absolute', e, 1.0, "1 ms", 1.0))

        late = []
        big = {"items": output["items"] * 20}
        for _ in range(rounds):
            deadline = time.monotonic() + 0.02
            try:
                validate_output(slow, big, deadline=deadline)
            except PluginTimeout:
                late.append((time.monotonic() - deadline) * 1000)
        rows.append(Row(NAME, "deadline margin: ran past the deadline by", statistics.median(late), 50, "50 ms", 1.0))

        text_out = json.dumps(output)
        plain, safe = _interleaved([lambda: json.loads(text_out), lambda: loads(text_out, what="output")], rounds)
        rows.append(
            Row(NAME, "jsonsafe.loads of the 1 MiB output", statistics.median(safe), statistics.median(plain),
                "json.loads", None)
        )  # fmt: skip
    return rows

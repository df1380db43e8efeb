"""Compatibility benchmarks: ``plugin compat`` on large schemas, and what the sign-time gate adds to ``plugin sign``.

1. Two versions of a plugin whose input and output schemas have 200 properties each, every property a ``$ref``
   into a sibling ``common.json`` whose definitions refer to further definitions (three levels), with changes
   scattered through them (added properties, widened types, relaxed and tightened constraints). ``plugin compat
   OLD NEW --examples 0 --json`` runs in-process: the issue's target is absolute, <= 100 ms, so the first row's
   baseline is that budget. The second row puts it beside a same-run baseline, loading both versions' schemas
   (``load_schemas``, which checks them and their ``$ref``s), for scale. A third row (informational) is the
   default ``plugin compat`` with its semantic check (hypothesis-jsonschema in a child process), measured once.
2. ``plugin sign`` of a small plugin (the python template) whose previous version is in the history, so the gate
   compares the two and records the new one: a patch release (the handler changed: the schemas are compared by
   their hashes only) and a minor release (the input schema changed: the full comparison). The baseline is the
   same command with the gate replaced by a no-op. Baseline and gated runs alternate in one loop; the target is
   <= 1.10x.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synapse_nb.cli import main
from synapse_nb.compat import gate as gate_module
from synapse_nb.compat.history import history_root
from synapse_nb.scaffold import create_plugin
from synapse_nb.schemas import load_schemas

from .common import Rounds, Row, median, scratch_home

PROPERTIES = 200
COMPAT_BUDGET_MS = 100.0
SIGN_TARGET = 1.10


def _common(variant: int) -> dict[str, Any]:
    """Definitions three levels deep: each item refers to a shape, which refers to a leaf."""
    defs: dict[str, Any] = {}
    for i in range(PROPERTIES):
        leaf: dict[str, Any] = {"type": "integer" if not (variant and i % 40 == 0) else "number", "minimum": 0}
        if variant and i % 25 == 0:
            leaf["maximum"] = 1000  # a tightened constraint now and then
        defs[f"leaf{i}"] = leaf
        defs[f"shape{i}"] = {
            "type": "object",
            "properties": {"id": {"$ref": f"#/definitions/leaf{i}"}, "label": {"type": "string", "maxLength": 64}},
            "required": ["id"],
        }
        defs[f"item{i}"] = {
            "type": "object",
            "properties": {
                "shape": {"$ref": f"#/definitions/shape{i}"},
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": 10 + (5 if variant and i % 30 == 0 else 0),
                },
            },
        }
    return {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": defs}


def _root(variant: int, title: str) -> dict[str, Any]:
    props = {f"p{i}": {"$ref": f"common.json#/definitions/item{i}"} for i in range(PROPERTIES)}
    if variant:
        props.update({f"extra{i}": {"type": "string"} for i in range(5)})
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": title,
        "type": "object",
        "properties": props,
        "required": ["p0", "p1"],
    }


def _large_plugin(folder: Path, variant: int, version: str) -> Path:
    plugin = create_plugin("big-schemas", template="python", directory=folder)
    manifest = plugin / "manifest.yaml"
    manifest.write_text(re.sub(r"(?m)^  version: .*$", f"  version: {version}", manifest.read_text()))
    for name, schema in (
        ("common.json", _common(variant)),
        ("input_schema.json", _root(variant, "input")),
        ("output_schema.json", _root(variant, "output")),
    ):
        (plugin / "schemas" / name).write_text(json.dumps(schema, indent=2) + "\n")
    return plugin


def _quiet(fn: Callable[[], int], ok: tuple[int, ...] = (0,)) -> Callable[[], float]:
    """``fn`` timed in ms with its output swallowed; an exit code not in ``ok`` stops the benchmark."""

    def timed() -> float:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            start = time.perf_counter()
            code = fn()
            elapsed = (time.perf_counter() - start) * 1000
        if code not in ok:
            raise SystemExit(f"the benchmarked command exited {code}: {err.getvalue().strip()}")
        return elapsed

    return timed


def _compat_rows(root: Path, rounds: int) -> list[Row]:
    old = _large_plugin(root / "old", 0, "1.0.0")
    new = _large_plugin(root / "new", 1, "2.0.0")
    argv = ["plugin", "compat", str(old), str(new), "--json"]
    with contextlib.redirect_stdout(io.StringIO()):
        if main([*argv, "--examples", "0"]) not in (0, 3):
            raise SystemExit("plugin compat failed on the benchmark's schemas")

    def load_both() -> int:
        load_schemas(old)
        load_schemas(new)
        return 0

    runs = {"compat": _quiet(lambda: main([*argv, "--examples", "0"]), (0, 3)), "load": _quiet(load_both)}
    timed = _rounds(runs, rounds, 3)
    semantic = _quiet(lambda: main(argv), (0, 3))()
    compat = timed.median("compat")
    per_round = timed.values["compat"]
    what = f"{PROPERTIES}-property schemas, nested $refs"
    return [
        Row(
            "compat",
            f"plugin compat, {what}",
            compat,
            COMPAT_BUDGET_MS,
            "100 ms budget",
            1.0,
            spread=(min(per_round) / COMPAT_BUDGET_MS, max(per_round) / COMPAT_BUDGET_MS),
        ),
        timed.row("compat", f"plugin compat, {what}", "compat", "load", "load both schema sets", None),
        Row(
            "compat", "plugin compat with the semantic check (100 examples, once)", semantic, compat, "without it", None
        ),
    ]


def _rounds(fns: dict[str, Callable[[], float]], rounds: int, per_round: int, *, sync: bool = False) -> Rounds:
    """Alternate the timed functions (the first of each pair alternating too); one median per function per round.

    ``sync``: flush the page cache's dirty pages before each sample, outside its timing, so that no sample pays
    for the writes of the one before it (signing fsyncs).
    """
    for fn in fns.values():
        for _ in range(5):
            fn()
    values: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds):
        taken: dict[str, list[float]] = {name: [] for name in fns}
        for i in range(per_round):
            for name, fn in list(fns.items())[:: 1 if (r + i) % 2 else -1]:
                if sync:
                    os.sync()
                taken[name].append(fn())
        for name in fns:
            values[name].append(median(taken[name]))
    return Rounds(values)


class _NoGate:
    """The baseline: ``plugin sign`` exactly as before the gate existed."""

    def summary(self) -> None:
        return None

    def commit(self, **_: Any) -> None:
        return None


def _sign_rows(root: Path, rounds: int) -> list[Row]:
    plugin = create_plugin("small", template="python", directory=root / "small")
    manifest = plugin / "manifest.yaml"
    text = manifest.read_text()
    manifest.write_text(text.replace("version: 0.1.0", "version: 1.0.0"))
    with contextlib.redirect_stdout(io.StringIO()):
        if main(["plugin", "sign", str(plugin)]) != 0:
            raise SystemExit("the benchmark could not sign its plugin")
    first = next(history_root().glob("small/*/1.0.0.json"))
    handler = plugin / "handler.py"
    handler.write_text(handler.read_text() + "\n# a fix\n")
    manifest.write_text(text.replace("version: 0.1.0", "version: 1.0.1"))
    rows = [_sign_row(plugin, first.with_name("1.0.1.json"), rounds, "a patch release (handler changed)")]
    manifest.write_text(text.replace("version: 0.1.0", "version: 1.1.0"))
    schema = plugin / "schemas" / "input_schema.json"
    doc = json.loads(schema.read_text())
    doc["properties"]["lang"] = {"type": "string"}
    schema.write_text(json.dumps(doc, indent=2))
    rows.append(_sign_row(plugin, first.with_name("1.1.0.json"), rounds, "a minor release (input schema widened)"))
    return rows


def _sign_row(plugin: Path, record: Path, rounds: int, what: str) -> Row:
    """``plugin sign`` with the gate comparing with 1.0.0 and recording the new version, against no gate."""
    real = gate_module.check_release

    def gated() -> int:
        record.unlink(missing_ok=True)  # compare and record from scratch every time
        return main(["plugin", "sign", str(plugin)])

    def ungated() -> int:
        gate_module.check_release = lambda *a, **k: _NoGate()  # type: ignore[assignment]
        try:
            return main(["plugin", "sign", str(plugin)])
        finally:
            gate_module.check_release = real

    timed = _rounds({"gated": _quiet(gated), "ungated": _quiet(ungated)}, rounds, 10, sync=True)
    return timed.row(
        "compat", f"plugin sign with the gate, {what}", "gated", "ungated", "plugin sign without it", SIGN_TARGET
    )


def run(quick: bool) -> list[Row]:
    with scratch_home("bench_compat") as root:
        rows = _compat_rows(root, 3 if quick else 7)
        rows += _sign_rows(root, 3 if quick else 9)
        shutil.rmtree(root / "old", ignore_errors=True)
        return rows

"""Notebook benchmark: a ``%%synapse_plugin`` cell to the first ``%synapse run`` result, against the floors of
the underlying steps measured in the same run (same process, imports warm).

Floors, each timed on its own: writing the plugin files, validating the folder (``plugin validate``), signing it
(``plugin sign``), and activating it plus one call (``plugin run``) through the Python API. The magic does all of
that plus argument parsing, schema inference from the example and the lifecycle widget. Also timed: re-running
the unchanged cell (a no-op: same digest, no re-sign, no cold start).
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import time
from pathlib import Path

from .common import Row, scratch_home

HANDLER = """
from synapse.sdk import BaseHandler

class Echo(BaseHandler):
    def execute(self, data):
        return {"upper": data["text"].upper(), "n": len(data["text"])}
"""
SCHEMA_IN = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
SCHEMA_OUT = {"type": "object", "properties": {"upper": {"type": "string"}, "n": {"type": "integer"}}}


def floors(root: Path, i: int) -> float:
    """The same plugin made with the Python API, one step after another: the floor of the magic."""
    from synapse_nb.anatomy import validate_folder
    from synapse_nb.manager import PluginManager
    from synapse_nb.notebook.cellplugin import CellSpec, _write, render_files
    from synapse_nb.signing import sign_folder

    spec = CellSpec(name=f"floor-{i}", handler=HANDLER)
    folder = root / spec.name
    t0 = time.perf_counter()
    _write(folder, render_files(spec, input_schema=SCHEMA_IN, output_schema=SCHEMA_OUT))
    validate_folder(folder, check_import=False)
    sign_folder(folder)
    manager = PluginManager()
    manager.load(folder).run({"text": "hello"})
    elapsed = (time.perf_counter() - t0) * 1000
    manager.teardown_all()
    return elapsed


def magic(shell: object, i: int) -> tuple[float, float, bool]:
    """(cell to first result ms, unchanged re-run ms, was the re-run a no-op)."""
    import json

    line = f"cell-{i} --input-schema '{json.dumps(SCHEMA_IN)}' --output-schema '{json.dumps(SCHEMA_OUT)}'"
    with contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        shell.run_cell_magic("synapse_plugin", line, HANDLER)  # type: ignore[attr-defined]
        shell.run_line_magic("synapse", f'run cell-{i} {{"text": "hello"}}')  # type: ignore[attr-defined]
        first = (time.perf_counter() - t0) * 1000
        magics = next(m for m in shell.magics_manager.registry.values() if hasattr(m, "session"))  # type: ignore[attr-defined]
        worker = magics.session.defined[f"cell-{i}"].plugin.worker
        t1 = time.perf_counter()
        shell.run_cell_magic("synapse_plugin", line, HANDLER)  # type: ignore[attr-defined]
        rerun = (time.perf_counter() - t1) * 1000
        result = magics.session.defined[f"cell-{i}"]
        noop = not result.changed and result.plugin.worker is worker
        magics.session.manager.teardown(f"cell-{i}")
    return first, rerun, noop


def run(quick: bool = False) -> list[Row]:
    with scratch_home("bench_notebook") as home:
        return _measure(home, quick)


def _measure(home: Path, quick: bool) -> list[Row]:
    from IPython.core.interactiveshell import InteractiveShell

    cwd = os.getcwd()
    os.chdir(home)
    try:
        shell = InteractiveShell.instance()
        shell.extension_manager.load_extension("synapse_nb")
        magic(shell, 999)  # warm imports and the developer key, for both sides
        floors(home / "floors", 999)
        rounds = 5 if quick else 15
        ours, base, reruns = [], [], []
        noops = True
        for i in range(rounds):
            base.append(floors(home / "floors", i))
            first, rerun, noop = magic(shell, i)
            ours.append(first)
            reruns.append(rerun)
            noops = noops and noop
        if not noops:
            raise SystemExit("bench_notebook: re-running an unchanged cell was not a no-op")
        first_ms = statistics.median(ours)
        return [
            Row("notebook", "%%synapse_plugin cell to first %synapse run", first_ms, statistics.median(base),
                "API steps: write+validate+sign+load+run", 1.3),
            Row("notebook", "same, absolute", first_ms, 1000.0, "1 second", 1.0),
            Row("notebook", "unchanged cell re-run (no-op)", statistics.median(reruns), first_ms,
                "first run of the cell", None),
        ]  # fmt: skip
    finally:
        os.chdir(cwd)

"""Widget outputs as JupyterLab keeps them, and the readable frames the magics return."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from synapse_nb import eventlog
from synapse_nb.notebook.widgets import MIME, BenchmarkWidget, SchemaWidget
from synapse_nb.notebook.widgets.base import number
from synapse_nb.notebook.widgets.bench import figure
from synapse_nb.notebook.widgets.frames import tidy

from .test_notebook import magics

ECHO = """
from synapse.sdk import BaseHandler

class Echo(BaseHandler):
    def execute(self, data):
        return {"upper": data["text"].upper()}
"""

ROWS = [
    {"batch_size": 1, "concurrency": 1, "requests": 3, "throughput_items_s": 1234.56789, "p50_ms": 0.123456,
     "p90_ms": 0.2, "p99_ms": 0.3, "queue_ms": 0.01, "handler_ms": 0.02, "error_rate": 0.0,
     "cold_start_ms": 31.987654, "peak_memory_mb": float("nan")},
    {"batch_size": 64, "concurrency": 1, "requests": 3, "throughput_items_s": 98765.4321, "p50_ms": 0.65,
     "p90_ms": 0.7, "p99_ms": 0.8, "queue_ms": 0.01, "handler_ms": 0.3, "error_rate": 0.0,
     "cold_start_ms": 31.987654, "peak_memory_mb": float("nan")},
]  # fmt: skip


def session(ip: InteractiveShell) -> Any:
    return magics(ip).session


def test_every_widget_output_carries_its_state_for_jupyterlab() -> None:
    frame = pd.DataFrame(ROWS)
    frame.attrs.update(plugin="echo", version="1.0.0", isolation="nsjail")
    bundle = BenchmarkWidget(frame, title="echo 1.0.0", compare=False)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    payload = bundle[MIME]
    assert (payload["kind"], payload["version"]) == ("bench", 1)
    assert payload["data"]["plugin"] == "echo"
    assert payload["data"]["rows"][0]["peak_memory_mb"] is None  # NaN is not JSON
    json.dumps(payload, allow_nan=False)  # what the notebook file stores
    schema = SchemaWidget({"input_schema.json": {"type": "object"}})._repr_mimebundle_()[MIME]
    assert schema["kind"] == "schema"


def test_a_huge_widget_state_is_cut_to_its_text() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 300}
                                               for i in range(1000)}}  # fmt: skip
    payload = SchemaWidget({"input_schema.json": schema})._repr_mimebundle_()[MIME]
    assert payload["data"]["truncated"] is True
    assert payload["data"]["text"].startswith("input_schema.json:")


def test_the_benchmark_axis_reads_the_batch_sizes() -> None:
    fig = figure(pd.DataFrame(ROWS), "echo")
    for axis in fig.axes:
        assert [t.get_text() for t in axis.get_xticklabels()] == ["1", "64"]


def test_benchmark_tables_are_rounded_and_scroll_in_their_own_box() -> None:
    widget = BenchmarkWidget(pd.DataFrame(ROWS), compare=False)
    html = widget.to_html()
    assert '<div class="scroll"><table>' in html
    assert "0.123" in html
    assert "0.123456" not in html
    assert "98,765.4" in html
    assert "nan" not in html.lower()
    assert "nan" not in widget.to_text().lower()
    assert widget.image.layout.max_width == "100%"


def test_numbers_read_well() -> None:
    assert [number(v) for v in (0.123456, 1234.5678, 12.0, 3, float("nan"), None, "x")] == [
        "0.123", "1,234.6", "12.000", "3", "-", "-", "x"]  # fmt: skip


def test_a_tidy_frame_keeps_its_data_and_prints_for_reading() -> None:
    frame = tidy(pd.DataFrame({"name": ["a", "b"], "p50_ms": [0.1234567, float("nan")]}))
    assert isinstance(frame, pd.DataFrame)
    assert frame["p50_ms"][0] == 0.1234567
    assert "0.123" in repr(frame)
    assert "0.1234567" not in repr(frame)
    assert "NaN" not in repr(frame)
    assert "NaN" not in (frame._repr_html_() or "")
    assert type(frame.head(1)) is pd.DataFrame  # derived frames are plain


def test_a_benchmark_left_unassigned_is_shown_once(shell: InteractiveShell) -> None:
    assert shell.run_cell('%%synapse_plugin echo --example \'{"text": "hi"}\'\n' + ECHO).success
    plugin = session(shell).plugin("echo")
    shell.run_cell('%synapse run echo {"text": "mine"}')
    calls_before = len(plugin.history)
    with capture_output() as cap:
        cell = '%synapse bench echo {"text": "x"} --batch-sizes 1,4 --repeat 5'
        assert shell.run_cell(cell, store_history=True).success  # as a kernel runs cells: numbered
    assert [o.data.get(MIME, {}).get("kind") for o in cap.outputs] == ["bench"]
    assert "batch_size" not in cap.stdout  # no raw DataFrame after the widget
    assert len(plugin.history) == calls_before  # benchmark requests stay out of the I/O debugger
    frame = shell.user_ns["_"]
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["batch_size"]) == [1, 4]
    with capture_output() as later:
        shell.run_cell("_", store_history=True)
    assert [o.data.get(MIME, {}).get("kind") for o in later.outputs] == ["bench"]  # shown again when asked


def test_a_new_version_is_benchmarked_against_the_previous_one(shell: InteractiveShell) -> None:
    def define(version: str) -> str:
        return f'%%synapse_plugin echo --version {version} --example \'{{"text": "hi"}}\'\n' + ECHO

    assert shell.run_cell(define("1.0.0")).success
    shell.run_cell('%synapse bench echo {"text": "x"} --batch-sizes 1,2 --repeat 3')
    assert shell.run_cell(define("1.1.0") + "\n# changed\n").success
    with capture_output() as cap:
        shell.run_cell('%synapse bench echo {"text": "x"} --batch-sizes 1,2 --repeat 3')
    data = cap.outputs[0].data[MIME]["data"]
    assert data["version"] == "1.1.0"
    assert [s["version"] for s in data["previous"]] == ["1.0.0"]
    assert eventlog.flush()
    assert [e.version for e in eventlog.EventLog().benchmarks("echo")] == ["1.0.0", "1.1.0"]


def test_status_is_rounded_without_nan(shell: InteractiveShell) -> None:
    shell.run_cell('%%synapse_plugin echo --example \'{"text": "hi"}\'\n' + ECHO)
    shell.run_cell("%%synapse_plugin other\n" + ECHO)  # no --example: never called, no latency yet
    shell.run_cell('%synapse run echo {"text": "x"}')
    with capture_output() as cap:
        shell.run_cell("%synapse status")
    assert "echo" in cap.stdout
    assert "NaN" not in cap.stdout
    frame = shell.user_ns["_"]
    assert pd.isna(frame.loc[frame["name"] == "other", "p50_ms"]).all()  # the data keeps its NaN

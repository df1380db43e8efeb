"""The notebook layer through a real IPython InteractiveShell: magics, one-line errors, widgets, inference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from synapse_nb.notebook.cellplugin import CellSpec, NotebookSession
from synapse_nb.notebook.infer import infer_schema
from synapse_nb.notebook.magics import SynapseMagics
from synapse_nb.notebook.options import split_options
from synapse_nb.notebook.widgets import BenchmarkWidget, IODebugger, LifecycleWidget, SchemaWidget

from .sandbox_helpers import require_nsjail

ECHO = """
from synapse.sdk import BaseHandler

class Echo(BaseHandler):
    def execute(self, data):
        print("seen", data["text"])
        return {"upper": data["text"].upper()}
"""


def magics(ip: InteractiveShell) -> SynapseMagics:
    return next(m for m in ip.magics_manager.registry.values() if isinstance(m, SynapseMagics))


def define(ip: InteractiveShell, line: str, body: str = ECHO) -> Any:
    return ip.run_cell(f"%%synapse_plugin {line}\n{body}")


@pytest.fixture(params=["magic", "api"])
def entry(request: pytest.FixtureRequest, shell: InteractiveShell) -> str:
    return str(request.param)


def test_a_cell_defines_signs_and_runs_a_plugin(shell: InteractiveShell, entry: str) -> None:
    assert define(shell, 'echo --example \'{"text": "hi"}\'').success
    if entry == "magic":
        result = shell.run_cell('out = %synapse run echo {"text": "hello world"}')
        assert result.success
        out = shell.user_ns["out"]
    else:
        session = magics(shell).session
        out = session.plugin("echo").run({"text": "hello world"})
    assert out == {"upper": "HELLO WORLD"}
    folder = Path("synapse-plugins/echo")
    assert (folder / "synapse.sig.json").is_file()
    inferred = json.loads((folder / "schemas/input_schema.json").read_text())
    assert inferred["properties"] == {"text": {"type": "string"}}
    assert json.loads((folder / "schemas/output_schema.json").read_text())["required"] == ["upper"]


def test_rerunning_an_unchanged_cell_is_a_no_op(shell: InteractiveShell) -> None:
    define(shell, "echo")
    session = magics(shell).session
    first = session.defined["echo"]
    worker = first.plugin.worker
    digest = first.plugin.snapshot.digest
    signature = (first.folder / "synapse.sig.json").read_bytes()
    define(shell, "echo")
    again = session.defined["echo"]
    assert again.changed is False
    assert again.plugin.worker is worker  # no cold start
    assert again.plugin.snapshot.digest == digest
    assert (first.folder / "synapse.sig.json").read_bytes() == signature  # no re-sign


def test_a_changed_cell_replaces_the_plugin_and_keeps_its_state(shell: InteractiveShell) -> None:
    counter = (
        "from synapse_nb.sdk import BaseHandler\n\nclass C(BaseHandler):\n    def execute(self, d):\n"
        "        self.state['n'] = self.state.get('n', 0) + {step}\n        return {{'n': self.state['n']}}\n"
    )
    define(shell, "counter", counter.format(step=1))
    shell.run_cell("%synapse run counter {}")
    shell.run_cell("%synapse run counter {}")
    define(shell, "counter --version 0.2.0", counter.format(step=10))
    assert shell.run_cell("r = %synapse run counter {}").success
    assert shell.user_ns["r"] == {"n": 12}
    define(shell, "counter --version 1.0.0", counter.format(step=10))  # a new major number, nothing broke: kept
    shell.run_cell("r = %synapse run counter {}")
    assert shell.user_ns["r"] == {"n": 22}
    shell.user_ns["needs_id"] = {"type": "object", "required": ["id"]}
    define(shell, "counter --version 2.0.0 --input-schema needs_id", counter.format(step=10))  # broke: fresh state
    shell.run_cell('r = %synapse run counter {"id": 1}')
    assert shell.user_ns["r"] == {"n": 10}


def one_line_error(shell: InteractiveShell, code: str, capsys: pytest.CaptureFixture[str]) -> str:
    result = shell.run_cell(code)
    assert not result.success
    captured = capsys.readouterr()
    text = captured.out + captured.err
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    assert "Traceback" not in text
    return errors[0]


def test_a_syntax_error_in_the_cell_is_one_line_with_its_line(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    line = one_line_error(shell, "%%synapse_plugin broken\nclass Broken(:\n    pass\n", capsys)
    assert "handler.py:1:14: SyntaxError" in line
    assert "(cell line 2)" in line
    assert line.endswith("[invalid, exit 3]")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("%%synapse_plugin echo --frobnicate\n" + ECHO, "unrecognized arguments: --frobnicate"),
        ("%%synapse_plugin echo --input-schema '[1, 2]'\n" + ECHO, "--input-schema must be a JSON Schema object"),
        ("%%synapse_plugin echo --example '{1, 2}'\n" + ECHO, "is not JSON"),
        ("%%synapse_plugin Echo_Bad\n" + ECHO, "is not a lower-case DNS label"),
        ("%synapse frobnicate", "unknown command 'frobnicate'"),
        ("%synapse run nothing-here {}", "no plugin named 'nothing-here'"),
    ],
)
def test_bad_input_in_cells_is_one_clear_line(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], code: str, expected: str
) -> None:
    line = one_line_error(shell, code, capsys)
    assert expected in line


def test_a_payload_that_fails_validation_names_the_pointer_and_the_kernel_keeps_working(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], entry: str
) -> None:
    define(shell, 'echo --example \'{"text": "hi"}\'')
    capsys.readouterr()
    code = '%synapse run echo {"text": 5}' if entry == "magic" else 'p = _synapse.plugin("echo"); p.run({"text": 5})'
    shell.user_ns["_synapse"] = magics(shell).session
    line = one_line_error(shell, code, capsys)
    assert "input failed validation against input_schema.json: /text: 5 is not of type 'string'" in line
    assert line.endswith("[invalid, exit 3]")
    assert shell.run_cell('%synapse run echo {"text": "still fine"}').success


def test_a_plugin_that_times_out_is_one_line_and_other_plugins_keep_working(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = (
        "import time\nfrom synapse_nb.sdk import BaseHandler\n\n"
        "class S(BaseHandler):\n    def execute(self, d):\n        time.sleep(5)\n"
    )
    define(shell, "sleepy --timeout 300ms", slow)
    define(shell, "echo")
    capsys.readouterr()
    line = one_line_error(shell, "%synapse run sleepy {}", capsys)
    assert "no result within 300 ms" in line
    assert line.endswith("[timeout, exit 5]")
    assert shell.run_cell('r = %synapse run echo {"text": "ok"}').success
    assert shell.user_ns["r"] == {"upper": "OK"}


def test_debug_shows_the_full_traceback(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%synapse --debug on")
    shell.run_cell("%synapse run nothing-here {}")
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", "".join(capsys.readouterr()))  # IPython colours its tracebacks
    assert "Traceback (most recent call last)" in text
    assert "UsageError: no plugin named 'nothing-here'" in text
    assert "[usage, exit 2]" not in text  # not the one-line rendering
    assert magics(shell).debug is True


def test_options_can_come_before_or_after_the_expression() -> None:
    assert split_options('{"text": "a --repeat 3 b"} --batch-sizes 1,8') == (
        '{"text": "a --repeat 3 b"}',
        {"batch-sizes": "1,8"},
    )
    assert split_options('--repeat 5 {"a": [1, -2]}') == ('{"a": [1, -2]}', {"repeat": "5"})
    assert split_options("payload") == ("payload", {})


def test_the_lifecycle_widget_follows_the_manager(shell: InteractiveShell) -> None:
    define(shell, "echo")
    session = magics(shell).session
    widget = LifecycleWidget(session.manager, "echo")
    assert (widget.stage, widget.isolation) == ("ACTIVE", "nsjail")
    assert widget.signer.startswith("CN=")
    assert widget.activation_ms > 0
    session.manager.teardown("echo")
    assert widget.stage == "STOPPED"
    assert widget.get_state()["stage"] == "STOPPED"  # through the widget model
    bundle = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("echo 0.1.0: STOPPED")
    assert bundle["application/json"]["timings_ms"]["ACTIVATING"] > 0
    assert "Teardown" in bundle["text/html"]


def test_the_io_debugger_shows_where_a_call_stopped(shell: InteractiveShell) -> None:
    define(shell, 'echo --example \'{"text": "hi"}\'')
    plugin = magics(shell).session.plugin("echo")
    debugger = IODebugger(plugin)
    plugin.run({"text": "one"})
    with pytest.raises(Exception, match="/text"):
        plugin.run({"text": 1})
    debugger.refresh()
    calls = debugger.to_json()["calls"]
    assert [c["stage"] for c in calls] == ["input", "done"]
    assert calls[1]["raw_output"] == {"upper": "ONE"}
    assert calls[1]["stdout"] == "seen one\n"
    assert debugger.last_stage == "input"
    assert "validated input: FAILED" in debugger.to_text()


def test_the_schema_widget_lists_properties_types_and_constraints() -> None:
    schema = {"type": "object", "required": ["text"], "properties": {
        "text": {"type": "string", "maxLength": 10, "examples": ["hi"]},
        "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}}}}  # fmt: skip
    widget = SchemaWidget({"input_schema.json": schema})
    rows = widget.rows()["input_schema.json"]
    assert [(r["property"], r["type"], r["required"]) for r in rows] == [
        ("text", "string", True),
        ("tags", "array", False),
        ("tags[]", "string", True),
    ]
    assert rows[0]["constraints"] == "maxLength=10"
    assert rows[0]["example"] == "hi"
    assert 'tags[]: string (required) [pattern="^[a-z]+$"]' in widget.to_text()


def test_bench_returns_a_dataframe_and_a_plot(shell: InteractiveShell) -> None:
    define(shell, 'echo --example \'{"text": "hi"}\'')
    assert shell.run_cell('df = %synapse bench echo {"text": "x"} --batch-sizes 1,4 --repeat 3').success
    frame = shell.user_ns["df"]
    assert list(frame["batch_size"]) == [1, 4]
    assert (frame["error_rate"] == 0).all()
    assert (frame["p99_ms"] >= frame["p50_ms"]).all()
    widget = BenchmarkWidget(frame, title="echo")
    assert widget._repr_mimebundle_()["image/png"].startswith(b"\x89PNG")


def test_schema_inference_follows_mlflow_style_merging() -> None:
    schema = infer_schema([{"a": 1, "b": [1, 2.5]}, {"a": 2.0, "c": None}])
    assert schema["properties"]["a"] == {"type": "number"}
    assert schema["properties"]["b"] == {"type": "array", "items": {"type": "number"}}
    assert schema["properties"]["c"] == {"type": "null"}
    assert schema["required"] == ["a"]


def test_the_session_api_without_ipython(tmp_path: Path) -> None:
    require_nsjail()
    session = NotebookSession(base_dir=tmp_path / "plugins")
    result = session.define(CellSpec(name="api-echo", handler=ECHO, examples=[{"text": "x"}]))
    assert result.plugin.run({"text": "y"}) == {"upper": "Y"}
    session.manager.teardown_all()

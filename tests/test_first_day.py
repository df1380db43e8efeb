"""What a new user hit on the first day (issue 12), each through the surface where it was seen."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import synapse_nb
from synapse_nb.cli import main
from synapse_nb.manager import default_manager
from synapse_nb.notebook.magics import SynapseMagics
from synapse_nb.signing import sign_folder

from .sandbox_helpers import require_nsjail, write_plugin

ROOT = Path(__file__).resolve().parent.parent
ECHO = """
from synapse.sdk import BaseHandler

class Echo(BaseHandler):
    def execute(self, data):
        return {"upper": data["text"].upper()}
"""


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    require_nsjail()
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("synapse_nb")
    try:
        yield ip
    finally:
        ip.extension_manager.unload_extension("synapse_nb")
        InteractiveShell.clear_instance()


def magics(ip: InteractiveShell) -> SynapseMagics:
    return next(m for m in ip.magics_manager.registry.values() if isinstance(m, SynapseMagics))


# 1. loading the same folder again ---------------------------------------------------------------------------------
def test_synapse_nb_load_twice_returns_the_running_handle_and_reloads_after_teardown(tmp_path: Path) -> None:
    require_nsjail()
    folder = write_plugin(tmp_path / "twice", "return {'n': data.get('n')}", name="twice")
    first = synapse_nb.load(folder)
    try:
        assert synapse_nb.load(folder) is first
        first.teardown()
        second = synapse_nb.load(folder)
        assert second.run({"n": 2}) == {"n": 2}
        (folder / "notes.md").write_text("changed\n")
        sign_folder(folder)
        third = synapse_nb.load(folder)
        assert third is not second
        assert second.released
        assert third.run({"n": 3}) == {"n": 3}
    finally:
        default_manager().teardown_all()


def test_re_running_a_load_cell_works(shell: InteractiveShell, tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "cell-load", "return {'ok': True}", name="cell-load")
    for _ in range(3):
        assert shell.run_cell(f"p = %synapse load {folder}").success
    assert shell.run_cell("assert p.run({}) == {'ok': True}").success


# 2. the generated tests of a cell plugin --------------------------------------------------------------------------
def test_a_cell_plugin_with_examples_passes_its_own_tests_in_the_jail(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    line = 'echo --example \'{"text": "hi"}\' --example \'{"text": "a \\"quoted\\" word"}\''
    assert shell.run_cell(f"%%synapse_plugin {line}\n{ECHO}").success
    test_file = Path("synapse-plugins/echo/tests/test_echo.py")
    compile(test_file.read_text(), str(test_file), "exec")  # no IndentationError
    capsys.readouterr()
    result = shell.run_cell("report = %synapse test echo")
    assert result.success, capsys.readouterr()
    assert shell.user_ns["report"]["passed"] == 1
    assert "1 passed in the nsjail sandbox" in capsys.readouterr().out
    assert main(["plugin", "test", "synapse-plugins/echo"]) == 0


def test_a_failing_plugin_test_is_the_clis_exit_7_error_in_the_notebook(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    assert shell.run_cell(f"%%synapse_plugin echo\n{ECHO}").success
    Path("synapse-plugins/echo/tests/test_more.py").write_text("def test_no(plugin):\n    assert False\n")
    sign_folder(Path("synapse-plugins/echo"))
    capsys.readouterr()
    shell.run_cell("%synapse test echo")
    out = capsys.readouterr().out
    assert "error: echo: 1 of 2 tests failed, first tests/test_more.py::test_no" in out
    assert "[plugin-failed, exit 7]" in out


# 4. --input - ---------------------------------------------------------------------------------------------------
def test_input_dash_reads_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    folder = write_plugin(tmp_path / "stdin", "return {'got': data}", name="stdin-reader")
    monkeypatch.setattr("sys.stdin", io.StringIO('{"from": "stdin"}'))
    assert main(["plugin", "run", str(folder), "--input", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == {"got": {"from": "stdin"}}


# 5. make lab as root ----------------------------------------------------------------------------------------------
def test_make_lab_passes_allow_root_when_run_as_root() -> None:
    dry = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lab_line = next(line for line in dry.splitlines() if "jupyter lab" in line)
    shell_result = subprocess.run(["bash", "-c", f"echo {lab_line.split('jupyter lab', 1)[1]}"], capture_output=True,
                                  text=True, check=True).stdout  # fmt: skip
    assert ("--allow-root" in shell_result) == (os.geteuid() == 0)


# 6. endpoint routing ----------------------------------------------------------------------------------------------
def test_endpoints_route_to_the_method_of_the_same_name_by_key_or_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    folder = write_plugin(
        tmp_path / "routed", "return {'method': 'execute', 'endpoint': self.context.endpoint}", name="routed",
        sign=False, extra_methods="def analyze(self, data):\n    return {'method': 'analyze'}\n",
    )  # fmt: skip
    manifest = folder / "manifest.yaml"
    manifest.write_text(
        manifest.read_text()
        + "  interfaces:\n    - type: nlp\n      protocol: grpc\n      endpoints:\n"
        + "        primary: /v1/run\n        analyze: /v1/analyze\n        summarize: /v1/summarize\n"
    )
    sign_folder(folder)

    def run(*extra: str) -> tuple[int, dict[str, object]]:
        code = main(["plugin", "run", str(folder), "--input", "{}", "--json", *extra])
        out = capsys.readouterr().out
        return code, (json.loads(out)["result"] if code == 0 else {})

    assert run() == (0, {"method": "execute", "endpoint": None})
    assert run("--endpoint", "/v1/analyze") == (0, {"method": "analyze"})
    assert run("--endpoint", "analyze") == (0, {"method": "analyze"})
    assert run("--endpoint", "summarize") == (0, {"method": "execute", "endpoint": "summarize"})
    assert main(["plugin", "run", str(folder), "--input", "{}", "--endpoint", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown endpoint 'nope'; valid: primary, /v1/run, analyze, /v1/analyze, summarize, /v1/summarize" in err


# 9. typos ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plugn", "validate", "x"], "unknown command 'plugn'; did you mean 'plugin'?"),
        (["plugin", "valdate", "x"], "unknown command 'valdate'; did you mean 'validate'?"),
        (["plugin", "init", "--nme", "x"], "unknown option '--nme'; did you mean '--name'?"),
        (["plugin", "run", "x", "--inptu", "{}"], "unknown option '--inptu'; did you mean '--input'?"),
    ],
)
def test_usage_errors_name_what_was_typed_and_the_closest_choice(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_a_mistyped_magic_sub_command_gets_a_suggestion(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%synapse stauts")
    assert "unknown command 'stauts'; did you mean 'status'?" in capsys.readouterr().out
    shell.run_cell("%synapse help")
    assert "%synapse test NAME [-k KEYWORD]" in capsys.readouterr().out


def test_synapse_magic_help_lists_every_sub_command() -> None:
    doc = SynapseMagics.synapse.__doc__ or ""
    for command in ("run", "bench", "status", "validate", "test", "teardown", "load", "isolation", "help"):
        assert f"%synapse {command}" in doc or f"| {command}" in doc, command


# 10. the lifecycle widget counts calls ----------------------------------------------------------------------------
def test_the_lifecycle_widget_shows_the_call_count(shell: InteractiveShell) -> None:
    from synapse_nb.notebook.widgets import LifecycleWidget

    assert shell.run_cell(f"%%synapse_plugin echo\n{ECHO}").success
    for _ in range(3):
        assert shell.run_cell('%synapse run echo {"text": "x"}').success
    widget = LifecycleWidget(magics(shell).session.manager, "echo")
    assert widget.calls == 3
    assert "calls 3" in widget._repr_mimebundle_()["text/plain"]

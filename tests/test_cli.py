"""synapse-cli: exit codes, one `error:` line, --json shapes, plugin init for every template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.scaffold import TEMPLATES


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synapse_nb", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_validate_the_spec_example(example_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "validate", str(example_plugin)]) == 0
    assert capsys.readouterr().out.startswith("ok: sentiment-analyzer 1.2.0")


def test_validate_json_has_the_contract_shape(example_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "validate", str(example_plugin), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["result"]["handler"] == {"class": "SentimentAnalyzer", "line": 40}
    assert out["meta"] == {"plugin": "sentiment-analyzer", "version": "1.2.0"}


def test_invalid_plugin_exits_3_with_one_error_line_and_no_traceback(example_plugin: Path) -> None:
    manifest = example_plugin / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("1500ms", "15oo ms"))
    proc = cli("plugin", "validate", str(example_plugin))
    assert proc.returncode == 3
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error: sentiment-analyzer: ")
    assert "manifest.yaml:10:14: /spec/execution/timeout: '15oo ms' is not a duration" in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_invalid_plugin_json_lists_every_problem(example_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = example_plugin / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("1500ms", "-1s").replace("1.2.0", "1.2"))
    assert main(["plugin", "validate", str(example_plugin), "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert out["error"]["code"] == "invalid"
    assert [p["pointer"] for p in out["error"]["problems"]] == [
        "/metadata/version",
        "/spec/execution/timeout",
    ]
    assert out["error"]["problems"][1]["line"] == 10


def test_several_paths_report_each_and_exit_with_the_first_failure(
    example_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugin", "validate", str(example_plugin), str(tmp_path / "missing")]) == 3
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: sentiment-analyzer")
    assert "missing: is not a plugin folder" in captured.err


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: synapse-cli plugin: unknown command 'frobnicate'; choose from init, validate")
    assert len(err.strip().splitlines()) == 1


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: synapse-cli" in capsys.readouterr().err


def test_python_dash_m_and_the_console_script_are_the_same_cli() -> None:
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("synapse-cli 0.1.0")


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_validates_and_passes_its_own_tests(template: str, tmp_path: Path) -> None:
    name = f"my-{template}"
    assert main(["plugin", "init", f"--name={name}", f"--template={template}", "--dir", str(tmp_path / name)]) == 0
    assert main(["plugin", "validate", str(tmp_path / name)]) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / name / "tests")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout
    assert "skipped" not in proc.stdout


def test_init_creates_name_in_the_current_folder_by_default(tmp_path: Path) -> None:
    proc = cli("plugin", "init", "--name=custom-processor", "--template=python", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    handler = (tmp_path / "custom-processor" / "handler.py").read_text()
    assert "class CustomProcessor(BaseHandler):" in handler
    assert (tmp_path / "custom-processor" / "tests" / "test_custom_processor.py").is_file()


def test_init_refuses_to_overwrite_and_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("keep me")
    assert main(["plugin", "init", "--name=taken", "--dir", str(tmp_path / "taken")]) == 2
    assert (tmp_path / "taken" / "file").read_text() == "keep me"
    assert main(["plugin", "init", "--name=Bad_Name", "--dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "already exists and is not empty" in err
    assert "'Bad_Name' is not a lower-case DNS label" in err
    assert not (tmp_path / "x").exists()


def test_the_example_passes_its_own_tests(example_plugin: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example_plugin / "tests")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout

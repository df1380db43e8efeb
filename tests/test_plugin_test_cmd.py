"""`synapse-cli plugin test`: the plugin's own tests through the sandboxed runtime, failures per test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synapse_nb.cli import main

from .sandbox_helpers import require_nsjail


def test_the_spec_example_passes_its_tests_through_the_sandbox(
    signed_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    assert main(["plugin", "test", str(signed_example), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["result"]["passed"] == 3
    assert all(t["outcome"] == "passed" for t in out["result"]["tests"])


def test_failures_are_reported_per_test_with_exit_7(example_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_nsjail()
    (example_plugin / "tests" / "test_extra.py").write_text(
        "def test_wrong_expectation(plugin):\n"
        "    assert plugin.run({'text': 'great'}) == {'result': [0.1]}\n\n"
        "def test_sandboxed(plugin):\n"
        "    assert plugin.isolation == 'nsjail'\n"
    )
    assert main(["plugin", "test", str(example_plugin), "--json"]) == 7
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert (out["result"]["passed"], out["result"]["failed"]) == (4, 1)
    assert out["error"]["code"] == "plugin-failed"
    assert "1 of 5 tests failed, first tests.test_extra::test_wrong_expectation" in out["error"]["message"]
    assert "testing" in captured.err  # the unsigned warning
    assert captured.err.count("error:") == 1


def test_a_plugin_without_tests_is_invalid(example_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for f in (example_plugin / "tests").iterdir():
        f.unlink() if f.is_file() else None
    assert main(["plugin", "test", str(example_plugin)]) == 3
    assert "no tests were collected" in capsys.readouterr().err

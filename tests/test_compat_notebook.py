"""The sign-time gate as a notebook meets it: `%%synapse_plugin` re-runs, one error line with the version to use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from .sandbox_helpers import require_nsjail

ECHO = """
from synapse.sdk import BaseHandler

class Echo(BaseHandler):
    def execute(self, data):
        return {"upper": data["text"].upper()}
"""
TEXT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    require_nsjail()
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("synapse_nb")
    ip.user_ns["text_only"] = TEXT
    ip.user_ns["with_lang"] = {**TEXT, "properties": {**TEXT["properties"], "lang": {"type": "string"}}}
    ip.user_ns["needs_lang"] = {**ip.user_ns["with_lang"], "required": ["text", "lang"]}
    try:
        yield ip
    finally:
        ip.extension_manager.unload_extension("synapse_nb")
        InteractiveShell.clear_instance()


def define(ip: InteractiveShell, options: str) -> bool:
    return bool(ip.run_cell(f"%%synapse_plugin echo {options}\n{ECHO}").success)


def test_a_compatible_schema_change_may_keep_the_version_in_a_notebook(shell: InteractiveShell) -> None:
    assert define(shell, "--input-schema text_only")
    assert define(shell, "--input-schema with_lang")
    assert shell.run_cell('r = %synapse run echo {"text": "a", "lang": "en"}').success
    assert shell.user_ns["r"] == {"upper": "A"}


def test_a_breaking_schema_change_under_the_same_version_says_which_version_to_use(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    assert define(shell, "--input-schema text_only")
    capsys.readouterr()
    assert not define(shell, "--input-schema needs_lang")
    captured = capsys.readouterr()
    errors = [line for line in (captured.out + captured.err).splitlines() if line.startswith("error:")]
    assert len(errors) == 1, captured
    assert "property 'lang' became required" in errors[0] or "required property 'lang' added" in errors[0]
    assert "use version 0.2.0" in errors[0]
    assert "Traceback" not in captured.out + captured.err
    assert define(shell, "--input-schema needs_lang --version 0.2.0")

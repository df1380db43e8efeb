"""The compat gates as a notebook meets them: `%%synapse_plugin` re-runs, `--version auto`, `%synapse compat`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from synapse_nb.notebook.magics import SynapseMagics

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


def magics(ip: InteractiveShell) -> SynapseMagics:
    return next(m for m in ip.magics_manager.registry.values() if isinstance(m, SynapseMagics))


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
    assert errors[0].endswith("use version 0.2.0 (or --version auto) [invalid, exit 3]")
    assert "Traceback" not in captured.out + captured.err
    assert define(shell, "--input-schema needs_lang --version 0.2.0")


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    captured = capsys.readouterr()
    return (captured.out + captured.err).splitlines()


def test_version_auto_chooses_what_the_changes_need_and_says_why(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert define(shell, "--input-schema text_only --version auto")
    assert "synapse: --version auto chose 0.1.0: no version of echo was signed by your key yet" in printed(capsys)
    assert define(shell, "--input-schema needs_lang --version auto")  # a breaking change: 0.x's major position
    lines = printed(capsys)
    start = lines.index("synapse: --version auto chose 0.2.0: major bump needed from 0.1.0")
    assert "property 'lang'" in lines[start + 1]
    assert "[input-required-property-added, major]" in lines[start + 1] or "became-required" in lines[start + 1]
    assert shell.run_cell('r = %synapse run echo {"text": "a", "lang": "en"}').success
    assert shell.user_ns["r"] == {"upper": "A"}
    assert magics(shell).session.plugin("echo").version == "0.2.0"
    assert define(shell, "--input-schema needs_lang --version auto")  # unchanged: kept, nothing re-signed
    assert "synapse: --version auto chose 0.2.0: nothing changed since it was signed" in printed(capsys)
    assert define(shell, "--input-schema with_lang --version auto")  # lang optional again: a minor change
    assert printed(capsys)[0].startswith("synapse: --version auto chose 0.2.1: minor bump needed from 0.2.0")


def test_version_auto_keeps_an_inferred_output_schema_across_a_kernel_restart(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    cell = '--example \'{"text": "hi"}\' --version auto'
    assert define(shell, cell)
    shell.extension_manager.unload_extension("synapse_nb")  # the kernel restarts: the session is new
    InteractiveShell.clear_instance()
    again = InteractiveShell.instance()
    again.extension_manager.load_extension("synapse_nb")
    try:
        capsys.readouterr()
        assert define(again, cell)
        assert "synapse: --version auto chose 0.1.0: nothing changed since it was signed" in printed(capsys)
    finally:
        again.extension_manager.unload_extension("synapse_nb")


def test_synapse_compat_shows_the_cells_version_against_the_previous_one(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    assert define(shell, "--input-schema text_only")
    capsys.readouterr()
    assert shell.run_cell("%synapse compat echo").success
    assert printed(capsys) == ["echo@0.1.0: no earlier version signed by the same key to compare with"]
    assert not define(shell, "--input-schema needs_lang")  # refused: the folder holds what was refused
    capsys.readouterr()
    assert shell.run_cell("%synapse compat echo").success
    lines = printed(capsys)
    assert lines[0] == "echo 0.1.0 -> 0.1.0 (the same version)"
    assert lines[1].split() == ["BUMP", "RULE", "FILE:LINE", "POINTER", "CHANGE"]
    assert any(line.startswith("major ") and "'lang'" in line for line in lines[2:])
    assert lines[-1].startswith("not enough: ")
    assert lines[-1].endswith("use version 0.2.0 (or --version auto)")
    assert define(shell, "--input-schema needs_lang --version 0.2.0")
    capsys.readouterr()
    assert shell.run_cell("%synapse compat echo").success
    lines = printed(capsys)
    assert lines[0] == "echo 0.1.0 -> 0.2.0 (major bump)"
    assert lines[-1] == "ok: the changes need major, and 0.1.0 -> 0.2.0 is enough"


def test_synapse_compat_is_in_help_and_completion_and_refuses_extra_words(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    from synapse_nb.notebook.magics import complete

    assert shell.run_cell("%synapse help").success
    assert any(line.strip().startswith("%synapse compat NAME") for line in printed(capsys))
    assert "compat" in complete(magics(shell), "%synapse com")
    assert define(shell, "--input-schema text_only")
    assert complete(magics(shell), "%synapse compat ") == ["echo"]
    capsys.readouterr()
    assert not shell.run_cell("%synapse compat echo now").success
    assert any("%synapse compat: unexpected 'now'" in line for line in printed(capsys))
    assert not shell.run_cell("%synapse compat nothing-here").success
    assert any("no plugin named 'nothing-here'" in line for line in printed(capsys))

"""The previous version's tests, run against the new handler through `synapse-cli plugin test`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.compat import run_previous_tests

from .sandbox_helpers import require_nsjail


@pytest.fixture
def versions(make_plugin: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    require_nsjail()
    old = make_plugin("previous")
    new = tmp_path / "next" / "previous"
    shutil.copytree(old, new)
    (new / "tests" / "test_previous.py").write_text("def test_nothing(plugin):\n    pass\n")
    return old, new


@pytest.mark.slow
def test_a_new_handler_that_keeps_the_promises_passes_the_old_tests(versions: tuple[Path, Path]) -> None:
    old, new = versions
    handler = new / "handler.py"
    handler.write_text(handler.read_text().replace("len(words)", "len(list(words))"))
    assert run_previous_tests(old, new) == []


@pytest.mark.slow
def test_a_new_handler_that_breaks_a_promise_fails_the_old_tests_as_a_major_change(versions: tuple[Path, Path]) -> None:
    old, new = versions
    handler = new / "handler.py"
    handler.write_text(handler.read_text().replace('validated_data["text"].upper()', '"?"'))
    (change,) = run_previous_tests(old, new)
    assert (change.rule, change.bump, change.side) == ("previous-test-failed", "major", "old")
    assert "test_counts_words_and_upper_cases fails against the new version" in change.message
    assert change.file == "tests/test_previous.py"
    assert (
        (new / "tests" / "test_previous.py").read_text().startswith("def test_nothing")
    )  # the new folder is untouched


def test_an_old_version_without_tests_promises_nothing(versions: tuple[Path, Path]) -> None:
    old, new = versions
    shutil.rmtree(old / "tests")
    assert run_previous_tests(old, new) == []

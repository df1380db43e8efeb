"""Shared fixtures: every test gets its own SYNAPSE_HOME; helpers to create plugin folders."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.scaffold import create_plugin

EXAMPLE = Path(__file__).resolve().parent.parent / "synapse_nb" / "examples" / "sentiment-analyzer"


@pytest.fixture(autouse=True)
def synapse_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("synapse-home")
    monkeypatch.setenv("SYNAPSE_HOME", str(home))
    return home


@pytest.fixture
def example_plugin(tmp_path: Path) -> Path:
    """A writable copy of the spec's sentiment-analyzer."""
    target = tmp_path / "sentiment-analyzer"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def signed_example(example_plugin: Path) -> Path:
    """The sentiment-analyzer copy, signed with this test's developer key."""
    from synapse_nb.signing import sign_folder

    sign_folder(example_plugin)
    return example_plugin


@pytest.fixture
def make_plugin(tmp_path: Path) -> Callable[..., Path]:
    """``make_plugin(name, template="python", handler=None)``: a fresh plugin folder under tmp_path."""

    def make(name: str = "demo-plugin", template: str = "python", handler: str | None = None) -> Path:
        folder = create_plugin(name, template=template, directory=tmp_path / name)
        if handler is not None:
            (folder / "handler.py").write_text(handler)
        return folder

    return make

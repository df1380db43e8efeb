"""pytest plugin shipped with synapse_nb (registered through the ``pytest11`` entry point).

A plugin's own ``tests/`` use the ``plugin`` fixture, which activates the plugin folder that contains the test
file (the nearest parent with a ``manifest.yaml``) through the real runtime, in its sandbox::

    def test_scores_text(plugin):
        assert plugin.run({"text": "great"})["result"] == [0.8]

Each test gets a fresh activation that starts from an empty ``self.state`` and saves nothing, so tests do not
depend on each other. The folder under test is usually a working copy being edited, so its signature is not
enforced here (``synapse-cli plugin test`` says so); activation everywhere else does enforce it.

Kept import-light: pytest loads this module in every session of the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["find_plugin_folder", "plugin"]


def find_plugin_folder(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds a ``manifest.yaml``."""
    for folder in (start, *start.parents):
        if (folder / "manifest.yaml").is_file():
            return folder
    return None


@pytest.fixture
def plugin(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The plugin under test, activated in its sandbox for this test and torn down after it."""
    from .plugin import Plugin

    folder = find_plugin_folder(Path(request.path).parent)
    if folder is None:
        pytest.fail(f"the `plugin` fixture found no manifest.yaml above {request.path}", pytrace=False)
    loaded = Plugin(folder, state={}, insecure_allow_unsigned=True, warn=lambda _text: None)
    try:
        yield loaded
    finally:
        loaded.teardown()

"""pytest plugin shipped with synapse_nb (registered through the ``pytest11`` entry point).

A plugin's own ``tests/`` use the ``plugin`` fixture, which activates the plugin folder that contains the test
file (the nearest parent with a ``manifest.yaml``)::

    def test_scores_text(plugin):
        assert plugin.run({"text": "great"})["result"] == [0.8]

``synapse-cli plugin test`` (and ``%synapse test``) run the whole pytest session *inside the plugin's jail*
(see :mod:`synapse_nb.sandbox.testsession`): there the fixture runs the handler in the session's own process,
because the jail around the session is the sandbox, with every host-side check of a real call (schemas, JSON,
size caps). Run directly with ``python -m pytest`` on the host, the fixture activates the plugin in its own
sandbox, but the test files themselves then run on the host: use ``synapse-cli plugin test`` for code you
did not write.

Each test gets a fresh activation that starts from an empty ``self.state`` and saves nothing, so tests do not
depend on each other. Kept import-light: pytest loads this module in every session of the environment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["InMemorySession", "find_plugin_folder", "plugin"]

_SESSION_FLAG = "SYNAPSE_TEST_SESSION"  # set by the jailed test session (testsession.ENV_FLAG)


def find_plugin_folder(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds a ``manifest.yaml``."""
    for folder in (start, *start.parents):
        if (folder / "manifest.yaml").is_file():
            return folder
    return None


class InMemorySession:
    """``context.session`` inside a jailed test session: a dict with TTLs, gone when the test ends."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[Any, float | None]] = {}

    def get(self, key: str, default: Any = None) -> Any:
        value, expires = self._data.get(key, (None, None))
        if expires is not None and expires <= time.monotonic():
            self._data.pop(key, None)
            return default
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._data[key] = (value, time.monotonic() + ttl if ttl is not None else None)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)


def _in_jail(folder: Path, isolation: str) -> Any:
    from .activation import ActivationOptions, in_place
    from .inprocess import InProcessPlugin
    from .runners import InProcessRunner

    plan = in_place(folder, ActivationOptions(warn=lambda _text: None))
    runner = InProcessRunner(
        folder, plugin=plan.name, version=str(plan.manifest.version), entrypoint=plan.manifest.execution.entrypoint,
        secrets={}, state={}, isolation=f"{isolation} (test session)", max_output_bytes=plan.policy.max_output_bytes,
        max_state_bytes=plan.policy.max_state_bytes, session=InMemorySession(),
    )  # fmt: skip
    handle = InProcessPlugin(plan, runner)
    handle.activate()
    return handle


@pytest.fixture
def plugin(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The plugin under test, activated for this test and torn down after it."""
    folder = find_plugin_folder(Path(request.path).parent)
    if folder is None:
        pytest.fail(f"the `plugin` fixture found no manifest.yaml above {request.path}", pytrace=False)
    isolation = os.environ.get(_SESSION_FLAG)
    if isolation:
        loaded = _in_jail(folder, isolation)
    else:
        from .plugin import load

        loaded = load(folder, state={}, insecure_allow_unsigned=True, warn=lambda _text: None)
    try:
        yield loaded
    finally:
        loaded.teardown()

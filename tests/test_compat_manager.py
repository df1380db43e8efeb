"""`PluginManager.load` of a new version over a running one: the compat gate, and state only across compatible ones.

The runner is the fake of ``test_manager_unit`` (a unit seam: no nsjail needed); snapshot, manifest, schemas,
the compat verdict, the state store and the lifecycle are the real ones. The plugins are unsigned and the manager
runs with the explicit waiver, because the sign-time gate (:mod:`synapse_nb.compat.gate`) would refuse the very
versions this gate must refuse on its own (a version signed elsewhere, a folder edited without re-signing).
The state rule (carried over only across compatible versions) runs under the real sandbox, signed, at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.activation import Activation
from synapse_nb.compat import CompatibilityError
from synapse_nb.errors import SignatureError
from synapse_nb.manager import PluginManager, Stage
from synapse_nb.signing import sign_folder

from .sandbox_helpers import require_nsjail, write_plugin
from .test_manager_unit import FakeRunner

TEXT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def edit(folder: Path, version: str, *, input_schema: dict[str, Any] | None = None) -> None:
    """Rewrite the folder in place, as an editor or a notebook cell does: a new version, maybe a new schema."""
    manifest = folder / "manifest.yaml"
    text = manifest.read_text()
    current = next(line for line in text.splitlines() if line.strip().startswith("version:"))
    manifest.write_text(text.replace(current, f"  version: {version}"))
    if input_schema is not None:
        (folder / "schemas" / "input_schema.json").write_text(json.dumps(input_schema))


@pytest.fixture
def folder(make_plugin: Any) -> Path:
    made: Path = make_plugin("grow")
    for old in made.glob("synapse.sig.json"):
        old.unlink()
    edit(made, "1.0.0", input_schema=TEXT)
    (made / "schemas" / "output_schema.json").write_text(json.dumps({"type": "object"}))  # the fake's echo
    return made


def fake_manager(**kwargs: Any) -> PluginManager:
    def factory(plan: Activation) -> FakeRunner:
        return FakeRunner(plan)

    return PluginManager(runner_factory=factory, insecure_allow_unsigned=True, **kwargs)


@pytest.fixture
def manager() -> Any:
    m = fake_manager()
    yield m
    m.teardown_all()


def run_three(manager: PluginManager) -> None:
    for _ in range(3):
        manager.run("grow", {"text": "a"})


def test_a_compatible_new_version_replaces_the_running_one_and_keeps_its_state(
    folder: Path, manager: PluginManager
) -> None:
    first = manager.load(folder)
    run_three(manager)
    edit(folder, "1.1.0", input_schema={**TEXT, "properties": {**TEXT["properties"], "lang": {"type": "string"}}})
    second = manager.load(folder)
    assert first.released
    assert second.version == "1.1.0"
    assert manager.run("grow", {"text": "b", "lang": "en"}) == {"echo": {"text": "b", "lang": "en"}}


def test_a_breaking_change_under_a_minor_bump_is_refused_and_the_running_version_stays(
    folder: Path, manager: PluginManager
) -> None:
    first = manager.load(folder)
    run_three(manager)
    needs_lang = {**TEXT, "properties": {**TEXT["properties"], "lang": {"type": "string"}}, "required": ["lang"]}
    edit(folder, "1.1.0", input_schema=needs_lang)
    with pytest.raises(CompatibilityError, match=r"required property 'lang' added.* needs a major bump") as caught:
        manager.load(folder)
    message = str(caught.value)
    assert "1.0.0 -> 1.1.0 is a minor bump; use version 2.0.0" in message
    assert "\n" not in message
    assert caught.value.exit_code == 3
    assert not first.released
    assert manager.get("grow").stage is Stage.ACTIVE
    assert manager.run("grow", {"text": "still the old one"}) == {"echo": {"text": "still the old one"}}


def test_a_breaking_change_under_the_same_version_names_the_version_to_use(
    folder: Path, manager: PluginManager
) -> None:
    manager.load(folder)
    edit(folder, "1.0.0", input_schema={**TEXT, "properties": {"text": {"type": "integer"}}})
    with pytest.raises(CompatibilityError, match=r"but the version is still 1\.0\.0; use version 2\.0\.0"):
        manager.load(folder)
    edit(folder, "1.0.0", input_schema={**TEXT, "properties": {"text": {"type": "string", "maxLength": 9}}})
    with pytest.raises(CompatibilityError, match=r"use version 2\.0\.0"):  # a tightened constraint breaks callers
        manager.load(folder)


def test_a_lower_version_is_refused_unless_downgrades_are_allowed(folder: Path, tmp_path: Path) -> None:
    edit(folder, "1.4.0")
    strict = fake_manager()
    try:
        strict.load(folder)
        edit(folder, "1.3.0")
        with pytest.raises(
            SignatureError, match=r"downgrade: version 1\.3\.0 is lower than 1\.4\.0, the version"
        ) as info:
            strict.load(folder)
        assert info.value.exit_code == 4
        assert strict.get("grow").stage is Stage.ACTIVE  # refused before teardown: the running version stays
    finally:
        strict.teardown_all()
    edit(folder, "1.4.0")
    lenient = fake_manager(allow_downgrade=True)
    try:
        lenient.load(folder)
        edit(folder, "1.3.0")
        assert lenient.load(folder).version == "1.3.0"
    finally:
        lenient.teardown_all()


COUNTER = "self.state['n'] = self.state.get('n', 0) + 1\nreturn {'n': self.state['n']}"
OPTIONAL_LANG = {"properties": {"lang": {"type": "string"}}}


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    require_nsjail()
    return write_plugin(tmp_path / "counter", COUNTER, name="counter")


def count(manager: PluginManager) -> int:
    return int(manager.run("counter", {})["n"])


def test_state_carries_over_only_across_compatible_versions_in_the_sandbox(counter: Path) -> None:
    manager = PluginManager()
    try:
        manager.load(counter)
        assert [count(manager) for _ in range(3)] == [1, 2, 3]
        edit(counter, "1.1.0", input_schema=OPTIONAL_LANG)  # minor: an optional input property
        sign_folder(counter)
        manager.load(counter)
        assert count(manager) == 4
        edit(counter, "2.0.0", input_schema={**OPTIONAL_LANG, "required": ["lang"]})  # major: now required
        sign_folder(counter)
        manager.load(counter)
        assert manager.run("counter", {"lang": "en"}) == {"n": 1}
    finally:
        manager.teardown_all()


def test_a_new_major_number_with_nothing_broken_keeps_the_state_in_the_sandbox(counter: Path) -> None:
    manager = PluginManager()
    try:
        manager.load(counter)
        assert [count(manager) for _ in range(2)] == [1, 2]
        edit(counter, "2.0.0")
        sign_folder(counter)
        assert manager.load(counter).version == "2.0.0"
        assert count(manager) == 3
    finally:
        manager.teardown_all()

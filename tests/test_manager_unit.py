"""The manager's lifecycle and the call pipeline with a fake runner: real coverage on a host without nsjail.

The fake runner satisfies :class:`synapse_nb.invocation.Runner` and answers in this process with plain Python (no
plugin code is imported); everything around it is the real thing: snapshot, signature, static validation, the
manager's state machine, the host-side checks, counters, events and metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.activation import Activation
from synapse_nb.errors import PluginFailed, SynapseError, UsageError, ValidationError
from synapse_nb.invocation import CallEvent, Execution
from synapse_nb.manager import LifecycleEvent, PluginManager, Stage
from synapse_nb.sandbox.worker import StartInfo
from synapse_nb.signing import sign_folder


class FakeRunner:
    """Echoes ``{"echo": payload}``; a payload with ``"fail"`` raises like a failing plugin would."""

    def __init__(self, plan: Activation) -> None:
        self.plan = plan
        self.started: StartInfo | None = None
        self.closed = False
        self.calls: list[Any] = []
        self.stop_error: str | None = None

    isolation = "fake"
    worker = None

    @property
    def last_start(self) -> StartInfo | None:
        return self.started

    def start(self) -> StartInfo | None:
        if self.started is not None:
            return None
        self.started = StartInfo(handler_class="Fake", cold_start_ms=1.0, setup_ms=0.5)
        return self.started

    def _answer(self, payload: Any) -> Any:
        self.calls.append(payload)
        if isinstance(payload, dict) and payload.get("fail"):
            raise PluginFailed("ValueError: asked to fail", plugin=self.plan.name)
        if isinstance(payload, dict) and payload.get("bad_output"):
            return {"echo": 12345}
        return {"echo": payload}

    def execute(self, body: bytes, *, endpoint: str | None, timeout_ms: int | None) -> Execution:
        result = self._answer(json.loads(body))
        return Execution(result=result, handler_ms=0.1, queue_ms=0.0, total_ms=0.2)

    def execute_batch(self, bodies: list[bytes], *, endpoint: str | None, timeout_ms: int | None) -> Execution:
        return Execution([self._answer(json.loads(b)) for b in bodies], handler_ms=0.1, queue_ms=0.0, total_ms=0.2)

    def execute_many(self, bodies: list[bytes]) -> list[Execution | SynapseError | None]:
        out: list[Execution | SynapseError | None] = []
        for body in bodies:
            try:
                out.append(self.execute(body, endpoint=None, timeout_ms=None))
            except SynapseError as exc:
                out.append(exc)
        return out

    def state(self) -> dict[str, Any]:
        return {"calls": len(self.calls)}

    def close(self) -> dict[str, Any]:
        self.closed = True
        return self.state()


OUTPUT = {"type": "object", "properties": {"echo": {"type": ["object", "string"]}}, "required": ["echo"]}


@pytest.fixture
def plugin_dir(make_plugin: Any) -> Path:
    folder: Path = make_plugin("echo-plugin")
    (folder / "schemas" / "input_schema.json").write_text(json.dumps({"type": ["object", "string"]}))
    (folder / "schemas" / "output_schema.json").write_text(json.dumps(OUTPUT))
    manifest = folder / "manifest.yaml"
    manifest.write_text(
        manifest.read_text().replace("primary: /v1/process", "primary: /v1/echo\n        analyze: /v1/analyze")
    )
    sign_folder(folder)
    return folder


@pytest.fixture
def manager() -> Any:
    runners: list[FakeRunner] = []

    def factory(plan: Activation) -> FakeRunner:
        runner = FakeRunner(plan)
        runners.append(runner)
        return runner

    m = PluginManager(runner_factory=factory)
    m.runners = runners  # type: ignore[attr-defined]
    yield m
    m.teardown_all()


def test_loading_goes_through_the_five_stages_once(plugin_dir: Path, manager: PluginManager) -> None:
    events: list[LifecycleEvent] = []
    manager.subscribe(events.append)
    plugin = manager.load(plugin_dir)
    assert [e.stage for e in events] == [Stage.DISCOVERED, Stage.VALIDATED, Stage.ACTIVATING, Stage.ACTIVE]
    assert plugin.run({"a": 1}) == {"echo": {"a": 1}}
    assert plugin.isolation == "fake"
    assert set(plugin.activation.timings) >= {"snapshot", "plan", "verify", "validate", "publisher"}


def test_loading_the_same_folder_again_returns_the_running_handle(plugin_dir: Path, manager: PluginManager) -> None:
    first = manager.load(plugin_dir)
    assert manager.load(plugin_dir) is first
    manager.teardown("echo-plugin")
    again = manager.load(plugin_dir)  # after teardown: a new activation, no "cannot go from" error
    assert again is not first
    assert manager.get("echo-plugin").stage is Stage.ACTIVE


def test_loading_a_changed_folder_replaces_the_running_version(plugin_dir: Path, manager: PluginManager) -> None:
    first = manager.load(plugin_dir)
    (plugin_dir / "README.md").write_text("changed\n")
    sign_folder(plugin_dir)
    second = manager.load(plugin_dir)
    assert second is not first
    assert first.released
    assert manager.runners[0].closed  # type: ignore[attr-defined]
    assert second.digest != first.digest


def test_counts_events_and_metadata_come_from_one_pipeline(plugin_dir: Path, manager: PluginManager) -> None:
    plugin = manager.load(plugin_dir)
    seen: list[CallEvent] = []
    plugin.listeners.append(seen.append)
    invocation = plugin.invoke("x")
    assert invocation.meta["plugin"] == "echo-plugin"
    assert invocation.meta["signed"] is True
    assert invocation.meta["cold_start_ms"] == 0.0  # started at activation
    assert plugin.run_batch(["a", "b"]) == [{"echo": "a"}, {"echo": "b"}]  # a batch counts too
    with pytest.raises(PluginFailed):
        plugin.run({"fail": True})
    with pytest.raises(ValidationError, match="output failed validation"):
        plugin.run({"bad_output": True})
    with pytest.raises(ValidationError, match="input failed validation"):
        plugin.run(5)
    assert [(e.kind, e.stage, e.items) for e in seen] == [
        ("call", "done", 1), ("batch", "done", 2), ("call", "execute", 1), ("call", "output", 1), ("call", "input", 1),
    ]  # fmt: skip
    row = manager.status().set_index("name").loc["echo-plugin"]
    assert (row["calls"], row["errors"]) == (3, 3)


def test_a_managed_batch_is_executing_while_it_runs(plugin_dir: Path, manager: PluginManager) -> None:
    manager.load(plugin_dir)
    events: list[LifecycleEvent] = []
    manager.subscribe(events.append)
    invocation = manager.invoke_batch("echo-plugin", ["a", "b"])
    assert invocation.result == [{"echo": "a"}, {"echo": "b"}]
    assert invocation.meta["batch_size"] == 2
    assert manager.run_batch("echo-plugin", ["c"]) == [{"echo": "c"}]
    assert [e.activity for e in events if e.stage is Stage.ACTIVE] == ["executing", "idle"] * 2


def test_jobs_go_through_the_same_checks(plugin_dir: Path, manager: PluginManager) -> None:
    plugin = manager.load(plugin_dir)
    jobs = [plugin.submit({"n": i}) for i in range(5)]
    assert [j.result(timeout=5) for j in jobs] == [{"echo": {"n": i}} for i in range(5)]
    failing = plugin.submit({"fail": True})
    with pytest.raises(PluginFailed):
        failing.result(timeout=5)
    assert plugin.calls == 5
    assert plugin.errors == 1


def test_endpoints_are_routed_by_key_or_path_and_unknown_ones_list_the_valid(
    plugin_dir: Path, manager: PluginManager
) -> None:
    plugin = manager.load(plugin_dir)
    assert plugin.invoke("x", endpoint="/v1/analyze").meta["endpoint"] == "analyze"
    assert plugin.invoke("x", endpoint="analyze").meta["endpoint"] == "analyze"
    assert "endpoint" not in plugin.invoke("x", endpoint="primary").meta
    with pytest.raises(UsageError, match=r"unknown endpoint 'nope'; valid: primary, /v1/echo, analyze, /v1/analyze"):
        plugin.run("x", endpoint="nope")


def test_a_caller_deadline_only_shortens_the_timeout(plugin_dir: Path, manager: PluginManager) -> None:
    plugin = manager.load(plugin_dir)
    assert plugin.pipeline._timeout(None) == plugin.policy.timeout_ms
    assert plugin.pipeline._timeout(10) == 10
    assert plugin.pipeline._timeout(10**9) == plugin.policy.timeout_ms
    with pytest.raises(SynapseError, match="deadline had already passed"):
        plugin.run("x", timeout_ms=0)


def test_discovery_searches_folders_of_folders_and_skips_environments(
    plugin_dir: Path, manager: PluginManager, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "workspace"
    nested = root / "team" / "nlp" / "echo-plugin"
    shutil.copytree(plugin_dir, nested)
    venv = root / ".venv" / "lib" / "bogus"
    venv.mkdir(parents=True)
    (venv / "manifest.yaml").write_text("not: a plugin\n")
    site = root / "env" / "site-packages" / "x"
    site.mkdir(parents=True)
    (site / "manifest.yaml").write_text("not: a plugin\n")
    found = manager.discover(root)
    assert [r.path for r in found] == [nested]
    assert found[0].stage is Stage.VALIDATED


def test_a_failed_activation_is_a_failed_record_with_its_error(plugin_dir: Path, manager: PluginManager) -> None:
    (plugin_dir / "handler.py").write_text("class (:\n")
    with pytest.raises(SynapseError, match="tampered") as info:
        manager.load(plugin_dir)
    record = manager.get("echo-plugin")
    assert record.stage is Stage.FAILED
    assert record.error is info.value


def test_validate_sign_and_activation_apply_the_same_rules(plugin_dir: Path, manager: PluginManager) -> None:
    from synapse_nb.anatomy import validate_folder

    for test_file in (plugin_dir / "tests").iterdir():
        test_file.unlink()
    for check in (validate_folder, sign_folder):
        with pytest.raises(SynapseError, match=r"tests/: missing or holds no pytest file"):
            check(plugin_dir)

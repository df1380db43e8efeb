"""Execution policies through the magics of a real IPython InteractiveShell (and the same through the API):
``%synapse run --no-cache / --idempotency-key``, ``%synapse emit``, ``%synapse status`` and the lifecycle widget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from synapse_nb.notebook.widgets import LifecycleWidget

from .sandbox_helpers import require_nsjail, write_plugin
from .test_notebook import magics
from .test_policies import CRASH_ONCE, with_spec

COUNTER = "self.state['n'] = self.state.get('n', 0) + 1\nreturn {'n': self.state['n'], 'q': data.get('q')}"

EVENT = """
from synapse.sdk import BaseHandler

class Audit(BaseHandler):
    def execute(self, data):
        self.state["seen"] = self.state.get("seen", []) + [data["order"]]
        return {"audited": data["order"]}
"""


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """A real InteractiveShell with the extension loaded, in a fresh working directory."""
    require_nsjail()
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("synapse_nb")
    try:
        yield ip
    finally:
        ip.extension_manager.unload_extension("synapse_nb")
        InteractiveShell.clear_instance()


@pytest.fixture(params=["magic", "api"])
def entry(request: pytest.FixtureRequest, shell: InteractiveShell) -> str:
    return str(request.param)


def load(shell: InteractiveShell, tmp_path: Path, name: str, body: str, spec: str = "", execution: str = "") -> Any:
    folder = write_plugin(tmp_path / name, body, name=name)
    if spec or execution:
        with_spec(folder, spec, execution=execution)
    assert shell.run_cell(f"_ = %synapse load {folder}").success
    return magics(shell).session.plugin(name)


def run(shell: InteractiveShell, entry: str, name: str, expr: str, options: str = "", **kwargs: Any) -> Any:
    """One call through ``%synapse run`` or through the API; the result (or the cell's error)."""
    if entry == "magic":
        cell = shell.run_cell(f"out = %synapse run {name} {expr} {options}")
        if not cell.success:
            return cell.error_in_exec
        return shell.user_ns["out"]
    try:
        return magics(shell).session.plugin(name).run(eval(expr), **kwargs)
    except Exception as exc:
        return exc


def test_cache_hits_and_no_cache(
    shell: InteractiveShell, entry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load(shell, tmp_path, "cached", COUNTER, spec="  cache: {ttl: 1h}\n")
    assert run(shell, entry, "cached", '{"q": 1}') == {"n": 1, "q": 1}
    assert run(shell, entry, "cached", '{"q": 1}') == {"n": 1, "q": 1}  # served from the cache
    assert run(shell, entry, "cached", '{"q": 1}', "--no-cache", cache=False) == {"n": 2, "q": 1}
    if entry == "magic":
        assert "answered without running (cache: hit)" in capsys.readouterr().out
    status = shell.run_cell("%synapse status").result.set_index("name")
    assert status.loc["cached", "cache_hit_rate"] == pytest.approx(1 / 2)
    assert status.loc["cached", "circuit"] == "closed"


def test_an_idempotency_key_runs_once(shell: InteractiveShell, entry: str, tmp_path: Path) -> None:
    load(shell, tmp_path, "keyed", COUNTER)
    for _ in range(3):
        out = run(shell, entry, "keyed", '{"q": 2}', "--idempotency-key order-9", idempotency_key="order-9")
        assert out == {"n": 1, "q": 2}
    error = run(shell, entry, "keyed", '{"q": 3}', "--idempotency-key order-9", idempotency_key="order-9")
    assert "reused with a different payload" in str(error)
    assert run(shell, entry, "keyed", '{"q": 2}') == {"n": 2, "q": 2}


def test_an_open_circuit_is_one_line_in_status_and_the_widget(shell: InteractiveShell, tmp_path: Path) -> None:
    plugin = load(shell, tmp_path, "breaker", "os._exit(3)", execution="    circuit: {failures: 2, reset: 60s}\n")
    widget = LifecycleWidget(magics(shell).session.manager, "breaker")
    for _ in range(2):
        assert not shell.run_cell("%synapse run breaker {}").success
    result = shell.run_cell("%synapse run breaker {}")
    assert not result.success
    assert "circuit open: 2 consecutive failures" in str(result.error_in_exec)
    assert plugin.policies.circuit.state == "open"
    assert shell.run_cell("%synapse status").result.set_index("name").loc["breaker", "circuit"] == "open"
    assert widget.to_json()["circuit"] == "open"
    assert "CIRCUIT OPEN: circuit closed -> open: 2 consecutive failures" in widget.to_text()
    assert 'circuit: <span class="err">open</span>' in widget.to_html()
    widget.close()


def test_emit_delivers_to_the_notebooks_event_plugins(shell: InteractiveShell, entry: str) -> None:
    assert shell.run_cell(f"%%synapse_plugin audit --trigger event --topic orders.created\n{EVENT}").success
    if entry == "magic":
        cell = shell.run_cell('deliveries = %synapse emit orders.created {"order": 5}')
        assert cell.success
        deliveries = shell.user_ns["deliveries"]
    else:
        deliveries = magics(shell).session.manager.emit("orders.created", {"order": 5})
    assert [(d.plugin, d.ok, d.result) for d in deliveries] == [("audit", True, {"audited": 5})]
    assert shell.run_cell("%synapse emit nobody.listens {}").success
    assert not shell.run_cell("%synapse emit").success


def test_batched_calls_from_threads_in_a_notebook(shell: InteractiveShell, tmp_path: Path) -> None:
    body = "return {'q': data['q']}"
    batch = """
def execute_batch(self, items):
    self.state["batches"] = self.state.get("batches", 0) + 1
    return [{"q": item["q"]} for item in items]
"""
    folder = write_plugin(tmp_path / "batched", body, name="batched", extra_methods=batch)
    with_spec(folder, "  batch: {max_batch_size: 8, max_delay_ms: 20}\n")
    assert shell.run_cell(f"_ = %synapse load {folder}").success
    shell.user_ns["p"] = magics(shell).session.plugin("batched")
    cell = shell.run_cell(
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(16) as pool:\n"
        "    outs = list(pool.map(lambda i: p.run({'q': i}), range(32)))\n"
    )
    assert cell.success, cell.error_in_exec
    assert shell.user_ns["outs"] == [{"q": i} for i in range(32)]
    assert shell.user_ns["p"].state["batches"] < 32


def test_an_idempotent_plugin_is_retried_from_a_cell(shell: InteractiveShell, entry: str, tmp_path: Path) -> None:
    load(shell, tmp_path, "retried", CRASH_ONCE, execution="    idempotent: true\n")
    assert run(shell, entry, "retried", "{}") == {"pid": True}
    record = magics(shell).session.plugin("retried").history[-1]
    assert record.stage == "done"

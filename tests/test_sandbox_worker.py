"""Warm workers under the real nsjail: reuse, the channel, limits on sizes, errors, replacement and state."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.errors import HandlerError, PluginCrashed, PluginFailed, ResourceLimitExceeded, ValidationError
from synapse_nb.plugin import load
from synapse_nb.sandbox.host import detect_host
from synapse_nb.sandbox.jail import JailLayout
from synapse_nb.sandbox.policy import SandboxPolicy
from synapse_nb.sandbox.protocol import ChannelClosed, FrameTooLarge, read_frame, write_frame
from synapse_nb.sandbox.worker import FairLock, Worker, WorkerSpec
from synapse_nb.signing import sign_folder

from .sandbox_helpers import require_nsjail, write_plugin

Make = Callable[..., Path]


@pytest.fixture
def make(tmp_path: Path) -> Make:
    require_nsjail()
    counter = iter(range(1000))

    def factory(body: str, **kwargs: object) -> Path:
        return write_plugin(tmp_path / f"p{next(counter)}", body, **kwargs)  # type: ignore[arg-type]

    return factory


def test_frames_round_trip_and_refuse_oversized_ones() -> None:
    r, w = os.pipe()
    try:
        write_frame(w, json.dumps({"a": "é" * 10}).encode())
        assert read_frame(r) == {"a": "é" * 10}
        write_frame(w, b'{"big": "' + b"x" * 100 + b'"}')
        with pytest.raises(FrameTooLarge, match="over the 50 byte limit"):
            read_frame(r, limit=50)
    finally:
        os.close(w)
    with pytest.raises(ChannelClosed):
        read_frame(r)
    os.close(r)


def test_fair_lock_serves_waiters_in_arrival_order() -> None:
    lock = FairLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for i in range(8):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        threads.append(t)
        time.sleep(0.01)  # let each one queue before the next
    lock.release()
    for t in threads:
        t.join()
    assert order == list(range(8))


def test_the_spec_example_runs_under_nsjail_from_the_cli(
    signed_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    assert main(["plugin", "run", str(signed_example), "--input", '{"text": "Great. Bad."}', "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["result"] == {"result": [0.8, -0.6]}
    assert out["meta"]["isolation"] == "nsjail"
    assert out["meta"]["plugin"] == "sentiment-analyzer"
    assert out["meta"]["cold_start_ms"] > 0
    assert set(out["meta"]) >= {"version", "duration_ms", "stdout", "stderr"}


def test_cli_run_reads_input_from_a_file_and_from_stdin(
    signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_nsjail()
    (tmp_path / "in.json").write_text('{"text": "I love it."}')
    assert main(["plugin", "run", str(signed_example), "--input", f"@{tmp_path / 'in.json'}"]) == 0
    assert json.loads(capsys.readouterr().out) == {"result": [0.8]}
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "awful"}'))
    assert main(["plugin", "run", str(signed_example)]) == 0
    assert json.loads(capsys.readouterr().out) == {"result": [-0.9]}


def test_cli_run_rejects_input_that_is_not_json_with_exit_3(
    example_plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugin", "run", str(example_plugin), "--input", "{text: hi}"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: input from --input is not valid JSON: Expecting property name")


def test_cli_run_errors_name_the_plugin_and_the_pointer(
    signed_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    assert main(["plugin", "run", str(signed_example), "--input", '{"text": 5}', "--json"]) == 3
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["ok"] is False
    assert out["error"]["code"] == "invalid"
    assert out["error"]["pointer"] == "/text"
    assert out["meta"]["isolation"] == "nsjail"
    assert captured.err.startswith("error: sentiment-analyzer: input failed validation against input_schema.json:")


def test_sandbox_config_prints_the_exact_jail(example_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_nsjail()
    assert main(["plugin", "sandbox-config", str(example_plugin)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# synapse_nb jail for sentiment-analyzer 1.2.0")
    assert "clone_newnet: true" in text
    assert 'dst: "/plugin"' in text
    assert "POLICY synapse_worker" in text


def test_a_warm_worker_serves_many_calls_with_one_cold_start(make: Make) -> None:
    with load(make("return {'pid': os.getpid(), 'n': data['n']}")) as plugin:
        worker = plugin.worker
        results = [plugin.run({"n": i}) for i in range(50)]
        assert [r["n"] for r in results] == list(range(50))
        assert plugin.worker is worker
        assert worker is not None
        assert worker.calls == 50


def test_concurrent_callers_all_get_their_own_results(make: Make) -> None:
    with load(make("time.sleep(0.001)\nreturn {'n': data['n']}")) as plugin:
        results: dict[int, object] = {}

        def call(i: int) -> None:
            results[i] = plugin.run({"n": i})

        threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {i: {"n": i} for i in range(40)}


def test_an_exception_in_the_handler_is_exit_7_with_its_location(make: Make) -> None:
    with load(make("x = data['missing']")) as plugin, pytest.raises(PluginFailed) as info:
        plugin.run({})
    assert info.value.exit_code == 7
    assert info.value.location == "handler.py:6 in execute"
    assert str(info.value) == "hostile: KeyError: 'missing' (handler.py:6 in execute)"


def test_an_import_error_fails_activation_with_exit_7(make: Make) -> None:
    folder = make("return {}")
    (folder / "handler.py").write_text((folder / "handler.py").read_text() + "\nimport not_a_module_anywhere\n")
    sign_folder(folder)
    with pytest.raises(PluginFailed, match="activation failed: ModuleNotFoundError: No module named"):
        load(folder)


def test_two_handler_classes_fail_signing_and_activation_with_exit_3(make: Make) -> None:
    folder = make("return {}")
    (folder / "handler.py").write_text(
        (folder / "handler.py").read_text() + "\nclass Second(BaseHandler):\n    def execute(self, d):\n        pass\n"
    )
    with pytest.raises(HandlerError, match="defines 2 handler classes") as info:
        sign_folder(folder)
    assert info.value.exit_code == 3
    with pytest.raises(HandlerError, match="defines 2 handler classes") as info:
        load(folder, insecure_allow_unsigned=True, warn=lambda _text: None)
    assert info.value.exit_code == 3


def test_oversized_input_is_refused_before_it_is_sent(make: Make, synapse_home: Path) -> None:
    (synapse_home / "config").write_text("limits:\n  max_payload_bytes: 1000\n")
    with load(make("return {}")) as plugin, pytest.raises(ResourceLimitExceeded) as info:
        plugin.run({"blob": "x" * 2000})
    assert info.value.limit == "max_payload_bytes"
    assert "over the payload limit of 1000 bytes" in str(info.value)


def test_oversized_output_is_exit_6_and_the_worker_survives(make: Make, synapse_home: Path) -> None:
    (synapse_home / "config").write_text("limits:\n  max_output_bytes: 10000\n")
    with load(make("return {'blob': 'x' * data['n']}")) as plugin:
        with pytest.raises(ResourceLimitExceeded) as info:
            plugin.run({"n": 20000})
        assert info.value.limit == "max_output_bytes"
        assert plugin.run({"n": 3}) == {"blob": "xxx"}


def test_a_crashed_worker_is_replaced_and_state_continues_from_the_checkpoint(make: Make) -> None:
    body = """
    self.state["n"] = self.state.get("n", 0) + 1
    if data.get("crash"):
        os._exit(9)
    return {"n": self.state["n"]}
    """
    with load(make(body)) as plugin:
        assert plugin.run({}) == {"n": 1}
        assert plugin.run({}) == {"n": 2}
        with pytest.raises(PluginCrashed, match="status 9"):
            plugin.run({"crash": True})
        assert plugin.run({}) == {"n": 3}  # the crashed call's increment is lost, nothing else
        assert plugin.state == {"n": 3}


def test_state_that_is_not_json_is_a_clear_error_and_the_old_state_is_kept(make: Make) -> None:
    body = """
    self.state["n"] = data["n"] if "n" in data else {1, 2}
    return {}
    """
    with load(make(body)) as plugin:
        plugin.run({"n": 1})
        with pytest.raises(PluginFailed, match=r"self\.state is not a JSON-serialisable dict"):
            plugin.run({})
        assert plugin.state == {"n": 1}


def test_teardown_returns_the_final_state(make: Make) -> None:
    folder = make("self.state['seen'] = data['x']\nreturn {}")
    plugin = load(folder, state={"seen": "before"})
    plugin.run({"x": "after"})
    assert plugin.teardown() == {"seen": "after"}
    assert plugin.worker is None


def test_batches_run_in_one_round_trip(make: Make) -> None:
    with load(make("return {'double': data['n'] * 2}")) as plugin:
        invocation = plugin.invoke_batch([{"n": i} for i in range(5)])
        assert invocation.result == [{"double": i * 2} for i in range(5)]
        assert plugin.worker is not None
        assert plugin.worker.calls == 1


def test_the_handler_validation_inside_the_jail_maps_to_exit_3(make: Make) -> None:
    folder = make("return {}")
    text = (
        (folder / "handler.py")
        .read_text()
        .replace(
            "    def execute(self, data):",
            "    def validate_input(self, payload):\n"
            "        if 'id' not in payload:\n"
            "            raise ValidationError('id is required', pointer='/id')\n"
            "        return payload\n\n"
            "    def execute(self, data):",
        )
    )
    (folder / "handler.py").write_text(
        text.replace(
            "from synapse_nb.sdk import BaseHandler", "from synapse_nb.sdk import BaseHandler, ValidationError"
        )
    )
    sign_folder(folder)
    with load(folder) as plugin, pytest.raises(ValidationError, match="/id: id is required") as info:
        plugin.run({})
    assert info.value.pointer == "/id"


def test_the_worker_uses_little_memory(make: Make) -> None:
    with load(make("return {}")) as plugin:
        plugin.run({})
        assert plugin.worker is not None
        assert 0 < plugin.worker.rss_bytes() < 30 << 20


def test_loading_the_same_file_set_twice_shares_one_warm_worker(make: Make) -> None:
    folder = make("self.state['n'] = self.state.get('n', 0) + 1\nreturn {'n': self.state['n']}")
    first = load(folder)
    second = load(folder)
    assert first.worker is second.worker
    assert second.last_start is first.last_start  # no second cold start
    assert first.run({}) == {"n": 1}
    assert second.run({}) == {"n": 2}
    first.teardown()
    assert second.worker is not None
    assert second.worker.alive
    assert second.teardown() == {"n": 2}


def test_a_changed_file_set_gets_its_own_worker(make: Make) -> None:
    folder = make("return {'v': 1}")
    with load(folder) as before:
        (folder / "handler.py").write_text((folder / "handler.py").read_text().replace("'v': 1", "'v': 2"))
        sign_folder(folder)
        with load(folder) as after:
            assert after.run({}) == {"v": 2}
            assert before.run({}) == {"v": 1}
            assert after.snapshot.digest != before.snapshot.digest


def test_a_worker_that_dies_between_calls_is_replaced_transparently(make: Make) -> None:
    import signal

    with load(make("self.state['n'] = self.state.get('n', 0) + 1\nreturn {'n': self.state['n']}")) as plugin:
        assert plugin.run({}) == {"n": 1}
        worker = plugin.worker
        assert worker is not None
        pid = worker.guest_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
        assert plugin.run({}) == {"n": 2}  # a new worker, state from the checkpoint
        assert plugin.worker is not worker


def test_activation_refuses_an_unsigned_plugin_with_exit_4(
    example_plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugin", "run", str(example_plugin), "--input", '{"text": "hi"}']) == 4
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: sentiment-analyzer: unsigned: no synapse.sig.json in {str(example_plugin)!r}; "
        f"sign it with `synapse-cli plugin sign {example_plugin}`"
    )
    assert len(err.strip().splitlines()) <= 3


def test_activation_refuses_a_plugin_changed_after_signing(
    signed_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = signed_example / "handler.py"
    handler.write_text(handler.read_text() + "\n# changed\n")
    assert main(["plugin", "run", str(signed_example), "--input", '{"text": "hi"}', "--json"]) == 4
    out = json.loads(capsys.readouterr().out)
    assert out["error"]["reason"] == "tampered"
    assert "handler.py modified" in out["error"]["message"]


def test_insecure_allow_unsigned_runs_with_a_warning_and_says_so(
    example_plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    args = ["plugin", "run", str(example_plugin), "--input", '{"text": "good"}', "--json", "--insecure-allow-unsigned"]
    assert main(args) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["meta"]["signed"] is False
    assert out["meta"]["signature_error"] == "unsigned"
    assert "warning: --insecure-allow-unsigned: running UNVERIFIED code" in captured.err


def test_results_name_the_signer(signed_example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_nsjail()
    assert main(["plugin", "run", str(signed_example), "--input", '{"text": "good"}', "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)["meta"]
    assert meta["signed"] is True
    assert meta["signer"].startswith("CN=")
    assert len(meta["signer_fingerprint"]) == 64


def test_environment_directories_are_mounted_at_guest_paths_with_their_pth_entries(make: Make, tmp_path: Path) -> None:
    site, src = tmp_path / "venv" / "site-packages", tmp_path / "src"
    site.mkdir(parents=True)
    src.mkdir()
    (src / "editmod.py").write_text("VALUE = 'from an editable install'\n")
    (site / "sitemod.py").write_text("VALUE = 'from site-packages'\n")
    (site / "__editable__.editmod.pth").write_text(f"{src}\n")
    folder = make(
        "import editmod, sitemod\n"
        "return {'edit': editmod.__file__, 'site': sitemod.__file__, 'value': editmod.VALUE, 'tmp': os.listdir('/tmp')}"
    )
    layout = JailLayout(plugin_dir=folder, site_dirs=(site,), extra_dirs=(src,))
    worker = Worker(WorkerSpec("hostile", "1.0.0", "digest", layout, SandboxPolicy()), detect_host())
    try:
        worker.start()
        result = worker.call(b"{}").result
    finally:
        worker.kill("test over")
    assert result == {
        "edit": "/opt/synapse/path/0/editmod.py",
        "site": "/opt/synapse/site/0/sitemod.py",
        "value": "from an editable install",
        "tmp": [],  # the host paths under /tmp left no mount points behind
    }

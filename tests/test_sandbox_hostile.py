"""Hostile plugins under the real nsjail: each is contained, gets the right exit code and a one-line message
naming the violated limit, leaks nothing to the host, and a good plugin keeps working afterwards."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from synapse_nb.errors import (
    PluginCrashed,
    PluginFailed,
    PluginTimeout,
    ResourceLimitExceeded,
    SynapseError,
    ValidationError,
)
from synapse_nb.plugin import Plugin, load

from .sandbox_helpers import jailed_pids, require_nsjail, write_plugin

pytestmark = pytest.mark.usefixtures("_nsjail")

Hostile = Callable[..., Plugin]


@pytest.fixture(scope="module")
def _nsjail() -> None:
    require_nsjail()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plugin]:
    """A well-behaved plugin that shares the host with every hostile one."""
    home = tmp_path_factory.mktemp("good-home")
    old = os.environ.get("SYNAPSE_HOME")
    os.environ["SYNAPSE_HOME"] = str(home)
    try:
        folder = write_plugin(tmp_path_factory.mktemp("good") / "good", "return {'echo': data}", name="good")
        plugin = load(folder)
    finally:
        if old is not None:
            os.environ["SYNAPSE_HOME"] = old
    yield plugin
    plugin.teardown()


@pytest.fixture
def hostile(tmp_path: Path, good: Plugin) -> Iterator[Hostile]:
    made: list[Plugin] = []

    def make(body: str, **kwargs: object) -> Plugin:
        plugin = load(write_plugin(tmp_path / f"p{len(made)}", body, **kwargs))  # type: ignore[arg-type]
        made.append(plugin)
        return plugin

    yield make
    for plugin in made:
        plugin.teardown()
    # The host keeps serving other plugins.
    assert good.run({"n": 1}) == {"echo": {"n": 1}}


def one_line(exc: SynapseError) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_fork_bomb_hits_the_process_limit(hostile: Hostile) -> None:
    plugin = hostile("while True:\n    os.fork()")
    with pytest.raises(ResourceLimitExceeded) as info:
        plugin.run({})
    assert info.value.exit_code == 6
    assert info.value.limit == "pids_max"
    assert "process limit exceeded: pids_max=64" in one_line(info.value)


def test_thread_bomb_hits_the_process_limit(hostile: Hostile) -> None:
    plugin = hostile("import threading\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,)).start()")
    with pytest.raises(ResourceLimitExceeded, match="pids_max=64") as info:
        plugin.run({})
    assert info.value.limit == "pids_max"


def test_memory_hog_is_killed_at_memory_mb(hostile: Hostile) -> None:
    plugin = hostile("hog = []\nwhile True:\n    hog.append(bytearray(8 << 20))", memory_mb=64)
    with pytest.raises(ResourceLimitExceeded) as info:
        plugin.run({})
    assert info.value.limit == "memory_mb"
    assert info.value.value == 64
    assert "memory limit exceeded: memory_mb=64" in one_line(info.value)


@pytest.mark.parametrize("body", ["while True:\n    pass", "time.sleep(30)"], ids=["cpu-spin", "sleep"])
def test_overrunning_the_timeout_is_exit_5_within_250_ms(hostile: Hostile, body: str) -> None:
    plugin = hostile(body, timeout="400ms")
    t0 = time.perf_counter()
    with pytest.raises(PluginTimeout) as info:
        plugin.run({})
    elapsed_ms = (time.perf_counter() - t0) * 1000
    assert info.value.exit_code == 5
    assert "no result within 400 ms" in one_line(info.value)
    assert elapsed_ms < 400 + 250
    # The worker was replaced: the plugin still answers (and times out again, for this body).
    with pytest.raises(PluginTimeout):
        plugin.run({})


def test_a_call_queued_behind_one_killed_for_its_timeout_runs_on_the_replacement(hostile: Hostile) -> None:
    plugin = hostile("if data.get('slow'):\n    time.sleep(30)\nreturn {'n': data['n']}", timeout="300ms")
    assert plugin.run({"n": 0}) == {"n": 0}
    outcome: dict[str, object] = {}

    def slow() -> None:
        try:
            plugin.run({"n": 1, "slow": True})
        except PluginTimeout as exc:
            outcome["slow"] = exc

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.1)  # the slow call holds the worker; this one waits its turn, then finds the worker killed
    assert plugin.run({"n": 2}) == {"n": 2}
    thread.join()
    assert isinstance(outcome["slow"], PluginTimeout)


def test_a_sigterm_ignoring_double_forked_grandchild_does_not_survive(hostile: Hostile) -> None:
    body = """
    import signal
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(1)
        os._exit(0)
    time.sleep(0.2)
    return {"ok": True}
    """
    plugin = hostile(body)
    assert plugin.run({}) == {"ok": True}
    worker = plugin.worker
    assert worker is not None
    assert worker.cgroup is not None
    inside = set(worker.cgroup.members())
    assert len(inside) >= 3  # nsjail, the guest and the grandchild
    guest = worker.guest_pid()
    assert guest is not None
    namespace = os.readlink(f"/proc/{guest}/ns/pid")  # the jail's pid namespace: every process it started
    plugin.teardown()
    # Killed processes are reaped by the host's init, which may take a moment on a busy machine.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in inside):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in inside)
    survivors = [pid for pid in jailed_pids() if _pid_namespace(pid) == namespace and _alive(pid)]
    assert survivors == []


def _alive(pid: int) -> bool:
    """A process that still runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def test_secrets_of_the_host_are_not_readable(hostile: Hostile, synapse_home: Path, tmp_path: Path) -> None:
    key = synapse_home / "keys" / "developer.key"
    key.parent.mkdir(parents=True)
    key.write_text("PRIVATE-KEY-CANARY")
    canary = Path("/tmp") / f"synapse-canary-{os.getpid()}"
    canary.write_text("HOST-TMP-CANARY")
    try:
        body = f"""
        out = {{}}
        for path in ["/etc/shadow", {str(key)!r}, {str(canary)!r}, {str(Path.home())!r} + "/.bashrc"]:
            try:
                with open(path) as fh:
                    out[path] = fh.read()
            except OSError as exc:
                out[path] = type(exc).__name__
        return out
        """
        result = hostile(body).run({})
    finally:
        canary.unlink()
    assert set(result.values()) <= {"FileNotFoundError", "PermissionError"}, result


def test_the_host_environment_is_not_visible(hostile: Hostile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNAPSE_TEST_CANARY", "HOST-ENV-CANARY")
    body = "return {'proc1': open('/proc/1/environ').read(), 'env': dict(os.environ)}"
    result = hostile(body).run({})
    assert "HOST-ENV-CANARY" not in result["proc1"]
    assert "SYNAPSE_TEST_CANARY" not in result["env"]
    assert result["env"]["HOME"] == "/tmp"


def test_writing_outside_tmp_fails_and_tmp_is_private(hostile: Hostile) -> None:
    body = """
    out = {}
    for path in ["/plugin/x", "/opt/synapse/lib/x", "/x", "/etc/passwd", "/proc/x"]:
        try:
            with open(path, "w") as fh:
                fh.write("x")
            out[path] = "written"
        except OSError as exc:
            out[path] = type(exc).__name__
    with open("/tmp/inside", "w") as fh:
        fh.write("ok")
    out["tmp"] = sorted(os.listdir("/tmp"))
    return out
    """
    plugin = hostile(body)
    result = plugin.run({})
    assert "written" not in [v for k, v in result.items() if k != "tmp"], result
    assert result["tmp"] == ["inside"]
    assert not (plugin.snapshot.path / "x").exists()


def test_filling_tmp_hits_its_size_limit(hostile: Hostile) -> None:
    body = """
    for i in range(1000):
        with open(f"/tmp/fill{i}", "wb") as fh:
            fh.write(b"x" * (4 << 20))
    """
    with pytest.raises(ResourceLimitExceeded) as info:
        hostile(body, memory_mb=256).run({})
    assert info.value.limit == "tmp_mb"
    assert "/tmp is full (tmp_mb=64)" in one_line(info.value)


def test_no_network_tcp_udp_or_dns(hostile: Hostile) -> None:
    with socket.socket() as listener, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.3)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.3)
        tcp_port, udp_port = listener.getsockname()[1], udp.getsockname()[1]
        body = f"""
        import socket
        out = {{}}
        try:
            socket.create_connection(("127.0.0.1", {tcp_port}), timeout=1)
            out["tcp"] = "connected"
        except OSError as exc:
            out["tcp"] = type(exc).__name__
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"leak", ("127.0.0.1", {udp_port}))
            s.sendto(b"leak", ("8.8.8.8", 53))
            out["udp"] = "sent"
        except OSError as exc:
            out["udp"] = type(exc).__name__
        try:
            socket.getaddrinfo("example.com", 443)
            out["dns"] = "resolved"
        except OSError as exc:
            out["dns"] = type(exc).__name__
        out["interfaces"] = [name for _, name in socket.if_nameindex()]
        return out
        """
        result = hostile(body).run({})
        with pytest.raises(TimeoutError):
            listener.accept()
        with pytest.raises(TimeoutError):
            udp.recvfrom(100)
    assert result["tcp"] == "ConnectionRefusedError"
    assert result["dns"] == "gaierror"
    assert result["interfaces"] == ["lo"]


def test_ptrace_unshare_and_mount_are_refused_by_seccomp(hostile: Hostile) -> None:
    body = """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}
    for name, nr, args in [("ptrace", 101, (16, 1, 0, 0)), ("unshare", 272, (0x10000000,)),
                           ("mount", 165, (0, 0, 0, 0, 0)), ("bpf", 321, (0, 0, 0)), ("setns", 308, (0, 0))]:
        result = libc.syscall(nr, *args)
        out[name] = [result, ctypes.get_errno()]
    return out
    """
    result = hostile(body).run({})
    assert result == {name: [-1, 1] for name in ("ptrace", "unshare", "mount", "bpf", "setns")}


def test_killing_the_parent_reaches_nothing_outside_the_jail(hostile: Hostile) -> None:
    body = f"""
    import signal
    out = {{"ppid": os.getppid()}}
    for target in (os.getppid(), {os.getpid()}, {os.getppid()}):
        try:
            os.kill(target, signal.SIGKILL)
            out[str(target)] = "sent"
        except OSError as exc:
            out[str(target)] = type(exc).__name__
    time.sleep(0.1)
    return out
    """
    plugin = hostile(body)
    result = plugin.run({})
    assert result["ppid"] == 0  # the host and nsjail are outside the jail's pid namespace
    assert result[str(os.getpid())] == "ProcessLookupError"
    assert plugin.worker is not None
    assert plugin.worker.alive
    assert os.getppid() > 1  # this test process and its parent are alive


def test_killing_pid_1_and_minus_1_affects_nothing_outside(hostile: Hostile) -> None:
    body = """
    import signal
    if os.fork() == 0:
        time.sleep(30)
    for target in (1, -1):
        try:
            os.kill(target, signal.SIGKILL)
        except OSError as exc:
            return {"error": type(exc).__name__}
    time.sleep(0.1)
    return {"alive": True, "pid": os.getpid()}
    """
    result = hostile(body).run({})
    assert result == {"alive": True, "pid": 1}


def test_100_mib_on_stdout_and_stderr_is_bounded(hostile: Hostile) -> None:
    body = """
    chunk = "x" * (1 << 20)
    for _ in range(100):
        sys.stdout.write(chunk)
        sys.stderr.write(chunk)
    raw = b"y" * (1 << 20)
    for _ in range(100):
        os.write(1, raw)
        os.write(2, raw)
    return {"done": True}
    """
    plugin = hostile(body, timeout="30s")
    invocation = plugin.invoke({})
    assert invocation.result == {"done": True}
    for stream in ("stdout", "stderr"):
        text = invocation.meta[stream]
        assert len(text) < 70 * 1024
        assert text.endswith(f"more characters dropped: max_log_bytes={64 * 1024}]")
    worker = plugin.worker
    assert worker is not None
    assert worker.stdout.total == 100 << 20
    assert len(worker.stdout.buf) <= 64 * 1024


def test_output_without_newline_and_invalid_utf8_is_shown_safely(hostile: Hostile) -> None:
    body = """
    print("no newline here", end="")
    sys.stdout.buffer.write(b"\\xff\\xfe bytes")
    os.write(1, b"raw \\xc3\\x28 fd")
    time.sleep(0.05)
    return {}
    """
    plugin = hostile(body)
    invocation = plugin.invoke({})
    assert invocation.meta["stdout"] == "no newline here\ufffd\ufffd bytes"
    assert plugin.worker is not None
    assert "raw \ufffd( fd" in plugin.worker.stdout.text()


def test_a_result_that_is_not_json_is_exit_7(hostile: Hostile) -> None:
    with pytest.raises(PluginFailed, match="returned something that is not JSON") as info:
        hostile("return {'a': {1, 2}}").run({})
    assert info.value.exit_code == 7


def test_an_output_schema_violation_is_exit_3(hostile: Hostile) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with pytest.raises(ValidationError, match=r"output failed validation against output_schema\.json: /n") as info:
        hostile("return {'n': 'not a number'}", output_schema=schema).run({})
    assert info.value.exit_code == 3
    assert info.value.direction == "output"


def test_a_segfault_is_a_crash_with_its_signal(hostile: Hostile) -> None:
    plugin = hostile("import ctypes\nctypes.string_at(0)")
    with pytest.raises(PluginCrashed) as info:
        plugin.run({})
    assert info.value.signal == "SIGSEGV"
    assert "worker crashed during a call: killed by SIGSEGV" in one_line(info.value)


def test_os_exit_is_a_crash_with_its_status(hostile: Hostile) -> None:
    with pytest.raises(PluginCrashed, match="worker exited during a call with status 3") as info:
        hostile("os._exit(3)").run({})
    assert info.value.status == 3


def test_disabling_validation_from_inside_changes_nothing(hostile: Hostile) -> None:
    body = """
    from synapse_nb import sdk, payloads
    sdk.BaseHandler.validate_with_schema = lambda self, name, payload: payload
    payloads.validate_output = lambda schemas, result: result
    try:
        with open("/plugin/schemas/output_schema.json", "w") as fh:
            fh.write("{}")
    except OSError:
        pass
    return {"n": "still not a number"}
    """
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    with pytest.raises(ValidationError, match="/n: 'still not a number' is not of type 'integer'"):
        hostile(body, output_schema=schema).run({})


def test_the_worker_runs_as_nobody_without_capabilities(hostile: Hostile) -> None:
    body = """
    status = open("/proc/self/status").read().splitlines()
    caps = [l.split()[1] for l in status if l.startswith(("CapEff", "CapPrm", "CapBnd"))]
    nnp = [l.split()[1] for l in status if l.startswith("NoNewPrivs")]
    return {"uid": os.getuid(), "gid": os.getgid(), "caps": caps, "nnp": nnp, "root": sorted(os.listdir("/")),
            "dev": sorted(os.listdir("/dev"))}
    """
    result = hostile(body).run({})
    assert (result["uid"], result["gid"]) == (65534, 65534)
    assert result["caps"][:2] == ["0000000000000000", "0000000000000000"]
    assert result["nnp"] == ["1"]
    assert result["dev"] == ["null", "urandom", "zero"]
    assert "home" not in result["root"]

"""Built dependency environments under the real nsjail, from local wheelhouses and a local index (no network).

Activation with a package the kernel lacks, the cache, offline and online sources, hash pinning, bytecode,
and the faults of the issue: a missing requirement, conflicting pins, a hostile sdist, a killed install, a full
disk and two activations of the same new environment at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.environments import Environment, EnvironmentStore, ProgressEvent, resolve_environment
from synapse_nb.errors import DependencyError, RegistryError, RequirementsError, ResourceLimitExceeded
from synapse_nb.plugin import load
from synapse_nb.requirements import parse_requirements
from synapse_nb.sandbox.host import detect_host
from synapse_nb.signing import sign_folder

from .sandbox_helpers import require_nsjail, write_plugin
from .wheelhouse import make_sdist, make_wheel, sha256_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _nsjail() -> None:
    require_nsjail()


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    """tinypkg 2.0 (needs tinydep>=1), tinydep 1.0 and 2.0: packages the kernel does not have."""
    house = tmp_path / "wheelhouse"
    make_wheel(house, "tinydep", "1.0")
    make_wheel(house, "tinydep", "2.0")
    make_wheel(
        house,
        "tinypkg",
        "2.0",
        {"tinypkg/__init__.py": "import tinydep\nVERSION = '2.0'\n\ndef double(x):\n    return 2 * x\n"},
        requires=("tinydep>=1",),
    )
    return house


def plugin_with(folder: Path, requirements: str, body: str, *, name: str = "needs-deps") -> Path:
    write_plugin(folder, body, name=name, sign=False)
    (folder / "requirements.txt").write_text(requirements)
    sign_folder(folder)
    return folder


def resolve(text: str, **kwargs: object) -> Environment:
    return resolve_environment(parse_requirements(text), plugin="demo", **kwargs)  # type: ignore[arg-type]


# -- done when: a package the kernel lacks, from a local wheelhouse, in the jail ---------------------------------
def test_a_plugin_needing_a_package_the_kernel_lacks_activates_and_runs_in_the_jail(
    tmp_path: Path, wheelhouse: Path
) -> None:
    folder = plugin_with(
        tmp_path / "p",
        "tinypkg==2.0\n",
        "import tinypkg, tinydep, sys\n"
        "return {'v': tinypkg.VERSION, 'dep': tinydep.VERSION, 'x': tinypkg.double(21), 'file': tinypkg.__file__,"
        " 'path': [p for p in sys.path if 'site-packages' in p or p.startswith('/opt/synapse/site')]}",
    )
    events: list[ProgressEvent] = []
    with load(folder, wheelhouse=wheelhouse, progress=events.append) as plugin:
        result = plugin.run({})
        assert plugin.isolation == "nsjail"
        env = plugin.environment
    assert env is not None
    assert env.kind == "built"
    assert env.built_now
    assert result["v"] == "2.0"
    assert result["x"] == 42
    assert result["dep"] == "2.0"  # the newest tinydep that satisfies tinydep>=1
    assert result["file"].startswith("/opt/synapse/site/0/")  # mounted at a guest path, not its host path
    assert result["path"] == ["/opt/synapse/site/0"]  # the kernel's site-packages are not on the plugin's path
    assert env.packages == ("tinydep==2.0", "tinypkg==2.0")
    phases = [e.phase for e in events]
    assert phases[0] == "resolving"
    assert phases[-1] == "done"
    assert {"downloading", "installing", "compiling"} <= set(phases)
    fractions = [e.fraction for e in events if e.fraction is not None]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0

    # The second activation, of another plugin with the same requirements, reuses the environment.
    again = plugin_with(tmp_path / "q", "tinypkg == 2.0\n", "import tinypkg\nreturn {'v': tinypkg.VERSION}", name="q")
    with load(again) as plugin:  # no wheelhouse: a cache hit needs no source at all
        assert plugin.run({}) == {"v": "2.0"}
        assert plugin.environment is not None
        assert not plugin.environment.built_now
        assert plugin.environment.key == env.key


def test_a_plugin_whose_needs_the_kernel_meets_reuses_the_kernel_environment(tmp_path: Path) -> None:
    folder = plugin_with(tmp_path / "p", "packaging>=20\nPyYAML\n", "import yaml\nreturn {'ok': True}")
    with load(folder) as plugin:
        assert plugin.run({}) == {"ok": True}
        env = plugin.environment
    assert env is not None
    assert env.kind == "kernel"
    assert env.path is None
    assert env.site_dirs == detect_host().site_dirs
    assert any(p.startswith("pyyaml==") for p in env.packages)
    assert not (Path(os.environ["SYNAPSE_HOME"]) / "envs").exists()  # nothing built


def test_a_syntax_error_on_line_3_names_the_line_at_sign_and_at_activation(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path / "p", "return {}", name="needs-deps")
    (folder / "requirements.txt").write_text("tinypkg\ntinydep\nnumpy >= = 1\n")
    with pytest.raises(RequirementsError, match=r"requirements.txt:3: 'numpy >= = 1' is not a PEP 508"):
        sign_folder(folder)  # the same static checks as validate and activation: nothing invalid gets signed
    with pytest.raises(RequirementsError, match=r"requirements.txt:3: 'numpy >= = 1' is not a PEP 508"):
        load(folder, insecure_allow_unsigned=True, warn=lambda _text: None)


# -- bad input ---------------------------------------------------------------------------------------------------
def test_a_requirement_that_does_not_exist_names_the_requirement_and_its_line(wheelhouse: Path) -> None:
    with pytest.raises(DependencyError, match=r"requirements.txt:2: no distribution of 'no-such-pkg'") as info:
        resolve("tinypkg==2.0\nno-such-pkg==1.0\n", wheelhouse=wheelhouse)
    assert info.value.exit_code == 3
    assert info.value.requirement == "no-such-pkg"
    assert info.value.line == 2
    assert "wheelhouse" in str(info.value)
    assert EnvironmentStore().keys() == []


def test_conflicting_pins_are_reported_with_both_lines(wheelhouse: Path) -> None:
    with pytest.raises(DependencyError, match="conflicting requirements") as info:
        resolve("tinydep==1.0\ntinydep==2.0\n", wheelhouse=wheelhouse)
    assert [p.line for p in info.value.problems] == [1, 2]


def test_a_pin_that_conflicts_with_a_dependency_names_the_requirement_that_brings_it(tmp_path: Path) -> None:
    house = tmp_path / "house"
    make_wheel(house, "tinydep", "1.0")
    make_wheel(house, "tinypkg", "2.0", requires=("tinydep>=2",))
    with pytest.raises(DependencyError, match=r"tinypkg==2\.0") as info:
        resolve("tinydep==1.0\ntinypkg==2.0\n", wheelhouse=house)
    assert any("depends on tinydep>=2" in d for d in info.value.details)


def test_hash_pinned_requirements_are_checked_and_always_built(tmp_path: Path) -> None:
    house = tmp_path / "house"
    wheel = make_wheel(house, "packaging", "99.0")  # a name the kernel has: hashes still force a build
    env = resolve(f"packaging==99.0 --hash={sha256_of(wheel)}\n", wheelhouse=house)
    assert env.kind == "built"
    assert env.packages == ("packaging==99.0",)

    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DependencyError, match=r"requirements.txt:1: hash check failed for packaging") as info:
        resolve(f"packaging==99.0 --hash={wrong}\nsix==1.0 --hash={wrong}\n", wheelhouse=house)
    assert info.value.requirement == "packaging"


# -- sources -----------------------------------------------------------------------------------------------------
def test_config_find_links_installs_offline_and_a_missing_wheel_names_the_requirement(
    wheelhouse: Path, synapse_home: Path
) -> None:
    (synapse_home / "config").write_text(f"environments:\n  find_links: [{str(wheelhouse)!r}]\n")
    env = resolve("tinydep<2\n")
    assert env.source == "wheelhouse"
    assert env.packages == ("tinydep==1.0",)
    with pytest.raises(
        DependencyError, match=r"no distribution of 'tinydep' matches 'tinydep>=3'.*available: 1.0, 2.0"
    ):
        resolve("tinydep>=3\n")


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[tuple[Path, str, list[str]]]:
    """A PEP 503 index served over HTTP on loopback: (its folder, its /simple/ URL, the paths requested)."""
    import functools
    import http.server

    root = tmp_path / "index"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

        def end_headers(self) -> None:
            if self.path.startswith("/files/"):  # as PyPI serves files: immutable, cache forever
                self.send_header("Cache-Control", "max-age=365000000, immutable, public")
            super().end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/simple/", requests
    server.shutdown()
    thread.join()
    server.server_close()


def publish(root: Path, files: list[Path]) -> None:
    """Put ``files`` on the index: /files/NAME, and a /simple/PROJECT/ page linking them with their sha256."""
    (root / "files").mkdir(exist_ok=True)
    by_name: dict[str, list[Path]] = {}
    for f in files:
        shutil.copy(f, root / "files" / f.name)
        by_name.setdefault(f.name.split("-")[0].replace("_", "-").lower(), []).append(f)
    for name, group in by_name.items():
        page = root / "simple" / name
        page.mkdir(parents=True)
        links = "".join(
            f'<a href="../../files/{f.name}#sha256={hashlib.sha256(f.read_bytes()).hexdigest()}">{f.name}</a>\n'
            for f in group
        )
        (page / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")


def test_online_builds_download_binary_wheels_on_the_host_and_install_in_the_jail(
    tmp_path: Path, wheelhouse: Path, synapse_home: Path, index_server: tuple[Path, str, list[str]]
) -> None:
    root, url, requests = index_server
    sdist = make_sdist(tmp_path / "sdists", "onlysource", "1.0", "SEEN = {}\n")
    publish(root, [*sorted(wheelhouse.iterdir()), sdist])
    (synapse_home / "config").write_text(f"environments:\n  index_url: {url!r}\n")
    events: list[ProgressEvent] = []
    env = resolve("tinypkg\n", progress=events.append)
    assert env.source == "index"
    assert env.packages == ("tinydep==2.0", "tinypkg==2.0")
    assert any(e.phase == "downloading" and "tinypkg" in e.message for e in events)
    assert "/files/tinypkg-2.0-py3-none-any.whl" in requests
    # Another environment with the same packages takes them from the shared cache, not the index.
    requests.clear()
    other = resolve("tinypkg>=1\ntinydep>=1\n")
    assert other.key != env.key
    assert other.packages == env.packages
    assert [r for r in requests if r.startswith("/files/")] == []
    # An sdist is never built from an index (that would need network in the jail): it needs a wheelhouse.
    with pytest.raises(DependencyError, match="no distribution of 'onlysource'") as info:
        resolve("onlysource==1.0\n")
    assert any("--wheelhouse" in d for d in info.value.details)


def test_an_unreachable_index_is_a_registry_error(synapse_home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    (synapse_home / "config").write_text(f"environments:\n  index_url: http://127.0.0.1:{port}/simple/\n")
    with pytest.raises(RegistryError, match="cannot reach the package index") as info:
        resolve("tinypkg\n")
    assert info.value.exit_code == 9


# -- containment ------------------------------------------------------------------------------------------------
SPY = """
import os, socket
SEEN = {{"uid": os.getuid(), "home_var": os.path.expanduser("~")}}
try:
    SEEN["home"] = sorted(os.listdir({home!r}))
except OSError as exc:
    SEEN["home"] = "error: " + exc.strerror
try:
    SEEN["secret"] = open({secret!r}).read()
except OSError as exc:
    SEEN["secret"] = "error: " + exc.strerror
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leak")
    SEEN["socket"] = "connected"
except OSError as exc:
    SEEN["socket"] = "error: " + str(exc)
try:
    socket.create_connection(("pypi.org", 443), timeout=2)
    SEEN["internet"] = "connected"
except OSError as exc:
    SEEN["internet"] = "error: " + str(exc)
"""


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on the host's loopback that records whatever connects to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            got.append(conn.recv(100) or b"(connected)")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], got
    stop.set()
    thread.join()
    server.close()


def test_an_sdist_build_cannot_read_the_home_or_synapse_home_nor_open_a_socket(
    tmp_path: Path, synapse_home: Path, listener: tuple[int, list[bytes]]
) -> None:
    port, connections = listener
    secret = synapse_home / "keys" / "secret.key"
    secret.parent.mkdir()
    secret.write_text("private")
    home = str(Path.home())
    house = tmp_path / "house"
    make_sdist(house, "spy", "1.0", SPY.format(home=home, secret=str(secret), port=port))
    env = resolve("spy==1.0\n", wheelhouse=house)
    seen = {}
    exec((env.site_dirs[0] / "spy_seen.py").read_text(), seen)  # what the build script saw, from its output
    saw = seen["SEEN"]
    assert saw["uid"] == 65534
    assert saw["secret"].startswith("error")
    assert saw["socket"].startswith("error")
    assert saw["internet"].startswith("error")
    assert connections == []
    host = detect_host()
    # The home shows at most the path down to the mounted interpreter, never its other entries.
    visible = {p.relative_to(home).parts[0] for p in (host.python_prefix,) if p.is_relative_to(home)}
    assert saw["home"] == "error: No such file or directory" or set(saw["home"]) <= visible
    assert saw["home_var"] == "/tmp"


# -- faults ------------------------------------------------------------------------------------------------------
def _installer_pid(envs: Path, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid_file in envs.glob(".staging-*/installer.pid"):
            text = pid_file.read_text().strip()
            if text:
                return int(text)
        time.sleep(0.02)
    raise AssertionError("no installer started")


def test_an_install_killed_half_way_leaves_nothing_and_the_next_activation_rebuilds(
    tmp_path: Path, synapse_home: Path
) -> None:
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    make_sdist(slow, "slowpkg", "1.0", "SEEN = {'build': 'slow'}\n", sleep=60)
    make_sdist(fast, "slowpkg", "1.0", "SEEN = {'build': 'fast'}\n")
    envs = synapse_home / "envs"

    def kill_when_building(event: ProgressEvent) -> None:
        if event.phase == "building":
            os.kill(_installer_pid(envs), signal.SIGKILL)

    t0 = time.monotonic()
    with pytest.raises(DependencyError, match="killed by SIGKILL; nothing was kept"):
        resolve("slowpkg==1.0\n", wheelhouse=slow, progress=kill_when_building)
    assert time.monotonic() - t0 < 30  # the whole jail died with the installer
    assert EnvironmentStore().keys() == []
    assert not list(envs.glob(".staging-*"))
    env = resolve("slowpkg==1.0\n", wheelhouse=fast)
    assert env.built_now
    assert (env.site_dirs[0] / "slowpkg_seen.py").read_text() == "SEEN = {'build': 'fast'}\n"


def test_a_build_whose_host_process_is_killed_is_cleaned_up_by_the_next_one(tmp_path: Path, synapse_home: Path) -> None:
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    make_sdist(slow, "slowpkg", "1.0", "SEEN = {'build': 'slow'}\n", sleep=60)
    make_sdist(fast, "slowpkg", "1.0", "SEEN = {'build': 'fast'}\n")
    code = (
        "from synapse_nb.environments import resolve_environment; from synapse_nb.requirements import "
        f"parse_requirements as p; resolve_environment(p('slowpkg==1.0'), plugin='x', wheelhouse={str(slow)!r})"
    )
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ))
    envs = synapse_home / "envs"
    try:
        orphan = _installer_pid(envs)
        time.sleep(1.0)  # inside the sdist's build by now
    finally:
        child.kill()
        child.wait()
    assert list(envs.glob(".staging-*"))  # what the killed process left behind: a staging folder, never an env
    assert Path(f"/proc/{orphan}").exists()  # and its installer, still running
    env = resolve("slowpkg==1.0\n", wheelhouse=fast)
    assert (env.site_dirs[0] / "slowpkg_seen.py").read_text() == "SEEN = {'build': 'fast'}\n"
    assert not list(envs.glob(".staging-*"))
    for _ in range(100):  # the orphaned installer was killed (give the kernel a moment to reap it)
        status = Path(f"/proc/{orphan}/status")
        if not status.exists() or "zombie" in status.read_text():
            break
        time.sleep(0.02)
    else:
        raise AssertionError(f"orphaned installer {orphan} still running")


@pytest.fixture
def small_disk(synapse_home: Path) -> Iterator[Path]:
    """SYNAPSE_HOME/envs on a 2 MiB tmpfs."""
    envs = synapse_home / "envs"
    envs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "synapse-test-full", str(envs)], check=True)
    try:
        yield envs
    finally:
        subprocess.run(["umount", "-l", str(envs)], check=True)


def test_a_full_disk_is_a_clear_resource_error_and_leaves_no_environment(tmp_path: Path, small_disk: Path) -> None:
    house = tmp_path / "house"
    make_wheel(house, "bigpkg", "1.0", {"bigpkg/blob.bin": os.urandom(3 << 20), "bigpkg/__init__.py": ""})
    with pytest.raises(ResourceLimitExceeded, match="no space left") as info:
        resolve("bigpkg==1.0\n", wheelhouse=house)
    assert info.value.limit == "disk"
    assert info.value.exit_code == 6
    assert [p.name for p in small_disk.iterdir() if not p.name.endswith(".lock")] == []


def test_two_activations_of_the_same_new_environment_build_it_once(tmp_path: Path, wheelhouse: Path) -> None:
    results: list[Environment] = []
    builds: list[str] = []

    def activate() -> None:
        def on(event: ProgressEvent) -> None:
            if event.phase == "installing":
                builds.append(threading.current_thread().name)

        results.append(resolve("tinypkg==2.0\n", wheelhouse=wheelhouse, progress=on))

    threads = [threading.Thread(target=activate, name=f"t{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert len({e.key for e in results}) == 1
    assert sorted(e.built_now for e in results) == [False, True]
    assert len(set(builds)) == 1
    assert EnvironmentStore().keys() == [results[0].key]


# -- bytecode ----------------------------------------------------------------------------------------------------
def test_bytecode_is_precompiled_unchecked_for_every_module(wheelhouse: Path) -> None:
    env = resolve("tinypkg==2.0\n", wheelhouse=wheelhouse)
    site = env.site_dirs[0]
    sources = sorted(site.rglob("*.py"))
    assert sources
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, source  # hash-based, source not checked: nothing to stat on a read-only mount
    assert env.bytecode_files == len(sources)


# -- command line ------------------------------------------------------------------------------------------------
def test_plugin_env_shows_the_packages_and_env_gc_keeps_what_a_running_jail_uses(
    tmp_path: Path, wheelhouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = plugin_with(tmp_path / "p", "tinypkg==2.0\n", "import tinypkg\nreturn {'v': tinypkg.VERSION}")
    assert main(["plugin", "env", str(folder), "--wheelhouse", str(wheelhouse), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"]
    assert out["result"]["kind"] == "built"
    assert out["result"]["packages"] == ["tinydep==2.0", "tinypkg==2.0"]
    key = out["result"]["key"]
    assert main(["plugin", "env", str(folder)]) == 0  # the cache: no wheelhouse needed any more
    text = capsys.readouterr().out
    assert f"environment {key} (cached, from the wheelhouse)" in text
    assert "  tinypkg==2.0" in text

    other = resolve("tinydep==1.0\n", wheelhouse=wheelhouse)
    with load(folder) as plugin:
        plugin.run({})  # its jail mounts the environment now
        assert main(["env", "gc", "--keep-days", "0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["result"]
    assert report["removed"] == [other.key]
    assert report["kept"] == {key: "in use by a running jail"}
    assert main(["env", "list", "--json"]) == 0
    assert [e["key"] for e in json.loads(capsys.readouterr().out)["result"]["environments"]] == [key]


def test_plugin_env_reports_the_kernel_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = plugin_with(tmp_path / "p", "PyYAML>=5\n", "return {}")
    assert main(["plugin", "env", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "the kernel's environment" in out
    assert "pyyaml==" in out


def test_plugin_env_fails_with_exit_3_and_one_error_line(
    tmp_path: Path, wheelhouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = plugin_with(tmp_path / "p", "# deps\nno-such-pkg>=1\n", "return {}")
    assert main(["plugin", "env", str(folder), "--wheelhouse", str(wheelhouse)]) == 3
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: needs-deps: {folder / 'requirements.txt'}:2: no distribution of 'no-such-pkg'")
    assert "Traceback" not in err


def test_two_processes_activating_the_same_new_environment_build_it_once(tmp_path: Path) -> None:
    house = tmp_path / "house"
    make_sdist(house, "slowish", "1.0", "SEEN = {}\n", sleep=1.0)  # long enough for the two to overlap
    code = (
        "import json; from synapse_nb.environments import resolve_environment; from synapse_nb.requirements "
        "import parse_requirements as p; "
        f"e = resolve_environment(p('slowish==1.0'), plugin='x', wheelhouse={str(house)!r}); "
        "print(json.dumps([e.key, e.built_now]))"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    assert [c.returncode for c in children] == [0, 0]
    assert len({key for key, _ in outputs}) == 1
    assert sorted(built for _, built in outputs) == [False, True]


def test_a_build_over_its_time_limit_is_stopped_and_leaves_nothing(tmp_path: Path, synapse_home: Path) -> None:
    (synapse_home / "config").write_text("environments:\n  build_timeout: 2\n")
    house = tmp_path / "house"
    make_sdist(house, "forever", "1.0", "SEEN = {}\n", sleep=60)
    t0 = time.monotonic()
    with pytest.raises(DependencyError, match="the installer timed out after 2 s; nothing was kept"):
        resolve("forever==1.0\n", wheelhouse=house)
    assert time.monotonic() - t0 < 20
    assert EnvironmentStore().keys() == []
    assert not list((synapse_home / "envs").glob(".staging-*"))

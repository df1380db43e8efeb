"""Shared fixtures: every test gets its own SYNAPSE_HOME; helpers to create plugin folders."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.scaffold import create_plugin

EXAMPLE = Path(__file__).resolve().parent.parent / "synapse_nb" / "examples" / "sentiment-analyzer"


@pytest.fixture(autouse=True)
def synapse_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("synapse-home")
    monkeypatch.setenv("SYNAPSE_HOME", str(home))
    return home


@pytest.fixture
def example_plugin(tmp_path: Path) -> Path:
    """A writable copy of the spec's sentiment-analyzer."""
    target = tmp_path / "sentiment-analyzer"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture
def signed_example(example_plugin: Path) -> Path:
    """The sentiment-analyzer copy, signed with this test's developer key."""
    from synapse_nb.signing import sign_folder

    sign_folder(example_plugin)
    return example_plugin


@pytest.fixture
def make_plugin(tmp_path: Path) -> Callable[..., Path]:
    """``make_plugin(name, template="python", handler=None)``: a fresh plugin folder under tmp_path."""

    def make(name: str = "demo-plugin", template: str = "python", handler: str | None = None) -> Path:
        folder = create_plugin(name, template=template, directory=tmp_path / name)
        if handler is not None:
            (folder / "handler.py").write_text(handler)
        return folder

    return make


class RedisServer:
    """A real redis-server on a free loopback port, started and stopped by the test (it may stop it mid-run)."""

    def __init__(self, workdir: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import socket
        import time

        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server; missing redis-server is a skip locally and a failure with CI=true."""
    import shutil

    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (Debian package redis-server; make test installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class MemcachedServer(RedisServer):
    """A real memcached on a free loopback port (items up to 16 MiB, like the README advises), started and
    stopped by the test."""

    @property
    def url(self) -> str:
        return f"memcached://127.0.0.1:{self.port}"

    def start(self) -> None:
        import socket
        import time

        # memcached refuses to run as root; not as nobody either (uid 65534 is the jail's: tests count its processes)
        user = ["-u", "daemon"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "64", "-I", "16m", *user],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"version\r\n")
                    if conn.recv(64).startswith(b"VERSION"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("memcached did not start")


@pytest.fixture
def memcached_server(tmp_path: Path) -> Iterator[MemcachedServer]:
    """A running memcached; missing memcached is a skip locally and a failure with CI=true."""
    import shutil

    if shutil.which("memcached") is None:
        message = "memcached is not installed (Debian package memcached; make test installs it as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    server = MemcachedServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real IPython InteractiveShell with synapse_nb loaded, working in tmp_path (needs nsjail)."""
    from IPython.core.interactiveshell import InteractiveShell

    from .sandbox_helpers import require_nsjail

    require_nsjail()
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("synapse_nb")
    try:
        yield ip
    finally:
        ip.extension_manager.unload_extension("synapse_nb")
        InteractiveShell.clear_instance()

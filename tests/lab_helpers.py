"""A real JupyterLab on a free loopback port and the system's Chromium driven by Playwright, for browser tests.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/system-deps``); Playwright never downloads a
browser. The flags keep a headless Chromium quiet on a machine without network: no GPU, no QUIC, no
background networking, component updates or sync, and a fresh profile per run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # Chromium's own sandbox cannot run as root
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
BIN = Path(sys.executable).parent


def require_browser() -> None:
    """Skip (or, with CI=true, fail) when Chromium or Playwright is missing."""
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is missing (Debian package chromium; make test installs it as root)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """``jupyter lab`` started on 127.0.0.1 with a random token, its root folder and SYNAPSE_HOME given."""

    def __init__(
        self,
        root: Path,
        *,
        home: Path,
        log: Path,
        synapse: bool = True,
        extra_args: list[str] | None = None,
        app: str = "lab",
        jupyter_path: Path | None = None,
    ) -> None:
        self.root = root
        self.home = home
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = log
        self.synapse = synapse
        self.extra_args = extra_args or []
        self.app = app
        self.jupyter_path = jupyter_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SYNAPSE_HOME"] = str(self.home)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        # A private Jupyter runtime/config/data so the test never touches ~/.jupyter or other servers.
        jupyter = self.home.parent / "jupyter-dirs"
        env["JUPYTER_RUNTIME_DIR"] = str(jupyter / "runtime")
        env["JUPYTER_CONFIG_DIR"] = str(jupyter / "config")
        env["IPYTHONDIR"] = str(jupyter / "ipython")
        if self.jupyter_path is not None:
            env["JUPYTER_PATH"] = str(self.jupyter_path)  # e.g. where the "Python 3 (Synapse)" kernelspec is
        env.pop("JUPYTER_TOKEN", None)
        # No news, update checks or announcements: the machine has no network and the popups cover the page.
        labconfig = jupyter / "config" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        disabled = {"@jupyterlab/apputils-extension:announcements": True}
        (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": disabled}))
        return env

    def argv(self) -> list[str]:
        argv = [
            str(BIN / "jupyter"),
            self.app,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.disable_check_xsrf=False",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the test drives commands
            "--LanguageServerManager.autodetect=False",
        ]
        if os.getuid() == 0:
            argv.append("--allow-root")
        if not self.synapse:  # the same JupyterLab without our server extension (start-up overhead baseline)
            argv += ["--ServerApp.jpserver_extensions", "synapse_nb.server=False"]
        return argv + self.extra_args

    def start(self, timeout: float = 60.0) -> Lab:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv(), cwd=self.root, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                self.get("api/status")
                self.started_in_s = time.perf_counter() - t0
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        raise RuntimeError(f"jupyter {self.app} did not answer in {timeout} s; see {self.log_path}")

    def request(self, path: str, *, method: str = "GET", body: Any = None, token: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/{path}", data=data, method=method)
        if token:
            req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.request(path)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the server and the kernels it started
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def launch_chromium(playwright: Any, profile: Path) -> Any:
    """The system's Chromium through Playwright, with a fresh profile folder (never a downloaded browser)."""
    shutil.rmtree(profile, ignore_errors=True)
    profile.mkdir(parents=True)
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 900},
    )


def notebook(cells: list[str], kernel: str = "python3", display: str = "Python 3 (ipykernel)") -> str:
    """An nbformat 4 notebook (JSON text) with these code cells and kernelspec."""
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                 "source": source}
                for i, source in enumerate(cells)
            ],
            "metadata": {"kernelspec": {"name": kernel, "display_name": display, "language": "python"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )  # fmt: skip


def make_many(folder: Path, count: int) -> list[Path]:
    """``count`` signed copies of the python template (p000, p001...) under ``folder``, signed with the
    developer key of the current SYNAPSE_HOME."""
    from synapse_nb.scaffold import create_plugin
    from synapse_nb.signing import sign_folder

    first = create_plugin("p000", template="python", directory=folder / "p000")
    sign_folder(first)
    made = [first]
    for i in range(1, count):
        target = folder / f"p{i:03d}"
        shutil.copytree(first, target)
        manifest = target / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("name: p000", f"name: p{i:03d}"))
        sign_folder(target)
        made.append(target)
    return made

"""Helpers for the serving tests: test plugins, servers in the background or as ``synapse-cli serve``."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PROBE_HANDLER = '''"""A plugin that does what each payload asks: echo, sleep, raise, crash, answer big, or refuse."""

import os
import time

from synapse_nb.sdk import BaseHandler, ItemError


class Probe(BaseHandler):
    def execute(self, data):
        op = data.get("op", "echo")
        if op == "sleep":
            time.sleep(data["ms"] / 1000)
        elif op == "raise":
            raise ValueError("probe was asked to fail")
        elif op == "crash":
            os._exit(3)
        elif op == "big":
            return {"id": data.get("id"), "blob": "x" * data["bytes"]}
        elif op == "refuse":  # in a batch, only this item fails (whichever method the endpoint names)
            return ItemError("probe was asked to refuse this item")
        return {"id": data.get("id"), "method": "execute", "n": data.get("n")}

    def alt(self, data):
        result = self.execute(data)
        return result if isinstance(result, ItemError) else {**result, "method": "alt"}

    def execute_batch(self, items):
        out = []
        for item in items:
            try:
                out.append(self.execute(item))
            except ValueError as exc:  # only this item fails
                out.append(ItemError(str(exc)))
        return out
'''
PROBE_INPUT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "op": {"enum": ["echo", "sleep", "raise", "crash", "big", "refuse"]},
        "id": {"type": ["integer", "string"]},
        "n": {"type": "number"},
        "ms": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}
ANY_SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}

COUNTER_HANDLER = """import time

from synapse_nb.sdk import BaseHandler


class Counter(BaseHandler):
    def execute(self, data):
        time.sleep(data.get("ms", 0) / 1000)
        self.state["n"] = self.state.get("n", 0) + 1
        return {"n": self.state["n"], "id": data.get("id"), "version": "VERSION"}
"""

# Endpoint keys name handler methods: "web" -> web(), which does what execute() does.
WEB_METHOD = "\n    def web(self, data):\n        return self.execute(data)\n"

ECHO_HANDLER = """from synapse_nb.sdk import BaseHandler


class Echo(BaseHandler):
    def execute(self, data):
        return data
"""


def write_plugin(
    folder: Path,
    name: str,
    handler: str,
    *,
    interfaces: list[dict[str, Any]],
    input_schema: dict[str, Any] | None = None,
    version: str = "1.0.0",
    timeout: str = "1s",
    sign: bool = True,
    execution: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
) -> Path:
    """A plugin folder with ``handler`` and ``interfaces``, signed with the test's developer key; ``execution``
    adds to ``spec.execution`` (e.g. ``circuit``), ``spec`` to ``spec`` (e.g. ``cache``)."""
    import yaml

    (folder / "schemas").mkdir(parents=True, exist_ok=True)
    (folder / "tests").mkdir(exist_ok=True)
    manifest = {
        "apiVersion": "synapse.io/v1",
        "kind": "AIPlugin",
        "metadata": {"name": name, "version": version},
        "spec": {
            "runtime": "python3",
            "execution": {"trigger": "sync", "timeout": timeout, **(execution or {})},
            "interfaces": interfaces,
            **(spec or {}),
        },
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (folder / "handler.py").write_text(handler)
    (folder / "requirements.txt").write_text("")
    (folder / "tests" / "test_smoke.py").write_text("def test_loads(plugin):\n    assert plugin.manifest.name\n")
    (folder / "schemas" / "input_schema.json").write_text(json.dumps(input_schema or ANY_SCHEMA))
    (folder / "schemas" / "output_schema.json").write_text(json.dumps(ANY_SCHEMA))
    if sign:
        from synapse_nb.signing import sign_folder

        sign_folder(folder)
    return folder


def probe_interfaces(name: str = "probe") -> list[dict[str, Any]]:
    """``primary`` at ``/NAME.v1.Probe/Run`` over gRPC, ``alt`` at ``/NAME/run`` over HTTP."""
    return [
        {"type": "test", "protocol": "grpc", "endpoints": {"primary": f"/{name}.v1.Probe/Run"}},
        {"type": "test", "protocol": "http", "endpoints": {"alt": f"/{name}/run"}},
    ]


def make_probe(root: Path, name: str = "probe", **kw: Any) -> Path:
    """The probe plugin as ``name`` (a protobuf identifier: its paths are made from it); ``kw`` as write_plugin's."""
    interfaces = probe_interfaces(name)
    return write_plugin(root / name, name, PROBE_HANDLER, interfaces=interfaces, input_schema=PROBE_INPUT, **kw)


def make_echo(root: Path, name: str = "echo") -> Path:
    interfaces = [
        {"type": "test", "protocol": "grpc", "endpoints": {"primary": f"/{name.replace('-', '_')}/Echo"}},
        {"type": "test", "protocol": "http", "endpoints": {"web": f"/v1/{name}"}},
    ]
    handler = ECHO_HANDLER + WEB_METHOD
    return write_plugin(root / name, name, handler, interfaces=interfaces)


def make_counter(root: Path, version: str = "1.0.0", *, sign: bool = True, **kw: Any) -> Path:
    interfaces = [
        {"type": "test", "protocol": "grpc", "endpoints": {"primary": "/counter/Count"}},
        {"type": "test", "protocol": "http", "endpoints": {"web": "/v1/count"}},
    ]
    handler = COUNTER_HANDLER.replace("VERSION", version) + WEB_METHOD
    return write_plugin(root / "counter", "counter", handler, interfaces=interfaces, version=version, sign=sign, **kw)


SMALL_LIMITS = "limits:\n  max_payload_bytes: 65536\n  max_output_bytes: 65536\n"


@contextmanager
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SYNAPSE_HOME for a module-scoped server (tests' own homes come and go around it); 64 KiB limits."""
    home = tmp_path_factory.mktemp("serve-home")
    (home / "config").write_text(SMALL_LIMITS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNAPSE_HOME", str(home))
        yield home


@contextmanager
def background_server(
    targets: list[Path | str], *, token: str | None = None, grpc: bool = True, http: bool = True, **service_kw: Any
) -> Iterator[Any]:
    """A real server on loopback (free ports) in this process; stopped and its plugins torn down after."""
    from synapse_nb.manager import PluginManager
    from synapse_nb.serve.auth import Address
    from synapse_nb.serve.server import BackgroundServer, ServeOptions
    from synapse_nb.serve.service import PluginService

    manager = PluginManager()
    service = PluginService(manager, targets, **service_kw)
    service.activate()
    free = Address("127.0.0.1", 0)
    options = ServeOptions(grpc=free if grpc else None, http=free if http else None, token=token, grace_s=5)
    server = BackgroundServer(service, options).start()
    try:
        yield server
    finally:
        server.stop()
        manager.teardown_all()


def settle(server: Any, timeout: float = 10.0) -> None:
    """Wait until the server has finished every call, including one its client stopped waiting for.

    When gRPC's own deadline answers the client first, the plugin call is still running on the server; a call
    sent now would queue behind it on the worker and, if that one is killed for its timeout, fail with
    PluginCrashed instead of running on the replacement worker (a known core behaviour, reported to the lead).
    """
    deadline = time.monotonic() + timeout
    while server.service.in_flight() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.service.in_flight(), "calls still running on the server"


class CliServer:
    """``synapse-cli serve ...`` as a child process; ``urls`` from its ``listening:`` lines."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, *, ready: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synapse_nb", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.urls: dict[str, str] = {}
        self.lines: list[str] = []
        self.err_lines: list[str] = []
        # One reader thread per pipe: a line is seen as soon as it is written, never stuck in a buffer.
        self._queues: dict[str, queue.Queue[str | None]] = {"stdout": queue.Queue(), "stderr": queue.Queue()}
        for name in ("stdout", "stderr"):
            threading.Thread(target=self._pump, args=(name,), daemon=True).start()
        if ready:
            self.wait_for("ready", timeout=60)

    def _pump(self, name: str) -> None:
        pipe = self.proc.stdout if name == "stdout" else self.proc.stderr
        assert pipe is not None
        for line in pipe:
            self._queues[name].put(line.rstrip("\n"))
        self._queues[name].put(None)

    def wait_for(self, text: str, *, timeout: float, stream: str = "stdout") -> str:
        """Read ``stream`` until a line containing ``text``; that line."""
        seen = self.lines if stream == "stdout" else self.err_lines
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queues[stream].get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            match = re.match(r"listening: ((grpc|http)://\S+)", line)
            if match:
                self.urls[match.group(2)] = match.group(1)
            if text in line:
                return line
        self.stop(signal.SIGKILL)
        raise AssertionError(f"no {text!r} from synapse-cli serve on {stream}: {self.lines} {self.err_lines}")

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> CliServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(signal.SIGKILL if exc[0] is not None else signal.SIGTERM)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

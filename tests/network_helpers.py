"""Helpers for network-scope tests: a recording HTTP server on loopback, a silent listener, network plugins."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from synapse_nb.signing import sign_folder

from .sandbox_helpers import write_plugin


class _Handler(http.server.BaseHTTPRequestHandler):
    server: RecordingServer  # type: ignore[assignment]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
        )
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.server.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        reply = b"hello " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RecordingServer(http.server.ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 that records every request it receives."""

    daemon_threads = True

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler] = _Handler) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.requests: list[dict[str, Any]] = []
        self.redirect_to = "http://forbidden.example/"

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextmanager
def recording_server(handler: type[http.server.BaseHTTPRequestHandler] = _Handler) -> Iterator[RecordingServer]:
    server = RecordingServer(handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Listener:
    """A TCP listener (say, the Jupyter server's port) that must never see a connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]

    def got_nothing(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except TimeoutError:
            return True
        conn.close()
        return False

    def close(self) -> None:
        self.sock.close()


def write_network_plugin(folder: Path, body: str, domains: list[str], *, name: str = "net", gpu: bool = False) -> Path:
    """A signed plugin (see ``write_plugin``) with ``network_access.domains`` and ``gpu`` set."""
    write_plugin(folder, body, name=name, sign=False)
    manifest = folder / "manifest.yaml"
    scopes = ""
    if domains:
        listed = ", ".join(f'"{d}"' for d in domains)
        scopes += f"    network_access:\n      domains: [{listed}]\n"
    text = manifest.read_text().replace("  permissions:\n", "  permissions:\n" + scopes)
    if gpu:
        text = text.replace("    system_resources:\n", "    system_resources:\n      gpu: true\n")
    manifest.write_text(text)
    sign_folder(folder)
    return folder

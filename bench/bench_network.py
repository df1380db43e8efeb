"""Network scope benchmarks, each against a baseline measured in the same run.

- request latency: p50 (and p99) of small GETs made by ``urllib.request`` from *inside* a jailed plugin, through
  the relay and the host's egress proxy, to an HTTP server on the host's loopback; against the same requests
  made directly from the host with the same client (``urllib``, which sends ``Connection: close``: no
  keep-alive on either side). Rounds alternate between the two so that machine noise hits both alike;
- download throughput: 100 MiB fetched through the proxy against the same download direct from the host;
- cold start: ``load(path).run(payload)`` of a plugin with ``network_access.domains`` (egress proxy, socket
  mount, relay thread) against the same plugin without network scopes, both in fresh jails (jails with network
  scopes are never pre-warmed, so the pool is off for both).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from synapse_nb.config import Config
from synapse_nb.plugin import load
from synapse_nb.signing import sign_folder

from .common import Rounds, Row, cold_start, percentile, scratch_home

FRESH = Config(data={"sandbox": {"prewarm": 0}})

# A small HTTP/1.0 server in its own process (so that neither side shares a GIL with it).
SERVER = """
import http.server, sys
BIG = b"x" * (100 << 20)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = BIG if self.path.startswith("/big") else b"ok" * 32
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""
# The measured loop, run unchanged on the host and inside the jail.
LOOP = """
def measure(opener, url, n):
    import time
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        with opener.open(url, timeout=10) as response:
            response.read()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples

def download(opener, url):
    import time
    t0 = time.perf_counter()
    total = 0
    with opener.open(url, timeout=60) as response:
        while chunk := response.read(1 << 20):
            total += len(chunk)
    return total / (1 << 20) / (time.perf_counter() - t0)
"""
HANDLER = f"""\
import urllib.request
from synapse_nb.sdk import BaseHandler
{LOOP}

class Client(BaseHandler):
    def execute(self, data):
        if data.get("n", 0) == 0:
            return {{"samples": []}}
        if data.get("download"):
            return {{"mib_s": download(urllib.request.build_opener(), data["url"])}}
        opener = urllib.request.build_opener()  # the proxy comes from HTTP_PROXY, as for any plugin
        measure(opener, data["url"], 5)  # warm up: imports, first connection
        return {{"samples": measure(opener, data["url"], data["n"])}}
"""
MANIFEST = """\
apiVersion: synapse.io/v1
kind: AIPlugin
metadata:
  name: {name}
  version: 1.0.0
spec:
  runtime: python3
  execution:
    timeout: 120s
  permissions:
{permissions}"""
PERMISSIVE = {"$schema": "http://json-schema.org/draft-07/schema#"}
NET_PAYLOAD = {"n": 0}  # the cold-start call: no request made


def make_plugin(root: Path, name: str, domains: list[str]) -> Path:
    folder = root / name
    (folder / "schemas").mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_client.py").write_text("def test_nothing():\n    pass\n")
    permissions = "    system_resources:\n      memory_mb: 512\n"
    if domains:
        permissions += "    network_access:\n      domains: [" + ", ".join(f'"{d}"' for d in domains) + "]\n"
    (folder / "manifest.yaml").write_text(MANIFEST.format(name=name, permissions=permissions))
    (folder / "handler.py").write_text(HANDLER)
    (folder / "requirements.txt").write_text("")
    for schema in ("input_schema.json", "output_schema.json"):
        (folder / "schemas" / schema).write_text(json.dumps(PERMISSIVE))
    sign_folder(folder)
    return folder


def _loop() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(LOOP, namespace)
    return namespace


def direct(url: str, n: int) -> list[float]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    _loop()["measure"](opener, url, 5)
    samples: list[float] = _loop()["measure"](opener, url, n)
    return samples


def direct_download(url: str) -> float:
    rate: float = _loop()["download"](urllib.request.build_opener(urllib.request.ProxyHandler({})), url)
    return rate


def run(quick: bool = False) -> list[Row]:
    with scratch_home("bench_network", jail=True) as home:
        return _measure(home, quick)


def _measure(home: Path, quick: bool) -> list[Row]:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://localhost:{port}/"
        networked = make_plugin(home, "net-client", [f"localhost:{port}"])
        offline = make_plugin(home, "offline-client", [])
        rounds, per_round = (4, 100) if quick else (10, 300)
        values: dict[str, list[float]] = {"proxied p50": [], "direct p50": [], "proxied p99": [], "direct p99": [],
                                          "proxied MiB/s": [], "direct MiB/s": []}  # fmt: skip
        plugin = load(networked, config=FRESH)
        try:
            for _ in range(rounds):  # alternating rounds: machine noise hits both alike
                proxied = sorted(plugin.run({"url": url, "n": per_round})["samples"])
                baseline = sorted(direct(url, per_round))
                for name, samples in (("proxied", proxied), ("direct", baseline)):
                    values[f"{name} p50"].append(percentile(samples, 50))
                    values[f"{name} p99"].append(percentile(samples, 99))
            for _ in range(3 if quick else 5):
                values["proxied MiB/s"].append(plugin.run({"url": url + "big", "n": 1, "download": True})["mib_s"])
                values["direct MiB/s"].append(direct_download(url + "big"))
        finally:
            plugin.teardown()
        cold_rounds = 7 if quick else 21
        values["with scopes"], values["without"] = [], []
        cold_start(networked, NET_PAYLOAD, config=FRESH)
        cold_start(offline, NET_PAYLOAD, config=FRESH)  # warm the host side (imports, bytecode) for both
        for _ in range(cold_rounds):
            values["with scopes"].append(cold_start(networked, NET_PAYLOAD, config=FRESH))
            values["without"].append(cold_start(offline, NET_PAYLOAD, config=FRESH))
        r = Rounds(values)
        return [
            r.row(
                "network", "GET via egress proxy p50", "proxied p50", "direct p50", "same GET direct from the host", 1.5
            ),
            r.row(
                "network",
                "GET via egress proxy p99",
                "proxied p99",
                "direct p99",
                "same GET direct from the host",
                None,
            ),
            r.row(
                "network",
                "100 MiB download through the proxy",
                "proxied MiB/s",
                "direct MiB/s",
                "same download direct from the host",
                0.8,
                unit="MiB/s",
                higher_is_better=True,
            ),
            r.row(
                "network",
                "cold start with network scopes (fresh jails)",
                "with scopes",
                "without",
                "same plugin without network scopes",
                1.2,
            ),
        ]
    finally:
        server.kill()
        server.wait()

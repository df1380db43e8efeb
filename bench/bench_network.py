"""Network scope benchmarks, each against a baseline measured in the same run.

- request latency: p50 (and p99) of small GETs made by ``urllib.request`` from *inside* a jailed plugin, through
  the relay and the host's egress proxy, to an HTTP server on the host's loopback; against the same requests
  made directly from the host with the same client (``urllib``, which sends ``Connection: close``: no
  keep-alive on either side). Rounds alternate between the two so that machine noise hits both alike;
- cold start: ``load(path).run(payload)`` of a plugin with ``network_access.domains`` (egress proxy, socket
  mount, relay thread) against the same plugin without network scopes.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from synapse_nb.plugin import load
from synapse_nb.signing import sign_folder

from .common import Row, cold_start, percentile, scratch_home

# A small HTTP/1.0 server in its own process (so that neither side shares a GIL with it).
SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" * 32
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
"""
HANDLER = f"""\
import urllib.request
from synapse_nb.sdk import BaseHandler
{LOOP}

class Client(BaseHandler):
    def execute(self, data):
        if data.get("n", 0) == 0:
            return {{"samples": []}}
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
    permissions = "    system_resources:\n      memory_mb: 256\n"
    if domains:
        permissions += "    network_access:\n      domains: [" + ", ".join(f'"{d}"' for d in domains) + "]\n"
    (folder / "manifest.yaml").write_text(MANIFEST.format(name=name, permissions=permissions))
    (folder / "handler.py").write_text(HANDLER)
    (folder / "requirements.txt").write_text("")
    for schema in ("input_schema.json", "output_schema.json"):
        (folder / "schemas" / schema).write_text(json.dumps(PERMISSIVE))
    sign_folder(folder)
    return folder


def direct(url: str, n: int) -> list[float]:
    namespace: dict[str, Any] = {}
    exec(LOOP, namespace)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    namespace["measure"](opener, url, 5)
    samples: list[float] = namespace["measure"](opener, url, n)
    return samples


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
        proxied: list[float] = []
        baseline: list[float] = []
        plugin = load(networked)
        try:
            for _ in range(rounds):
                proxied += plugin.run({"url": url, "n": per_round})["samples"]
                baseline += direct(url, per_round)
        finally:
            plugin.teardown()
        proxied.sort()
        baseline.sort()
        cold_rounds = 7 if quick else 21
        with_net, without = [], []
        cold_start(networked, NET_PAYLOAD)
        cold_start(offline, NET_PAYLOAD)  # warm the host side (imports, bytecode) for both
        for _ in range(cold_rounds):
            with_net.append(cold_start(networked, NET_PAYLOAD))
            without.append(cold_start(offline, NET_PAYLOAD))
        p50, b50 = percentile(proxied, 50), percentile(baseline, 50)
        return [
            Row("network", "GET via egress proxy p50", p50, b50, "same GET direct from the host p50", 2.0),
            Row(
                "network",
                "GET via egress proxy p99",
                percentile(proxied, 99),
                percentile(baseline, 99),
                "same GET direct from the host p99",
                None,
            ),
            Row(
                "network",
                "cold start with network scopes",
                statistics.median(with_net),
                statistics.median(without),
                "same plugin without network scopes",
                1.2,
            ),
        ]
    finally:
        server.kill()
        server.wait()

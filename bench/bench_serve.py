"""Serving benchmarks: a no-op plugin behind ``synapse-cli serve`` against the floors of its parts, same run.

- gRPC unary p50 (the endpoint path ``/noop/Run``, a ``google.protobuf.Value`` payload) against the p50 of a
  plain ``grpc.aio`` echo server on loopback *plus* the warm-call p50 of the same plugin through the Python API
  (``plugin.run``): serving may cost at most half again what the transport and the plugin cost apart;
- HTTP ``POST /v1/noop`` p50 likewise, against a plain Starlette/uvicorn JSON echo plus the warm call;
- throughput with 64 concurrent clients (asyncio clients in this process, the servers in their own processes)
  against the same floors, each driven by 64 concurrent clients too (the echo servers by the same asyncio
  clients, the Python API by 64 threads calling ``plugin.run``), combined as ``1 / (1/echo + 1/plugin)``:
  at least 0.8x.

Latency samples of the floors and the served plugin are taken in turn within one loop (``common.interleaved``),
so every call finds the other processes idle; informational rows give the same p50s measured back to back
(each server kept busy), where a served call pays for the extra thread and process wake-ups that the floors,
measured apart, do not chain. Throughput is measured floor, served, floor... in each round. The rows report
the median over rounds and the spread of the per-round ratios.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synapse_nb.plugin import load
from synapse_nb.signing import sign_folder

from .bench_sandbox import PAYLOAD, make_noop
from .common import Rounds, Row, interleaved, percentile, scratch_home

CLIENTS = 64
INTERFACES = """\
  interfaces:
    - type: bench
      protocol: grpc
      endpoints:
        primary: /noop/Run
    - type: bench
      protocol: http
      endpoints:
        web: /v1/noop
"""


def make_served_noop(root: Path) -> Path:
    """bench_sandbox's no-op plugin, declaring a gRPC and an HTTP interface."""
    folder = make_noop(root)
    (folder / "manifest.yaml").write_text((folder / "manifest.yaml").read_text() + INTERFACES)
    handler = folder / "handler.py"
    handler.write_text(handler.read_text() + "\n    def web(self, validated_data):\n        return {'ok': True}\n")
    sign_folder(folder)
    return folder


class Child:
    """A server process; ``lines`` until ``ready_text``."""

    def __init__(self, argv: list[str], ready_text: str) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if ready_text in line:
                return
        raise SystemExit(f"{argv[:4]} did not start: {self.lines}")

    def url(self, scheme: str) -> str:
        return next(line.split(" ", 1)[1] for line in self.lines if line.startswith(f"listening: {scheme}://"))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def grpc_call(port: int, method: str) -> Callable[[], Any]:
    import grpc
    from google.protobuf import struct_pb2

    from synapse_nb.serve.codec import to_value

    stub = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary(method)
    body = to_value(PAYLOAD, struct_pb2.Value()).SerializeToString()
    return lambda: stub(body)


def http_call(port: int, path: str) -> Callable[[], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps(PAYLOAD).encode()

    def call() -> None:
        try:
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            conn.close()  # the server closed the idle keep-alive connection between rounds
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"POST {path}: HTTP {response.status}")

    return call


async def grpc_load(port: int, method: str, per_client: int) -> float:
    """Requests per second of CLIENTS concurrent callers (8 channels), ``per_client`` calls each."""
    import grpc
    from google.protobuf import struct_pb2

    from synapse_nb.serve.codec import to_value

    body = to_value(PAYLOAD, struct_pb2.Value()).SerializeToString()
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(8)]
    stubs = [c.unary_unary(method) for c in channels]

    async def client(i: int) -> None:
        stub = stubs[i % len(stubs)]
        for _ in range(per_client):
            await stub(body)

    await client(0)  # connect every channel before timing
    await asyncio.gather(*(stubs[i](body) for i in range(len(stubs))))
    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    elapsed = time.perf_counter() - t0
    for channel in channels:
        await channel.close()
    return CLIENTS * per_client / elapsed


async def http_load(port: int, path: str, per_client: int) -> float:
    """Requests per second of CLIENTS keep-alive connections, ``per_client`` POSTs each."""
    body = json.dumps(PAYLOAD).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CLIENTS)]

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int) -> None:
        for _ in range(count):
            writer.write(request)
            headers = await reader.readuntil(b"\r\n\r\n")
            if not headers.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"POST {path}: {headers[:40]!r}")
            length = int(headers.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)

    await asyncio.gather(*(client(r, w, 1) for r, w in streams))
    t0 = time.perf_counter()
    await asyncio.gather(*(client(r, w, per_client) for r, w in streams))
    elapsed = time.perf_counter() - t0
    for _reader, writer in streams:
        writer.close()
    return CLIENTS * per_client / elapsed


def api_load(plugin: Any, per_client: int) -> float:
    """Requests per second of CLIENTS threads calling ``plugin.run`` at once, ``per_client`` calls each."""
    from concurrent.futures import ThreadPoolExecutor

    def client(count: int) -> None:
        for _ in range(count):
            plugin.run(PAYLOAD)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, [1] * CLIENTS))
        t0 = time.perf_counter()
        list(pool.map(client, [per_client] * CLIENTS))
        return CLIENTS * per_client / (time.perf_counter() - t0)


def run(quick: bool = False) -> list[Row]:
    rounds, n, per_client = (3, 150, 15) if quick else (5, 400, 40)
    with scratch_home("bench_serve", jail=True) as home:
        folder = make_served_noop(home)
        env_python = [sys.executable, "-m"]
        ours = Child([*env_python, "synapse_nb", "serve", str(folder), "--grpc", ":0", "--http", ":0"], "ready")
        grpc_echo = Child([*env_python, "bench.serve_echo", "grpc"], "listening")
        http_echo = Child([*env_python, "bench.serve_echo", "http"], "listening")
        plugin = load(folder)
        try:
            ours_grpc_port = int(ours.url("grpc").rsplit(":", 1)[1])
            ours_http_port = int(ours.url("http").rsplit(":", 1)[1])
            echo_grpc_port = int(grpc_echo.lines[-1].split()[-1])
            echo_http_port = int(http_echo.lines[-1].split()[-1])
            calls: dict[str, Callable[[], Any]] = {
                "api": lambda: plugin.run(PAYLOAD),
                "grpc-echo": grpc_call(echo_grpc_port, "/echo.Echo/Echo"),
                "grpc-ours": grpc_call(ours_grpc_port, "/noop/Run"),
                "http-echo": http_call(echo_http_port, "/echo"),
                "http-ours": http_call(ours_http_port, "/v1/noop"),
            }
            p50 = interleaved(calls, rounds=rounds, per_round=n, statistic=lambda v: percentile(v, 50))
            # Back to back (each server kept busy): informational.
            hot = Rounds({name: interleaved({name: fn}, rounds=rounds, per_round=n,
                                            statistic=lambda v: percentile(v, 50)).values[name]
                          for name, fn in calls.items()})  # fmt: skip
            rps: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(rounds):  # floor, served, floor, served: each round sees the same load
                rps["api"].append(api_load(plugin, per_client))
                rps["grpc-echo"].append(asyncio.run(grpc_load(echo_grpc_port, "/echo.Echo/Echo", per_client)))
                rps["grpc-ours"].append(asyncio.run(grpc_load(ours_grpc_port, "/noop/Run", per_client)))
                rps["http-echo"].append(asyncio.run(http_load(echo_http_port, "/echo", per_client)))
                rps["http-ours"].append(asyncio.run(http_load(ours_http_port, "/v1/noop", per_client)))
        finally:
            plugin.teardown()
            for child in (ours, grpc_echo, http_echo):
                child.stop()
    for timings in (p50, hot):  # the floors of a served call: the transport's echo plus the plugin's warm call
        for proto in ("grpc", "http"):
            timings.values[f"{proto}-floor"] = [
                echo + api for echo, api in zip(timings.values[f"{proto}-echo"], timings.values["api"], strict=True)
            ]
    throughput = Rounds(rps)
    for proto in ("grpc", "http"):  # both floors' costs paid in turn: 1 / (1/echo + 1/plugin)
        throughput.values[f"{proto}-floor"] = [
            1 / (1 / echo + 1 / api) for echo, api in zip(rps[f"{proto}-echo"], rps["api"], strict=True)
        ]
    return [
        p50.row("serve", "gRPC unary p50, no-op plugin", "grpc-ours", "grpc-floor",
                "grpc.aio echo + plugin.run p50", 1.5),
        p50.row("serve", "HTTP POST p50, no-op plugin", "http-ours", "http-floor",
                "Starlette/uvicorn echo + plugin.run p50", 1.5),
        hot.row("serve", "gRPC unary p50, back to back (info)", "grpc-ours", "grpc-floor",
                "the same floors, back to back", None),
        hot.row("serve", "HTTP POST p50, back to back (info)", "http-ours", "http-floor",
                "the same floors, back to back", None),
        throughput.row("serve", f"gRPC throughput, {CLIENTS} clients", "grpc-ours", "grpc-floor",
                       "1/(1/echo + 1/plugin.run)", 0.8, unit="req/s", higher_is_better=True),
        throughput.row("serve", f"HTTP throughput, {CLIENTS} clients", "http-ours", "http-floor",
                       "1/(1/echo + 1/plugin.run)", 0.8, unit="req/s", higher_is_better=True),
    ]  # fmt: skip

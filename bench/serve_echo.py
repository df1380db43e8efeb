"""The floors of bench_serve: a plain grpc.aio echo server and a plain Starlette/uvicorn JSON echo.

``python -m bench.serve_echo grpc|http`` listens on a free loopback port, prints ``listening: PORT`` and serves
until SIGTERM. Nothing of synapse_nb is imported: this is what the transport alone costs.
"""

from __future__ import annotations

import asyncio
import signal
import sys

ECHO_METHOD = "/echo.Echo/Echo"


async def serve_grpc() -> None:
    import grpc

    async def echo(request: bytes, context: object) -> bytes:
        return request

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    handler = grpc.method_handlers_generic_handler("echo.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening: {port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)


async def serve_http() -> None:
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"result": await request.json(), "meta": {}})

    app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, as ours do.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"listening: {sock.getsockname()[1]}", flush=True)
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(serve_grpc() if sys.argv[1] == "grpc" else serve_http())

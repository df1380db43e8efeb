"""``synapse-cli serve [PATH|NAME]... [--grpc HOST:PORT] [--http HOST:PORT] [--token-file F]``.

Activates each plugin exactly as ``plugin run`` does (snapshot, signature verified, validated, sandboxed) and
serves its declared interfaces: ``protocol: grpc`` over gRPC, ``protocol: http`` over HTTP (``protocol:
local`` only with ``--expose-local``). Without ``--grpc``/``--http``, each protocol the interfaces need listens
on its default (127.0.0.1:50051, 127.0.0.1:8000). Prints one ``listening: URL`` line per listener, the routes
and a command to try, then ``ready``. SIGTERM/SIGINT stop it gracefully (drain, teardown, state saved; exit 0);
SIGHUP re-reads the plugins and replaces those whose files changed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from ..errors import UsageError
from .output import Output, escape_terminal


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = groups.add_parser(
        "serve",
        help="serve plugins' declared interfaces over gRPC and HTTP",
        description="Activate plugins in their sandboxes and serve their declared interfaces: protocol grpc over "
        "gRPC (synapse.v1.PluginHost, each endpoint path as a method, health, reflection), protocol http as POST "
        "PATH. SIGTERM/SIGINT drain and stop, SIGHUP reloads.",
    )
    p.add_argument("targets", nargs="*", metavar="PATH|NAME", help="plugin folders, or names found by discovery")
    p.add_argument("--grpc", metavar="HOST:PORT", help="gRPC listen address (:0 picks a free port)")
    p.add_argument("--http", metavar="HOST:PORT", help="HTTP listen address (:0 picks a free port)")
    p.add_argument("--token-file", metavar="FILE", help="require 'authorization: Bearer TOKEN' on every call")
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow listening on a non-loopback address without a token (anyone who can reach it may call)",
    )
    p.add_argument(
        "--expose-local", action="store_true", help="also serve protocol: local interfaces, over gRPC and HTTP"
    )
    p.add_argument(
        "--grace", type=float, default=10.0, metavar="SECONDS", help="how long calls in flight may finish on stop"
    )
    p.add_argument(
        "--insecure-allow-unsigned",
        action="store_true",
        help="serve even if a signature is missing or does not verify (local development only; warns every time)",
    )
    p.set_defaults(func=run)


def _require_extras(args: argparse.Namespace) -> None:
    missing = []
    for module, extra in (("grpc", "grpc"), ("grpc_health", "grpc"), ("starlette", "http"), ("uvicorn", "http")):
        try:
            __import__(module)
        except ImportError:
            missing.append(extra)
    if missing:
        extras = ",".join(sorted(set(missing)))
        raise UsageError(f"synapse-cli serve needs the {extras} extra: pip install 'synapse-nb[{extras}]'")


def run(args: argparse.Namespace, out: Output) -> int:
    _require_extras(args)
    from ..environments import terminal_progress
    from ..manager import PluginManager
    from ..serve.auth import check_exposure, parse_address, read_token_file
    from ..serve.describe import example_commands, route_lines
    from ..serve.server import DEFAULT_GRPC, DEFAULT_HTTP, ServeOptions, Server, plan_listeners
    from ..serve.service import PluginService

    if args.grace < 0:
        raise UsageError(f"--grace {args.grace}: must be 0 or more seconds")
    grpc = parse_address(args.grpc, option="--grpc") if args.grpc else None
    http = parse_address(args.http, option="--http") if args.http else None
    token = None
    if args.token_file:
        token, warnings = read_token_file(args.token_file)
        for warning in warnings:
            out.warn(warning)
    # Refuse an exposed address before activating anything (the server checks again when it binds).
    for warning in check_exposure([a for a in (grpc, http) if a], token=token, insecure_no_auth=args.insecure_no_auth):
        out.warn(warning)
    manager = PluginManager(
        insecure_allow_unsigned=args.insecure_allow_unsigned, warn=out.warn, progress=terminal_progress()
    )
    service = PluginService(manager, args.targets, expose_local=args.expose_local, warn=out.warn)
    try:
        service.activate()
        grpc, http, warnings = plan_listeners(service.routes, grpc, http, defaults=(DEFAULT_GRPC, DEFAULT_HTTP))
        for warning in [*service.routes.notes, *warnings]:
            out.warn(warning)
        options = ServeOptions(
            grpc=grpc, http=http, token=token, insecure_no_auth=args.insecure_no_auth, grace_s=args.grace
        )
        server = Server(service, options, warn=out.warn)

        async def main() -> int:
            await server.start()
            for name in service.names:
                plugin = manager.get(name).plugin
                isolation = plugin.isolation if plugin is not None else "?"
                out.info(f"serving {name} {service.manifest(name).version} ({isolation})")
            for url in server.urls().values():
                out.info(f"listening: {url}")
            for line in route_lines(service, server.urls()):
                out.info(line)
            hint = f"$(cat {args.token_file})" if args.token_file else None
            for command in example_commands(service, server.urls(), token_hint=hint):
                out.info(f"  try: {command}")
            out.info(f"ready (pid {os.getpid()}): SIGTERM or Ctrl-C stops, SIGHUP reloads")

            def stopping(in_flight: int) -> None:
                out.info(f"stopping: {in_flight} calls in flight, up to {args.grace:g} s to finish")

            left = await server.run_until_signalled(on_reload=_print_reload, on_stop=stopping)
            how = f"; {left} calls were still running after the {args.grace:g} s grace" if left else ""
            out.info(f"stopped: plugins torn down, state saved{how}")
            return 0

        return asyncio.run(main())
    finally:
        manager.teardown_all()


def _print_reload(lines: list[str]) -> None:
    for line in lines:
        print(f"reload: {escape_terminal(line)}", file=sys.stderr, flush=True)

"""``synapse-cli registry serve | list | add | login``: run a registry, and the registries this user talks to."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    reg = subparsers["registry"]
    s = reg.add_parser(
        "serve",
        help="serve a plugin registry from DIR",
        description=(
            "Serve DIR as a registry: signed index, content-addressed archives, uploads with a bearer token "
            "(publish scope) and the client-credentials token endpoint for the clients in --clients FILE. The index "
            "signing key is created under DIR/keys on first start; clients trust DIR/keys/registry-ca.pem."
        ),
    )
    s.add_argument("dir", metavar="DIR", help="the registry's folder (created if missing)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port (0: any free port; default 8765)")
    s.add_argument("--clients", metavar="FILE", help="YAML: clients, token_ttl, anonymous_read, issuers")
    s.add_argument("--trust", metavar="CA.pem", action="append", default=[], help="accept plugins signed under this CA")
    s.add_argument("--max-upload-mb", type=int, default=100, help="largest archive accepted (default 100)")
    s.set_defaults(func=run_serve)

    ls = reg.add_parser("list", help="configured registries", description="Registries from the configuration.")
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    ls.set_defaults(func=run_list)

    add = reg.add_parser(
        "add",
        help="add a registry to $SYNAPSE_HOME/config",
        description="Append a registry entry (the spec's shape) to $SYNAPSE_HOME/config.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("endpoint", metavar="URL")
    add.add_argument("--token-env", metavar="VAR", help="static bearer token from $VAR (auth.token: ${VAR})")
    add.add_argument("--token-url", metavar="URL", help="client-credentials token endpoint")
    add.add_argument("--client-id", metavar="ID")
    add.add_argument("--client-secret-env", metavar="VAR", help="client secret from $VAR")
    add.add_argument("--scope", metavar="SCOPES", help='requested scopes, e.g. "read publish"')
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.set_defaults(func=run_add)

    login = reg.add_parser(
        "login",
        help="check a registry's credentials (and approve a project's registry entry)",
        description=(
            "Fetch a token (client credentials) or use the static one, and ask the registry who it is for. "
            "For an entry from a project's .synapse/config this also approves sending its credentials."
        ),
    )
    login.add_argument("name", metavar="NAME")
    login.add_argument("--json", action="store_true", help="print one JSON object")
    login.set_defaults(func=run_login)


def run_serve(args: argparse.Namespace, out: Output) -> int:
    from ..registry.server import RegistryServer, create_app
    from ..registry.store import RegistryStore
    from ..registry.tokens import AuthSettings, load_clients_file

    store = RegistryStore(Path(args.dir))
    for pem in args.trust:
        out.info(f"trusting plugin signers under {store.add_trusted_root(Path(pem))}")
    settings = load_clients_file(args.clients) if args.clients else AuthSettings()
    app = create_app(store, settings, max_upload_bytes=args.max_upload_mb << 20)
    server = RegistryServer(app, args.host, args.port, access_log=True)
    info = store.describe()
    print(f"serving registry {args.dir} at {server.url}", flush=True)
    print(f"  index signed by {info['signer']}; clients run: synapse-cli keys trust {info['root']}", flush=True)
    if not info["trusted_plugin_roots"]:
        out.warn("this registry trusts no plugin signer yet: uploads are refused until you pass --trust CA.pem")
    if not settings.enabled:
        out.warn("no --clients FILE: the registry is read-only (nobody can publish)")
    server.serve_forever()
    return 0


def run_list(args: argparse.Namespace, out: Output) -> int:
    from ..registry.cache import read_state
    from ..registry.settings import configured_registries, is_approved

    rows = []
    for registry in configured_registries():
        state = read_state(registry.name)
        row = {**registry.to_json(), "index_version": state.get("highest_version"), "approved": is_approved(registry)}
        rows.append(row)
        cached = f"index v{row['index_version']}" if row["index_version"] is not None else "not fetched yet"
        approval = "" if row["approved"] or not registry.auth else "  (run `registry login` to approve)"
        out.info(f"{registry.name}  {registry.endpoint}  [{registry.source}]  auth: {row['auth']}  {cached}{approval}")
    out.info("public  (built in, offline)  the synapse_nb public index")
    return out.ok(rows)


def run_add(args: argparse.Namespace, out: Output) -> int:
    from ..registry.settings import add_registry

    auth: dict[str, str] | None = None
    if args.token_env and args.token_url:
        raise UsageError("pass either --token-env (static token) or --token-url with --client-id (client credentials)")
    if args.token_env:
        auth = {"type": "oauth2", "token": f"${{{args.token_env}}}"}
    elif args.token_url:
        if not (args.client_id and args.client_secret_env):
            raise UsageError("--token-url needs --client-id and --client-secret-env")
        auth = {"type": "oauth2", "token_url": args.token_url, "client_id": args.client_id,
                "client_secret": f"${{{args.client_secret_env}}}"}  # fmt: skip
        if args.scope:
            auth["scope"] = args.scope
    path = add_registry(args.name, args.endpoint, auth)
    out.info(f"added registry {args.name} ({args.endpoint}) to {path}")
    return out.ok({"name": args.name, "endpoint": args.endpoint, "config": str(path)})


def run_login(args: argparse.Namespace, out: Output) -> int:
    from ..registry.client import RegistryClient
    from ..registry.settings import approve, get_registry

    registry = get_registry(args.name)
    if not registry.auth:
        raise UsageError(f"registry {args.name!r} has no auth: nothing to log in with")
    approve(registry)  # the user asked for this registry by name: its credentials may now be sent
    with RegistryClient(registry) as client:
        who = client.whoami()
    out.info(f"logged in to {args.name} as {who.get('client_id')!r} (scopes: {' '.join(who.get('scopes', []))})")
    return out.ok(who, meta={"registry": args.name})

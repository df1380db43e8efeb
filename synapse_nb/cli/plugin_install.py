"""``plugin install | list | uninstall | unpack``: plugins installed under ``$SYNAPSE_HOME/plugins``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    plugin = subparsers["plugin"]
    p = plugin.add_parser(
        "install",
        help="install NAME[@RANGE] from a registry, or a local .synapse archive",
        description=(
            "Resolve NAME@RANGE (npm-style: ^1.2, ~1.2.3, 1.x, >=1 <2) to the highest version that is not yanked, "
            "download it, check its sha256 against the signed index, verify its signature against your trust "
            "store and unpack it to $SYNAPSE_HOME/plugins/NAME/VERSION. A name is pinned to the registry it was "
            "first installed from; --move-pin allows another one."
        ),
    )
    p.add_argument("spec", metavar="NAME[@RANGE]|ARCHIVE")
    p.add_argument("--registry", metavar="NAME", help="registry to install from (`public`: the built-in one)")
    p.add_argument("--move-pin", action="store_true", help="pin NAME to --registry even if it came from another one")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_install)

    ls = plugin.add_parser("list", help="installed plugins", description="Plugins under $SYNAPSE_HOME/plugins.")
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    ls.set_defaults(func=run_list)

    un = plugin.add_parser(
        "uninstall", help="remove an installed plugin (all versions, or one)", description="Remove NAME[@VERSION]."
    )
    un.add_argument("spec", metavar="NAME[@VERSION]")
    un.add_argument("--json", action="store_true", help="print one JSON object")
    un.set_defaults(func=run_uninstall)

    up = plugin.add_parser(
        "unpack",
        help="verify a .synapse archive and unpack it into a folder",
        description="Verify the archive (sizes, names, signature) entirely before writing anything, then unpack it.",
    )
    up.add_argument("archive", metavar="ARCHIVE")
    up.add_argument("-o", "--output", metavar="DIR", help="parent folder (default: the current one); creates DIR/NAME")
    up.add_argument("--json", action="store_true", help="print one JSON object")
    up.set_defaults(func=run_unpack)


def run_install(args: argparse.Namespace, out: Output) -> int:
    from ..registry.operations import install

    result = install(args.spec, registry=args.registry, move_pin=args.move_pin, warn=out.warn)
    plugin = result.plugin
    verb = "installed" if result.changed else "already installed"
    out.info(f"{verb}: {plugin.name} {plugin.version} from {plugin.registry} -> {plugin.path}")
    for note in result.notes:
        out.info(f"note: {note}")
    return out.ok(result.to_json(), meta={"plugin": plugin.name, "version": plugin.version})


def run_list(args: argparse.Namespace, out: Output) -> int:
    from ..registry.installed import list_installed, pins

    installed = list_installed()
    if not installed:
        out.info("no plugins installed (synapse-cli plugin install NAME)")
    for p in installed:
        mark = "*" if p.active else " "
        out.info(f"{mark} {p.name} {p.version}  {p.registry}  {p.path}")
    return out.ok([p.to_json() for p in installed], meta={"pins": pins()})


def run_uninstall(args: argparse.Namespace, out: Output) -> int:
    from ..registry.installed import uninstall

    name, _, version = args.spec.partition("@")
    removed = uninstall(name, version or None)
    for p in removed:
        out.info(f"removed: {p.name} {p.version}")
    return out.ok([p.to_json() for p in removed])


def run_unpack(args: argparse.Namespace, out: Output) -> int:
    from ..registry.archive import open_archive

    archive = open_archive(args.archive)
    target = archive.extract(Path(args.output or ".") / archive.name)
    out.info(
        f"unpacked: {archive.name} {archive.version} -> {target} (signed by {archive.verification.signer_subject})"
    )
    return out.ok({**archive.to_json(), "path": str(target)}, meta={"plugin": archive.name})

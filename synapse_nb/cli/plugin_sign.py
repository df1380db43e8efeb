"""``synapse-cli plugin sign PATH [--key FILE --cert FILE] [--json]``: write PATH/synapse.sig.json."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import SignatureError
from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "sign",
        help="sign a plugin folder (writes synapse.sig.json)",
        description=(
            "Sign every file of a plugin folder with a code-signing certificate: the developer key of "
            "`keys init` (created on first use) unless --key and --cert are given. Bytecode is left out; "
            "symlinks, special files and unsafe file names are refused. SYNAPSE_KEY_PASSPHRASE unlocks an "
            "encrypted key. The version must allow the changes since the versions signed before with the same "
            "key (see `plugin compat`): a bump too small, a lower version or a version already signed with "
            "other content is refused (exit 3); the fix is to change the version."
        ),
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument("--key", type=Path, help="PEM private key (default: the developer key)")
    p.add_argument("--cert", type=Path, help="PEM certificate chain, leaf first (default: the developer certificate)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..signing import sign_folder, verify_folder

    result = sign_folder(args.path, key_path=args.key, cert_path=args.cert, reuse="refuse")
    meta: dict[str, Any] = {"plugin": result.plugin, "version": result.version, "path": args.path}
    out.info(
        f"signed: {result.plugin} {result.version} ({result.file_count} files, digest {result.digest[:16]}) "
        f"by {result.signer_subject} -> {result.path}"
    )
    if result.compat is not None:
        compat = result.compat
        out.info(
            f"compatible with {compat['baseline']}: the changes need {compat['required_bump']}, "
            f"{compat['baseline']} -> {result.version} is {compat['bump_made']}"
        )
        if compat["asks_for_more"]:
            out.warn(f"{result.plugin} {result.version} asks for more: " + "; ".join(compat["asks_for_more"]))
    try:
        verify_folder(args.path)
    except SignatureError as exc:
        # The signature is written and may well be meant for another trust store; say it will not verify here.
        meta["verifies_here"] = False
        out.warn(f"the new signature does not verify on this machine: {exc}")
    else:
        meta["verifies_here"] = True
    return out.ok(result.to_json(), meta=meta)

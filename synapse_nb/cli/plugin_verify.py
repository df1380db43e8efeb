"""``synapse-cli plugin verify PATH [--json]``: the same checks as at every activation, exit 4 on failure."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import SignatureError
from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "verify",
        help="check a plugin's signature, signer and files",
        description=(
            "Check synapse.sig.json: the signature, the signer's chain to a trusted root (validity, usage, "
            "revocation), the name and version against manifest.yaml, and that no file was modified, added, "
            "removed or renamed. Exit 4 with the reason on failure."
        ),
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from ..signing import verify_folder

    try:
        result = verify_folder(args.path)
    except SignatureError as exc:
        return out.fail(exc, meta={"path": args.path, "plugin": exc.plugin})
    out.info(
        f"ok: {result.plugin} {result.version} signed by {result.signer_subject} "
        f"(sha256 {result.signer_fingerprint[:16]}, {result.key_type}) at {result.signed_at:%Y-%m-%d %H:%M:%SZ}"
    )
    out.info(f"  chain: {' <- '.join(result.chain)}")
    out.info(f"  {result.file_count} files, digest {result.digest}")
    return out.ok(result.to_json(), meta={"plugin": result.plugin, "version": result.version, "path": args.path})

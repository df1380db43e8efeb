"""``synapse-cli plugin publish PATH|ARCHIVE --registry NAME`` and ``plugin yank NAME@VERSION --registry NAME``."""

from __future__ import annotations

import argparse
from typing import Any

from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "publish",
        help="upload a signed plugin (folder or .synapse archive) to a registry",
        description=(
            "Pack the folder (or check the archive) locally, then upload it. The registry verifies the signature "
            "against its own trust store, checks sizes and contents and compatibility with the previous version, "
            "and refuses a version that exists with other content (versions are immutable)."
        ),
    )
    p.add_argument("path", metavar="PATH|ARCHIVE", help="plugin folder or NAME-VERSION.synapse")
    p.add_argument("--registry", required=True, metavar="NAME", help="configured registry to publish to")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_publish)

    y = subparsers["plugin"].add_parser(
        "yank",
        help="hide a published version from resolution (it is not deleted)",
        description="Yank NAME@VERSION on a registry: installs no longer pick it; --undo shows it again.",
    )
    y.add_argument("spec", metavar="NAME@VERSION")
    y.add_argument("--registry", required=True, metavar="NAME")
    y.add_argument("--undo", action="store_true", help="un-yank")
    y.add_argument("--reason", default="", help="why (kept by the registry)")
    y.add_argument("--json", action="store_true", help="print one JSON object")
    y.set_defaults(func=run_yank)


def run_publish(args: argparse.Namespace, out: Output) -> int:
    from ..registry.operations import publish

    answer = publish(args.path, registry=args.registry)
    verdict = answer.get("compat_verdict", "not checked")
    out.info(
        f"{answer.get('status', 'published')}: {answer.get('name')} {answer.get('version')} on {args.registry} "
        f"(sha256 {str(answer.get('sha256', ''))[:16]}, index version {answer.get('index_version', '-')}); "
        f"compatibility: {verdict}"
    )
    return out.ok(answer, meta={"registry": args.registry})


def run_yank(args: argparse.Namespace, out: Output) -> int:
    from ..registry.operations import yank

    answer = yank(args.spec, registry=args.registry, undo=args.undo, reason=args.reason)
    state = "yanked" if answer.get("yanked") else "restored"
    out.info(f"{state}: {answer.get('name')} {answer.get('version')} on {args.registry}")
    return out.ok(answer, meta={"registry": args.registry})

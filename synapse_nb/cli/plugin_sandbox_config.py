"""``synapse-cli plugin sandbox-config PATH``: print the exact jail a plugin runs in, for debugging."""

from __future__ import annotations

import argparse
from typing import Any

from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "sandbox-config",
        help="print the nsjail configuration and limits a plugin runs under",
        description="Print the exact nsjail configuration (protobuf text, usable with `nsjail --config`) and the "
        "cgroup limits for the plugin, without running it.",
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _signature_line(plugin: Any) -> str:
    check = plugin.signature
    if check.verification is not None:
        return f"verified, signed by {check.verification.signer_subject}"
    return f"NOT verified ({check.waived}); activation would refuse it"


def run(args: argparse.Namespace, out: Output) -> int:
    from ..activation import ActivationOptions, inspect, jail_config

    # Printing the configuration runs nothing, so it works for unsigned plugins too (and says so).
    plugin = inspect(args.path, ActivationOptions(insecure_allow_unsigned=True, warn=lambda _text: None))
    config = jail_config(plugin)
    policy = plugin.policy
    host = plugin.host
    cgroups = host.cgroups
    limits = {
        "memory_mb": policy.memory_mb,
        "pids_max": policy.pids_max,
        "timeout_ms": policy.timeout_ms,
        "tmp_mb": policy.tmp_mb,
        "fsize_mb": policy.fsize_mb,
        "nofile": policy.nofile,
        "cpu_seconds": policy.cpu_seconds,
    }
    header = [
        f"# synapse_nb jail for {plugin.name} {plugin.manifest.version} (snapshot {plugin.snapshot.digest[:16]})",
        f"# signature: {_signature_line(plugin)}",
        f"# nsjail binary: {host.nsjail}",
        f"# cgroups: {cgroups.describe()}",
        f"#   per worker: memory limit {policy.memory_mb} MiB, pids.max {policy.pids_max}; the worker is started as",
        "#   sh -c '<write own pid to each cgroup.procs; exec nsjail>' ... -- nsjail --config THIS_FILE",
        f"# timeout: {policy.timeout_ms} ms per call, enforced by the host (the jail's time_limit is 0)",
        "# file descriptors 3/4/5 stand for the request, reply and nsjail log pipes of a real worker",
    ]
    text = "\n".join(header) + "\n" + config.to_text() + "\n"
    if out.json_mode:
        return out.ok(
            {"config": config.to_text(), "limits": limits, "cgroups": cgroups.describe(), "command": config.command},
            meta={"plugin": plugin.name, "version": str(plugin.manifest.version)},
        )
    print(text, end="")
    return 0

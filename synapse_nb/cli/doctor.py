"""``synapse-cli doctor [--json] [--explain PATH]``: the isolation level this host gives, and how to get the best.

The level is found by starting a trivial jail with the exact configuration workers use (not guessed), and
every check says what it found and, when it failed, the fix. Exit 0 when plugins can run here under the
current configuration, 8 when they cannot (``process`` level without the opt-in), with one ``error:`` line.
``--explain PATH`` adds what one plugin would get: its level (or why it is refused), its network allowlist,
its GPU, and the exact nsjail configuration.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import SandboxError
from .output import Output


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = groups.add_parser(
        "doctor",
        help="report the isolation level this host gives plugins, and how to reach full isolation",
        description="Check nsjail, namespaces, seccomp and cgroups by starting a trivial jail; print the isolation "
        "level plugins get here (nsjail, nsjail-nocgroup or process) and, for anything missing, the fix.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--explain", metavar="PATH", help="also explain how the plugin at PATH would be isolated")
    p.set_defaults(func=run)


def _policy_verdict(level: str, require: str, forced: bool) -> tuple[bool, str]:
    """(can plugins run, one line saying at which level and why)."""
    if level != "process":
        return True, f"plugins run at {level}"
    how = "sandbox.isolation: process forces it" if forced else "nsjail cannot run here"
    if require == "any":
        return True, f"plugins run at process level ({how}; allowed by sandbox.require: any); network scopes refused"
    return False, f"plugins are refused: {how}, and process-level isolation needs an explicit opt-in"


def _explain(path: str) -> dict[str, Any]:
    from ..activation import ActivationOptions, inspect, jail_config
    from ..sandbox.allowlist import Allowlist, EgressDenied
    from ..sandbox.isolation import admit

    plugin = inspect(path, ActivationOptions(insecure_allow_unsigned=True, warn=lambda _text: None))
    policy = plugin.policy
    try:
        level: str | None = admit(plugin.host, policy, plugin=plugin.name)
        refused = None
    except SandboxError as exc:
        level, refused = None, str(exc)
    if not policy.network_domains:
        network = "none: an empty network namespace (only lo), no DNS"
    else:
        try:
            entries = ", ".join(str(e) for e in Allowlist.parse(policy.network_domains).entries)
            network = f"through the egress proxy only, to: {entries} (ports 80/443 unless listed)"
        except EgressDenied as exc:
            network = f"invalid allowlist: {exc}"
    gpu = "not requested: no /dev/nvidia*" if not policy.gpu else plugin.host.gpu.describe()
    return {
        "plugin": plugin.name,
        "version": str(plugin.manifest.version),
        "isolation": level,
        "refused": refused,
        "network": network,
        "gpu": gpu,
        "config": jail_config(plugin).to_text() if level not in (None, "process") else None,
    }


def run(args: argparse.Namespace, out: Output) -> int:
    from ..config import load_config
    from ..sandbox.host import detect_host
    from ..sandbox.isolation import LEVELS, OPT_IN, probe

    settings = load_config().sandbox
    host = detect_host(settings.nsjail)
    caps = probe(host, refresh=True)
    forced = settings.isolation == "process"
    level = "process" if forced else caps.level
    runs, verdict = _policy_verdict(level, settings.require, forced)
    fixes = caps.fixes
    report: dict[str, Any] = {
        **caps.to_json(),
        "level": level,
        "description": LEVELS[level],
        "gpu": host.gpu.describe(),
        "configuration": {"require": settings.require, "isolation": settings.isolation},
        "plugins_can_run": runs,
        "verdict": verdict,
    }
    if args.explain:
        report["explain"] = _explain(args.explain)
    if not out.json_mode:
        _print_report(report, fixes)
    if runs:
        return out.ok(report)
    fix = fixes[0] if fixes else "see the checks above"
    error = SandboxError(f"this host gives only process-level isolation; {fix}; to run plugins anyway, {OPT_IN}")
    return out.fail(error, meta={"doctor": report})


def _print_report(report: dict[str, Any], fixes: list[str]) -> None:
    print(f"isolation level: {report['level']} ({report['description']})")
    for check in report["checks"]:
        mark = "ok" if check["ok"] else "MISSING"
        print(f"  {mark:<8} {check['name']:<11} {check['detail']}")
    print(f"  {'info':<8} {'gpu':<11} {report['gpu']}")
    conf = report["configuration"]
    print(f"  {'info':<8} {'policy':<11} sandbox.require: {conf['require']}, sandbox.isolation: {conf['isolation']}")
    print(f"verdict: {report['verdict']}")
    if fixes:
        print("to reach full isolation:")
        for fix in fixes:
            print(f"  - {fix}")
    explain = report.get("explain")
    if explain:
        print(f"\nplugin {explain['plugin']} {explain['version']}:")
        print(f"  isolation: {explain['isolation'] or 'refused: ' + str(explain['refused'])}")
        print(f"  network:   {explain['network']}")
        print(f"  gpu:       {explain['gpu']}")
        if explain["config"]:
            print("  nsjail configuration (file descriptors and the egress socket directory are per worker):")
            for line in explain["config"].splitlines():
                print(f"    {line}")

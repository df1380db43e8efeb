"""``synapse-cli event emit TOPIC --input JSON [--json] [--plugins DIR]...``: trigger event plugins from a shell.

The plugins are discovered as :meth:`PluginManager.discover <synapse_nb.manager.PluginManager.discover>` does
(``--plugins DIR`` instead of the default places: config ``plugins.paths``, ``./synapse-plugins`` and the
installed plugins); every one with ``trigger: event`` that subscribes to TOPIC gets the payload, in parallel,
through the same execution policies as any call. Each delivery's outcome is printed (``--json``: one object with
every delivery); the exit code is 0 when every subscriber succeeded (or none subscribes), else the first failed
delivery's.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import UsageError
from ..signing.enforce import INSECURE_FLAG
from .output import Output
from .plugin_run import read_input

__all__ = ["register"]

TOPIC_HELP = "the topic, as plugins name it in spec.events.topics (e.g. orders.created)"


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["event"].add_parser(
        "emit",
        help="deliver an event to every plugin subscribed to its topic",
        description="Deliver one payload to every discovered plugin with trigger: event that subscribes to TOPIC.",
    )
    p.add_argument("topic", metavar="TOPIC", help=TOPIC_HELP)
    p.add_argument("--input", dest="input", help="the payload as JSON, @FILE, or - for stdin (default: stdin)")
    p.add_argument(
        "--plugins",
        action="append",
        default=[],
        metavar="DIR",
        help="look for plugins here (repeatable; default: plugins.paths, ./synapse-plugins, installed plugins)",
    )
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for each delivery (default: its own)")
    p.add_argument("--json", action="store_true", help="print one JSON object with every delivery")
    p.add_argument(INSECURE_FLAG, action="store_true", help="deliver to unsigned plugins too (local development only)")
    p.set_defaults(func=emit)


def emit(args: argparse.Namespace, out: Output) -> int:
    from ..manager import PluginManager

    topic = args.topic
    if not topic or len(topic) > 128 or not all(c.isalnum() or c in "._:/-" for c in topic):
        raise UsageError(f"event emit: {topic[:80]!r} is not a topic (letters, digits and . _ : / -)")
    if args.timeout is not None and not 0 < args.timeout < 1e9:  # also NaN and infinity
        raise UsageError(f"event emit: --timeout {args.timeout} is not a number of seconds above 0")
    payload = read_input(args.input)
    manager = PluginManager(insecure_allow_unsigned=args.insecure_allow_unsigned, warn=out.warn)
    try:
        manager.discover(*args.plugins)
        for record in manager.plugins.values():
            if record.error is not None and topic in record.topics:
                out.warn(f"{record.name}: subscribes to {topic!r} but is not valid: {record.error}")
        deliveries = manager.emit(topic, payload, timeout=args.timeout)
    finally:
        manager.teardown_all()  # saves each subscriber's state
    rows = [
        {"plugin": d.plugin, "ok": True, "result": d.result}
        if d.ok
        else {"plugin": d.plugin, "ok": False, "error": d.error.to_json() if d.error else {}}
        for d in deliveries
    ]
    failed = [d for d in deliveries if not d.ok and d.error is not None]
    if out.json_mode:
        out.emit_json({"ok": not failed, "topic": topic, "deliveries": rows})
    elif not deliveries:
        out.warn(f"no valid plugin with trigger: event subscribes to {topic!r}")
    for d in deliveries:
        if d.ok:
            out.info(f"{d.plugin}: {json.dumps(d.result, ensure_ascii=False)}")
        elif d.error is not None and not out.json_mode:
            for line in out.error_lines(d.error):
                print(line, file=sys.stderr)
    if failed and failed[0].error is not None:
        return failed[0].error.exit_code
    return 0

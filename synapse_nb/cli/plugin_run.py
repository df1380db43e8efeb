"""``synapse-cli plugin run PATH [--input JSON | --input @FILE | --input - | stdin] [--endpoint E] [--json]
[--idempotency-key K] [--no-cache] [--batch]``.

``--batch`` reads a JSON array or JSON Lines (one input per line) and writes JSON Lines, one outcome per input in
input order (``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {...}}``), running the inputs as
``execute_batch`` calls of at most ``spec.batch.max_batch_size`` (default 64) with a progress bar on a terminal;
the exit code is 0 when every input succeeded, else the first failed input's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import jsonsafe
from ..errors import SynapseError, UsageError
from ..signing.enforce import INSECURE_FLAG
from .output import Output, escape_terminal

if TYPE_CHECKING:
    from ..manager import PluginManager
    from ..plugin import Plugin


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["plugin"].add_parser(
        "run",
        help="run a plugin once in the sandbox",
        description="Activate the plugin in its sandbox, run one input through it, print the validated result.",
    )
    p.add_argument("path", metavar="PATH", help="plugin folder")
    p.add_argument(
        "--input", dest="input", help="the input as JSON, @FILE to read it from a file, or - for stdin (default: stdin)"
    )
    p.add_argument("--endpoint", help="an endpoint of spec.interfaces, by key (primary, analyze) or path (/v1/analyze)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the result and its metadata")
    p.add_argument(
        "--idempotency-key",
        metavar="K",
        help="run at most once for K: a repeat returns the stored outcome (same input) or is refused (exit 3)",
    )
    p.add_argument("--no-cache", action="store_true", help="bypass the response cache (spec.cache) for this call")
    p.add_argument(
        "--batch",
        action="store_true",
        help="the input is a JSON array or JSON Lines; write one JSON line per input (execute_batch in chunks)",
    )
    p.add_argument(
        INSECURE_FLAG,
        action="store_true",
        help="run even if the signature is missing or does not verify (local development only; warns every time)",
    )
    p.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="run a version lower than the highest one this publisher's plugin of this name ran here",
    )
    p.set_defaults(func=run)


def _raw_input(spec: str | None) -> tuple[str | bytes, str]:
    """The text of ``--input`` (JSON text, ``@FILE``, ``-`` for stdin, stdin when absent) and where it came from."""
    if spec is None or spec == "-":
        if spec is None and sys.stdin.isatty():
            raise UsageError("no input: pass --input JSON, --input @FILE, --input -, or pipe JSON on stdin")
        text: str | bytes = getattr(sys.stdin, "buffer", sys.stdin).read()
        source = "stdin"
    elif spec.startswith("@"):
        path = Path(spec[1:])
        try:
            text, source = path.read_bytes(), str(path)
        except OSError as exc:
            raise UsageError(f"cannot read input file {str(path)!r}: {exc.strerror}") from exc
    else:
        text, source = spec, "--input"
    return text, source


def read_input(spec: str | None) -> Any:
    """Parse ``--input``: JSON text, ``@FILE``, ``-`` (stdin), or stdin when absent; bounded decoding (exit 3)."""
    text, source = _raw_input(spec)
    return jsonsafe.loads(text, what=f"input from {source}", direction="input")


def read_batch(spec: str | None) -> list[Any]:
    """``--batch`` input: one JSON array, or JSON Lines (blank lines skipped); exit 3 naming a bad line."""
    text, source = _raw_input(spec)
    raw = text.encode() if isinstance(text, str) else text
    lines = [line for line in raw.splitlines() if line.strip()]
    if raw.lstrip()[:1] == b"[" and (len(lines) == 1 or not lines[0].rstrip().endswith(b"]")):
        items = jsonsafe.loads(raw, what=f"input from {source}", direction="input")
        if isinstance(items, list):
            return list(items)
    items = []
    for number, line in enumerate(raw.splitlines(), 1):
        if line.strip():
            items.append(jsonsafe.loads(line, what=f"input from {source}, line {number}", direction="input"))
    if not items:
        raise UsageError(f"--batch: no inputs in {source} (a JSON array, or one JSON value per line)")
    return items


def run(args: argparse.Namespace, out: Output) -> int:
    from ..environments import terminal_progress
    from ..manager import PluginManager

    payload = read_batch(args.input) if args.batch else read_input(args.input)
    manager = PluginManager(
        insecure_allow_unsigned=args.insecure_allow_unsigned,
        allow_downgrade=args.allow_downgrade,
        warn=out.warn,
        progress=terminal_progress(),
        prewarm=False,  # one call, then the process exits: a jail pre-started for later would never pay
    )
    plugin = manager.load(args.path)
    if args.batch:
        try:
            return run_batch(manager, plugin, payload, args, out)
        finally:
            manager.teardown_all()
    meta: dict[str, Any] = {"plugin": plugin.name, "version": plugin.version, "isolation": plugin.isolation}
    try:
        # Whatever the trigger (sync, async, event), the command waits for the result.
        invocation = manager.invoke(
            plugin.name, payload, endpoint=args.endpoint, cache=not args.no_cache, idempotency_key=args.idempotency_key
        )
    except SynapseError as exc:
        meta["circuit"] = plugin.policies.circuit.state
        manager.teardown_all()
        return out.fail(exc, meta=meta)
    manager.teardown(plugin.name)  # saves the handler's state for the next run
    meta = invocation.meta
    if plugin.last_start is not None:
        meta["cold_start_ms"] = round(plugin.last_start.cold_start_ms, 3)
    if not out.json_mode:
        for stream in ("stdout", "stderr"):
            for line in (meta.get(stream) or "").splitlines():
                print(f"[{plugin.name} {stream}] {escape_terminal(line)}", file=sys.stderr)
        print(escape_terminal(json.dumps(invocation.result, indent=2, ensure_ascii=False)))
    return out.ok(invocation.result, meta=meta)


def run_batch(manager: PluginManager, plugin: Plugin, items: list[Any], args: argparse.Namespace, out: Output) -> int:
    """``--batch``: the inputs in chunks of ``spec.batch.max_batch_size`` (64 without it), one JSON line each."""
    from tqdm import tqdm  # type: ignore[import-untyped]

    settings = plugin.policies.settings
    size = settings.max_batch_size if settings.batching else 64
    failed: list[tuple[int, SynapseError]] = []
    with tqdm(total=len(items), unit="item", disable=not sys.stderr.isatty(), file=sys.stderr, leave=False) as bar:
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            try:
                results = manager.run_batch(
                    plugin.name, chunk, endpoint=args.endpoint, cache=not args.no_cache,
                    idempotency_key=f"{args.idempotency_key}#{start}" if args.idempotency_key else None,
                    return_exceptions=True,
                )  # fmt: skip
            except SynapseError as exc:  # the whole chunk failed (a crash, a timeout, an open circuit)
                results = [exc] * len(chunk)
            for offset, result in enumerate(results):
                if isinstance(result, SynapseError):
                    failed.append((start + offset, result))
                    out.emit_json({"ok": False, "error": result.to_json()})
                else:
                    out.emit_json({"ok": True, "result": result})
            bar.update(len(chunk))
    if not failed:
        return 0
    index, first = failed[0]
    print(f"error: {len(failed)} of {len(items)} inputs failed; the first, input {index + 1}:", file=sys.stderr)
    for text in out.error_lines(first):
        print(f"  {text}", file=sys.stderr)
    return first.exit_code

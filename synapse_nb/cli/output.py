"""How the CLI reports: one ``error:`` line on stderr (plus a few detail lines), or one JSON object on stdout.

Everything printed that may carry a plugin's words (its output, its exception messages, names from its
files) goes through :func:`~synapse_nb.textsafe.escape_terminal`: control sequences are shown, never obeyed.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from ..errors import SynapseError
from ..textsafe import escape_json_text, escape_terminal

__all__ = ["MAX_DETAIL_LINES", "Output", "escape_terminal"]

MAX_DETAIL_LINES = 20


class Output:
    """Writes results and errors in the shape the CLI contract promises."""

    def __init__(self, *, json_mode: bool = False, debug: bool = False) -> None:
        self.json_mode = json_mode
        self.debug = debug

    def info(self, text: str) -> None:
        """A human line on stdout (suppressed in --json mode, which prints only the JSON object)."""
        if not self.json_mode:
            print(escape_terminal(text), flush=True)

    def warn(self, text: str) -> None:
        print(f"warning: {escape_terminal(text)}", file=sys.stderr, flush=True)

    def emit_json(self, obj: dict[str, Any]) -> None:
        sys.stdout.write(escape_json_text(json.dumps(obj, ensure_ascii=False, default=str)) + "\n")
        sys.stdout.flush()

    def ok(self, result: Any, meta: dict[str, Any] | None = None) -> int:
        if self.json_mode:
            self.emit_json({"ok": True, "result": result, "meta": meta or {}})
        return 0

    def error_lines(self, exc: SynapseError) -> list[str]:
        lines = [f"error: {escape_terminal(str(exc))}"]
        details = exc.details
        shown = details[:MAX_DETAIL_LINES]
        lines.extend(f"  {escape_terminal(str(d))}" for d in shown)
        if len(details) > len(shown):
            lines.append(f"  ... and {len(details) - len(shown)} more (use --json to see all)")
        return lines

    def fail(self, exc: SynapseError, meta: dict[str, Any] | None = None) -> int:
        """Report a domain error; returns its exit code."""
        if self.debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        if self.json_mode:
            self.emit_json({"ok": False, "error": exc.to_json(), "meta": meta or {}})
        for line in self.error_lines(exc):
            print(line, file=sys.stderr)
        sys.stderr.flush()
        return exc.exit_code

    def internal(self, exc: BaseException) -> int:
        """An unexpected exception is a bug: say so in one line (traceback with --debug)."""
        if self.debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        text = escape_terminal(str(exc))
        message = f"internal error: {type(exc).__name__}: {text} (this is a bug; rerun with --debug and report it)"
        if self.json_mode:
            self.emit_json({"ok": False, "error": {"code": "internal", "exit_code": 1, "message": message}})
        print(f"error: {message}", file=sys.stderr)
        return 1

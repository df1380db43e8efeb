"""Untrusted text made safe to print: a plugin's stdout, stderr and exception messages reach terminals and
notebooks, where control sequences could write the clipboard (OSC 52), retitle the window, move the cursor to
overwrite earlier lines, or reorder what is shown (Unicode bidirectional overrides).

:func:`escape_terminal` keeps newlines and tabs and shows every other control character as a visible escape
(``\\x1b``, ``\\u202e``), so the text reads the same but does nothing to the terminal.
"""

from __future__ import annotations

import re

__all__ = ["escape_json_text", "escape_terminal"]

# C0 controls but \t and \n, DEL, C1 controls, and the bidirectional formatting characters.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# In JSON text C0 controls are already escaped by the encoder; C1 and bidi characters are not.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_terminal(text: str) -> str:
    """``text`` with every control character but newline and tab shown as an escape (``\\r`` too: it could
    overwrite the start of the line)."""
    return _UNSAFE.sub(_visible, text)


def escape_json_text(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with C1 and bidi characters as ``\\uXXXX``
    escapes: the same JSON value, but inert on a terminal."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)

"""Linear-time regular expressions for JSON Schema ``pattern``s checked on the host (google-re2).

Python's ``re`` backtracks: ``"^(a+)+$"`` against 41 characters takes hours. Schemas come from plugin folders
and outputs from plugins, so every pattern the host evaluates goes through RE2, whose search time is linear in
the text. JSON Schema patterns are ECMA-262 regular expressions, searched unanchored; :func:`translate` maps the
ECMA syntax onto RE2's (``\\uXXXX``, ``\\cX``, ECMA's ``\\s`` and ``.``, ``[]``/``[^]``, named groups) and
refuses, with a one-line reason, what a linear-time engine cannot do: lookaround and backreferences.

A search whose worst case could exceed a few milliseconds (a long text times a large pattern program) runs
beside the caller when the check has a deadline (:mod:`synapse_nb.budget`): RE2 releases the GIL, so the caller
stops waiting at the deadline, and the abandoned search ends by itself in linear time.

google-re2 is a dependency, so the host always has it. Only inside a jail whose built environment lacks it (a
plugin's own ``validate_with_schema``) does this module fall back to ``re``: there a slow pattern only spends
the plugin's own time budget.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import time
from typing import Any

from . import budget

__all__ = ["INLINE_COST", "Regex", "UnsupportedPattern", "compile_pattern", "refusal", "translate"]

#: Worst-case work (text bytes x program instructions, ~7 ns each) a search may do on the caller's thread.
INLINE_COST = 1 << 22


class UnsupportedPattern(ValueError):
    """A pattern the linear-time engine cannot run; ``str()`` is the one-line reason."""


def _ranges(spans: list[tuple[int, int]]) -> str:
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in spans)


def _complement(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], 0
    for a, b in spans:
        if a > start:
            out.append((start, a - 1))
        start = b + 1
    return [*out, (start, 0x10FFFF)] if start <= 0x10FFFF else out


# ECMA-262 WhiteSpace and LineTerminator (what \s means there; RE2's \s is only [\t\n\f\r ]).
_SPACE_SPANS = [(0x9, 0xD), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
                (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]  # fmt: skip
_SPACE = _ranges(_SPACE_SPANS)
_NON_SPACE = _ranges(_complement(_SPACE_SPANS))
_DOT = r"[^\n\r\x{2028}\x{2029}]"  # ECMA's "." stops at every line terminator, RE2's only at \n
_ANY = r"[\x{0}-\x{10ffff}]"  # ECMA "[^]"
_NOTHING = r"[^\x{0}-\x{10ffff}]"  # ECMA "[]"
_HEX = frozenset("0123456789abcdefABCDEF")
_PROPERTY_PREFIXES = ("General_Category=", "gc=", "Script=", "sc=")


def _refuse(construct: str, token: str, advice: str) -> UnsupportedPattern:
    return UnsupportedPattern(
        f"pattern uses a construct the linear-time regex engine does not support: {construct} `{token}`; {advice}"
    )


def _hex_escape(pattern: str, i: int) -> tuple[int, int] | None:
    """The code point of ``\\uXXXX`` / ``\\u{X...}`` at ``i`` (a surrogate pair counts as one), and its end."""
    if pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        digits = pattern[i + 3 : end] if end > 0 else ""
        if not digits or len(digits) > 6 or not set(digits) <= _HEX or int(digits, 16) > 0x10FFFF:
            return None
        return int(digits, 16), end + 1
    digits = pattern[i + 2 : i + 6]
    if len(digits) < 4 or not set(digits) <= _HEX:
        return None
    code = int(digits, 16)
    low = pattern[i + 8 : i + 12]
    if 0xD800 <= code <= 0xDBFF and pattern.startswith("\\u", i + 6) and len(low) == 4 and set(low) <= _HEX:
        second = int(low, 16)
        if 0xDC00 <= second <= 0xDFFF:
            return 0x10000 + ((code - 0xD800) << 10) + (second - 0xDC00), i + 12
    return code, i + 6


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """RE2 text for the escape at ``pattern[i]`` (a backslash), and the index after it."""
    if i + 1 >= len(pattern):
        raise UnsupportedPattern("not a valid regular expression: it ends with a lone backslash")
    e = pattern[i + 1]
    if e in "sS":
        inner = _SPACE if e == "s" else _NON_SPACE
        return (inner if in_class else f"[{inner}]"), i + 2
    if e == "b" and in_class:
        return r"\x08", i + 2  # backspace inside a class
    if e == "0" and not pattern[i + 2 : i + 3].isdigit():
        return r"\x00", i + 2
    if e in "123456789":
        end = i + 2
        while end < len(pattern) and pattern[end].isdigit():
            end += 1
        raise _refuse("backreference", pattern[i:end], "rewrite it without backreferences")
    if e == "k" and pattern.startswith("<", i + 2):
        raise _refuse("named backreference", "\\k<", "rewrite it without backreferences")
    if e == "c" and pattern[i + 2 : i + 3].isascii() and pattern[i + 2 : i + 3].isalpha():
        return f"\\x{{{ord(pattern[i + 2]) % 32:x}}}", i + 3
    if e == "u":
        found = _hex_escape(pattern, i)
        if found is None:
            raise UnsupportedPattern(f"not a valid regular expression: bad escape {pattern[i : i + 6]!r}")
        code, end = found
        if 0xD800 <= code <= 0xDFFF:
            raise _refuse("lone surrogate", pattern[i:end], "match whole characters instead")
        return f"\\x{{{code:x}}}", end
    if e in "pP" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        if end > 0:
            name = pattern[i + 3 : end]
            for prefix in _PROPERTY_PREFIXES:
                name = name.removeprefix(prefix)
            return f"\\{e}{{{name}}}", end + 1
    if not e.isascii():
        return e, i + 2  # an identity escape of a non-ASCII character is the character
    return "\\" + e, i + 2  # d D w W b B n r t f v x, punctuation; RE2 refuses what it does not know


def translate(pattern: str) -> str:
    """The RE2 spelling of the ECMA-262 ``pattern``; :class:`UnsupportedPattern` says why there is none."""
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            piece, i = _escape(pattern, i, in_class)
            out.append(piece)
        elif in_class:
            if c == "]":
                in_class = False
            out.append(r"\[" if c == "[" else c)  # "[:alpha:]" is text in ECMA, a POSIX class in RE2
            i += 1
        elif c == "[":
            negated = pattern.startswith("[^", i)
            start = i + (2 if negated else 1)
            if pattern.startswith("]", start):
                out.append(_ANY if negated else _NOTHING)
                i = start + 1
            else:
                out.append("[^" if negated else "[")
                in_class, i = True, start
        elif c == "(" and pattern.startswith(("(?=", "(?!"), i):
            kind = "lookahead" if pattern[i + 2] == "=" else "negative lookahead"
            raise _refuse(kind, pattern[i : i + 3], "rewrite it without lookaround")
        elif c == "(" and pattern.startswith(("(?<=", "(?<!"), i):
            kind = "lookbehind" if pattern[i + 3] == "=" else "negative lookbehind"
            raise _refuse(kind, pattern[i : i + 4], "rewrite it without lookaround")
        elif c == "(" and pattern.startswith("(?<", i):
            out.append("(?P<")  # ECMA's named group
            i += 3
        elif c == ".":
            out.append(_DOT)
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _explain(error: str) -> str:
    if "invalid repetition size" in error:
        return f"pattern repeats more than 1000 times ({error.split(': ', 1)[-1]}); the linear-time engine's limit"
    if "pattern too large" in error:
        return "pattern is too large for the linear-time regex engine; split or simplify it"
    if "invalid perl operator" in error:
        return f"pattern uses a construct the linear-time regex engine does not support ({error})"
    return f"not a valid regular expression for the linear-time engine: {error}"


class Regex:
    """A compiled pattern: :meth:`search` answers whether it matches anywhere in a text, in linear time."""

    __slots__ = ("_match", "_size", "source")

    def __init__(self, source: str, match: Any, size: int) -> None:
        self.source = source
        self._match = match
        self._size = size

    def search(self, text: str) -> bool:
        """True when the pattern matches somewhere in ``text`` (ECMA-262 ``RegExp.prototype.test``)."""
        try:
            data = text.encode()
        except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape in JSON
            data = text.encode("utf-8", "surrogatepass")
        if len(data) * self._size > INLINE_COST:
            deadline = budget.current_deadline()
            if deadline is not None:
                return _search_beside(self._match, data, deadline)
        return bool(self._match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)


def _search_beside(match: Any, data: bytes, deadline: float) -> bool:
    """One long search on its own thread; the caller waits until ``deadline`` at most."""
    box: list[bool] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(match(_UNANCHORED, data, 0, len(data))[0][0] >= 0)
        finally:
            done.set()

    threading.Thread(target=run, name="synapse-regex", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise budget.DeadlineExceeded
    return box[0]


class _BacktrackingRegex(Regex):
    """Python's ``re``, used only inside a jail whose environment has no google-re2 (see the module doc)."""

    __slots__ = ()

    def search(self, text: str) -> bool:
        return self._match(text) is not None


_UNANCHORED: Any = None
_OPTIONS: Any = None


def _re2() -> Any:
    """The ``re2`` extension module, or None in a jail without it; ImportError on a host without it."""
    global _UNANCHORED, _OPTIONS
    try:
        import re2  # type: ignore[import-untyped]
        from re2 import _re2
    except ImportError:
        if "synapse_nb.sandbox.guest" in sys.modules:
            return None
        raise ImportError("synapse_nb needs google-re2 for schema patterns: pip install google-re2") from None
    if _OPTIONS is None:
        options = re2.Options()
        options.log_errors = False  # refusals are reported to the user, not logged to stderr
        options.never_capture = True  # only "does it match?" is asked: no submatch bookkeeping
        _OPTIONS, _UNANCHORED = options, _re2.RE2.Anchor.UNANCHORED
    return _re2


def compile_pattern(pattern: str) -> Regex:
    """The compiled ECMA-262 ``pattern`` (cached); :class:`UnsupportedPattern` with the reason when refused."""
    if type(pattern) is not str:
        raise UnsupportedPattern(f"a pattern must be a string, got {type(pattern).__name__}")
    return _compile(pattern)


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> Regex:
    engine = _re2()
    translated = translate(pattern)
    if engine is None:
        try:
            return _BacktrackingRegex(pattern, re.compile(translated).search, 1)
        except re.error as exc:
            raise UnsupportedPattern(f"not a valid regular expression: {exc}") from None
    try:
        encoded = translated.encode()
    except UnicodeEncodeError:
        raise UnsupportedPattern("pattern contains a lone surrogate character; match whole characters") from None
    compiled = engine.RE2(encoded, _OPTIONS)
    if not compiled.ok():
        raise UnsupportedPattern(_explain(compiled.error().decode("utf-8", "replace")))
    return Regex(pattern, compiled.Match, max(1, compiled.ProgramSize()))


def refusal(pattern: Any) -> str | None:
    """Why ``pattern`` cannot be used (one line), or None when it compiles."""
    try:
        compile_pattern(pattern)
    except UnsupportedPattern as exc:
        return str(exc)
    return None

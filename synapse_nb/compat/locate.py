"""Where a JSON pointer is in a JSON text: its line, found by one pass of a small tokenizer.

The schemas were parsed by :func:`json.loads` already; this only needs the positions, and only for files in
which a change was found. For ``/properties/zip/maxLength`` the line is that of the ``"maxLength"`` key (where a
reader looks); for an array item, the item's own line. Text that is not the JSON it claims to be (it never is,
since it parsed) degrades to the nearest located ancestor, never to an exception.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass

__all__ = ["JsonLocator"]

# Strings (whose contents may hold brackets), brackets and commas; numbers and literals need no token: a member's
# line is its name's, and an array item that is a number is placed at its array (the nearest located ancestor).
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],]', re.DOTALL)


@dataclass
class _Frame:
    is_object: bool
    pointer: str
    index: int = 0
    key: str | None = None  # the escaped name of the member whose value comes next


def _key(token: str) -> str:
    """A member name token as it appears in a JSON pointer (RFC 6901 escaping)."""
    name = token[1:-1]
    if "\\" in name:
        with contextlib.suppress(ValueError):
            name = str(json.loads(token))
    return name.replace("~", "~0").replace("/", "~1")


class JsonLocator:
    """The 1-based line of every value (and object member name) of a JSON text, by JSON pointer."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: dict[str, int] | None = None

    def _scan(self) -> dict[str, int]:
        text = self.text
        lines: dict[str, int] = {}
        stack: list[_Frame] = []
        line, seen = 1, 0  # the line at offset `seen`, counted forward as tokens come
        for match in _TOKEN.finditer(text):
            token = match.group()
            top = stack[-1] if stack else None
            if token == ",":
                if top is not None:
                    if top.is_object:
                        top.key = None  # after a member (its value may have been a number: not a token)
                    else:
                        top.index += 1
                continue
            if token in "}]":
                if stack:
                    stack.pop()
                continue
            if top is not None and top.is_object:
                if top.key is None:  # a member name: the place a reader looks for the member
                    top.key = _key(token)
                    start = match.start()
                    line += text.count("\n", seen, start)
                    seen = start
                    lines[top.pointer + "/" + top.key] = line
                elif token in "{[":
                    stack.append(_Frame(token == "{", top.pointer + "/" + top.key))
                continue  # a string member value: located at its name already
            start = match.start()
            line += text.count("\n", seen, start)
            seen = start
            pointer = "" if top is None else f"{top.pointer}/{top.index}"
            lines.setdefault(pointer, line)
            if token in "{[":
                stack.append(_Frame(token == "{", pointer))
        return lines

    def line(self, pointer: str) -> int:
        """The line of ``pointer`` (of its key when it is an object member), else of its nearest ancestor."""
        if self._lines is None:
            self._lines = self._scan()
        probe = pointer
        while True:
            found = self._lines.get(probe)
            if found is not None:
                return found
            if not probe:
                return 1
            probe = probe.rsplit("/", 1)[0]

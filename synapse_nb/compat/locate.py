"""Where a JSON pointer is in a JSON text: its line and column, found by one pass of a small tokenizer.

The schemas were parsed by :func:`json.loads` already; this only needs the positions, and only for files in
which a change was found. For ``/properties/zip/maxLength`` the line is that of the ``"maxLength"`` key (where a
reader looks); for an array item, the item's own line. Text that is not the JSON it claims to be (it never is,
since it parsed) degrades to the nearest located ancestor, never to an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..yamlpos import json_pointer

__all__ = ["JsonLocator"]

_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"'  # string
    r"|[{}\[\]:,]"  # punctuation
    r"|[^\s{}\[\]:,\"]+",  # number, true, false, null
    re.DOTALL,
)


@dataclass
class _Frame:
    is_object: bool
    path: tuple[str | int, ...]
    index: int = 0
    key: str | None = None


class JsonLocator:
    """1-based ``(line, col)`` of every value (and object key) of a JSON text, by JSON pointer."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._positions: dict[str, tuple[int, int]] | None = None
        self._newlines: list[int] = []

    def _line_col(self, index: int) -> tuple[int, int]:
        import bisect

        line = bisect.bisect_right(self._newlines, index)
        start = self._newlines[line - 1] + 1 if line else 0
        return line + 1, index - start + 1

    def _scan(self) -> dict[str, tuple[int, int]]:
        import json

        self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        positions: dict[str, tuple[int, int]] = {}
        stack: list[_Frame] = []
        for match in _TOKEN.finditer(self.text):
            token = match.group()
            if token in ",:":
                continue
            if token in "}]":
                if stack:
                    stack.pop()
                continue
            top = stack[-1] if stack else None
            if top is not None and top.is_object and top.key is None:  # a member name
                try:
                    top.key = str(json.loads(token))
                except ValueError:
                    top.key = token.strip('"')
                positions[json_pointer((*top.path, top.key))] = self._line_col(match.start())
                continue
            path: tuple[str | int, ...] = ()
            if top is not None:
                if top.is_object:
                    path = (*top.path, top.key or "")
                    top.key = None
                else:
                    path = (*top.path, top.index)
                    top.index += 1
            positions.setdefault(json_pointer(path), self._line_col(match.start()))
            if token in "{[":
                stack.append(_Frame(token == "{", path))
        return positions

    def line(self, pointer: str) -> int:
        """The line of ``pointer`` (of its key when it is an object member), else of its nearest ancestor."""
        if self._positions is None:
            self._positions = self._scan()
        probe = pointer
        while True:
            found = self._positions.get(probe)
            if found is not None:
                return found[0]
            if not probe:
                return 1
            probe = probe.rsplit("/", 1)[0]

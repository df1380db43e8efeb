"""Safe YAML loading that remembers where every value came from.

PyYAML's safe composer gives a node tree with marks; we build plain JSON-compatible Python values from it
ourselves so that we can (a) record the line and column of every value and of every mapping key, keyed by JSON
pointer, (b) refuse what a plain ``yaml.safe_load`` silently accepts (duplicate keys, non-string keys,
timestamps and binary values that JSON Schema cannot judge, alias bombs), and (c) report every problem with its
position instead of a traceback.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import Problem

__all__ = ["LocatedDocument", "YamlProblems", "json_pointer", "load_located_yaml"]

MAX_NODES = 100_000
# libyaml's composer, when PyYAML was built with it, is several times faster than the pure-Python one. Only the
# node graph (with its line/column marks) is taken from it; values are built below, safely, either way.
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


class YamlProblems(Exception):
    """Raised with every problem found while reading a YAML document."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(str(problems[0]))
        self.problems = problems


def json_pointer(parts: tuple[str | int, ...]) -> str:
    """RFC 6901 pointer for a path of keys and indexes (``()`` is ``""``, the whole document)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class LocatedDocument:
    """A loaded document plus the 1-based (line, col) of every value and every mapping key, by JSON pointer."""

    data: Any
    file: str
    values: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)

    def position(self, pointer: str, *, prefer_key: bool = False) -> tuple[int, int]:
        """Best position for ``pointer``: the value (or its key), else the nearest located ancestor."""
        probe = pointer
        while True:
            if prefer_key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            if probe in self.keys:
                return self.keys[probe]
            if not probe:
                return (1, 1)
            probe = probe.rsplit("/", 1)[0]

    def problem(self, pointer: str, message: str, *, prefer_key: bool = False) -> Problem:
        line, col = self.position(pointer, prefer_key=prefer_key)
        return Problem(file=self.file, line=line, col=col, pointer=pointer, message=message)


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8", "replace")
        line, col = _line_col(prefix, len(prefix))
        raise YamlProblems(
            [
                Problem(
                    file,
                    f"not UTF-8 text (invalid byte 0x{raw[exc.start]:02x}); is this a binary file?",
                    line,
                    col,
                )
            ]
        ) from exc


def _yaml_error_problem(exc: yaml.YAMLError, text: str, file: str) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        index = exc.position if isinstance(exc.position, int) else 0
        line, col = _line_col(text, min(index, len(text)))
        char = exc.character
        shown = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        return Problem(file, f"unacceptable character {shown} (control characters are not allowed)", line, col)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        at_line = mark.line + 1 if mark is not None else None
        at_col = mark.column + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        lines = text.splitlines()
        at_char = ""
        if mark is not None and mark.line < len(lines) and mark.column < len(lines[mark.line]):
            at_char = lines[mark.line][mark.column]
        if "'\\t'" in problem or "tab character" in problem or at_char == "\t":
            message = "tab character where YAML needs spaces (indent with spaces only)"
        else:
            context = f" {exc.context}" if exc.context else ""
            message = f"invalid YAML: {problem}{context}"
        return Problem(file, message, at_line, at_col)
    return Problem(file, f"invalid YAML: {exc}")


class _Builder:
    """Turns a composed node graph into JSON-compatible values, recording positions."""

    def __init__(self, doc: LocatedDocument) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self.count = 0
        self.constructor = yaml.SafeLoader("")  # only used for its scalar constructors
        self.active: set[int] = set()

    def _at(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _add(self, node: yaml.Node, pointer: str, message: str) -> None:
        line, col = self._at(node)
        self.problems.append(Problem(self.doc.file, message, line, col, pointer))

    def build(self, node: yaml.Node, path: tuple[str | int, ...]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlProblems(
                [Problem(self.doc.file, f"document expands to more than {MAX_NODES} values (alias bomb?)", 1, 1)]
            )
        pointer = json_pointer(path)
        self.doc.values[pointer] = self._at(node)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            self._add(node, pointer, f"tag {node.tag!r} is not allowed (plain mappings and lists only)")
            return None
        if id(node) in self.active:
            self._add(node, pointer, "recursive alias: a value cannot contain itself")
            return None
        if isinstance(node, yaml.MappingNode):
            self.active.add(id(node))
            try:
                return self._mapping(node, path, pointer)
            finally:
                self.active.discard(id(node))
        if isinstance(node, yaml.SequenceNode):
            self.active.add(id(node))
            try:
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self.active.discard(id(node))
        return self._scalar(node, pointer)

    def _mapping(self, node: yaml.MappingNode, path: tuple[str | int, ...], pointer: str) -> dict[str, Any]:
        self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node, pointer) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                self._add(key_node, pointer, f"mapping key {shown!r} is not a string (quote it)")
                continue
            child = (*path, key)
            child_pointer = json_pointer(child)
            if key in first_seen:
                self._add(
                    key_node,
                    child_pointer,
                    f"duplicate key {key!r} (first defined on line {first_seen[key]})",
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.doc.keys[child_pointer] = self._at(key_node)
            out[key] = self.build(value_node, child)
        return out

    def _scalar(self, node: yaml.Node, pointer: str) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._add(node, pointer, f"invalid value: {getattr(exc, 'problem', exc)}")
            return None
        if isinstance(value, (_dt.date, _dt.datetime)):
            # JSON has no dates; keep the text as written so a string field still validates.
            return str(node.value)
        if isinstance(value, bytes):
            self._add(node, pointer, "binary values (!!binary) are not allowed")
            return None
        if isinstance(value, set):
            self._add(node, pointer, "sets (!!set) are not allowed")
            return None
        if isinstance(value, float) and value != value:  # NaN
            self._add(node, pointer, ".nan is not a JSON value")
            return None
        return value


def load_located_yaml(raw: bytes | str, *, file: str, max_bytes: int = 1 << 20) -> LocatedDocument:
    """Load one YAML document with positions; raises :class:`YamlProblems` listing every problem found."""
    size = len(raw)
    if size > max_bytes:
        raise YamlProblems(
            [
                Problem(
                    file,
                    f"file is {size / (1 << 20):.1f} MiB, over the {max_bytes / (1 << 20):g} MiB limit",
                    1,
                    1,
                )
            ]
        )
    text = _decode(raw, file) if isinstance(raw, bytes) else raw
    doc = LocatedDocument(data=None, file=file)
    if not text.strip():
        raise YamlProblems([Problem(file, "file is empty", 1, 1, "")])
    try:
        # SafeLoader.compose_node is the safe composer: no Python object tags are ever constructed.
        loader = _COMPOSER(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise YamlProblems([_yaml_error_problem(exc, text, file)]) from exc
    if node is None:
        raise YamlProblems([Problem(file, "file holds no YAML document", 1, 1, "")])
    builder = _Builder(doc)
    try:
        doc.data = builder.build(node, ())
    except RecursionError as exc:
        raise YamlProblems([Problem(file, "document is nested too deeply", 1, 1)]) from exc
    if builder.problems:
        raise YamlProblems(builder.problems)
    return doc

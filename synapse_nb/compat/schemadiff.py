"""A direction-aware JSON Schema differ: how the set of values a schema accepts moved between two versions.

:func:`diff_schema` walks an old and a new schema side by side (``$ref`` resolved first, through the plugin's
sibling files and the same :mod:`referencing` registry validation uses) and reports every difference as a
:class:`~.model.Change` whose bump depends on the direction: an input may only widen in a minor release, an
output may only narrow. Keywords are a conjunction, so each one is judged on its own (:mod:`.keywords`); the
walker adds what needs structure: object members and ``additionalProperties``, array positions and ``items``,
``anyOf``/``oneOf``/``allOf`` branches (matched by content, not by position), ``not`` (which turns a widening
into a narrowing), ``if``/``then``/``else`` and dependencies.

Undeclared members of an open object are not part of the contract (the rule table's "declared contract"):
adding an optional property is minor in both directions, removing one from an open input object is minor but
flagged. Where the differ cannot decide (a changed ``pattern``, a changed ``if``, overlapping ``oneOf``
branches...) the change is ``unknown`` and needs a major release unless ``compat.yaml`` accepts it with a reason.

The walk is bounded: recursive schemas are compared co-inductively (a pair already being compared is assumed
equal), shared subschemas are compared once, and past :data:`MAX_STEPS` comparisons or :data:`MAX_DEPTH` levels
the rest is reported as one ``unknown`` change instead of running on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from ..errors import SchemaError, ValidationError
from ..schemas import SCHEMA_DIR, SchemaSet, draft_of
from . import keywords as kw
from .locate import JsonLocator
from .model import Change, Direction, Effect, Side, bump_for
from .structure import compare_arrays, compare_combinators, compare_lifted, compare_objects

__all__ = ["MAX_DEPTH", "MAX_STEPS", "SchemaDocs", "diff_schema", "parse_schema"]

MAX_STEPS = 200_000
MAX_DEPTH = 96
MAX_REF_HOPS = 32
TRUE: dict[str, Any] = {}


def parse_schema(text: str, display: str) -> Any:
    """One schema file's JSON, decoded with bounds; :class:`SchemaError` (exit 3) names the file and the place."""
    from ..jsonsafe import loads

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    try:
        return loads(text, what=display, object_pairs_hook=no_duplicates)
    except ValidationError as exc:
        raise SchemaError(exc.message) from None


def _esc(key: str | int) -> str:
    text = str(key)
    return text.replace("~", "~0").replace("/", "~1") if "~" in text or "/" in text else text


@dataclass(frozen=True)
class _Loc:
    file: str
    pointer: str
    base: str
    draft: int


class SchemaDocs:
    """One version's ``schemas/``: texts by file name, parsed on first need, with a lazy ``$ref`` resolver."""

    def __init__(
        self, schemas: dict[str, Any] | None = None, texts: dict[str, str] | None = None, *, origin: str = SCHEMA_DIR
    ) -> None:
        self._schemas = schemas
        self.texts: dict[str, str] = dict(texts or {})
        self.origin = origin
        self._set: SchemaSet | None = None
        self._index: dict[int, _Loc] | None = None
        self._has_ref: dict[int, bool] = {}
        self._locators: dict[str, JsonLocator] = {}
        self._uris: dict[str, str] | None = None

    @property
    def schemas(self) -> dict[str, Any]:
        """The parsed schemas; a file that is not JSON is a :class:`~synapse_nb.errors.SchemaError`, located."""
        if self._schemas is None:
            self._schemas = {name: parse_schema(text, f"{self.origin}/{name}") for name, text in self.texts.items()}
        return self._schemas

    def draft(self, name: str) -> int:
        try:
            return draft_of(self.schemas[name], file=name)
        except Exception:  # an unsupported $schema: judged as draft-07, validation reports the rest
            return 7

    def base_of(self, name: str) -> str:
        schema = self.schemas.get(name)
        ident = schema.get("$id") if isinstance(schema, dict) else None
        return ident if isinstance(ident, str) and ident else name

    def _build_index(self) -> dict[int, _Loc]:
        index: dict[int, _Loc] = {}
        for name, schema in self.schemas.items():
            draft = self.draft(name)
            stack: list[tuple[Any, str, str]] = [(schema, "", self.base_of(name))]
            while stack:
                node, pointer, base = stack.pop()
                if not isinstance(node, (dict, list)) or id(node) in index:
                    continue
                if isinstance(node, dict):
                    ident = node.get("$id")
                    if isinstance(ident, str) and ident and pointer:
                        base = urljoin(base, ident)
                index[id(node)] = _Loc(name, pointer, base, draft)
                items = node.items() if isinstance(node, dict) else enumerate(node)
                for key, child in items:
                    if key in ("enum", "const", "default", "examples") and isinstance(node, dict):
                        continue
                    stack.append((child, f"{pointer}/{_esc(key)}", base))
        return index

    @property
    def index(self) -> dict[int, _Loc]:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def has_ref(self, value: Any) -> bool:
        """Whether a ``$ref`` is anywhere inside ``value`` (two equal subschemas may still point elsewhere)."""
        if not isinstance(value, (dict, list)):
            return False
        known = self._has_ref.get(id(value))
        if known is None:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            known = (isinstance(value, dict) and isinstance(value.get("$ref"), str)) or any(
                self.has_ref(child) for key, child in items if key not in ("enum", "const", "default", "examples")
            )
            self._has_ref[id(value)] = known
        return known

    def _documents(self) -> dict[str, str]:
        """Document URI -> file name, for files whose only ``$id`` (if any) is at their root."""
        if self._uris is None:
            self._uris = {}
            for name in self.schemas:
                text = self.texts.get(name)
                if text is None or text.count('"$id"') > (1 if self.base_of(name) != name else 0):
                    continue  # embedded resources change the base URI: leave those to the registry
                for uri in {name, f"./{name}", self.base_of(name)}:
                    self._uris[uri] = name
        return self._uris

    def _direct(self, ref: str, base: str) -> tuple[Any, _Loc] | None:
        """``file.json#/json/pointer`` and ``#/pointer``, resolved without the registry (the common case)."""
        head, _, fragment = ref.partition("#")
        if not head:
            uri = base.partition("#")[0]
        elif "/" not in head and ":" not in head and "/" not in base and ":" not in base:
            uri = head  # a sibling file seen from a sibling file
        else:
            uri, fragment = urldefrag(urljoin(base, ref))
        name = self._documents().get(uri)
        if name is None or (fragment and not fragment.startswith("/")):
            return None
        node = self.schemas[name]
        for part in fragment.split("/")[1:] if fragment else []:
            key = unquote(part) if "%" in part else part
            if "~" in key:
                key = key.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return None
        return node, _Loc(name, fragment, self.base_of(name), self.draft(name))

    def lookup(self, ref: str, base: str) -> tuple[Any, _Loc | None]:
        """The target of ``ref`` seen from ``base`` and where it is; raises ``LookupError`` if unresolvable."""
        direct = self._direct(ref, base)
        if direct is not None:
            return direct
        if self._set is None:
            self._set = SchemaSet(folder=Path(SCHEMA_DIR), schemas=self.schemas)
        from referencing.exceptions import Unresolvable

        try:
            contents = self._set.registry.resolver(base_uri=base).lookup(ref).contents
        except Unresolvable as exc:
            raise LookupError(str(exc)) from None
        return contents, self.index.get(id(contents))

    def line(self, name: str, pointer: str) -> int | None:
        text = self.texts.get(name)
        if text is None:
            return None
        locator = self._locators.get(name)
        if locator is None:
            locator = self._locators[name] = JsonLocator(text)
        return locator.line(pointer)


@dataclass(frozen=True)
class _Node:
    value: Any
    side: Side
    file: str
    pointer: str
    base: str
    draft: int

    def child(self, *keys: str | int) -> _Node:
        value = self.value
        pointer = self.pointer
        for key in keys:
            value = value[key]
            pointer += "/" + _esc(key)
        return _Node(value, self.side, self.file, pointer, self.base, self.draft)

    def maybe(self, key: str) -> _Node:
        """The subschema at ``key``, or an always-true schema located at this node when it is absent."""
        if isinstance(self.value, dict) and key in self.value:
            return self.child(key)
        return _Node(True, self.side, self.file, self.pointer, self.base, self.draft)

    @property
    def schema(self) -> dict[str, Any]:
        """The node as a keyword dict (``true`` is ``{}``; ``false`` is handled before this is asked)."""
        return self.value if isinstance(self.value, dict) else TRUE


class _Stop(Exception):
    """The comparison budget ran out."""


class _Walker:
    def __init__(self, old: SchemaDocs, new: SchemaDocs, direction: Direction, *, steps: int = MAX_STEPS) -> None:
        self.docs = {"old": old, "new": new}
        self.direction = direction
        self.changes: list[Change] = []
        self.memo: set[tuple[int, int, int]] = set()
        self.steps_left = steps
        self.deref_cache: dict[tuple[Side, int], _Node | None] = {}
        self.probe_cache: dict[tuple[int, int, int], list[Change]] = {}

    # -- reporting -------------------------------------------------------------------------------------------

    def emit(
        self,
        suffix: str,
        effect: Effect,
        message: str,
        at: _Node,
        keyword: str | int | tuple[str | int, ...] | None,
        where: str,
        pol: int,
        *,
        flagged: bool = False,
    ) -> None:
        if pol < 0:
            suffix = "not-" + suffix
            if effect == "widen":
                effect = "narrow"
            elif effect == "narrow":
                effect = "widen"
            elif effect == "additive":
                effect = "unknown"
        parts = () if keyword is None else keyword if isinstance(keyword, tuple) else (keyword,)
        pointer = at.pointer + "".join("/" + _esc(part) for part in parts)
        self.changes.append(
            Change(
                rule=f"{self.direction}-{suffix}",
                direction=self.direction,
                effect=effect,
                bump=bump_for(self.direction, effect),
                message=f"{where or '/'}: {message}",
                file=f"{SCHEMA_DIR}/{at.file}",
                pointer=pointer,
                side=at.side,
                where=where or "/",
                flagged=flagged,
            )
        )

    # -- resolution ------------------------------------------------------------------------------------------

    def deref(self, node: _Node, where: str, pol: int) -> _Node | None:
        hops = 0
        while isinstance(node.value, dict) and isinstance(node.value.get("$ref"), str):
            if node.draft >= 2019 and any(
                k not in kw.ANNOTATIONS and k not in kw.STRUCTURAL and k != "$ref" for k in node.value
            ):
                return node  # 2019+: $ref is one keyword among others; compared as such
            key = (node.side, id(node.value))
            if key in self.deref_cache:
                return self.deref_cache[key]
            hops += 1
            if hops > MAX_REF_HOPS:
                self.emit(
                    "ref-chain-too-long", "unknown", "cannot prove compatible: $ref chain", node, "$ref", where, 1
                )
                return None
            target = self._resolve(node, where)
            self.deref_cache[key] = target
            if target is None:
                return None
            node = target
        return node

    def _resolve(self, node: _Node, where: str) -> _Node | None:
        ref = node.value["$ref"]
        docs = self.docs[node.side]
        try:
            contents, loc = docs.lookup(ref, node.base)
        except LookupError:
            self.emit("ref-unresolvable", "unknown", f"$ref {ref!r} cannot be resolved", node, "$ref", where, 1)
            return None
        if loc is None:  # a boolean target: located at the $ref itself
            return replace(node, value=contents, pointer=f"{node.pointer}/$ref")
        return _Node(contents, node.side, loc.file, loc.pointer, loc.base, loc.draft)

    # -- the walk --------------------------------------------------------------------------------------------

    def compare(self, old: _Node, new: _Node, where: str, pol: int, depth: int) -> None:
        self.steps_left -= 1
        if self.steps_left < 0:
            raise _Stop
        if depth > MAX_DEPTH:
            self.emit(
                "schema-too-deep",
                "unknown",
                f"cannot prove compatible: nested over {MAX_DEPTH} levels",
                new,
                None,
                where,
                1,
            )
            return
        o = self.deref(old, where, pol)
        n = self.deref(new, where, pol)
        if o is None or n is None:
            return
        if isinstance(o.value, dict) or isinstance(n.value, dict):
            key = (id(o.value), id(n.value), pol)
            if key in self.memo:
                return  # compared already (or being compared: a recursive schema, assumed equal)
            self.memo.add(key)
        ov, nv = o.value, n.value
        if ov is False and nv is False:
            return
        if ov is False:
            self.emit("schema-allows-values", "widen", "accepted nothing, now accepts values", n, None, where, pol)
            return
        if nv is False:
            self.emit("schema-refuses-all", "narrow", "now accepts no value at all", n, None, where, pol)
            return
        od, nd = o.schema, n.schema
        if not self.docs["old"].has_ref(o.value) and not self.docs["new"].has_ref(n.value) and kw.same(od, nd):
            return  # equal, and nothing inside points elsewhere
        self.keywords(o, n, od, nd, where, pol, depth)

    def keywords(
        self, o: _Node, n: _Node, od: dict[str, Any], nd: dict[str, Any], where: str, pol: int, depth: int
    ) -> None:
        handled: set[str] = set()
        if compare_lifted(self, o, n, od, nd, where, pol, depth, handled):
            self.annotations(o, n, od, nd, where, pol, handled)
            return
        if (o.draft >= 2019 and isinstance(od.get("$ref"), str)) or (
            n.draft >= 2019 and isinstance(nd.get("$ref"), str)
        ):
            handled.add("$ref")
            self.ref_keyword(o, n, od, nd, where, pol, depth)
        # Keywords that hold no subschema can only matter when one of them differs (most nodes: none does).
        scalars_differ = o.draft != n.draft or any(
            k not in kw.SUBSCHEMAS and (k not in od or k not in nd or not kw.same(od[k], nd[k]))
            for k in od.keys() | nd.keys()
        )
        if scalars_differ:
            self.types(o, n, od, nd, where, pol, handled)
            self.values(o, n, od, nd, where, pol, handled)
            self.numbers(o, n, od, nd, where, pol, handled)
            self.strings(o, n, od, nd, where, pol, handled)
        compare_objects(self, o, n, od, nd, where, pol, depth, handled)
        compare_arrays(self, o, n, od, nd, where, pol, depth, handled)
        compare_combinators(self, o, n, od, nd, where, pol, depth, handled)
        if scalars_differ:
            self.annotations(o, n, od, nd, where, pol, handled)

    def ref_keyword(
        self, o: _Node, n: _Node, od: dict[str, Any], nd: dict[str, Any], where: str, pol: int, depth: int
    ) -> None:
        has_o, has_n = isinstance(od.get("$ref"), str), isinstance(nd.get("$ref"), str)
        if has_o and has_n:
            to, tn = self._resolve(o, where), self._resolve(n, where)
            if to is not None and tn is not None:
                self.compare(to, tn, where, pol, depth + 1)
        elif has_n:
            self.emit("ref-added", "narrow", f"now also must match {nd['$ref']!r}", n, "$ref", where, pol)
        else:
            self.emit("ref-removed", "widen", f"no longer must match {od['$ref']!r}", o, "$ref", where, pol)

    # -- scalar keywords -------------------------------------------------------------------------------------

    def types(
        self, o: _Node, n: _Node, od: dict[str, Any], nd: dict[str, Any], where: str, pol: int, handled: set[str]
    ) -> None:
        handled.add("type")
        to, tn = kw.type_set(od), kw.type_set(nd)
        if to == tn:
            return
        wider, narrower = kw.types_subset(to, tn), kw.types_subset(tn, to)
        shown_o = "any type" if to is None else "/".join(sorted(to))
        shown_n = "any type" if tn is None else "/".join(sorted(tn))
        text = f"type {shown_o} -> {shown_n}"
        if wider and narrower:
            return  # the same set written differently (["integer", "number"] is "number")
        if tn is None:
            self.emit("type-removed", "widen", text, o, "type", where, pol)
        elif to is None:
            self.emit("type-set", "narrow", text, n, "type", where, pol)
        elif wider:
            self.emit("type-widened", "widen", text, n, "type", where, pol)
        elif narrower:
            self.emit("type-narrowed", "narrow", text, n, "type", where, pol)
        else:
            self.emit("type-changed", "change", text, n, "type", where, pol)

    def values(
        self, o: _Node, n: _Node, od: dict[str, Any], nd: dict[str, Any], where: str, pol: int, handled: set[str]
    ) -> None:
        handled.update(("enum", "const"))
        vo, vn = kw.allowed_values(od), kw.allowed_values(nd)
        if vo is None and vn is None:
            return
        key_o = "enum" if "enum" in od else "const"
        key_n = "enum" if "enum" in nd else "const"
        if vo is None and vn is not None:
            self.emit(
                "enum-introduced", "narrow", f"values limited to {kw.show(list(vn.values()))}", n, key_n, where, pol
            )
            return
        if vn is None and vo is not None:
            self.emit(
                "enum-dropped",
                "widen",
                f"values no longer limited to {kw.show(list(vo.values()))}",
                o,
                key_o,
                where,
                pol,
            )
            return
        if vo is None or vn is None:
            return
        added = [v for k, v in vn.items() if k not in vo]
        removed = [v for k, v in vo.items() if k not in vn]
        if added:
            self.emit("enum-value-added", "widen", f"value(s) {kw.show(added)} added", n, key_n, where, pol)
        if removed:
            self.emit("enum-value-removed", "narrow", f"value(s) {kw.show(removed)} removed", o, key_o, where, pol)

    def numbers(
        self, o: _Node, n: _Node, od: dict[str, Any], nd: dict[str, Any], where: str, pol: int, handled: set[str]
    ) -> None:
        handled.update(("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"))
        for lower in (True, False):
            name = "minimum" if lower else "maximum"
            bo = kw.lower_bound(od, o.draft) if lower else kw.upper_bound(od, o.draft)
            bn = kw.lower_bound(nd, n.draft) if lower else kw.upper_bound(nd, n.draft)
            if bo is None and bn is None:
                continue
            if bo is None and bn is not None:
                self.emit(f"{name}-set", "narrow", f"{bn} set", n, bn.keyword, where, pol)
            elif bn is None and bo is not None:
                self.emit(f"{name}-removed", "widen", f"{bo} removed", o, bo.keyword, where, pol)
            elif bo is not None and bn is not None:
                text = f"{bo} -> {bn}"
                if bn.tighter_than(bo, lower=lower):
                    self.emit(
                        f"{name}-{'increased' if lower else 'decreased'}", "narrow", text, n, bn.keyword, where, pol
                    )
                elif bo.tighter_than(bn, lower=lower):
                    self.emit(
                        f"{name}-{'decreased' if lower else 'increased'}", "widen", text, n, bn.keyword, where, pol
                    )
        mo, mn = od.get("multipleOf"), nd.get("multipleOf")
        if mo is None and mn is not None:
            self.emit("multiple-of-set", "narrow", f"multipleOf {kw.show(mn)} set", n, "multipleOf", where, pol)
        elif mn is None and mo is not None:
            self.emit("multiple-of-removed", "widen", f"multipleOf {kw.show(mo)} removed", o, "multipleOf", where, pol)
        elif mo is not None and mn is not None:
            move = kw.compare_multiple_of(mo, mn)
            if move is not None:
                self.emit(
                    "multiple-of-changed",
                    move,
                    f"multipleOf {kw.show(mo)} -> {kw.show(mn)}",
                    n,
                    "multipleOf",
                    where,
                    pol,
                )

    def strings(
        self, o: _Node, n: _Node, od: dict[str, Any], nd: dict[str, Any], where: str, pol: int, handled: set[str]
    ) -> None:
        for keyword, lower in kw.COUNT_KEYWORDS:
            handled.add(keyword)
            co, cn = od.get(keyword), nd.get(keyword)
            co = co if isinstance(co, int) and not isinstance(co, bool) else None
            cn = cn if isinstance(cn, int) and not isinstance(cn, bool) else None
            if lower:  # a minimum of 0 is no constraint
                co, cn = co or None, cn or None
            if co == cn:
                continue
            name = kw.kebab(keyword)
            if co is None:
                self.emit(f"{name}-set", "narrow", f"{keyword} {cn} set", n, keyword, where, pol)
            elif cn is None:
                self.emit(f"{name}-removed", "widen", f"{keyword} {co} removed", o, keyword, where, pol)
            else:
                tighter = cn > co if lower else cn < co
                verb = "increased" if cn > co else "decreased"
                self.emit(
                    f"{name}-{verb}",
                    "narrow" if tighter else "widen",
                    f"{keyword} {co} -> {cn}",
                    n,
                    keyword,
                    where,
                    pol,
                )
        handled.add("uniqueItems")
        uo, un = od.get("uniqueItems") is True, nd.get("uniqueItems") is True
        if un and not uo:
            self.emit("unique-items-set", "narrow", "items must now be unique", n, "uniqueItems", where, pol)
        elif uo and not un:
            self.emit("unique-items-removed", "widen", "items need no longer be unique", o, "uniqueItems", where, pol)
        for keyword in ("pattern", "format"):
            handled.add(keyword)
            po, pn = od.get(keyword), nd.get(keyword)
            if po == pn:
                continue
            name = kw.kebab(keyword)
            if po is None:
                self.emit(f"{name}-set", "narrow", f"{keyword} {kw.show(pn)} set", n, keyword, where, pol)
            elif pn is None:
                self.emit(f"{name}-removed", "widen", f"{keyword} {kw.show(po)} removed", o, keyword, where, pol)
            else:
                self.emit(
                    f"{name}-changed",
                    "unknown",
                    f"cannot prove compatible: {keyword} {kw.show(po)} -> {kw.show(pn)}",
                    n,
                    keyword,
                    where,
                    pol,
                )

    def annotations(
        self, o: _Node, n: _Node, od: dict[str, Any], nd: dict[str, Any], where: str, pol: int, handled: set[str]
    ) -> None:
        handled.update(kw.STRUCTURAL)
        handled.add("$ref")
        if n.draft == 4 or o.draft == 4:
            handled.add("id")
        for keyword in sorted((od.keys() | nd.keys()) - handled):
            in_o, in_n = keyword in od, keyword in nd
            if in_o and in_n and kw.same(od[keyword], nd[keyword]):
                continue
            at, side_value = (n, nd) if in_n else (o, od)
            if keyword in kw.UNSUPPORTED:
                self.emit(
                    f"{kw.kebab(keyword)}-changed",
                    "unknown",
                    f"cannot prove compatible: {keyword} changed",
                    at,
                    keyword,
                    where,
                    1,
                )
            elif keyword == "default" and self.direction == "input" and pol > 0:
                if in_o and in_n:
                    text = f"default {kw.show(od[keyword])} -> {kw.show(nd[keyword])}"
                else:
                    text = f"default {kw.show(side_value[keyword])} {'added' if in_n else 'removed'}"
                self.emit(
                    "default-changed",
                    "unknown",
                    f"cannot prove compatible: {text} (callers that omit it get another behaviour)",
                    at,
                    keyword,
                    where,
                    1,
                )
            else:
                verb = "changed" if in_o and in_n else ("added" if in_n else "removed")
                self.emit(
                    f"{kw.kebab(keyword)}-{verb}" if keyword == "default" else "annotation-changed",
                    "annotation",
                    f"{keyword} {verb}",
                    at,
                    keyword,
                    where,
                    1,
                )

    # -- helpers for structure -------------------------------------------------------------------------------

    def probe(self, old: _Node, new: _Node, where: str, pol: int, depth: int) -> list[Change]:
        """The changes comparing ``old`` and ``new`` would report, without reporting them (bounded)."""
        key = (id(old.value), id(new.value), pol)
        cached = self.probe_cache.get(key)
        if cached is not None:
            return cached
        start = min(2_000, max(self.steps_left, 0))
        sub = _Walker(self.docs["old"], self.docs["new"], self.direction, steps=start)
        sub.deref_cache, sub.probe_cache = self.deref_cache, self.probe_cache
        try:
            sub.compare(old, new, where, pol, depth)
        except _Stop:
            sub.changes.append(Change("probe-stopped", self.direction, "unknown", "major", "probe stopped"))
        self.steps_left -= start - max(sub.steps_left, 0)
        found = self.probe_cache[key] = [c for c in sub.changes if c.effect != "annotation"]
        return found


def _root(docs: SchemaDocs, name: str, side: Side) -> _Node:
    return _Node(docs.schemas[name], side, name, "", docs.base_of(name), docs.draft(name))


def diff_schema(old: SchemaDocs, new: SchemaDocs, name: str, direction: Direction) -> list[Change]:
    """Every change between ``old`` and ``new`` schema ``name`` (e.g. ``input_schema.json``), located."""
    walker = _Walker(old, new, direction)
    if name not in old.schemas or name not in new.schemas:
        which = "new" if name not in new.schemas else "old"
        return [
            Change(
                f"{direction}-schema-missing",
                direction,
                "unknown",
                "major",
                f"the {which} version has no {SCHEMA_DIR}/{name}",
                file=f"{SCHEMA_DIR}/{name}",
                side="old" if which == "new" else "new",
            )
        ]
    o, n = _root(old, name, "old"), _root(new, name, "new")
    if o.draft != n.draft:
        walker.emit(
            "schema-draft-changed",
            "unknown",
            f"cannot prove compatible: the JSON Schema draft changed ({o.draft} -> {n.draft})",
            n,
            "$schema",
            "",
            1,
        )
    try:
        walker.compare(o, n, "", 1, 0)
    except _Stop:
        walker.emit(
            "comparison-budget-exceeded",
            "unknown",
            f"cannot prove compatible: the schemas need over {MAX_STEPS} comparisons",
            n,
            None,
            "",
            1,
        )
    except RecursionError:
        walker.emit(
            "schema-too-deep", "unknown", "cannot prove compatible: the schema is nested too deeply", n, None, "", 1
        )
    return list(_located(walker.changes, old, new))


def _located(changes: list[Change], old: SchemaDocs, new: SchemaDocs) -> Iterator[Change]:
    seen: set[tuple[str, str, str, str]] = set()
    for change in changes:
        key = (change.rule, change.file, change.pointer, change.side)
        if key in seen:
            continue  # the same place reached twice (two properties sharing one $ref target)
        seen.add(key)
        docs = old if change.side == "old" else new
        name = change.file.removeprefix(f"{SCHEMA_DIR}/")
        yield change.located(docs.line(name, change.pointer))

"""The structural keywords of the schema differ: object members, array positions and the combinators.

These functions are the parts of :class:`~.schemadiff._Walker` that recurse: they pair the subschemas of the
old and the new version (a property with the same property, tuple position ``i`` with position ``i`` or the
``items`` that stands for it, an ``anyOf`` branch with the most similar branch) and let the walker compare each
pair, reporting what was added or removed with the rule the table gives it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import keywords as kw
from .model import Effect

if TYPE_CHECKING:
    from .schemadiff import _Node, _Walker

__all__ = ["compare_arrays", "compare_combinators", "compare_lifted", "compare_objects", "disjoint"]

Schema = dict[str, Any]
MATCH_LIMIT = 64  # branch pairs compared when matching anyOf/oneOf/allOf branches by content


def _esc(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _open(rest: Any) -> bool:
    """``additionalProperties`` absent, ``true`` or ``{}``: undeclared members are not part of the contract."""
    return rest is True or (isinstance(rest, dict) and not rest)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# -- objects -------------------------------------------------------------------------------------------------


def compare_objects(
    w: _Walker, o: _Node, n: _Node, od: Schema, nd: Schema, where: str, pol: int, depth: int, handled: set[str]
) -> None:
    """properties, required, additionalProperties, patternProperties, propertyNames and dependencies."""
    handled.update(("properties", "required", "additionalProperties", "patternProperties", "propertyNames"))
    po, pn = _dict(od.get("properties")), _dict(nd.get("properties"))
    rest_o, rest_n = od.get("additionalProperties", True), nd.get("additionalProperties", True)
    patterns = bool(od.get("patternProperties")) or bool(nd.get("patternProperties"))
    req_o, req_n = _names(od.get("required")), _names(nd.get("required"))
    output = w.direction == "output"
    for name in sorted(po.keys() | pn.keys()):
        at = f"{where}/{_esc(name)}"
        if name in po and name in pn:
            w.compare(o.child("properties", name), n.child("properties", name), at, pol, depth + 1)
        elif name in pn:
            _member_added(w, o, n, "properties", name, rest_o, patterns, at, pol, depth)
        elif output:
            rule = "required-property-removed" if name in req_o else "property-removed"
            effect: Effect = "unknown" if pol < 0 else "change"
            w.emit(rule, effect, f"property {name!r} removed (callers may read it)", o, ("properties", name), at, 1)
        else:
            _member_removed(w, o, n, "properties", name, rest_n, patterns, at, pol, depth)
    for name in req_n:
        if name not in req_o:
            rule = "property-became-required" if name in po else "required-property-added"
            text = f"property {name!r} became required" if name in po else f"required property {name!r} added"
            w.emit(rule, "narrow", text, n, ("required", req_n.index(name)), f"{where}/{_esc(name)}", pol)
    for name in req_o:
        if name not in req_n:
            if output and name in po and name not in pn:
                continue  # reported as required-property-removed
            w.emit(
                "property-became-optional",
                "widen",
                f"property {name!r} became optional",
                o,
                ("required", req_o.index(name)),
                f"{where}/{_esc(name)}",
                pol,
            )
    _rest(w, o, n, od, nd, rest_o, rest_n, where, pol, depth)
    ppo, ppn = _dict(od.get("patternProperties")), _dict(nd.get("patternProperties"))
    for pattern in sorted(ppo.keys() | ppn.keys()):
        at = f"{where}/{{{pattern}}}"
        if pattern in ppo and pattern in ppn:
            w.compare(o.child("patternProperties", pattern), n.child("patternProperties", pattern), at, pol, depth + 1)
        elif pattern in ppn:
            _member_added(w, o, n, "patternProperties", pattern, rest_o, False, at, pol, depth)
        elif output:
            w.emit(
                "pattern-property-removed",
                "unknown" if pol < 0 else "change",
                f"pattern property {pattern!r} removed (callers may read it)",
                o,
                "patternProperties",
                at,
                1,
            )
        else:
            _member_removed(w, o, n, "patternProperties", pattern, rest_n, False, at, pol, depth)
    if "propertyNames" in od or "propertyNames" in nd:
        w.compare(o.maybe("propertyNames"), n.maybe("propertyNames"), f"{where}/{{name}}", pol, depth + 1)
    _dependencies(w, o, n, od, nd, where, pol, depth, handled)


def _member_added(
    w: _Walker, o: _Node, n: _Node, key: str, name: str, rest_o: Any, patterns: bool, at: str, pol: int, depth: int
) -> None:
    what = "property" if key == "properties" else "pattern property"
    rule = "property-added" if key == "properties" else "pattern-property-added"
    if patterns:
        w.emit(
            "property-vs-pattern-properties",
            "unknown",
            f"cannot prove compatible: {what} {name!r} added next to patternProperties",
            n,
            key,
            at,
            1,
        )
    elif _open(rest_o):
        w.emit(rule, "additive", f"{what} {name!r} added", n.child(key), name, at, pol)
    elif rest_o is False:
        closed_rule = f"{rule}-to-closed-object" if w.direction == "output" else rule
        w.emit(closed_rule, "widen", f"{what} {name!r} added to a closed object", n.child(key), name, at, pol)
    else:
        w.compare(o.maybe("additionalProperties"), n.child(key, name), at, pol, depth + 1)


def _member_removed(
    w: _Walker, o: _Node, n: _Node, key: str, name: str, rest_n: Any, patterns: bool, at: str, pol: int, depth: int
) -> None:
    what = "property" if key == "properties" else "pattern property"
    rule = "property-removed" if key == "properties" else "pattern-property-removed"
    if patterns:
        w.emit(
            "property-vs-pattern-properties",
            "unknown",
            f"cannot prove compatible: {what} {name!r} removed next to patternProperties",
            o,
            key,
            at,
            1,
        )
    elif _open(rest_n):
        w.emit(
            rule,
            "additive",
            f"{what} {name!r} removed; still accepted, but no longer described (callers sending it may rely on it)",
            o.child(key),
            name,
            at,
            pol,
            flagged=True,
        )
    elif rest_n is False:
        w.emit(rule, "narrow", f"{what} {name!r} removed from a closed object", o.child(key), name, at, pol)
    else:
        w.compare(o.child(key, name), n.maybe("additionalProperties"), at, pol, depth + 1)


def _rest(
    w: _Walker, o: _Node, n: _Node, od: Schema, nd: Schema, rest_o: Any, rest_n: Any, where: str, pol: int, depth: int
) -> None:
    if _open(rest_o) and _open(rest_n):
        return
    if _open(rest_o) and rest_n is False:
        w.emit(
            "additional-properties-forbidden",
            "narrow",
            "additionalProperties true -> false",
            n,
            "additionalProperties",
            where,
            pol,
        )
    elif rest_o is False and _open(rest_n):
        at, key = (n, "additionalProperties") if "additionalProperties" in nd else (o, "additionalProperties")
        w.emit("additional-properties-allowed", "widen", "additionalProperties false -> true", at, key, where, pol)
    else:
        w.compare(o.maybe("additionalProperties"), n.maybe("additionalProperties"), f"{where}/*", pol, depth + 1)


def _deps(node: _Node, schema: Schema) -> dict[str, tuple[str, _Node]]:
    """Dependencies by property: ("names", node) for required names, ("schema", node) for a subschema."""
    found: dict[str, tuple[str, _Node]] = {}
    sources = ("dependencies",) if node.draft <= 7 else ("dependentRequired", "dependentSchemas")
    for source in sources:
        for name, value in _dict(schema.get(source)).items():
            kind = "names" if isinstance(value, list) else "schema"
            found[name] = (kind, node.child(source, name))
    return found


def _dependencies(
    w: _Walker, o: _Node, n: _Node, od: Schema, nd: Schema, where: str, pol: int, depth: int, handled: set[str]
) -> None:
    handled.update(("dependencies", "dependentRequired", "dependentSchemas"))
    do, dn = _deps(o, od), _deps(n, nd)
    for name in sorted(do.keys() | dn.keys()):
        at = f"{where}/{_esc(name)}"
        if name not in do:
            w.emit("dependency-added", "narrow", f"a dependency on {name!r} added", dn[name][1], None, at, pol)
        elif name not in dn:
            w.emit("dependency-removed", "widen", f"the dependency on {name!r} removed", do[name][1], None, at, pol)
        elif do[name][0] != dn[name][0]:
            w.emit(
                "dependency-changed",
                "unknown",
                f"cannot prove compatible: the dependency on {name!r} changed form",
                dn[name][1],
                None,
                at,
                1,
            )
        elif do[name][0] == "schema":
            w.compare(do[name][1], dn[name][1], where, pol, depth + 1)
        else:
            names_o, names_n = _names(do[name][1].value), _names(dn[name][1].value)
            if set(names_n) - set(names_o):
                w.emit(
                    "dependent-required-added",
                    "narrow",
                    f"{name!r} now also requires {sorted(set(names_n) - set(names_o))}",
                    dn[name][1],
                    None,
                    at,
                    pol,
                )
            if set(names_o) - set(names_n):
                w.emit(
                    "dependent-required-removed",
                    "widen",
                    f"{name!r} no longer requires {sorted(set(names_o) - set(names_n))}",
                    do[name][1],
                    None,
                    at,
                    pol,
                )


# -- arrays --------------------------------------------------------------------------------------------------


def _positions(node: _Node, schema: Schema) -> tuple[list[_Node], _Node]:
    """(the positional item schemas, the schema of every later item) as the node's draft reads them."""
    if node.draft >= 2020:
        prefix = schema.get("prefixItems")
        items = [node.child("prefixItems", i) for i in range(len(prefix))] if isinstance(prefix, list) else []
        return items, node.maybe("items")
    items_value = schema.get("items")
    if isinstance(items_value, list):
        return [node.child("items", i) for i in range(len(items_value))], node.maybe("additionalItems")
    return [], node.maybe("items")


def compare_arrays(
    w: _Walker, o: _Node, n: _Node, od: Schema, nd: Schema, where: str, pol: int, depth: int, handled: set[str]
) -> None:
    """items (one schema or positions), prefixItems, additionalItems and contains."""
    handled.update(("items", "prefixItems", "additionalItems", "contains"))
    prefix_o, rest_o = _positions(o, od)
    prefix_n, rest_n = _positions(n, nd)
    for i in range(max(len(prefix_o), len(prefix_n))):
        left = prefix_o[i] if i < len(prefix_o) else rest_o
        right = prefix_n[i] if i < len(prefix_n) else rest_n
        w.compare(left, right, f"{where}/{i}", pol, depth + 1)
    w.compare(rest_o, rest_n, f"{where}/*", pol, depth + 1)
    if "contains" in od and "contains" in nd:
        w.compare(o.child("contains"), n.child("contains"), f"{where}/*", pol, depth + 1)
    elif "contains" in nd:
        w.emit("contains-set", "narrow", "now must contain a matching item", n, "contains", where, pol)
    elif "contains" in od:
        w.emit("contains-removed", "widen", "no longer must contain a matching item", o, "contains", where, pol)


# -- combinators ---------------------------------------------------------------------------------------------


def _branches(node: _Node, key: str) -> list[_Node]:
    value = node.value.get(key) if isinstance(node.value, dict) else None
    return [node.child(key, i) for i in range(len(value))] if isinstance(value, list) else []


def _match(
    w: _Walker, olds: list[_Node], news: list[_Node], where: str, pol: int, depth: int
) -> tuple[list[tuple[_Node, _Node]], list[_Node], list[_Node]]:
    """Pair branches by content: identical ones first, then the pairs whose comparison reports least."""
    pairs: list[tuple[_Node, _Node]] = []
    left = list(olds)
    right: list[_Node] = []
    for new in news:
        twin = next(
            (
                old
                for old in left
                if kw.same(old.value, new.value)
                and not w.docs["old"].has_ref(old.value)
                and not w.docs["new"].has_ref(new.value)
            ),
            None,
        )
        if twin is None:
            right.append(new)
        else:
            left.remove(twin)
            pairs.append((twin, new))
    if left and right and len(left) * len(right) <= MATCH_LIMIT:
        costs: list[tuple[int, int, int]] = []
        for i, old in enumerate(left):
            for j, new in enumerate(right):
                ro, rn = _resolved_types(w, old, where, pol), _resolved_types(w, new, where, pol)
                if not kw.types_overlap(ro, rn):
                    continue  # unrelated branches: one removed, one added, rather than a type change
                found = w.probe(old, new, where, pol, depth + 1)
                costs.append((len(found) + 10 * sum(c.effect == "unknown" for c in found), i, j))
        used_o: set[int] = set()
        used_n: set[int] = set()
        for _cost, i, j in sorted(costs):
            if i not in used_o and j not in used_n:
                used_o.add(i)
                used_n.add(j)
                pairs.append((left[i], right[j]))
        left = [b for i, b in enumerate(left) if i not in used_o]
        right = [b for j, b in enumerate(right) if j not in used_n]
    return pairs, left, right


def _resolved_types(w: _Walker, node: _Node, where: str, pol: int) -> frozenset[str] | None:
    target = w.deref(node, where, pol)
    if target is None or not isinstance(target.value, dict):
        return None
    return kw.type_set(target.value)


def compare_combinators(
    w: _Walker, o: _Node, n: _Node, od: Schema, nd: Schema, where: str, pol: int, depth: int, handled: set[str]
) -> None:
    """allOf, anyOf, oneOf, not and if/then/else."""
    handled.update(("allOf", "anyOf", "oneOf", "not", "if", "then", "else"))
    for key in ("allOf", "anyOf", "oneOf"):
        if key not in od and key not in nd:
            continue
        name = kw.kebab(key)
        if key not in od:
            w.emit(f"{name}-set", "narrow", f"now must also match {key}", n, key, where, pol)
            continue
        if key not in nd:
            w.emit(f"{name}-removed", "widen", f"no longer must match {key}", o, key, where, pol)
            continue
        _branch_lists(w, key, _branches(o, key), _branches(n, key), where, pol, depth)
    if "not" in od and "not" in nd:
        w.compare(o.child("not"), n.child("not"), where, -pol, depth + 1)
    elif "not" in nd:
        w.emit("not-set", "narrow", "now must not match a schema", n, "not", where, pol)
    elif "not" in od:
        w.emit("not-removed", "widen", "no longer must not match a schema", o, "not", where, pol)
    _conditional(w, o, n, od, nd, where, pol, depth)


def _branch_lists(
    w: _Walker, key: str, olds: list[_Node], news: list[_Node], where: str, pol: int, depth: int, lifted: bool = False
) -> None:
    name = kw.kebab(key)
    # Adding a branch to allOf narrows (one more condition); to anyOf/oneOf it widens (one more alternative).
    added: Effect = "narrow" if key == "allOf" else "widen"
    removed: Effect = "widen" if key == "allOf" else "narrow"
    start = len(w.changes)
    pairs, gone, new = _match(w, olds, news, where, pol, depth)
    for left, right in pairs:
        w.compare(left, right, where, pol, depth + 1)
    for branch in new:
        w.emit(f"{name}-branch-added", added, f"{key} branch added", branch, None, where, pol)
    for branch in gone:
        w.emit(f"{name}-branch-removed", removed, f"{key} branch removed", branch, None, where, pol)
    if key != "oneOf":
        return
    moved = any(c.effect not in ("annotation", "unknown") for c in w.changes[start:])
    if moved and not (_pairwise_disjoint(w, olds) and _pairwise_disjoint(w, news)):
        # oneOf is "exactly one": a widened branch may now overlap another and refuse what it accepted.
        at = news[0] if news else olds[0]
        w.emit(
            "one-of-overlap",
            "unknown",
            "cannot prove compatible: the oneOf branches are not provably disjoint, so a changed branch may "
            "make values match two",
            replace(at, pointer=at.pointer.rsplit("/", 1)[0]),
            None,
            where,
            1,
        )


def _conditional(w: _Walker, o: _Node, n: _Node, od: Schema, nd: Schema, where: str, pol: int, depth: int) -> None:
    if not any(k in od or k in nd for k in ("if", "then", "else")):
        return
    has_o, has_n = "if" in od, "if" in nd
    if has_o and has_n:
        if w.probe(o.child("if"), n.child("if"), where, 1, depth + 1):
            w.emit(
                "conditional-changed",
                "unknown",
                "cannot prove compatible: the `if` condition changed",
                n,
                "if",
                where,
                1,
            )
            return
        for key in ("then", "else"):
            w.compare(o.maybe(key), n.maybe(key), where, pol, depth + 1)
    elif has_n:
        w.emit("conditional-set", "narrow", "an if/then/else condition added", n, "if", where, pol)
    elif has_o:
        w.emit("conditional-removed", "widen", "the if/then/else condition removed", o, "if", where, pol)


def compare_lifted(
    w: _Walker, o: _Node, n: _Node, od: Schema, nd: Schema, where: str, pol: int, depth: int, handled: set[str]
) -> bool:
    """A schema that became ``anyOf``/``oneOf`` of alternatives (or the reverse) is compared branch-wise.

    ``{"type": "string"}`` -> ``{"anyOf": [{"type": "string"}, {"type": "integer"}]}`` adds a branch: the old
    schema is treated as a one-branch ``anyOf``. Only when the side with the combinator has nothing else that
    constrains (annotations aside); otherwise keywords are compared one by one.
    """
    for key in ("anyOf", "oneOf"):
        if (key in nd) == (key in od):
            continue
        side_d, other_d = (nd, od) if key in nd else (od, nd)
        constraints = {k for k in side_d if k not in kw.ANNOTATIONS and k not in kw.STRUCTURAL}
        other_has = any(k in other_d for k in ("anyOf", "oneOf", "allOf"))
        if constraints != {key} or other_has or not isinstance(side_d[key], list) or not side_d[key]:
            continue
        handled.update(other_d.keys() - kw.ANNOTATIONS)
        handled.add(key)
        if key in nd:
            _branch_lists(w, key, [o], _branches(n, key), where, pol, depth)
        else:
            _branch_lists(w, key, _branches(o, key), [n], where, pol, depth)
        return True
    return False


# -- disjointness (for oneOf) --------------------------------------------------------------------------------


def _pairwise_disjoint(w: _Walker, branches: list[_Node]) -> bool:
    if len(branches) > 16:
        return False
    return all(disjoint(w, a, b) for i, a in enumerate(branches) for b in branches[i + 1 :])


def disjoint(w: _Walker, a: _Node, b: _Node, depth: int = 0) -> bool:
    """Provably no value matches both ``a`` and ``b``: different types or values, or a discriminating property."""
    if depth > 8:
        return False
    ra, rb = w.deref(a, "", 1), w.deref(b, "", 1)
    if ra is None or rb is None:
        return False
    if ra.value is False or rb.value is False:
        return True
    da, db = ra.schema, rb.schema
    ta, tb = kw.type_set(da), kw.type_set(db)
    if not kw.types_overlap(ta, tb):
        return True
    va, vb = kw.allowed_values(da), kw.allowed_values(db)
    if va is not None and vb is not None and not (va.keys() & vb.keys()):
        return True
    for values, types in ((va, tb), (vb, ta)):
        if (
            values is not None
            and types is not None
            and all(not kw.types_overlap(frozenset({kw.json_type_of(v)}), types) for v in values.values())
        ):
            return True
    la, ua = kw.lower_bound(da, ra.draft), kw.upper_bound(da, ra.draft)
    lb, ub = kw.lower_bound(db, rb.draft), kw.upper_bound(db, rb.draft)
    if (ua is not None and lb is not None and ua.value < lb.value) or (
        ub is not None and la is not None and ub.value < la.value
    ):
        return True
    both_required = set(_names(da.get("required"))) & set(_names(db.get("required")))
    pa, pb = _dict(da.get("properties")), _dict(db.get("properties"))
    for name in sorted(both_required):
        if (
            name in pa
            and name in pb
            and disjoint(w, ra.child("properties", name), rb.child("properties", name), depth + 1)
        ):
            return True
    return False

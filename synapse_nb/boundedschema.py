"""jsonschema validator classes for checks on the host: linear-time regexes, O(n) ``uniqueItems``, a time budget.

Stock jsonschema searches ``pattern``, ``patternProperties`` (also inside ``additionalProperties`` and
``unevaluatedProperties``) and ``format: regex`` with Python's backtracking ``re``, and compares ``uniqueItems``
pairwise. :func:`bounded_class` extends a stock draft class (``jsonschema.validators.extend``) so that:

* every regex goes through :mod:`synapse_nb.linregex` (RE2, ECMA-262 syntax);
* ``uniqueItems`` hashes canonical keys (:func:`synapse_nb.jsonsafe.all_unique`), and ``unevaluatedProperties``
  keeps its evaluated keys in a set instead of a list;
* every keyword evaluation ticks the time budget (:mod:`synapse_nb.budget`), so a check with a deadline stops
  within the documented margin of it;
* a subschema that declares its own ``$schema`` is still checked by a bounded class (stock ``evolve`` would hand
  it to the stock class of that draft).

These classes are the source of truth that the compiled fast path (:mod:`synapse_nb.fastschema`) agrees with.
"""

from __future__ import annotations

import functools
import itertools
import reprlib
from collections.abc import Callable, Iterator
from typing import Any

from . import budget
from .jsonsafe import all_unique
from .linregex import UnsupportedPattern, compile_pattern

__all__ = ["KEYWORD_UNITS", "MAX_MESSAGE", "bounded_class", "short_repr", "trimmed"]

#: Budget units charged per keyword evaluation (one evaluation costs a few microseconds in jsonschema).
KEYWORD_UNITS = 16

#: Longest error message kept: jsonschema puts ``repr(instance)`` in messages, and instances can be 16 MiB.
MAX_MESSAGE = 300
# Errors kept per failing branch of anyOf/oneOf, and in all (jsonschema keeps every one, each with its repr).
_BRANCH_ERRORS = 3
_CONTEXT_ERRORS = 30

Keyword = Callable[[Any, Any, Any, Any], Any]

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlevel = 3


def short_repr(value: Any) -> str:
    """A repr of at most a few hundred characters, computed without building the full one."""
    return _REPR.repr(value)


def trimmed(error: Any) -> Any:
    """``error`` with its message cut to :data:`MAX_MESSAGE` characters (frees a huge repr at once)."""
    if len(error.message) > MAX_MESSAGE:
        error.message = error.message[: MAX_MESSAGE - 3] + "..."
    return error


def _search(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text)


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{short_repr(instance)} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    budget.tick(len(patterns) * len(instance))
    for pattern, subschema in patterns.items():
        regex = compile_pattern(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Any, schema: Any) -> list[str]:
    """Keys of ``instance`` that neither ``properties`` nor ``patternProperties`` of ``schema`` cover."""
    properties = schema.get("properties", {})
    regexes = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    budget.tick(len(instance) * (1 + len(regexes)))
    return [k for k in instance if k not in properties and not any(r.search(k) for r in regexes)]


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and extras:
        shown = ", ".join(repr(k) for k in sorted(extras)[:20]) + (", ..." if len(extras) > 20 else "")
        if "patternProperties" in schema:
            patterns = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            verb = "does" if len(extras) == 1 else "do"
            yield ValidationError(f"{shown} {verb} not match any of the regexes: {patterns}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({shown} {verb} unexpected)")


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not unique or not validator.is_type(instance, "array"):
        return
    try:
        ok = all_unique(instance)
    except TypeError:  # not decoded JSON (a Python caller's tuple...): jsonschema's own comparison
        from jsonschema._utils import uniq

        ok = uniq(instance)
    if not ok:
        yield ValidationError(f"{short_repr(instance)} has non-unique elements")


def _branch_errors(validator: Any, instance: Any, schema: Any, index: int) -> list[Any]:
    errors = validator.descend(instance, schema, schema_path=index)
    return [trimmed(e) for e in itertools.islice(errors, _BRANCH_ERRORS)]


def _any_of(validator: Any, branches: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    context: list[Any] = []
    for index, sub in enumerate(branches):
        errors = _branch_errors(validator, instance, sub, index)
        if not errors:
            return
        context.extend(errors[: _CONTEXT_ERRORS - len(context)])
    yield ValidationError(f"{short_repr(instance)} is not valid under any of the given schemas", context=context)


def _one_of(validator: Any, branches: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    context: list[Any] = []
    valid: list[Any] = []
    for index, sub in enumerate(branches):
        if not valid:
            errors = _branch_errors(validator, instance, sub, index)
            if errors:
                context.extend(errors[: _CONTEXT_ERRORS - len(context)])
            else:
                valid.append(sub)
        elif validator.evolve(schema=sub).is_valid(instance):
            valid.append(sub)
            break  # two are enough to say it is not exactly one
    if not valid:
        yield ValidationError(f"{short_repr(instance)} is not valid under any of the given schemas", context=context)
    elif len(valid) > 1:
        shown = ", ".join(short_repr(s) for s in valid)
        yield ValidationError(f"{short_repr(instance)} is valid under each of {shown}")


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any, draft2019: bool) -> set[str]:
    """The keys of ``instance`` that ``schema``'s in-place applicators evaluate (for ``unevaluatedProperties``)."""
    if not isinstance(schema, dict):
        return set()
    budget.tick(KEYWORD_UNITS)
    keys: set[str] = set()

    def follow(resolved: Any) -> None:
        evolved = validator.evolve(schema=resolved.contents, _resolver=resolved.resolver)
        keys.update(_evaluated_keys(evolved, instance, resolved.contents, draft2019))

    if "$ref" in schema:
        follow(validator._resolver.lookup(schema["$ref"]))
    if draft2019 and "$recursiveRef" in schema:
        from referencing.jsonschema import lookup_recursive_ref

        follow(lookup_recursive_ref(validator._resolver))
    if not draft2019 and "$dynamicRef" in schema:
        follow(validator._resolver.lookup(schema["$dynamicRef"]))
    if draft2019:
        for keyword in ("properties", "additionalProperties", "unevaluatedProperties"):
            value = schema.get(keyword)
            if value is True:
                keys.update(instance)
            elif isinstance(value, dict):
                keys.update(k for k in value if k in instance)
    else:
        properties = schema.get("properties")
        if isinstance(properties, dict):
            keys.update(properties.keys() & instance.keys())
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            if keyword in schema:
                sub = schema[keyword]
                keys.update(k for k, v in instance.items() if next(validator.descend(v, sub), None) is None)
    for pattern in schema.get("patternProperties", {}):
        regex = compile_pattern(pattern)
        keys.update(k for k in instance if regex.search(k))
    for key, sub in schema.get("dependentSchemas", {}).items():
        if key in instance:
            keys |= _evaluated_keys(validator, instance, sub, draft2019)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(keyword, []):
            if next(validator.descend(instance, sub), None) is None:
                keys |= _evaluated_keys(validator, instance, sub, draft2019)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys |= _evaluated_keys(validator, instance, schema["if"], draft2019)
            keys |= _evaluated_keys(validator, instance, schema.get("then"), draft2019)
        else:
            keys |= _evaluated_keys(validator, instance, schema.get("else"), draft2019)
    return keys


def _unevaluated_properties(draft2019: bool) -> Keyword:
    def unevaluated_properties(validator: Any, unevaluated: Any, instance: Any, schema: Any) -> Iterator[Any]:
        from jsonschema.exceptions import ValidationError

        if not validator.is_type(instance, "object"):
            return
        evaluated = _evaluated_keys(validator, instance, schema, draft2019)
        bad = [
            k
            for k in instance
            if k not in evaluated and next(validator.descend(instance[k], unevaluated, path=k), None) is not None
        ]
        if bad:
            shown = ", ".join(repr(k) for k in sorted(bad)[:20]) + (", ..." if len(bad) > 20 else "")
            verb = "was" if len(bad) == 1 else "were"
            if unevaluated is False:
                yield ValidationError(f"Unevaluated properties are not allowed ({shown} {verb} unexpected)")
            else:
                yield ValidationError(
                    f"Unevaluated properties are not valid under the given schema ({shown} {verb} unevaluated and "
                    "invalid)"
                )

    return unevaluated_properties


def _ticking(fn: Keyword) -> Keyword:
    tick = budget.tick

    def keyword(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        tick(KEYWORD_UNITS)
        return fn(validator, value, instance, schema)

    return keyword


def _is_regex(instance: Any) -> bool:
    if isinstance(instance, str):
        compile_pattern(instance)
    return True


def _format_checker(stock: Any) -> Any:
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checkers = dict(stock.FORMAT_CHECKER.checkers)
    checker.checkers["regex"] = (_is_regex, UnsupportedPattern)
    return checker


@functools.cache
def bounded_class(stock: Any) -> Any:
    """The bounded variant of the jsonschema validator class ``stock`` (e.g. ``Draft7Validator``), cached."""
    import attrs
    from jsonschema.validators import extend, validator_for

    replaced: dict[str, Keyword] = {}
    known = stock.VALIDATORS
    if "pattern" in known:
        replaced["pattern"] = _pattern
    if "patternProperties" in known:
        replaced["patternProperties"] = _pattern_properties
    if "additionalProperties" in known:
        replaced["additionalProperties"] = _additional_properties
    if "uniqueItems" in known:
        replaced["uniqueItems"] = _unique_items
    if "anyOf" in known:
        replaced["anyOf"] = _any_of
    if "oneOf" in known:
        replaced["oneOf"] = _one_of
    if "unevaluatedProperties" in known:
        replaced["unevaluatedProperties"] = _unevaluated_properties("$recursiveRef" in known)
    keywords = {name: _ticking(replaced.get(name, fn)) for name, fn in known.items()}
    cls: Any = extend(stock, validators=keywords, format_checker=_format_checker(stock))  # type: ignore[no-untyped-call]
    cls.__name__ = cls.__qualname__ = f"Bounded{stock.__name__}"
    fields = [(f.name, f.alias) for f in attrs.fields(cls) if f.init]

    def evolve(self: Any, **changes: Any) -> Any:
        schema = changes.setdefault("schema", self.schema)
        new_cls = type(self)
        if isinstance(schema, dict) and "$schema" in schema:
            new_cls = bounded_class(_stock_of(validator_for(schema, default=stock)))
        for name, alias in fields:
            if alias not in changes:
                changes[alias] = getattr(self, name)
        return new_cls(**changes)

    cls.evolve = evolve
    cls.STOCK = stock
    return cls


def _stock_of(cls: Any) -> Any:
    return getattr(cls, "STOCK", cls)

"""A plugin's ``schemas/`` folder: JSON Schemas checked for their draft, ``$ref`` between siblings, validation.

Every ``*.json`` file in ``schemas/`` is loaded and registered with a :mod:`referencing` registry under its file
name (and under its ``$id`` when it has one), so ``{"$ref": "common.json#/$defs/text"}`` works between sibling
files. Nothing is ever fetched from the network: a ``$ref`` that leaves the folder is an error at validation
time, not a surprise at the first call.

Schemas are untrusted (they come from plugin folders), so loading is bounded (size, nesting depth, every
``pattern`` compiled by the linear-time engine, refused with the reason when it uses lookaround or
backreferences) and validation runs with the bounded validator classes of :mod:`synapse_nb.boundedschema`,
against the call's deadline when it has one. Whatever a schema file holds, the outcome is a located
:class:`SchemaError` (exit 3), never an internal error.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin

from . import budget
from .errors import PluginTimeout, Problem, SchemaError, ValidationError
from .fastschema import compile_is_valid, is_plainly_valid_schema
from .linregex import refusal
from .schemawalk import Path as SchemaPath
from .schemawalk import pointer as _pointer
from .schemawalk import walk

if TYPE_CHECKING:
    from referencing import Registry

__all__ = [
    "INPUT_SCHEMA",
    "OUTPUT_SCHEMA",
    "SCHEMA_DIR",
    "SchemaSet",
    "load_schemas",
    "validator_class_for",
]

SCHEMA_DIR = "schemas"
INPUT_SCHEMA = "input_schema.json"
OUTPUT_SCHEMA = "output_schema.json"
MAX_SCHEMA_BYTES = 1 << 20

_DRAFTS = {
    "http://json-schema.org/draft-04/schema": "Draft4Validator",
    "http://json-schema.org/draft-06/schema": "Draft6Validator",
    "http://json-schema.org/draft-07/schema": "Draft7Validator",
    "https://json-schema.org/draft/2019-09/schema": "Draft201909Validator",
    "https://json-schema.org/draft/2020-12/schema": "Draft202012Validator",
}
DEFAULT_DRAFT = "http://json-schema.org/draft-07/schema"
_DRAFT_NUMBERS = {
    "Draft4Validator": 4,
    "Draft6Validator": 6,
    "Draft7Validator": 7,
    "Draft201909Validator": 2019,
    "Draft202012Validator": 2020,
}


def _normalise_draft_uri(uri: str) -> str:
    uri = uri.rstrip("#")
    if uri.startswith("https://json-schema.org/draft-0"):
        uri = "http://" + uri.removeprefix("https://")
    if uri.startswith("http://json-schema.org/draft/"):
        uri = "https://" + uri.removeprefix("http://")
    return uri


def _validator_name(schema: Any, file: str) -> str:
    declared = schema.get("$schema", DEFAULT_DRAFT) if isinstance(schema, dict) else DEFAULT_DRAFT
    if not isinstance(declared, str):
        raise SchemaError.from_problems([Problem(file, "$schema must be a string URI", pointer="/$schema")])
    name = _DRAFTS.get(_normalise_draft_uri(declared))
    if name is None:
        supported = ", ".join(sorted(_DRAFTS))
        raise SchemaError.from_problems(
            [Problem(file, f"unsupported $schema {declared!r}; use one of: {supported}", pointer="/$schema")]
        )
    return name


def draft_of(schema: Any, *, file: str = "schema") -> int:
    """The draft a schema declares (4, 6, 7, 2019, 2020; 7 when absent), without importing jsonschema."""
    return _DRAFT_NUMBERS[_validator_name(schema, file)]


def validator_class_for(schema: Any, *, file: str = "schema") -> Any:
    """The bounded jsonschema validator class for the schema's declared ``$schema`` (draft-07 when absent)."""
    import jsonschema

    from .boundedschema import bounded_class

    return bounded_class(getattr(jsonschema, _validator_name(schema, file)))


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


@dataclass
class SchemaSet:
    """The checked schemas of one plugin, ready to validate payloads. Build it with :func:`load_schemas`."""

    folder: Path
    schemas: dict[str, Any]
    plugin: str | None = None
    _registry: Registry | None = field(default=None, repr=False)
    _validators: dict[str, Any] = field(default_factory=dict, repr=False)
    _checks: dict[str, Callable[[Any], bool]] = field(default_factory=dict, repr=False)

    @property
    def registry(self) -> Registry:
        """The :mod:`referencing` registry of the sibling schemas (built on first need)."""
        if self._registry is None:
            self._registry = _registry(self.schemas)
        return self._registry

    def validator(self, name: str) -> Any:
        """A compiled validator for ``name`` (e.g. ``input_schema.json``), cached."""
        validator = self._validators.get(name)
        if validator is None:
            if name not in self.schemas:
                known = ", ".join(sorted(self.schemas)) or "none"
                raise SchemaError(f"no schema named {name!r} in {SCHEMA_DIR}/ (have: {known})", plugin=self.plugin)
            schema = self.schemas[name]
            cls = validator_class_for(schema, file=f"{SCHEMA_DIR}/{name}")
            validator = cls(schema, registry=self.registry, format_checker=cls.FORMAT_CHECKER)
            self._validators[name] = validator
        return validator

    def check(self, name: str) -> Callable[[Any], bool]:
        """The fastest correct ``is_valid`` for schema ``name``: compiled when possible, else jsonschema's."""
        check = self._checks.get(name)
        if check is None:
            if name not in self.schemas:
                self.validator(name)  # raises the "no schema named" error
            compiled = compile_is_valid(self.schemas[name], draft_of(self.schemas[name]))
            if compiled is None:
                check = self.validator(name).is_valid
            else:
                # A compiled "no" is always confirmed by jsonschema, the source of truth (imported only then).
                check = lambda x, c=compiled: c(x) or self.validator(name).is_valid(x)  # noqa: E731
            self._checks[name] = check
        return check

    def validate(
        self,
        name: str,
        payload: Any,
        *,
        direction: str | None = None,
        deadline: float | None = None,
        timeout_ms: int | None = None,
    ) -> Any:
        """Return ``payload`` if it matches schema ``name``; else raise :class:`ValidationError` with its pointer.

        ``deadline`` (a :func:`time.monotonic` value) bounds the work: past it, :class:`PluginTimeout` (exit 5)
        is raised within the margin documented in :mod:`synapse_nb.budget`; ``timeout_ms`` is the call's
        timeout, for the error's message.
        """
        what = direction or "payload"
        try:
            return budget.within(deadline, self._validate, name, payload, direction)
        except budget.DeadlineExceeded:
            budget_text = f" of {timeout_ms} ms" if timeout_ms else ""
            raise PluginTimeout(
                f"{what} validation against {name} exceeded the call's time budget{budget_text}",
                plugin=self.plugin,
                timeout_ms=timeout_ms or 0,
            ) from None
        except RecursionError:
            raise ValidationError(
                f"{what} is nested too deeply to validate against {name}",
                plugin=self.plugin,
                schema=name,
                direction=direction,
            ) from None
        except Exception as exc:
            from referencing.exceptions import Unresolvable

            if isinstance(exc, Unresolvable):  # a $ref reached only through a path load_schemas could not see
                raise SchemaError(f"{SCHEMA_DIR}/{name}: {exc}", plugin=self.plugin) from None
            raise

    def _validate(self, name: str, payload: Any, direction: str | None) -> Any:
        if self.check(name)(payload):
            return payload
        raise validation_error(self.validator(name), payload, name=name, direction=direction, plugin=self.plugin)


#: Errors collected to explain an invalid payload (the best of them is reported, with a count of the others).
MAX_ERRORS = 50


def validation_error(
    validator: Any, payload: Any, *, name: str, direction: str | None, plugin: str | None
) -> ValidationError:
    """The :class:`ValidationError` for an invalid payload: the most relevant error, with the count of others."""
    from jsonschema.exceptions import best_match

    from .boundedschema import trimmed

    errors = [trimmed(e) for e in itertools.islice(validator.iter_errors(payload), MAX_ERRORS)]
    best = best_match(errors)
    if best is None:  # pragma: no cover - is_valid said False, so there is at least one error
        raise ValueError("validation_error() called with a valid payload")
    pointer = _pointer(tuple(best.absolute_path))
    what = direction or "payload"
    if len(errors) == MAX_ERRORS:
        more = f" (and at least {MAX_ERRORS - 1} more)"
    else:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = f"{what} failed validation against {name}: {pointer or '/'}: {best.message}{more}"
    details = [f"{_pointer(tuple(e.absolute_path)) or '/'}: {e.message}" for e in errors[1:6]]
    return ValidationError(message, plugin=plugin, pointer=pointer, schema=name, direction=direction, details=details)


def _pattern_problems(display: str, node: dict[str, Any], where: SchemaPath) -> list[Problem]:
    """Patterns of one schema object that the linear-time engine refuses, located."""
    found: list[Problem] = []
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        why = refusal(pattern)
        if why:
            found.append(Problem(display, why, pointer=_pointer((*where, "pattern"))))
    patterns = node.get("patternProperties")
    if isinstance(patterns, dict):
        for key in patterns:
            why = refusal(key)
            if why:
                found.append(Problem(display, why, pointer=_pointer((*where, "patternProperties", key))))
    return found


def _load_one(path: Path, display: str) -> tuple[Any, list[Problem]]:
    from .jsonsafe import loads

    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(display, f"cannot read: {exc.strerror}")]
    if len(raw) > MAX_SCHEMA_BYTES:
        return None, [Problem(display, f"file is over the {MAX_SCHEMA_BYTES >> 20} MiB limit for a schema")]
    try:
        schema = loads(raw.removeprefix(b"\xef\xbb\xbf"), what=display, object_pairs_hook=_reject_duplicates)
    except ValidationError as exc:
        return None, [Problem(display, p.message, p.line, p.col) for p in exc.problems]
    if not isinstance(schema, (dict, bool)):
        return None, [Problem(display, f"a schema must be an object or a boolean, got {type(schema).__name__}")]
    try:
        draft = draft_of(schema, file=display)
    except SchemaError as exc:
        return None, exc.problems
    problems = [p for node, where, _ in walk(schema, "") for p in _pattern_problems(display, node, where)]
    if not problems and is_plainly_valid_schema(schema, draft):
        return schema, []  # well-formed by construction; jsonschema is not even imported
    cls = validator_class_for(schema, file=display)
    try:
        errors = sorted(_meta_validator(cls).iter_errors(schema), key=lambda e: list(map(str, e.absolute_path)))
    except RecursionError:
        return schema, [*problems, Problem(display, "nested too deeply to check against its draft's metaschema")]
    problems += [
        Problem(display, f"not a valid {_draft_name(cls)} schema: {err.message}", pointer=_pointer(err.absolute_path))
        for err in errors
        if not (err.validator == "format" and err.validator_value == "regex")  # reported above, with the reason
    ]
    return schema, problems


@functools.cache
def _meta_validator(cls: Any) -> Any:
    """What ``cls.check_schema`` uses (the draft's metaschema, formats checked so that bad regexes are caught),
    built once instead of at every check."""
    meta = cls.META_SCHEMA
    return validator_class_for(meta)(meta, format_checker=cls.FORMAT_CHECKER)


def _draft_name(cls: Any) -> str:
    name = str(cls.__name__).removeprefix("Bounded")
    return name.removesuffix("Validator").replace("Draft", "draft-").replace("draft-20", "draft 20")


def load_schemas(
    plugin_dir: str | Path,
    *,
    plugin: str | None = None,
    required: tuple[str, ...] = (INPUT_SCHEMA, OUTPUT_SCHEMA),
    display_root: str | None = None,
) -> SchemaSet:
    """Load and check every schema in ``plugin_dir/schemas``; :class:`SchemaError` lists every problem."""
    folder = Path(plugin_dir) / SCHEMA_DIR
    root = display_root if display_root is not None else str(plugin_dir)

    def shown(name: str) -> str:
        return f"{root}/{SCHEMA_DIR}/{name}" if root else f"{SCHEMA_DIR}/{name}"

    problems: list[Problem] = []
    schemas: dict[str, Any] = {}
    if not folder.is_dir():
        raise SchemaError.from_problems(
            [Problem(shown(""), f"missing {SCHEMA_DIR}/ folder (needs {', '.join(required)})")], plugin=plugin
        )
    for name in required:
        if not (folder / name).is_file():
            problems.append(Problem(shown(name), "missing; every plugin declares its input and output schema"))
    for path in sorted(folder.glob("*.json")):
        schema, found = _load_one(path, shown(path.name))
        problems.extend(found)
        if schema is not None and not found:
            schemas[path.name] = schema
    if problems:
        raise SchemaError.from_problems(problems, plugin=plugin)
    bases = {name: _base_uri(name, s) for name, s in schemas.items()}
    if not any(_has_ref(node) for name, s in schemas.items() for node, _, _ in walk(s, bases[name])):
        return SchemaSet(folder=folder, schemas=schemas, plugin=plugin)  # no $ref: no registry needed yet
    registry = _registry(schemas)
    problems = _reference_problems(schemas, bases, registry, shown)
    if problems:
        raise SchemaError.from_problems(problems, plugin=plugin)
    return SchemaSet(folder=folder, schemas=schemas, plugin=plugin, _registry=registry)


_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")


def _has_ref(node: dict[str, Any]) -> bool:
    return any(isinstance(node.get(k), str) for k in _REF_KEYWORDS)


def _base_uri(name: str, schema: Any) -> str:
    ident = schema.get("$id") if isinstance(schema, dict) else None
    return ident if isinstance(ident, str) else name


def _reference_problems(
    schemas: dict[str, Any], bases: dict[str, str], registry: Registry, shown: Callable[[str], str]
) -> list[Problem]:
    """Every ``$ref`` reachable from the schemas resolves to a sibling, and what it reaches holds no refused
    pattern and no unresolvable ``$ref`` either (a ref may point anywhere, even into an ``enum`` value)."""
    from referencing.exceptions import Unresolvable

    problems: list[Problem] = []
    seen: set[int] = set()
    queue: list[tuple[Any, str, SchemaPath, str, bool]] = [(s, n, (), bases[n], False) for n, s in schemas.items()]
    while queue:
        target, name, path, base, followed = queue.pop(0)
        for node, where, uri in walk(target, base, path, seen):
            if followed:  # reached only through a $ref: its patterns were not checked with its file
                problems.extend(_pattern_problems(shown(name), node, where))
            for keyword in _REF_KEYWORDS:
                ref = node.get(keyword)
                if not isinstance(ref, str):
                    continue
                try:
                    resolved = registry.resolver(base_uri=uri).lookup(ref)
                    target_uri = urldefrag(urljoin(uri, ref))[0] or uri
                except (Unresolvable, ValueError):
                    where_to = urldefrag(ref)[0]
                    if where_to and "://" in where_to:
                        why = "remote $ref fetching is disabled; copy that schema into schemas/ and refer to it by name"
                    else:
                        why = "no such sibling schema or location"
                    problems.append(
                        Problem(
                            shown(name),
                            f"{keyword} {ref!r} cannot be resolved: {why}",
                            pointer=_pointer((*where, keyword)),
                        )
                    )
                    continue
                queue.append((resolved.contents, name, (*where, keyword), target_uri, True))
    return problems


def _registry(schemas: dict[str, Any]) -> Registry:
    """Every sibling schema under its file name (and ``./name``, and its ``$id``); nothing is fetched."""
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import specification_with

    def refuse(uri: str) -> Any:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]

    registry: Registry = Registry(retrieve=refuse)  # type: ignore[call-arg]
    for name, schema in schemas.items():
        draft = validator_class_for(schema).META_SCHEMA.get("$schema", DEFAULT_DRAFT)
        resource = Resource.from_contents(schema, default_specification=specification_with(draft))
        registry = registry.with_resources([(name, resource), (f"./{name}", resource)])
        if resource.id():
            registry = registry.with_resource(resource.id(), resource)  # type: ignore[arg-type]
    return registry.crawl()

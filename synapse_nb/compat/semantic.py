"""The semantic check beside the syntactic one: values generated from one schema, validated against the other.

For the input, values are generated from the *old* input schema (with hypothesis-jsonschema) and must
validate against the new one: a caller's old inputs must stay valid. For the output, values generated from the
*new* output schema must validate against the old one: a caller's old expectations must stay true. A value that
fails is a counterexample: a major change, shown with the value (hypothesis shrinks it to a small one first).

Generation follows the declared contract (as the differ does): an object's undeclared members are not
generated (``additionalProperties: false`` is added where an object declares ``properties`` but says nothing
about others), and every generated value is checked against the original schema before it counts.

The schemas are untrusted data, so the check runs in a child process (``python -m synapse_nb.compat.semantic``)
that limits its own memory and is killed at the time budget; a counterexample found before that is kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..schemas import INPUT_SCHEMA, OUTPUT_SCHEMA, SCHEMA_DIR
from .keywords import show
from .model import Change

if TYPE_CHECKING:
    from .contract import Contract

__all__ = ["MEMORY_LIMIT_BYTES", "declared_contract", "semantic_changes"]

MEMORY_LIMIT_BYTES = 2 << 30
MAX_INLINED_NODES = 20_000
MAX_EVENT_BYTES = 64 << 10
INSTALL_HINT = (
    "the semantic check needs hypothesis-jsonschema: pip install hypothesis-jsonschema (or pass --examples 0)"
)


def _job(name: str, direction: str, source: Contract, target: Contract) -> dict[str, Any] | None:
    texts_s, texts_t = source.schemas.texts, target.schemas.texts
    if texts_s == texts_t or (texts_s.get(name) == texts_t.get(name) and '"$ref"' not in texts_s.get(name, "")):
        return None  # the same schema (and it refers to no other file): nothing to find
    if name not in source.schemas.schemas or name not in target.schemas.schemas:
        return None
    return {
        "job": direction,
        "root": name,
        "source": source.schemas.schemas,
        "target": target.schemas.schemas,
    }


def semantic_changes(
    old: Contract, new: Contract, *, examples: int, timeout_s: float
) -> tuple[list[Change], list[str]]:
    """Counterexamples (as major changes) and notes on what the check did; bounded by ``timeout_s``."""
    jobs = [
        j for j in (_job(INPUT_SCHEMA, "input", old, new), _job(OUTPUT_SCHEMA, "output", new, old)) if j is not None
    ]
    if not jobs:
        return [], []
    request = json.dumps({"jobs": jobs, "examples": examples})
    lines, stopped = _run_child(request, timeout_s)
    changes: list[Change] = []
    notes: list[str] = []
    found: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        status, job = event.get("status"), str(event.get("job"))
        if status == "counterexample":
            found[job] = event  # the last one is the smallest (hypothesis shrinks it)
        elif status == "done":
            notes.append(f"semantic check ({job}): {event.get('examples', 0)} generated values tried")
        elif status == "skipped":
            notes.append(f"semantic check ({job}) skipped: {event.get('why')}")
        elif status == "unavailable":
            raise UsageError(INSTALL_HINT + f" ({event.get('why')})")
    if stopped:
        notes.append(f"semantic check stopped at its time budget of {timeout_s:g}s")
    for job, event in found.items():
        changes.append(_counterexample(job, event, old, new))
    return changes, notes


def _counterexample(job: str, event: dict[str, Any], old: Contract, new: Contract) -> Change:
    value, reason, path = event.get("value"), str(event.get("message", "")), str(event.get("path") or "/")
    if job == "input":
        message = (
            f"{show(value, 80)} was a valid input of {old.version} and is refused by {new.version}: {path}: {reason}"
        )
        side, docs, name, rule = "new", new.schemas, INPUT_SCHEMA, "input-value-refused"
    else:
        message = (
            f"{new.version} may return {show(value, 80)}, which {old.version}'s output schema refuses: {path}: {reason}"
        )
        side, docs, name, rule = "old", old.schemas, OUTPUT_SCHEMA, "output-value-unexpected"
    pointer = str(event.get("schema_pointer") or "")
    return Change(
        rule=rule,
        direction="input" if job == "input" else "output",
        effect="change",
        bump="major",
        message=message,
        file=f"{SCHEMA_DIR}/{name}",
        pointer=pointer,
        side="new" if side == "new" else "old",
        where=path,
        line=docs.line(name, pointer),
        example=value,
        has_example=True,
    )


def _run_child(request: str, timeout_s: float) -> tuple[list[str], bool]:
    """Run the generator in a child process; its output lines, and whether it was stopped at the budget."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory(prefix="synapse-compat-") as cwd:  # hypothesis may write .hypothesis/ here
        proc = subprocess.Popen(
            [sys.executable, "-m", "synapse_nb.compat.semantic"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            text=True,
        )
        try:
            out, _ = proc.communicate(request, timeout=timeout_s)
            stopped = False
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            stopped = True
    return (out or "").splitlines(), stopped


# -- the child process ---------------------------------------------------------------------------------------


class _Recursive(Exception):
    pass


def _inline(root: str, schemas: dict[str, Any]) -> Any:
    """``schemas[root]`` with every ``$ref`` replaced by its target (raises ``_Recursive`` for recursive ones)."""
    from pathlib import Path
    from urllib.parse import urldefrag, urljoin

    from ..schemas import SchemaSet, draft_of

    registry = SchemaSet(folder=Path(SCHEMA_DIR), schemas=schemas).registry
    count = 0
    draft = draft_of(schemas[root])

    def walk(node: Any, base: str, active: tuple[str, ...]) -> Any:
        nonlocal count
        count += 1
        if count > MAX_INLINED_NODES:
            raise _Recursive(f"the schema expands to over {MAX_INLINED_NODES} nodes")
        if isinstance(node, list):
            return [walk(item, base, active) for item in node]
        if not isinstance(node, dict):
            return node
        if isinstance(node.get("$id"), str) and node.get("$id"):
            base = urljoin(base, node["$id"])
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = urljoin(base, ref)
            if target in active:
                raise _Recursive(f"recursive $ref {ref!r}")
            resolved = registry.resolver(base_uri=base).lookup(ref)
            inner = walk(resolved.contents, urldefrag(target)[0] or base, (*active, target))
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if draft <= 7 or not rest:
                return inner
            return {"allOf": [inner, walk(rest, base, active)]}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$defs", "definitions", "$id"):
                continue
            if key in ("enum", "const", "default", "examples"):
                out[key] = value
            else:
                out[key] = walk(value, base, active)
        return out

    ident = schemas[root].get("$id") if isinstance(schemas[root], dict) else None
    return walk(schemas[root], ident if isinstance(ident, str) and ident else root, ())


_SUBSCHEMA_DICT = ("properties", "patternProperties", "dependentSchemas")
_SUBSCHEMA = ("additionalProperties", "items", "additionalItems", "contains", "then", "else")
_SUBSCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")


def declared_contract(node: Any) -> Any:
    """The declared contract: objects that declare members accept no undeclared ones (under no ``not``/``if``)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if ("properties" in out or "patternProperties" in out) and out.get("additionalProperties", True) in (True, {}):
        out["additionalProperties"] = False
    for key in _SUBSCHEMA_DICT:
        if isinstance(out.get(key), dict):
            out[key] = {k: declared_contract(v) for k, v in out[key].items()}
    for key in _SUBSCHEMA:
        if isinstance(out.get(key), dict):
            out[key] = declared_contract(out[key])
    for key in _SUBSCHEMA_LIST:
        if isinstance(out.get(key), list):
            out[key] = [declared_contract(v) for v in out[key]]
    return out


def _pointer(path: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _emit(event: dict[str, Any]) -> None:
    line = json.dumps(event, default=str)
    if len(line) > MAX_EVENT_BYTES:  # a huge counterexample: show its start, keep the parent's memory small
        line = json.dumps({**event, "value": show(event.get("value"), 2000)}, default=str)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _check(job: dict[str, Any], examples: int) -> None:
    from pathlib import Path

    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis_jsonschema import from_schema
    from jsonschema.exceptions import best_match

    from ..schemas import SchemaSet

    name = job["job"]
    root = job["root"]
    source = SchemaSet(folder=Path(SCHEMA_DIR), schemas=job["source"]).validator(root)
    target = SchemaSet(folder=Path(SCHEMA_DIR), schemas=job["target"]).validator(root)
    try:
        schema = declared_contract(_inline(root, job["source"]))
    except _Recursive as exc:
        _emit({"job": name, "status": "skipped", "why": str(exc)})
        return
    except RecursionError:
        _emit({"job": name, "status": "skipped", "why": "the schema is nested too deeply"})
        return
    tried = 0

    class Found(Exception):
        pass

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(from_schema(schema))
    def check(value: Any) -> None:
        nonlocal tried
        if not source.is_valid(value):
            return  # outside the old contract (a keyword the generator does not know)
        tried += 1
        if target.is_valid(value):
            return
        error = best_match(target.iter_errors(value))
        path = _pointer(error.absolute_path) if error is not None else ""
        schema_path = list(error.absolute_schema_path) if error is not None else []
        _emit(
            {
                "job": name,
                "status": "counterexample",
                "value": value,
                "message": error.message if error is not None else "invalid",
                "path": path or "/",
                "schema_pointer": "" if "$ref" in schema_path else _pointer(schema_path),
            }
        )
        raise Found

    try:
        check()
    except Found:
        pass
    except Exception as exc:  # the generator cannot handle this schema: say so, do not guess
        _emit({"job": name, "status": "skipped", "why": f"{type(exc).__name__}: {str(exc)[:200]}"})
        return
    _emit({"job": name, "status": "done", "examples": tried})


def main() -> int:
    """The child: read the jobs on stdin, print one JSON line per finding."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    request = json.loads(sys.stdin.read())
    try:
        import hypothesis_jsonschema  # noqa: F401
    except ImportError as exc:
        _emit({"status": "unavailable", "why": str(exc)})
        return 0
    for job in request["jobs"]:
        _check(job, int(request["examples"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Property test: whatever a manifest is mutated into, nothing but ManifestError escapes."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synapse_nb.errors import ManifestError
from synapse_nb.manifest import parse_manifest

from .test_manifest import SPEC_EXAMPLE

BASE = yaml.safe_load(SPEC_EXAMPLE)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["1500ms", "2s", "-1s", "python3.9", "1.2.0", "sync", "event", "grpc", "", "~", "*a"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = [p for p in paths(BASE) if p]


def manifest_error_or_none(text: str | bytes) -> ManifestError | None:
    """Parse; return the ManifestError if one was raised. Any other exception propagates and fails the test."""
    try:
        parse_manifest(text)
    except ManifestError as exc:
        return exc
    return None


def mutate(doc: object, path: tuple[object, ...], value: object, delete: bool) -> object:
    import copy

    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]  # type: ignore[index]
    if delete:
        del parent[path[-1]]  # type: ignore[attr-defined]
    else:
        parent[path[-1]] = value  # type: ignore[index]
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), values, st.booleans())
def test_mutated_manifests_raise_only_manifest_error(path: tuple[object, ...], value: object, delete: bool) -> None:
    text = yaml.safe_dump(mutate(BASE, path, value, delete), allow_unicode=True)
    error = manifest_error_or_none(text)
    assert error is None or (error.problems and "\n" not in str(error))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_bytes_raise_only_manifest_error(raw: bytes | str) -> None:
    error = manifest_error_or_none(raw)
    assert error is None or error.problems


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(SPEC_EXAMPLE)), st.text(max_size=5))
def test_text_edits_of_the_spec_example_raise_only_manifest_error(at: int, insert: str) -> None:
    error = manifest_error_or_none(SPEC_EXAMPLE[:at] + insert + SPEC_EXAMPLE[at:])
    assert error is None or error.problems


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), values, st.booleans())
def test_the_compiled_manifest_check_never_accepts_what_jsonschema_rejects(
    path: tuple[object, ...], value: object, delete: bool
) -> None:
    from synapse_nb.manifest.load import _fast_check, _validator

    document = mutate(BASE, path, value, delete)
    if _fast_check()(document):
        assert _validator().is_valid(document)

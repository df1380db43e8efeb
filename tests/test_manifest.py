"""Manifest v1: the spec's example validates unchanged; every bad input is one located ManifestError."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from synapse_nb.errors import ManifestError
from synapse_nb.manifest import load_manifest, parse_manifest
from synapse_nb.manifest.model import CircuitPolicy
from synapse_nb.semver import SemVer

SPEC_EXAMPLE = (
    "apiVersion: synapse.io/v1\n"
    "kind: AIPlugin\n"
    "metadata:\n"
    "  name: sentiment-analyzer\n"
    "  version: 1.2.0\n"
    "spec:\n"
    "  runtime: python3.9\n"
    "  execution:\n"
    "    trigger: async\n"
    "    timeout: 1500ms  \n"
    "  interfaces:\n"
    "    - type: nlp\n"
    "      protocol: grpc\n"
    "      endpoints:\n"
    "        primary: /v1/analyze\n"
)

LOCATED = re.compile(r"manifest\.yaml:\d+:\d+: /[^:]*: ")


def problems_of(text: str | bytes) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    return [str(p) for p in info.value.problems]


def test_the_bundled_example_is_the_spec_manifest_byte_for_byte(example_plugin: Path) -> None:
    assert (example_plugin / "manifest.yaml").read_text() == SPEC_EXAMPLE


def test_the_spec_example_validates_into_the_typed_model() -> None:
    m = parse_manifest(SPEC_EXAMPLE)
    assert m.name == "sentiment-analyzer"
    assert m.version == SemVer(1, 2, 0)
    assert str(m.runtime) == "python3.9"
    assert m.execution.trigger == "async"
    assert m.execution.timeout_ms == 1500
    assert m.interfaces[0].endpoints == {"primary": "/v1/analyze"}
    assert m.interfaces[0].protocol == "grpc"


def test_permissions_default_to_nothing_but_512_mib() -> None:
    p = parse_manifest(SPEC_EXAMPLE).permissions
    assert p.network_access.domains == ()
    assert p.system_resources.gpu is False
    assert p.system_resources.memory_mb == 512


def test_timeout_defaults_to_30_seconds() -> None:
    text = SPEC_EXAMPLE.replace("    timeout: 1500ms  \n", "")
    assert parse_manifest(text).execution.timeout_ms == 30_000


def test_permissions_in_the_spec_shape_are_read() -> None:
    text = SPEC_EXAMPLE + (
        "  permissions:\n"
        "    network_access:\n"
        '      domains: ["api.trusted-service.com", "*.example.org", "localhost:8080"]\n'
        "    system_resources:\n"
        "      gpu: true\n"
        "      memory_mb: 1024\n"
    )
    p = parse_manifest(text).permissions
    assert p.domains == ("api.trusted-service.com", "*.example.org", "localhost:8080")
    assert (p.gpu, p.memory_mb) == (True, 1024)


def test_optional_sections_build_their_models() -> None:
    text = SPEC_EXAMPLE.replace("trigger: async", "trigger: event") + (
        "  events:\n    topics: [orders.created]\n"
        "  batch:\n    max_batch_size: 32\n    max_delay_ms: 5\n"
        "  cache:\n    ttl: 1m30s\n"
        "  secrets: [API_TOKEN]\n"
    )
    m = parse_manifest(text)
    assert m.events == ("orders.created",)
    assert (m.batch.max_batch_size, m.batch.max_delay_ms) == (32, 5)  # type: ignore[union-attr]
    assert m.cache.ttl_ms == 90_000  # type: ignore[union-attr]
    assert m.secrets == ("API_TOKEN",)


def test_semver_with_prerelease_and_build_is_accepted() -> None:
    m = parse_manifest(SPEC_EXAMPLE.replace("1.2.0", "1.2.0-rc.1+build.5"))
    assert m.version == SemVer(1, 2, 0, ("rc", "1"), ("build", "5"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", r"manifest\.yaml:1:1: /: file is empty"),
        ("- a\n- b\n", r"manifest\.yaml:1:1: /: a manifest must be a mapping of keys, got a list"),
        (
            "apiVersion: synapse.io/v1\nmetadata:\n\tname: x\n",
            r"manifest\.yaml:3:1: tab character where YAML needs spaces",
        ),
        ("a: 1\n\t\nb: 2\n", r"manifest\.yaml:2:1: tab character where YAML needs spaces"),
        (
            SPEC_EXAMPLE + "kind: AIPlugin\n",
            r"manifest\.yaml:16:1: /kind: duplicate key 'kind' \(first defined on line 2\)",
        ),
        (
            SPEC_EXAMPLE.replace("synapse.io/v1", "synapse.io/v2"),
            r":1:13: /apiVersion: 'synapse.io/v2' is not supported",
        ),
        (
            SPEC_EXAMPLE.replace("1.2.0", "1.2"),
            r":5:12: /metadata/version: expected a string, got a number 1.2",
        ),
        (
            SPEC_EXAMPLE.replace("1.2.0", "'1.2'"),
            r":5:12: /metadata/version: '1.2' is not a SemVer 2.0 version",
        ),
        (
            SPEC_EXAMPLE.replace("1500ms", "15oo ms"),
            r":10:14: /spec/execution/timeout: '15oo ms' is not a duration",
        ),
        (SPEC_EXAMPLE.replace("1500ms", "-1s"), r":10:14: /spec/execution/timeout: '-1s' is not a duration"),
        (SPEC_EXAMPLE.replace("1500ms", "0s"), r":10:14: /spec/execution/timeout: '0s' must be more than 0"),
        (
            SPEC_EXAMPLE.replace("sentiment-analyzer", "Sentiment"),
            r":4:9: /metadata/name: 'Sentiment' is not a plugin name",
        ),
        (
            SPEC_EXAMPLE.replace("sentiment-analyzer", "../evil"),
            r":4:9: /metadata/name: '\.\./evil' is not a plugin name",
        ),
        (
            SPEC_EXAMPLE.replace("      endpoints:\n        primary: /v1/analyze\n", ""),
            r":12:7: /spec/interfaces/0: missing required key 'endpoints'",
        ),
        (
            SPEC_EXAMPLE.replace("      endpoints:\n        primary: /v1/analyze\n", "      endpoints: {}\n"),
            r":14:18: /spec/interfaces/0/endpoints: an interface needs at least one endpoint",
        ),
        (
            SPEC_EXAMPLE.replace("trigger:", "triger:"),
            r":9:5: /spec/execution/triger: unknown key 'triger' \(did you mean 'trigger'\?\)",
        ),
        (
            SPEC_EXAMPLE.replace("grpc", "soap"),
            r":13:17: /spec/interfaces/0/protocol: 'soap' is not one of 'grpc', 'http', 'local'",
        ),
        (
            SPEC_EXAMPLE.replace("python3.9", "python2.7"),
            r":7:12: /spec/runtime: 'python2.7' is not a runtime",
        ),
        (
            SPEC_EXAMPLE.replace("trigger: async", "trigger: event"),
            r"trigger 'event' needs spec.events.topics",
        ),
        (
            SPEC_EXAMPLE.replace("/v1/analyze", "v1/analyze"),
            r"/spec/interfaces/0/endpoints/primary: 'v1/analyze' is not an endpoint path",
        ),
        (
            SPEC_EXAMPLE + "  permissions:\n    network_access:\n      domains: ['http://x.com/']\n",
            r"'http://x.com/' is not a domain",
        ),
        (
            SPEC_EXAMPLE + "  permissions:\n    system_resources:\n      memory_mb: 8\n",
            r"/spec/permissions/system_resources/memory_mb: 8 is less than the minimum",
        ),
        ("a: [1, 2\n", r"manifest\.yaml:2:1: invalid YAML"),
        ("1: x\n", r"manifest\.yaml:1:1: /: mapping key '1' is not a string"),
    ],
)
def test_bad_manifests_give_one_located_error(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert any(re.search(expected, p) for p in problems), problems


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = (
        SPEC_EXAMPLE.replace("1.2.0", "1.2")
        .replace("1500ms", "15oo ms")
        .replace("grpc", "soap")
        .replace("trigger:", "triger:")
    )
    problems = problems_of(text)
    assert len(problems) == 4
    assert [int(p.split(":")[1]) for p in problems] == [5, 9, 10, 13]
    assert all(LOCATED.match(p) for p in problems), problems


def test_the_error_message_is_one_line_with_the_count_of_the_others() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(SPEC_EXAMPLE.replace("1.2.0", "1.2").replace("grpc", "soap"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("sentiment-analyzer: manifest.yaml:5:12: /metadata/version:")
    assert message.endswith("(and 1 more problem)")
    assert info.value.exit_code == 3


def test_unknown_top_level_key_lists_the_known_ones_when_nothing_is_close() -> None:
    [problem] = problems_of(SPEC_EXAMPLE + "zzz: 1\n")
    assert "unknown key 'zzz' (expected one of: apiVersion, kind, metadata, spec)" in problem


def test_a_10_mib_manifest_is_refused_before_parsing(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_bytes(SPEC_EXAMPLE.encode() + b"#" * (10 << 20))
    with pytest.raises(ManifestError, match=r"manifest.yaml:1:1: file is 10\.0 MiB, over the 1 MiB limit"):
        load_manifest(tmp_path)


def test_binary_garbage_is_not_utf8_text(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ManifestError, match=r"manifest.yaml:\d+:\d+: (not UTF-8|unacceptable character)"):
        load_manifest(tmp_path)


def test_control_characters_are_located() -> None:
    [problem] = problems_of(b"apiVersion: synapse.io/v1\nkind: \x07\n")
    assert problem.startswith("manifest.yaml:2:7: unacceptable character #x0007")


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    [problem] = problems_of("\n".join(lines) + "\n")
    assert "alias bomb" in problem


def test_python_object_tags_are_refused_by_the_safe_loader() -> None:
    [problem] = problems_of("x: !!python/object/apply:os.system ['true']\n")
    assert "manifest.yaml:1:4: /x: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed" in problem
    [problem] = problems_of("x: !!python/name:os.system\n")
    assert problem.startswith("manifest.yaml:1:4: /x: invalid value")


def test_missing_manifest_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest\.yaml here; is this a plugin folder"):
        load_manifest(tmp_path)


def test_execution_policies_are_read_with_their_defaults() -> None:
    plain = parse_manifest(SPEC_EXAMPLE).execution
    assert (plain.idempotent, plain.circuit) == (False, CircuitPolicy())
    text = SPEC_EXAMPLE.replace(
        "    timeout: 1500ms  \n",
        "    timeout: 1500ms\n    idempotent: true\n"
        "    circuit: {failures: 3, window: 10, failure_rate: 0.3, reset: 1m}\n",
    )
    execution = parse_manifest(text).execution
    assert execution.idempotent is True
    assert execution.circuit == CircuitPolicy(failures=3, window=10, failure_rate=0.3, reset_ms=60_000)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("    idempotent: yes please\n", "/spec/execution/idempotent: expected true or false, got a string"),
        ("    circuit: {failures: 0}\n", "/spec/execution/circuit/failures: 0 is less than the minimum of 1"),
        ("    circuit: {failure_rate: 0}\n", "/spec/execution/circuit/failure_rate: 0 is less than or equal to"),
        ("    circuit: {failure_rate: 1.5}\n", "/spec/execution/circuit/failure_rate: 1.5 is greater than"),
        ("    circuit: {reset: soon}\n", "/spec/execution/circuit/reset: 'soon' is not a duration"),
        ("    circuit: {reset: 0s}\n", "/spec/execution/circuit/reset: '0s' must be more than 0 and at most 24h"),
        ("    circuit: {reset: 99999999999999999999999999999h}\n", "must be more than 0 and at most 24h"),
        ("    circuit: {resett: 1s}\n", "unknown key 'resett' (did you mean 'reset'?)"),
    ],
)
def test_execution_policy_mistakes_are_located(lines: str, expected: str) -> None:
    found = problems_of(SPEC_EXAMPLE.replace("    timeout: 1500ms  \n", "    timeout: 1500ms\n" + lines))
    assert any(expected in p and LOCATED.search(p) for p in found), found


def test_a_cache_ttl_over_30_days_is_refused_where_it_is_written() -> None:
    found = problems_of(SPEC_EXAMPLE + "  cache: {ttl: 721h}\n")
    assert any("/spec/cache/ttl: '721h' is longer than the longest cache TTL, 30 days" in p for p in found), found


def test_a_duration_too_large_for_a_float_is_a_located_error_not_a_crash() -> None:
    found = problems_of(SPEC_EXAMPLE.replace("1500ms", "9" * 400 + "s"))
    assert any("/spec/execution/timeout" in p and "must be more than 0 and at most 24h" in p for p in found), found

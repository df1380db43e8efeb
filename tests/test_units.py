"""Durations and SemVer precedence."""

from __future__ import annotations

import pytest

from synapse_nb.semver import SemVer
from synapse_nb.units import format_duration_ms, parse_duration_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1500ms", 1500), ("2s", 2000), ("1m", 60_000), ("1.5s", 1500), ("1m30s", 90_000), ("1h", 3_600_000)],
)
def test_durations_parse(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["15oo ms", "-1s", "1", "s", "1 s", "1d", ""])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration_ms(text)


def test_durations_format_back() -> None:
    assert [format_duration_ms(v) for v in (1500, 2000, 60_000, 0)] == ["1500ms", "2s", "1m", "0ms"]


def test_semver_precedence_follows_the_spec() -> None:
    order = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
    ]
    parsed = [SemVer.parse(v) for v in order]
    shuffled = parsed[1::2] + parsed[::2]
    assert sorted(shuffled) == parsed
    assert [str(v) for v in parsed] == order


def test_build_metadata_does_not_affect_precedence() -> None:
    assert SemVer.parse("1.0.0+a") == SemVer.parse("1.0.0+b")


@pytest.mark.parametrize("text", ["1.2", "01.2.3", "1.2.3-", "v1.2.3", "1.2.3.4"])
def test_invalid_semver_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a SemVer 2\.0 version"):
        SemVer.parse(text)

"""npm-style version ranges: resolve(versions, range) picks the highest version the range allows."""

from __future__ import annotations

import pytest

from synapse_nb.registry.resolve import matches, resolve

VERSIONS = ["0.9.0", "1.0.0", "1.2.0", "1.2.5", "1.3.0-beta", "1.3.0", "2.0.0-rc.1", "2.0.0", "2.1.0"]


@pytest.mark.parametrize(
    ("range_text", "expected"),
    [
        ("^1.2.0", "1.3.0"),
        ("~1.2.0", "1.2.5"),
        ("1.x", "1.3.0"),
        ("1.2", "1.2.5"),
        ("1", "1.3.0"),
        ("*", "2.1.0"),
        ("", "2.1.0"),
        (">=1.0 <2", "1.3.0"),
        (">= 1.2.0 < 1.3", "1.2.5"),
        ("1.2.3 - 2", "2.1.0"),
        ("1.0.0 - 1.2.5", "1.2.5"),
        ("1.0.0", "1.0.0"),
        ("=2.0.0", "2.0.0"),
        (">1", "2.1.0"),
        ("<=1.2", "1.2.5"),
        ("<1.2", "1.0.0"),
        ("^0.9", "0.9.0"),
        ("^0.9.0 || ^1.0.0", "1.3.0"),
        ("1.3.0-beta", "1.3.0-beta"),
        ("^2.0.0-rc.0", "2.1.0"),
        ("^3", None),
    ],
)
def test_ranges_resolve_to_the_highest_allowed_version(range_text: str, expected: str | None) -> None:
    assert resolve(VERSIONS, range_text) == expected


def test_pre_releases_are_chosen_only_when_the_range_names_one_of_the_same_version() -> None:
    assert not matches("1.3.0-beta", "^1.2.0")
    assert not matches("2.0.0-rc.1", "^1.0.0")
    assert matches("1.3.0-beta.2", ">=1.3.0-beta <1.3.0")
    assert not matches("1.4.0-beta", ">=1.3.0-beta")
    assert resolve(["1.0.0-alpha", "1.0.0-beta"], "^1.0.0-alpha") == "1.0.0-beta"


def test_caret_on_zero_versions_locks_the_leftmost_non_zero_part() -> None:
    assert resolve(["0.2.3", "0.2.9", "0.3.0"], "^0.2.3") == "0.2.9"
    assert resolve(["0.0.3", "0.0.4"], "^0.0.3") == "0.0.3"
    assert resolve(["0.0.9", "0.1.0", "1.0.0"], "^0") == "0.1.0"


def test_an_invalid_range_names_itself() -> None:
    with pytest.raises(ValueError, match="'banana' is not a version"):
        resolve(VERSIONS, "banana")
    with pytest.raises(ValueError, match="has an operator but no version"):
        resolve(VERSIONS, ">=")

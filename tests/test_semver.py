"""Version ranges as npm and Cargo write them, and the highest version a range admits."""

from __future__ import annotations

import pytest

from synapse_nb.semver import SemVer, SemVerRange, max_satisfying

CASES = [
    ("^1.2", "1.2.0", True),
    ("^1.2", "1.9.9", True),
    ("^1.2", "2.0.0", False),
    ("^1.2", "1.1.9", False),
    ("^1.2.3", "1.2.2", False),
    ("^0.2.3", "0.2.9", True),
    ("^0.2.3", "0.3.0", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^0", "0.9.0", True),
    ("^0", "1.0.0", False),
    ("~1.2.3", "1.2.9", True),
    ("~1.2.3", "1.3.0", False),
    ("~1.2", "1.2.0", True),
    ("~1", "1.9.0", True),
    ("~1", "2.0.0", False),
    (">=1.2,<2", "1.2.0", True),
    (">=1.2,<2", "1.99.0", True),
    (">=1.2,<2", "2.0.0", False),
    (">=1.2 <2", "1.1.0", False),
    (">= 1.2, < 2", "1.5.0", True),
    (">1.2", "1.2.5", False),
    (">1.2", "1.3.0", True),
    ("<=1.2", "1.2.7", True),
    ("<1.2", "1.1.9", True),
    ("<1.2", "1.2.0", False),
    ("=1.2.3", "1.2.3", True),
    ("1.x", "1.0.0", True),
    ("1.x", "1.99.0", True),
    ("1.x", "2.0.0", False),
    ("1.2.x", "1.2.7", True),
    ("1.2.x", "1.3.0", False),
    ("1", "1.4.0", True),
    ("1.2", "1.2.4", True),
    ("1.2", "1.3.0", False),
    ("*", "0.0.1", True),
    ("*", "99.0.0", True),
    ("x", "3.1.4", True),
    ("", "1.0.0", True),
    ("1.2.3", "1.2.3", True),
    ("1.2.3", "1.2.4", False),
    ("1.2.3", "1.2.3+build.7", True),
    ("1.2 - 2.3", "2.3.9", True),
    ("1.2 - 2.3", "2.4.0", False),
    ("1.2 - 2.3", "1.1.0", False),
    ("^1 || ^3", "3.2.0", True),
    ("^1 || ^3", "2.0.0", False),
]
PRERELEASES = [
    ("*", "1.0.0-rc.1", False),
    ("^1.2", "1.3.0-beta.1", False),
    ("<2", "2.0.0-rc.1", False),
    ("^1.2.3-beta.1", "1.2.3-beta.4", True),
    ("^1.2.3-beta.1", "1.2.3-alpha.1", False),
    ("^1.2.3-beta.1", "1.3.0-beta.1", False),
    ("^1.2.3-beta.1", "1.3.0", True),
    ("1.2.3-rc.1", "1.2.3-rc.1", True),
    (">=1.0.0-rc.1 <1.0.0", "1.0.0-rc.2", True),
]


@pytest.mark.parametrize(("text", "version", "expected"), CASES + PRERELEASES)
def test_a_range_admits_exactly_what_npm_admits(text: str, version: str, expected: bool) -> None:
    assert SemVerRange.parse(text).contains(version) is expected
    assert (SemVer.parse(version) in SemVerRange.parse(text)) is expected


def test_max_satisfying_picks_the_highest_release_in_range_and_skips_junk() -> None:
    versions = ["1.0.0", "1.5.0", "1.6.0-rc.1", "2.0.0", "not-a-version", "1.4.9"]
    assert max_satisfying(versions, "^1") == "1.5.0"
    assert max_satisfying(versions, SemVerRange.parse(">=2")) == "2.0.0"
    assert max_satisfying(versions, "^3") is None
    assert max_satisfying([SemVer.parse("0.2.3"), SemVer.parse("0.2.9")], "~0.2") == SemVer.parse("0.2.9")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("^1.2.a", "'^1.2.a' is not a version range: '1.2.a' is not a version"),
        (">=", "'>=' is not followed by a version"),
        (">= <2", "'>=' is followed by '<2'"),
        ("1.2-rc.1", "'1.2-rc.1' is not a version"),
        ("x" * 2000, "over the 1024 limit"),
    ],
)
def test_a_bad_range_is_a_value_error_naming_the_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("^", r"\^").replace("*", r"\*")):
        SemVerRange.parse(text)

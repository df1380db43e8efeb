"""Version ranges in the npm (node-semver) sense, and :func:`resolve`: the highest version a range allows.

Grammar, as node-semver documents it: ranges joined by ``||``; a range is a hyphen range ``1.2.3 - 2.3.4`` or
comparators separated by spaces, all of which must hold. A comparator is ``<``, ``<=``, ``>``, ``>=`` or ``=``
before a (partial) version, ``~`` (patch-level changes), ``^`` (changes that do not modify the left-most
non-zero part), an X-range (``1.x``, ``1.2.*``, ``*``, ``1``, ``1.2``) or an exact version (``1.2.3``). An
empty range is ``*``. A pre-release version is allowed only when a comparator of the same set names a
pre-release of the same ``MAJOR.MINOR.PATCH`` (so ``^1.2.3`` never picks ``2.0.0-beta``).

This is one function on purpose (``resolve(versions, range_text)``): a shared ``SemVerRange`` may replace the
inside later without changing a caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..semver import SemVer

__all__ = ["matches", "parse_range", "resolve"]

Comparator = tuple[str, SemVer]

_WILD = {"x", "X", "*"}
_PARTIAL = re.compile(
    r"^v?(?P<major>0|[1-9]\d*|[xX*])(?:\.(?P<minor>0|[1-9]\d*|[xX*])(?:\.(?P<patch>0|[1-9]\d*|[xX*])"
    r"(?P<rest>(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?))?)?$"
)
_OPERATOR = re.compile(r"^(<=|>=|<|>|=|~>|~|\^)?\s*(.*)$")
_MAX_LENGTH = 256


def _v(major: int, minor: int, patch: int, pre: tuple[str, ...] = ()) -> SemVer:
    return SemVer(major, minor, patch, pre)


def _partial(text: str) -> tuple[int | None, int | None, int | None, SemVer | None]:
    """``(major, minor, patch, full)``: None for a missing or wildcard part; ``full`` when all three are given."""
    match = _PARTIAL.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a version or partial version (e.g. 1, 1.2, 1.2.3, 1.x)")
    parts: list[int | None] = []
    for key in ("major", "minor", "patch"):
        value = match.group(key)
        parts.append(None if value is None or value in _WILD else int(value))
    major, minor, patch = parts
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    rest = match.group("rest") or ""
    if rest and patch is None:
        raise ValueError(f"{text!r}: a pre-release or build needs MAJOR.MINOR.PATCH")
    full = None
    if major is not None and minor is not None and patch is not None:
        full = SemVer.parse(f"{major}.{minor}.{patch}{rest}")
    return major, minor, patch, full


def _upper(major: int, minor: int | None) -> SemVer:
    """The exclusive upper bound of an X-range: ``<2.0.0-0`` for ``1.x``, ``<1.3.0-0`` for ``1.2.x``."""
    return _v(major + 1, 0, 0, ("0",)) if minor is None else _v(major, minor + 1, 0, ("0",))


def _comparators(op: str, text: str) -> list[Comparator]:
    major, minor, patch, full = _partial(text)
    if major is None:  # *, x
        return [(">", _v(-1, 0, 0))] if op in ("", "=", ">=", "<=", "~", "^", "~>") else [("<", _v(0, 0, 0, ("0",)))]
    low = full or _v(major, minor or 0, patch or 0)
    if op in ("", "="):
        return [("=", full)] if full else [(">=", low), ("<", _upper(major, minor))]
    if op in ("~", "~>"):
        return [(">=", low), ("<", _upper(major, minor))]
    if op == "^":
        if major > 0 or minor is None:
            return [(">=", low), ("<", _v(major + 1, 0, 0, ("0",)))]
        if minor > 0 or patch is None:
            return [(">=", low), ("<", _v(0, minor + 1, 0, ("0",)))]
        return [(">=", low), ("<", _v(0, 0, patch + 1, ("0",)))]
    if full is not None:
        return [(op, full)]
    if op == ">":
        return [(">=", _v(*_bump(major, minor)))]
    if op == ">=":
        return [(">=", low)]
    if op == "<":
        return [("<", _v(major, minor or 0, 0, ("0",)))]
    return [("<", _upper(major, minor))]  # <=1.2 is <1.3.0-0


def _bump(major: int, minor: int | None) -> tuple[int, int, int]:
    """``>1`` is ``>=2.0.0``; ``>1.2`` is ``>=1.3.0``."""
    return (major + 1, 0, 0) if minor is None else (major, minor + 1, 0)


def _hyphen(low_text: str, high_text: str) -> list[Comparator]:
    lmajor, lminor, lpatch, lfull = _partial(low_text)
    out: list[Comparator] = []
    if lmajor is not None:
        out.append((">=", lfull or _v(lmajor, lminor or 0, lpatch or 0)))
    hmajor, hminor, _hpatch, hfull = _partial(high_text)
    if hfull is not None:
        out.append(("<=", hfull))
    elif hmajor is not None:
        out.append(("<", _upper(hmajor, hminor)))
    return out or [(">", _v(-1, 0, 0))]


def parse_range(text: str) -> list[list[Comparator]]:
    """The comparator sets of ``text`` (any one set must hold entirely); ``ValueError`` when it is not a range."""
    if not isinstance(text, str) or len(text) > _MAX_LENGTH:
        raise ValueError(f"a version range must be a string of at most {_MAX_LENGTH} characters")
    sets: list[list[Comparator]] = []
    for alternative in text.split("||"):
        part = alternative.strip()
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", part)
        if hyphen:
            sets.append(_hyphen(hyphen.group(1), hyphen.group(2)))
            continue
        # Operators may be followed by spaces (">= 1.2.3"): glue them to their version first.
        tokens = re.sub(r"(<=|>=|<|>|=|~>|~|\^)\s+", r"\1", part).split()
        comparators: list[Comparator] = []
        for token in tokens or ["*"]:
            match = _OPERATOR.match(token)
            op, rest = (match.group(1) or "", match.group(2)) if match else ("", token)
            if not rest:
                raise ValueError(f"{token!r} has an operator but no version")
            comparators.extend(_comparators(op, rest))
        sets.append(comparators)
    return sets


def _holds(op: str, version: SemVer, bound: SemVer) -> bool:
    if op == "=":
        return version == bound
    if op == ">":
        return version > bound
    if op == ">=":
        return version >= bound
    if op == "<":
        return version < bound
    return version <= bound


def _satisfies(version: SemVer, comparators: list[Comparator]) -> bool:
    if not all(_holds(op, version, bound) for op, bound in comparators):
        return False
    if not version.prerelease:
        return True
    # npm: a pre-release matches only when the range names a pre-release of the same major.minor.patch.
    return any(
        bound.prerelease and (bound.major, bound.minor, bound.patch) == (version.major, version.minor, version.patch)
        for _op, bound in comparators
    )


def matches(version: str, range_text: str) -> bool:
    """Whether ``version`` satisfies ``range_text``."""
    parsed = SemVer.parse(version)
    return any(_satisfies(parsed, s) for s in parse_range(range_text))


def resolve(versions: Iterable[str], range_text: str) -> str | None:
    """The highest of ``versions`` that satisfies ``range_text`` (npm semantics), or ``None``.

    ``ValueError`` when ``range_text`` is not a range; versions that are not SemVer are ignored.
    """
    sets = parse_range(range_text.strip() or "*")
    best: SemVer | None = None
    best_text: str | None = None
    for text in versions:
        try:
            version = SemVer.parse(text)
        except ValueError:
            continue
        if any(_satisfies(version, s) for s in sets) and (best is None or version > best):
            best, best_text = version, text
    return best_text

"""Semantic Versioning 2.0.0: parsing and precedence (https://semver.org), and version ranges as npm and Cargo
write them.

A :class:`SemVerRange` is what a consumer pins (``name@^1.2``): ``^1.2.3``, ``~1.2.3``, ``>=1.2,<2`` (Cargo's
comma or npm's space), ``1.x``, ``1.2``, ``*``, ``1.2 - 2.3``, ``A || B`` and an exact ``1.2.3``. The meaning
is npm's (node-semver): a caret allows changes that do not modify the left-most non-zero part (``^0.2.3`` is
``>=0.2.3 <0.3.0``), and a pre-release version only satisfies a range that names a pre-release of the same
``MAJOR.MINOR.PATCH`` (``^1.2.3-beta.1`` admits ``1.2.3-beta.4`` but not ``1.3.0-beta.1``).
:func:`max_satisfying` picks the highest version a range admits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import total_ordering
from typing import Literal, TypeVar

__all__ = ["SEMVER_PATTERN", "SemVer", "SemVerRange", "max_satisfying"]

# The regular expression recommended by semver.org, anchored.
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_SEMVER = re.compile(SEMVER_PATTERN)


@total_ordering
@dataclass(frozen=True)
class SemVer:
    """A parsed version. Ordering follows SemVer precedence; build metadata is ignored when comparing."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]``; raises ``ValueError`` naming the text."""
        match = _SEMVER.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH, e.g. '1.2.0')")
        major, minor, patch, pre, build = match.groups()
        return cls(
            int(major),
            int(minor),
            int(patch),
            tuple(pre.split(".")) if pre else (),
            tuple(build.split(".")) if build else (),
        )

    @property
    def core(self) -> tuple[int, int, int]:
        """``(major, minor, patch)``, without pre-release or build."""
        return (self.major, self.minor, self.patch)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def release(self) -> SemVer:
        """This version without pre-release and build metadata (``1.2.0-rc.1`` -> ``1.2.0``)."""
        return SemVer(self.major, self.minor, self.patch)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after all of its pre-releases; numeric identifiers sort before alphanumeric ones.
        pre = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()


# A range: comparator sets joined by "||"; each set is comparators joined by "," or whitespace.
_PARTIAL = re.compile(
    r"^v?(?P<major>0|[1-9]\d*|[xX*])"
    r"(?:\.(?P<minor>0|[1-9]\d*|[xX*])"
    r"(?:\.(?P<patch>0|[1-9]\d*|[xX*])"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?)?)?$"
)
_OPERATOR = re.compile(r"^(\^|~>|~|>=|<=|>|<|=)?\s*(.*)$")
_WILD = ("x", "X", "*")
MAX_RANGE_LENGTH = 1024

Op = Literal[">=", ">", "<", "<="]


@dataclass(frozen=True)
class _Comparator:
    op: Op
    version: SemVer

    def test(self, v: SemVer) -> bool:
        if self.op == ">=":
            return v >= self.version
        if self.op == ">":
            return v > self.version
        if self.op == "<":
            return v < self.version
        return v <= self.version

    def __str__(self) -> str:
        return f"{self.op}{self.version}"


@dataclass(frozen=True)
class _Partial:
    """``1``, ``1.2``, ``1.2.x``, ``1.2.3-rc.1``: the parts given (None where absent or a wildcard)."""

    major: int | None
    minor: int | None
    patch: int | None
    prerelease: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, whole: str) -> _Partial:
        match = _PARTIAL.match(text)
        if match is None:
            raise ValueError(f"{whole!r} is not a version range: {text!r} is not a version (e.g. '1.2.3', '1.x')")
        parts: list[int | None] = []
        wild = False
        for name in ("major", "minor", "patch"):
            raw = match.group(name)
            if raw is None or raw in _WILD:
                wild = True
            if wild:
                parts.append(None)
            else:
                parts.append(int(raw))
        pre = match.group("pre")
        if pre is not None:
            if parts[2] is None:
                raise ValueError(f"{whole!r} is not a version range: a pre-release needs a full version ({text!r})")
            SemVer.parse(f"{parts[0]}.{parts[1]}.{parts[2]}-{pre}")  # checks the identifiers
        return cls(parts[0], parts[1], parts[2], tuple(pre.split(".")) if pre else ())

    def floor(self) -> SemVer:
        return SemVer(self.major or 0, self.minor or 0, self.patch or 0, self.prerelease)


def _lowest(major: int, minor: int, patch: int) -> SemVer:
    """The lowest version of ``major.minor.patch``: its first possible pre-release (npm's ``X.Y.Z-0``)."""
    return SemVer(major, minor, patch, ("0",))


def _expand(op: str, p: _Partial) -> list[_Comparator]:
    """One written comparator (``^1.2``, ``>=1``, ``1.x``...) as primitive ``>=``/``>``/``<``/``<=`` bounds."""
    if p.major is None:  # "*", "x": any version (">=0.0.0"; a bare "<*" admits nothing)
        if op in ("<", ">"):
            return [_Comparator("<", _lowest(0, 0, 0))]
        return [_Comparator(">=", SemVer(0, 0, 0))]
    major = p.major
    if op == "^":
        floor = p.floor()
        if major > 0 or p.minor is None:
            upper = _lowest(major + 1, 0, 0)
        elif p.minor > 0 or p.patch is None:
            upper = _lowest(0, p.minor + 1, 0)
        else:
            upper = _lowest(0, 0, (p.patch or 0) + 1)
        return [_Comparator(">=", floor), _Comparator("<", upper)]
    if op in ("~", "~>"):
        upper = _lowest(major + 1, 0, 0) if p.minor is None else _lowest(major, p.minor + 1, 0)
        return [_Comparator(">=", p.floor()), _Comparator("<", upper)]
    if p.minor is None or p.patch is None:  # a partial version with a plain operator
        upper = _lowest(major + 1, 0, 0) if p.minor is None else _lowest(major, p.minor + 1, 0)
        if op in ("", "="):
            return [_Comparator(">=", p.floor()), _Comparator("<", upper)]
        if op == ">":
            return [_Comparator(">=", upper)]
        if op == ">=":
            return [_Comparator(">=", p.floor())]
        if op == "<":
            return [_Comparator("<", _lowest(major, p.minor or 0, 0))]
        return [_Comparator("<", upper)]  # "<="
    exact = p.floor()
    if op in ("", "="):
        return [_Comparator(">=", exact), _Comparator("<=", exact)]
    return [_Comparator(op, exact)]  # type: ignore[arg-type]


def _split_set(text: str, whole: str) -> list[tuple[str, str]]:
    """``">= 1.2, <2"`` -> ``[(">=", "1.2"), ("<", "2")]``; operators may be followed by spaces."""
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    out: list[tuple[str, str]] = []
    pending: str | None = None
    for token in tokens:
        match = _OPERATOR.match(token)
        op, rest = (match.group(1) or "", match.group(2)) if match else ("", token)
        if pending is not None:
            if op:
                raise ValueError(f"{whole!r} is not a version range: {pending!r} is followed by {token!r}")
            out.append((pending, token))
            pending = None
        elif op and not rest:
            pending = op
        else:
            out.append((op, rest))
    if pending is not None:
        raise ValueError(f"{whole!r} is not a version range: {pending!r} is not followed by a version")
    return out


@dataclass(frozen=True)
class SemVerRange:
    """A set of versions written as npm/Cargo ranges; build one with :meth:`parse`, test with :meth:`contains`."""

    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]

    @classmethod
    def parse(cls, text: str) -> SemVerRange:
        """Parse a range; raises ``ValueError`` naming the text and the part that is wrong."""
        if not isinstance(text, str):
            raise ValueError(f"{text!r} is not a version range")
        if len(text) > MAX_RANGE_LENGTH:
            raise ValueError(f"version range is {len(text)} characters long, over the {MAX_RANGE_LENGTH} limit")
        alternatives: list[tuple[_Comparator, ...]] = []
        for part in text.split("||"):
            comparators: list[_Comparator] = []
            hyphen = re.fullmatch(r"\s*(\S+)\s+-\s+(\S+)\s*", part)
            if hyphen:
                low = _Partial.parse(hyphen.group(1), text)
                high = _Partial.parse(hyphen.group(2), text)
                comparators += _expand(">=", low) if low.major is not None else []
                comparators += _expand("<=", high) if high.major is not None else []
                if not comparators:
                    comparators = _expand(">=", low)
            else:
                items = _split_set(part, text)
                for op, version in items:
                    comparators += _expand(op, _Partial.parse(version, text))
                if not items:
                    comparators = _expand("", _Partial(None, None, None))  # "" and "||" sides mean any version
            alternatives.append(tuple(comparators))
        return cls(text.strip(), tuple(alternatives))

    def contains(self, version: SemVer | str) -> bool:
        """Whether ``version`` satisfies the range (npm's rule for pre-releases; see the module docstring)."""
        v = version if isinstance(version, SemVer) else SemVer.parse(version)
        for comparators in self.alternatives:
            if not all(c.test(v) for c in comparators):
                continue
            if not v.prerelease:
                return True
            # A pre-release only matches where the range itself names a pre-release of the same X.Y.Z.
            if any(
                c.version.prerelease and c.version.core == v.core and c.version.prerelease != ("0",)
                for c in comparators
            ):
                return True
        return False

    def __contains__(self, version: object) -> bool:
        return isinstance(version, (SemVer, str)) and self.contains(version)

    def __str__(self) -> str:
        return self.text


V = TypeVar("V", SemVer, str)


def max_satisfying(versions: Iterable[V], range_: SemVerRange | str) -> V | None:
    """The highest of ``versions`` that ``range_`` admits (returned as given), or None.

    Strings that are not SemVer versions are skipped: a registry listing may hold anything.
    """
    wanted = range_ if isinstance(range_, SemVerRange) else SemVerRange.parse(range_)
    best: tuple[SemVer, V] | None = None
    for item in versions:
        try:
            v = item if isinstance(item, SemVer) else SemVer.parse(item)
        except ValueError:
            continue
        if wanted.contains(v) and (best is None or v > best[0]):
            best = (v, item)
    return None if best is None else best[1]

"""Version ranges for ``plugin install NAME@RANGE``: :func:`resolve` picks the highest version a range allows.

The ranges are :class:`synapse_nb.semver.SemVerRange`, the one implementation the whole project uses (npm's
node-semver meaning, with Cargo's comma too): ``^1.2``, ``~1.2.3``, ``>=1.2,<2`` (or ``>=1.2 <2``), ``1.x``,
``1.2``, ``*``, ``1.2.3 - 2.3.4``, ``A || B`` and an exact ``1.2.3``. An empty range is ``*``. A pre-release
version is allowed only when the range names a pre-release of the same ``MAJOR.MINOR.PATCH`` (so ``^1.2.3``
never picks ``2.0.0-beta``).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..semver import SemVerRange, max_satisfying

__all__ = ["matches", "resolve"]


def _range(range_text: str) -> SemVerRange:
    return SemVerRange.parse(range_text.strip() or "*")


def matches(version: str, range_text: str) -> bool:
    """Whether ``version`` satisfies ``range_text``; ``ValueError`` when either is malformed."""
    return _range(range_text).contains(version)


def resolve(versions: Iterable[str], range_text: str) -> str | None:
    """The highest of ``versions`` that satisfies ``range_text``, or ``None``.

    ``ValueError`` when ``range_text`` is not a range; versions that are not SemVer are ignored.
    """
    return max_satisfying(versions, _range(range_text))

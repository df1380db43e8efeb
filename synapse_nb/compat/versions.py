"""Which bump a version change is, whether it is enough, and which version to suggest instead.

The positions follow the caret ranges consumers pin with (npm and Cargo): from 1.0.0 on, MAJOR.MINOR.PATCH
mean what SemVer says; in ``0.y.z`` (initial development) ``y`` is the major position and ``z`` covers both minor
and patch changes (``^0.2.3`` admits ``0.2.9`` but not ``0.3.0``); in ``0.0.z`` every release is major
(``^0.0.3`` admits only ``0.0.3``). A change from a pre-release to a later version of the same ``X.Y.Z`` carries
no promise to keep (pre-releases are unstable by definition), so any change may go into it.
"""

from __future__ import annotations

from typing import Literal

from ..semver import SemVer
from .model import BUMPS, Bump

__all__ = ["BumpMade", "bump_made", "is_sufficient", "next_version", "version_above"]

BumpMade = Literal["none", "patch", "minor", "major", "prerelease", "downgrade"]


def bump_made(old: SemVer, new: SemVer) -> BumpMade:
    """What going from ``old`` to ``new`` is, in compatibility terms (see the module docstring for ``0.x``)."""
    if new < old:
        return "downgrade"
    if new == old:
        return "none"
    if new.core == old.core:
        return "prerelease"
    if new.major != old.major:
        return "major"
    if old.major == 0:
        if old.minor == 0 or new.minor != old.minor:
            return "major"
        return "minor"
    if new.minor != old.minor:
        return "minor"
    return "patch"


def is_sufficient(required: Bump, made: BumpMade) -> bool:
    """Whether a ``made`` bump allows changes that need ``required``."""
    if made == "downgrade":
        return False
    if made == "prerelease":
        return True
    if made == "none":
        return required == "none"
    return BUMPS.index(made) >= BUMPS.index(required)


def next_version(old: SemVer, required: Bump) -> SemVer:
    """The smallest version after ``old`` whose bump allows ``required`` changes (``old`` itself for none)."""
    if required == "none":
        return old
    if old.prerelease:
        return old.release()
    if required == "major":
        if old.major > 0:
            return SemVer(old.major + 1, 0, 0)
        if old.minor > 0:
            return SemVer(0, old.minor + 1, 0)
        return SemVer(0, 0, old.patch + 1)
    if required == "minor" and old.major > 0:
        return SemVer(old.major, old.minor + 1, 0)
    return SemVer(old.major, old.minor, old.patch + 1)


def version_above(highest: SemVer) -> SemVer:
    """The smallest release above ``highest`` (its release when it is a pre-release)."""
    return highest.release() if highest.prerelease else SemVer(highest.major, highest.minor, highest.patch + 1)


def at_least(version: SemVer, floor: SemVer) -> SemVer:
    """``version``, or ``floor`` when that is higher."""
    return floor if floor > version else version

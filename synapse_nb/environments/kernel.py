"""Does the current (kernel) environment satisfy a plugin's requirements? Checked with ``packaging``."""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..requirements import RequirementLine, Requirements

__all__ = ["installed_versions", "lookup_versions", "unsatisfied"]


def installed_versions() -> dict[str, Version]:
    """Canonical distribution name -> version, for every distribution visible to this interpreter."""
    found: dict[str, Version] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        try:
            found.setdefault(canonicalize_name(name), Version(dist.version))
        except InvalidVersion:
            continue
    return found


def _satisfied(line: RequirementLine, installed: dict[str, Version], env: dict[str, str]) -> bool:
    req = Requirement(line.text.split(" --hash", 1)[0])
    if req.marker is not None and not req.marker.evaluate(env):
        return True  # not needed on this platform
    version = installed.get(line.name)
    if version is None:
        return False
    return SpecifierSet(line.specifier).contains(version, prereleases=True)


def lookup_versions(names: set[str]) -> dict[str, Version]:
    """Versions of just these distributions (a full scan of site-packages costs milliseconds)."""
    found: dict[str, Version] = {}
    for name in names:
        try:
            found[name] = Version(metadata.version(name))
        except (metadata.PackageNotFoundError, InvalidVersion):
            continue
    return found


def unsatisfied(requirements: Requirements, installed: dict[str, Version] | None = None) -> list[RequirementLine]:
    """The requirement lines this environment does not meet (empty: the kernel env can be reused)."""
    if not requirements.lines:
        return []
    have = installed if installed is not None else lookup_versions({line.name for line in requirements})
    env = {k: str(v) for k, v in default_environment().items()}
    env.setdefault("python_version", f"{sys.version_info[0]}.{sys.version_info[1]}")
    return [line for line in requirements if not _satisfied(line, have, env)]

"""The sign-time gate: a new version must carry a number that allows its changes; there is no way around it.

:func:`check_release` runs inside ``sign_folder`` before anything is written. It compares the folder with the
local history of the same plugin name and publisher (:mod:`.history`) and refuses, with one line naming the
deciding change and the version to use (:class:`~synapse_nb.compat.CompatibilityError`, exit 3):

- a version lower than the highest one already signed;
- a bump too small for the changes since the highest *release* below it (pre-releases promise nothing, so a
  ``2.0.0-rc.1`` is never the baseline of ``2.0.0``);
- a version already signed with different content. How strictly is the caller's ``reuse`` policy:
  ``"refuse"`` (``synapse-cli plugin sign``: a released version never changes) or ``"compatible"`` (the
  default for the Python API and the notebook, whose cells re-sign the same version while it is being
  written: allowed as long as no change needs a major bump).

The fix is always to change the version; :meth:`Gate.commit` records the new version once it is signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..semver import SemVer
from ..signing.diff import describe_changes, diff_filesets
from .contract import Contract
from .history import HistoryRecord, publisher_id, records, write_record
from .model import CompatibilityError
from .verdict import Verdict, verdict
from .versions import at_least, next_version, version_above

if TYPE_CHECKING:
    import datetime as dt

    from cryptography import x509

    from ..fileset import FileSet
    from ..manifest import Manifest

__all__ = ["REUSE_POLICIES", "Gate", "ReusePolicy", "check_release", "check_replacement"]

ReusePolicy = Literal["refuse", "compatible"]
REUSE_POLICIES: tuple[ReusePolicy, ...] = ("refuse", "compatible")


@dataclass
class Gate:
    """A passed check; :meth:`commit` records the version as signed (nothing is written before)."""

    folder: Path
    manifest: Manifest
    files: FileSet
    publisher: str
    verdict: Verdict | None = None
    baseline: HistoryRecord | None = None
    unchanged: bool = False
    contract: Contract | None = None

    def summary(self) -> dict[str, Any] | None:
        """What the check compared (for ``plugin sign --json``); None when there was nothing to compare with."""
        if self.verdict is None or self.baseline is None:
            return None
        v = self.verdict
        return {
            "baseline": str(self.baseline.version),
            "required_bump": v.required_bump,
            "bump_made": v.bump_made,
            "asks_for_more": v.asks_for_more,
            "changes": [c.to_json() for c in v.changes],
        }

    def commit(self, *, signer: str, signed_at: dt.datetime) -> Path | None:
        """Record the signed version in the history (skipped when the same bytes were recorded already)."""
        if self.unchanged:
            return None
        contract = self.contract or Contract.from_folder(self.folder, manifest=self.manifest, files=self.files)
        return write_record(contract, self.publisher, signer=signer, signed_at=signed_at.isoformat())


def _refuse(
    name: str,
    message: str,
    *,
    kind: str,
    v: Verdict | None,
    baseline: str,
    suggested: SemVer,
    details: list[str] | None = None,
) -> CompatibilityError:
    return CompatibilityError(
        message,
        plugin=name,
        kind=kind,
        required_bump=v.required_bump if v else "patch",
        bump_made=v.bump_made if v else "none",
        baseline=baseline,
        suggested_version=str(suggested),
        changes=[c.to_json() for c in v.blocking] if v else [],
        details=details,
    )


def check_release(
    folder: Path, manifest: Manifest, files: FileSet, chain: list[x509.Certificate], *, reuse: ReusePolicy
) -> Gate:
    """Check the version about to be signed against the history; raises :class:`CompatibilityError`."""
    if reuse not in REUSE_POLICIES:
        raise ValueError(f"reuse must be one of {REUSE_POLICIES}, not {reuse!r}")
    publisher = publisher_id(chain)
    gate = Gate(folder, manifest, files, publisher)
    known = records(manifest.name, publisher)
    if not known:
        return gate
    name, new = manifest.name, manifest.version
    highest = known[-1].version
    floor = version_above(highest)
    same = next((r for r in known if r.version == new), None)
    if same is not None:
        if same.digest == files.digest:
            gate.unchanged = True  # re-signing the very same bytes
            return gate
        if new < highest:
            raise _refuse(
                name,
                f"{new} was signed already with other content, and {highest} is the highest "
                f"version signed by this key; use version {floor}",
                kind="downgrade",
                v=None,
                baseline=str(highest),
                suggested=floor,
            )
        return _reused(gate, same, reuse, floor)
    if new < highest:
        raise _refuse(
            name,
            f"{new} is lower than {highest}, the highest version signed by this key; use version {floor} or higher",
            kind="downgrade",
            v=None,
            baseline=str(highest),
            suggested=floor,
        )
    releases = [r for r in known if not r.version.prerelease and r.version < new]
    if not releases:
        return gate  # only pre-releases so far: nothing was promised yet
    baseline = releases[-1]
    gate.contract = Contract.from_folder(folder, manifest=manifest, files=files)
    v = verdict(baseline.contract(), gate.contract)
    gate.verdict, gate.baseline = v, baseline
    if not v.sufficient:
        error = v.refusal(baseline=str(baseline.version), suggested=at_least(v.suggested_version, floor))
        if error is not None:
            raise error
    return gate


def _reused(gate: Gate, same: HistoryRecord, reuse: ReusePolicy, floor: SemVer) -> Gate:
    name, new = gate.manifest.name, gate.manifest.version
    old = same.contract()
    gate.contract = Contract.from_folder(gate.folder, manifest=gate.manifest, files=gate.files)
    v = verdict(old, gate.contract)
    gate.verdict, gate.baseline = v, same
    if reuse == "compatible" and v.compatible:
        return gate  # the same version being written: callers of it keep working
    suggested = at_least(next_version(new, v.required_bump if v.required_bump != "none" else "patch"), floor)
    if v.changes and not (reuse == "compatible" and v.compatible):
        first = v.blocking[0]
        what = f"{first} needs a {v.required_bump} bump"
    else:
        files, _ = describe_changes(diff_filesets(old.files, gate.files) if old.files is not None else [])
        what = f"its files differ ({files})"
    message = f"{new} was already signed by this key with other content: {what}; use version {suggested}"
    raise _refuse(
        name,
        message,
        kind="reused-version",
        v=v,
        baseline=str(new),
        suggested=suggested,
        details=[str(c) for c in v.blocking[1:12]],
    )


def check_replacement(
    old: Contract | str | Path, new: Contract | str | Path, *, allow_downgrade: bool = False
) -> Verdict:
    """For a new version replacing a running one (``PluginManager.load``, a re-run notebook cell).

    Returns the verdict (``.compatible`` says whether saved state may carry over); raises
    :class:`CompatibilityError` when the new version number does not allow its changes: a bump too small, a
    lower version (unless ``allow_downgrade``), or the same version with a change that needs a major bump
    (the same version with compatible changes is how a plugin under development is edited and re-loaded).
    """
    v = verdict(old, new)
    if v.bump_made == "downgrade" and allow_downgrade:
        return v
    if v.bump_made == "none":
        if v.compatible:
            return v
        first = v.blocking[0]
        suggested = next_version(v.new_version, v.required_bump)
        raise _refuse(
            v.name,
            f"{first} needs a {v.required_bump} bump, but the version is still {v.new_version}; "
            f"use version {suggested}",
            kind="reused-version",
            v=v,
            baseline=str(v.old_version),
            suggested=suggested,
            details=[str(c) for c in v.blocking[1:12]],
        )
    error = v.refusal()
    if error is not None:
        raise error
    return v

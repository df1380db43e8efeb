"""The activation policy: verify every time, refuse on any failure, with one explicit and noisy escape hatch.

Activation (``plugin run``, ``synapse_nb.load``, the notebook: :mod:`synapse_nb.activation`) calls
:func:`take_snapshot`, which copies the folder into a read-only, host-owned, content-addressed snapshot (hashing
while copying), then :func:`check_activation` on that very copy, which is what the worker then runs, so nothing
can change between the check and the use.

Unsigned, tampered, untrusted, expired and revoked plugins raise :class:`~synapse_nb.errors.SignatureError`
(exit 4). ``allow_unsigned=True`` (``--insecure-allow-unsigned``) is for local development only: verification
still runs so the warning can say what is wrong, the plugin runs anyway, the warning is emitted on *every* use
(never de-duplicated like Python warnings), and results carry ``"signed": false``. It bypasses every signature
failure, not only a missing signature: running a tampered plugin is no riskier than running an unsigned one, and
both are what the flag says it allows.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SignatureError
from ..fileset import SIGNATURE_FILE, FileSetError, Snapshot, snapshot_folder
from ..manifest import Manifest
from ..paths import synapse_home
from .trust import TrustStore
from .verify import Verification, verify_folder, verify_snapshot

__all__ = ["INSECURE_FLAG", "SignatureCheck", "check_activation", "take_snapshot"]

INSECURE_FLAG = "--insecure-allow-unsigned"


@dataclass(frozen=True)
class SignatureCheck:
    """The outcome of :func:`check_activation`: a verification, or the error that was waived."""

    verification: Verification | None
    waived: SignatureError | None = None

    @property
    def signed(self) -> bool:
        return self.verification is not None

    def to_meta(self) -> dict[str, Any]:
        """The signature part of a result's ``meta``: ``signed``, and the signer when there is one."""
        if self.verification is None:
            reason = self.waived.reason if self.waived is not None else None
            return {"signed": False, "signature_error": reason}
        v = self.verification
        return {"signed": True, "signer": v.signer_subject, "signer_fingerprint": v.signer_fingerprint}


def _stderr_warning(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def check_activation(
    target: Snapshot | Path,
    *,
    manifest: Manifest | None = None,
    allow_unsigned: bool = False,
    warn: Callable[[str], None] | None = None,
    trust: TrustStore | None = None,
    now: dt.datetime | None = None,
    display: Path | None = None,
) -> SignatureCheck:
    """Verify ``target`` (preferably the snapshot that will run) before activation.

    Raises :class:`SignatureError` on failure unless ``allow_unsigned``, in which case ``warn`` is called with
    a one-line warning naming the failure and the result says ``signed: False``.
    """
    try:
        if isinstance(target, Snapshot):
            verification = verify_snapshot(target, manifest=manifest, trust=trust, now=now, display=display)
        else:
            verification = verify_folder(target, manifest=manifest, trust=trust, now=now)
    except SignatureError as exc:
        if not allow_unsigned:
            raise
        (warn or _stderr_warning)(f"{INSECURE_FLAG}: running UNVERIFIED code, for local development only ({exc})")
        return SignatureCheck(None, waived=exc)
    return SignatureCheck(verification)


def take_snapshot(root: Path, *, cache_root: Path | None = None, allow_unsigned: bool = False) -> Snapshot:
    """The read-only snapshot of ``root`` that activation verifies and runs.

    A folder that cannot be snapshotted (a symlink, a case collision...) is refused as ``tampered`` when it is
    signed and ``unsigned`` otherwise; with ``allow_unsigned`` the :class:`~synapse_nb.fileset.FileSetError`
    itself is raised (exit 3), because such a folder cannot be run at all. Hard links are exit 3 always.
    """
    try:
        snapshot = snapshot_folder(root, cache_root or synapse_home() / "cache" / "plugins")
    except FileSetError as exc:
        if allow_unsigned or exc.hard_links:  # hard links are the folder's own problem (exit 3), not tampering
            raise
        signed = (root / SIGNATURE_FILE).is_file()
        reason = "tampered" if signed else "unsigned"
        problems = [str(p).removeprefix(f"{root}/") for p in exc.problems]
        raise SignatureError(
            f"{reason}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            plugin=exc.plugin,
            reason=reason,
            details=problems,
        ) from exc
    return snapshot

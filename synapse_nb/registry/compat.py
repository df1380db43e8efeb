"""The compatibility check a registry runs before it accepts a new version: the compat differ on two archives.

``check_compat(old_archive, new_archive, trust=...)`` opens the archive of the previous version and the new one
with the verified reader (:func:`synapse_nb.compat.sources.open_archive`: caps, safe names, the signature checked
against the *registry's* trust store), compares them (:func:`synapse_nb.compat.verdict`: interface and schemas,
direction-aware; nothing in either archive runs) and answers::

    {"checked": True, "ok": bool, "required_bump": "none|patch|minor|major", "bump_made": ...,
     "suggested_version": "2.0.0", "asks_for_more": [...], "reason": "one line, when not ok"}

``ok`` is whether the version bump made allows the changes; the registry refuses an upload whose answer says
``checked: True, ok: False`` (422, with the reason). When the previous version can no longer be opened (its
signer's root was removed from the registry's trust store since, its certificate expired), the answer is
``{"checked": False, "reason": ...}`` and the registry says "not checked" in its publish response.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SynapseError

if TYPE_CHECKING:
    from ..signing.trust import TrustStore
    from .archive import ArchiveLimits

__all__ = ["check_compat"]


def check_compat(
    old_archive: Path,
    new_archive: Path,
    *,
    trust: TrustStore | None = None,
    limits: ArchiveLimits | None = None,
) -> dict[str, Any]:
    """The compatibility verdict of ``new_archive`` against ``old_archive`` (both ``.synapse`` files).

    Errors opening or reading the *new* archive are raised as they are (the upload is refused with them).
    """
    from ..compat import Contract, verdict
    from ..compat.sources import open_archive

    try:
        with open_archive(old_archive, trust=trust, limits=limits) as folder:
            old = Contract.from_folder(folder, origin="the previous version")
    except SynapseError as exc:
        return {"checked": False, "reason": f"the previous version cannot be opened: {exc}"}
    with open_archive(new_archive, trust=trust, limits=limits) as folder:
        new = Contract.from_folder(folder, origin="the uploaded archive")
    v = verdict(old, new)
    answer: dict[str, Any] = {
        "checked": True,
        "ok": v.sufficient,
        "against": str(v.old_version),
        "required_bump": v.required_bump,
        "bump_made": v.bump_made,
        "suggested_version": str(v.suggested_version),
        "asks_for_more": v.asks_for_more,
    }
    refusal = v.refusal()
    if refusal is not None:
        answer["reason"] = refusal.message
    return answer

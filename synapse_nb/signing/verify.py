"""Verifying a plugin folder (or a snapshot of one) against its ``synapse.sig.json``.

The checks run cheapest first, and each failure raises :class:`~synapse_nb.errors.SignatureError` with one of
the reasons of :mod:`.reasons` and a one-line message naming the plugin, the culprit and the signer:

1. the signature file exists (``unsigned``) and parses (``malformed``);
2. the signature verifies over ``PAE(payloadType, payload)`` with the leaf's key (``bad-signature``), and the
   payload type is ours (``malformed``);
3. the chain: leaf key (``weak-key``), usage (``wrong-usage``), validity now and at the signing time
   (``expired``, ``not-yet-valid``), a path to a trusted root (``untrusted``), revocation (``revoked``);
4. the payload's name and version equal the manifest's (``version-mismatch``);
5. the file set of the folder equals the signed one exactly (``tampered``, every difference named).

Step 4 comes before 5 on purpose: manifest.yaml is in the file set, so a signature copied onto another release
would also show as tampered, but "signed for 1.0.0, manifest says 1.0.1" is the useful message.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from ..errors import ManifestError, SignatureError, UsageError
from ..fileset import SIGNATURE_FILE, FileSet, FileSetError, Snapshot, scan_folder
from ..manifest import MANIFEST_FILE, Manifest, load_manifest
from .certs import describe_key, fingerprint, subject, utc
from .chain import ChainProblem, validate_chain
from .diff import describe_changes, diff_filesets
from .envelope import MAX_ENVELOPE_BYTES, PAYLOAD_TYPE, Envelope, EnvelopeError, verify_bytes
from .payload import Statement
from .trust import TrustStore

__all__ = ["Verification", "read_signature", "verify_fileset", "verify_folder", "verify_snapshot"]


@dataclass(frozen=True)
class Verification:
    """A plugin whose files, signature and signer all checked out."""

    plugin: str
    version: str
    signer_subject: str
    signer_fingerprint: str
    chain: tuple[str, ...]
    root_fingerprint: str
    key_type: str
    signed_at: dt.datetime
    verified_at: dt.datetime
    file_count: int
    digest: str

    @property
    def signed(self) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "signed": True,
            "plugin": self.plugin,
            "version": self.version,
            "signer": {
                "subject": self.signer_subject,
                "fingerprint": self.signer_fingerprint,
                "key_type": self.key_type,
            },
            "chain": list(self.chain),
            "root_fingerprint": self.root_fingerprint,
            "signed_at": self.signed_at.isoformat(),
            "verified_at": self.verified_at.isoformat(),
            "file_count": self.file_count,
            "digest": self.digest,
        }


def read_signature(folder: Path, *, plugin: str, display: Path | None = None) -> bytes:
    """The bytes of ``folder/synapse.sig.json``: a regular file, not followed through a symlink.

    ``display`` is the folder the user named when ``folder`` is a snapshot of it.
    """
    path = folder / SIGNATURE_FILE
    shown = display or folder
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SignatureError(
            f"unsigned: no {SIGNATURE_FILE} in {str(shown)!r}; sign it with `synapse-cli plugin sign {shown}`",
            plugin=plugin,
            reason="unsigned",
        ) from None
    except OSError as exc:
        raise SignatureError(
            f"malformed: cannot open {SIGNATURE_FILE} ({exc.strerror}; a symlink is refused)",
            plugin=plugin,
            reason="malformed",
        ) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SignatureError(
                f"malformed: {SIGNATURE_FILE} is not a regular file", plugin=plugin, reason="malformed"
            )
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ENVELOPE_BYTES:
                raise SignatureError(
                    f"malformed: {SIGNATURE_FILE} is over {MAX_ENVELOPE_BYTES >> 20} MiB",
                    plugin=plugin,
                    reason="malformed",
                )
        return b"".join(chunks)
    finally:
        os.close(fd)


def _manifest_or_error(
    folder: Path, manifest: Manifest | None, display: Path | None = None
) -> tuple[Manifest | None, ManifestError | None]:
    if manifest is not None:
        return manifest, None
    try:
        return load_manifest(folder, display=str(display / MANIFEST_FILE) if display else None), None
    except ManifestError as exc:
        return None, exc


def _check_envelope(
    data: bytes, *, plugin: str, trust: TrustStore, now: dt.datetime
) -> tuple[Statement, list[x509.Certificate]]:
    """Steps 1 to 3: the payload statement and the verified chain."""

    def fail(reason: str, message: str, details: list[str] | None = None) -> SignatureError:
        return SignatureError(f"{reason}: {message}", plugin=plugin, reason=reason, details=details)

    try:
        envelope = Envelope.from_bytes(data)
    except EnvelopeError as exc:
        raise fail("malformed", f"{SIGNATURE_FILE} {exc}; re-sign with `synapse-cli plugin sign`") from exc
    signature = envelope.signature
    leaf = signature.leaf
    signer = subject(leaf)
    if not verify_bytes(leaf.public_key(), signature.sig, envelope.signed_bytes()):
        raise fail(
            "bad-signature",
            f"the signature does not verify with the key of {signer!r} (payload, payload type or signature altered)",
        )
    if envelope.payload_type != PAYLOAD_TYPE:
        raise fail("malformed", f"payload type {envelope.payload_type!r} is not {PAYLOAD_TYPE!r}")
    try:
        statement = Statement.from_bytes(envelope.payload)
    except EnvelopeError as exc:
        raise fail("malformed", f"{exc} (signed by {signer!r})") from exc
    try:
        chain = validate_chain(signature.certificates, trust, signed_at=statement.signed_at, now=now)
    except ChainProblem as exc:
        raise fail(exc.reason, f"{exc.message} (signed by {signer!r})", exc.details) from exc
    return statement, chain


def verify_fileset(
    files: FileSet | Path,
    signature: bytes,
    *,
    plugin: str,
    manifest: Manifest | None = None,
    manifest_error: ManifestError | None = None,
    trust: TrustStore | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Verify ``signature`` (the bytes of a synapse.sig.json) against ``files``.

    ``files`` is an already computed :class:`FileSet` (a snapshot's), or a folder to scan only once the
    signature and chain have checked out. ``plugin`` names the plugin in errors.
    """
    moment = utc(now)
    store = trust if trust is not None else TrustStore.load()
    statement, chain = _check_envelope(signature, plugin=plugin, trust=store, now=moment)
    leaf = chain[0]
    signed_by = f"(signed by {subject(leaf)!r})"
    if manifest is not None and (statement.name, statement.version) != (manifest.name, str(manifest.version)):
        raise SignatureError(
            f"version-mismatch: the signature is for {statement.name} {statement.version} but manifest.yaml says"
            f" {manifest.name} {manifest.version}; sign this release with `synapse-cli plugin sign` {signed_by}",
            plugin=plugin,
            reason="version-mismatch",
        )
    actual = files if isinstance(files, FileSet) else _scan(files, plugin=plugin, signed_by=signed_by)
    changes = diff_filesets(statement.files, actual)
    if changes:
        summary, details = describe_changes(changes)
        raise SignatureError(
            f"tampered: {summary} {signed_by}; if you made these changes, re-sign with `synapse-cli plugin sign`",
            plugin=plugin,
            reason="tampered",
            details=details,
        )
    if manifest_error is not None:  # the signed bytes are intact, but they do not make a valid manifest
        raise manifest_error
    return Verification(
        plugin=statement.name,
        version=statement.version,
        signer_subject=subject(leaf),
        signer_fingerprint=fingerprint(leaf),
        chain=tuple(subject(c) for c in chain),
        root_fingerprint=fingerprint(chain[-1]),
        key_type=describe_key(leaf.public_key()),
        signed_at=statement.signed_at,
        verified_at=moment,
        file_count=len(actual.entries),
        digest=actual.digest,
    )


def _scan(folder: Path, *, plugin: str, signed_by: str) -> FileSet:
    try:
        return scan_folder(folder)
    except FileSetError as exc:
        prefix = f"{folder}/"
        problems = [str(p).removeprefix(prefix) for p in exc.problems]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SignatureError(
            f"tampered: {problems[0]}{more} {signed_by}",
            plugin=plugin,
            reason="tampered",
            details=problems,
        ) from exc


def verify_folder(
    folder: Path | str,
    *,
    manifest: Manifest | None = None,
    trust: TrustStore | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Verify the plugin in ``folder`` against its signature; :class:`SignatureError` says why not.

    ``manifest`` defaults to ``folder/manifest.yaml``; ``trust`` to the trust store under ``SYNAPSE_HOME``;
    ``now`` to the current time.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"{str(root)!r} is not a folder; pass the plugin folder that holds manifest.yaml")
    loaded, error = _manifest_or_error(root, manifest)
    plugin = loaded.name if loaded is not None else root.resolve().name
    data = read_signature(root, plugin=plugin)
    return verify_fileset(root, data, plugin=plugin, manifest=loaded, manifest_error=error, trust=trust, now=now)


def verify_snapshot(
    snapshot: Snapshot,
    *,
    manifest: Manifest | None = None,
    trust: TrustStore | None = None,
    now: dt.datetime | None = None,
    display: Path | None = None,
) -> Verification:
    """Verify a read-only snapshot with the file set computed while it was copied (no second hashing pass).

    ``display`` is the folder the snapshot was taken of, for messages.
    """
    loaded, error = _manifest_or_error(snapshot.path, manifest, display)
    plugin = loaded.name if loaded is not None else (display or snapshot.path).resolve().name
    # The signature bytes read from the source folder when the snapshot was taken: the snapshot folder is
    # shared by every folder with the same content, and its signature copy may be another folder's.
    if snapshot.signature_error is not None:
        raise SignatureError(
            f"malformed: {SIGNATURE_FILE} {snapshot.signature_error}", plugin=plugin, reason="malformed"
        )
    if snapshot.signature is None:
        shown = display or snapshot.path
        raise SignatureError(
            f"unsigned: no {SIGNATURE_FILE} in {str(shown)!r}; sign it with `synapse-cli plugin sign {shown}`",
            plugin=plugin,
            reason="unsigned",
        )
    data = snapshot.signature
    return verify_fileset(
        snapshot.files, data, plugin=plugin, manifest=loaded, manifest_error=error, trust=trust, now=now
    )

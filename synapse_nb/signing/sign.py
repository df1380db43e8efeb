"""Signing a plugin folder: list its files canonically, sign the statement, write ``synapse.sig.json`` atomically.

The file list is :func:`synapse_nb.fileset.scan_folder`'s, so signing refuses exactly what the scanner refuses
(symlinks, special files, unsafe or non-NFC names, case collisions: :class:`~synapse_nb.fileset.FileSetError`,
exit 3) and drops bytecode, which therefore can never be loaded unsigned. Signing the same folder twice gives the
same file list and digest; only the time and the signature bytes differ.

Before writing, the signer's certificate is checked as a verifier would check it (key type, code-signing usage,
validity now), so that a signature that could never verify is not written. Trust is not checked here: a
signature may be meant for someone else's trust store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from ..errors import SignatureError, UsageError
from ..fileset import SIGNATURE_FILE, scan_folder
from ..paths import atomic_write
from .certs import (
    describe_key,
    fingerprint,
    key_problem,
    read_certificates,
    subject,
    usage_problem,
    utc,
    validity_problem,
)
from .envelope import sign_envelope
from .keys import ensure_developer_key, load_private_key
from .payload import Statement

__all__ = ["SignResult", "sign_folder"]


@dataclass(frozen=True)
class SignResult:
    """What ``sign_folder`` wrote, and for what."""

    path: Path
    plugin: str
    version: str
    signer_subject: str
    signer_fingerprint: str
    key_type: str
    chain: tuple[str, ...]
    signed_at: dt.datetime
    file_count: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {
            "signature": str(self.path),
            "plugin": self.plugin,
            "version": self.version,
            "signer": {
                "subject": self.signer_subject,
                "fingerprint": self.signer_fingerprint,
                "key_type": self.key_type,
            },
            "chain": list(self.chain),
            "signed_at": self.signed_at.isoformat(),
            "file_count": self.file_count,
            "digest": self.digest,
        }


def _load_chain(cert_path: Path) -> list[x509.Certificate]:
    try:
        return read_certificates(cert_path)
    except OSError as exc:
        raise SignatureError(f"cannot read certificate {str(cert_path)!r}: {exc.strerror}", reason="no-key") from exc
    except ValueError as exc:
        raise SignatureError(f"{str(cert_path)!r} holds no PEM or DER certificate ({exc})", reason="no-key") from exc


def _check_signer(chain: list[x509.Certificate], moment: dt.datetime, *, plugin: str) -> None:
    leaf = chain[0]
    who = subject(leaf)
    why = key_problem(leaf.public_key())
    if why is not None:
        raise SignatureError(f"cannot sign with {who!r}: {why}", plugin=plugin, reason="weak-key")
    why = usage_problem(leaf)
    if why is not None:
        raise SignatureError(f"cannot sign with {who!r}: it {why}", plugin=plugin, reason="wrong-usage")
    problem = validity_problem(leaf, moment, what="now")
    if problem is not None:
        hint = "run `synapse-cli keys init --renew`" if problem[0] == "expired" else "check the system clock"
        raise SignatureError(f"cannot sign: {problem[1]}; {hint}", plugin=plugin, reason=problem[0])


def sign_folder(
    folder: Path | str,
    *,
    key_path: Path | None = None,
    cert_path: Path | None = None,
    passphrase: str | None = None,
    now: dt.datetime | None = None,
) -> SignResult:
    """Sign the plugin in ``folder``, writing ``folder/synapse.sig.json``.

    ``key_path`` and ``cert_path`` (a PEM bundle: the leaf first, then its intermediates) default to the
    developer key of ``keys init``, created on first use. ``passphrase`` defaults to ``$SYNAPSE_KEY_PASSPHRASE``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"{str(root)!r} is not a folder; pass the plugin folder that holds manifest.yaml")
    from ..anatomy import validate_folder  # the same static rules as validate and activation, on the same files

    manifest = validate_folder(root).manifest
    moment = utc(now).replace(microsecond=0)
    if (key_path is None) != (cert_path is None):
        raise UsageError("pass both --key and --cert, or neither to use the developer key")
    try:
        if key_path is None or cert_path is None:
            developer = ensure_developer_key(passphrase=passphrase, now=moment)
            key_path, chain = developer.key_path, developer.chain
        else:
            chain = _load_chain(cert_path)
        key = load_private_key(key_path, passphrase)
    except SignatureError as exc:  # name the plugin that could not be signed
        raise SignatureError(exc.message, plugin=manifest.name, reason=exc.reason, details=exc.details) from exc
    if chain[0].public_key() != key.public_key():
        raise SignatureError(
            f"private key {str(key_path)!r} does not belong to certificate {subject(chain[0])!r}; pass the matching"
            " --key and --cert (the certificate file lists the leaf first)",
            plugin=manifest.name,
            reason="key-mismatch",
        )
    _check_signer(chain, moment, plugin=manifest.name)
    files = scan_folder(root)
    statement = Statement(manifest.name, str(manifest.version), moment, files)
    envelope = sign_envelope(statement.to_bytes(), key, chain)
    target = root / SIGNATURE_FILE
    atomic_write(target, envelope.to_bytes())
    leaf = chain[0]
    return SignResult(
        path=target,
        plugin=manifest.name,
        version=str(manifest.version),
        signer_subject=subject(leaf),
        signer_fingerprint=fingerprint(leaf),
        key_type=describe_key(leaf.public_key()),
        chain=tuple(subject(c) for c in chain),
        signed_at=moment,
        file_count=len(files.entries),
        digest=files.digest,
    )

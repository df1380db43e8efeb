"""Signing identities for registries and releases: a CA and a code-signing certificate it issues.

The same certificate profile as the developer key of ``keys init`` (:mod:`synapse_nb.signing.keys`), written
to a folder of the caller's choice::

    FOLDER/PREFIX-ca.key.pem    the CA's private key (0600)        never leaves this folder
    FOLDER/PREFIX-ca.pem        its self-signed certificate          what clients trust (`keys trust`)
    FOLDER/PREFIX.key.pem       the signing key (0600)
    FOLDER/PREFIX.pem           the signing certificate, then the CA certificate (the chain to embed)

A registry keeps one under ``DIR/keys`` (prefix ``registry``) to sign its index; the project's release key
(prefix ``project``) signs the public index and its archives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ..paths import atomic_write
from ..signing.certs import PrivateKey, read_certificates, to_pem, utc
from ..signing.keys import _generate, _issue, _name, _write_private_key, load_private_key

__all__ = ["Identity", "ensure_identity", "load_identity"]


@dataclass(frozen=True)
class Identity:
    """A signing key, its chain (signing certificate first) and the CA certificate to trust."""

    key: PrivateKey
    chain: list[x509.Certificate]
    ca_path: Path

    @property
    def ca(self) -> x509.Certificate:
        return self.chain[-1]


def _paths(folder: Path, prefix: str) -> tuple[Path, Path, Path, Path]:
    return (
        folder / f"{prefix}-ca.key.pem",
        folder / f"{prefix}-ca.pem",
        folder / f"{prefix}.key.pem",
        folder / f"{prefix}.pem",
    )


def load_identity(folder: Path, prefix: str) -> Identity:
    """The identity in ``folder`` (SignatureError ``no-key`` / ``key-locked`` when it cannot be read)."""
    _ca_key, ca_cert, key, cert = _paths(folder, prefix)
    chain = read_certificates(cert)
    return Identity(load_private_key(key), chain, ca_cert)


def ensure_identity(
    folder: Path,
    prefix: str,
    common_name: str,
    *,
    ca_days: int = 3650,
    leaf_days: int = 1825,
    now: dt.datetime | None = None,
) -> tuple[Identity, bool]:
    """The identity in ``folder``, created (CA and signing certificate) when absent; ``(identity, created)``."""
    ca_key_path, ca_cert_path, key_path, cert_path = _paths(folder, prefix)
    if key_path.exists() and cert_path.exists():
        return load_identity(folder, prefix), False
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    moment = utc(now)
    ca_name = _name(f"{common_name} CA"[:64])
    ca_key = _generate("ecdsa-p256")
    ca = _issue(ca_name, ca_key.public_key(), (ca_name, ca_key), ca=True, now=moment, days=ca_days)
    leaf_key = _generate("ecdsa-p256")
    leaf = _issue(
        _name(common_name[:64]),
        leaf_key.public_key(),
        (ca.subject, ca_key),
        ca=False,
        now=moment,
        days=leaf_days,
        not_after_cap=ca.not_valid_after_utc,
    )
    _write_private_key(ca_key_path, ca_key, None)
    atomic_write(ca_cert_path, to_pem(ca).encode("ascii"))
    _write_private_key(key_path, leaf_key, None)
    atomic_write(cert_path, (to_pem(leaf) + to_pem(ca)).encode("ascii"))
    return Identity(leaf_key, [leaf, ca], ca_cert_path), True

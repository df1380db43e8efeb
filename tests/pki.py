"""A small test PKI: roots, intermediates and leaves with exactly the flaws a test needs, generated per test.

Nothing here is ever written to the repository: keys live in memory or under pytest's tmp_path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from synapse_nb.fileset import SIGNATURE_FILE, scan_folder
from synapse_nb.manifest import load_manifest
from synapse_nb.signing.certs import PrivateKey, to_pem
from synapse_nb.signing.envelope import PAYLOAD_TYPE, Envelope, Signature, pae, sign_bytes, sign_envelope
from synapse_nb.signing.payload import Statement

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
DAY = dt.timedelta(days=1)
CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH


def new_key(kind: str = "p256") -> PrivateKey:
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    raise ValueError(kind)


@dataclass(frozen=True)
class Identity:
    """A private key and its certificate."""

    key: PrivateKey
    cert: x509.Certificate

    def write(self, folder: Path, name: str, chain: Sequence[Identity] = ()) -> tuple[Path, Path]:
        """Write ``name.key.pem`` (unencrypted) and ``name.pem`` (this certificate, then ``chain``)."""
        folder.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = folder / f"{name}.key.pem", folder / f"{name}.pem"
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_path.write_text("".join(to_pem(c.cert) for c in (self, *chain)))
        return key_path, cert_path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(
    common_name: str,
    issuer: Identity | None = None,
    *,
    ca: bool = False,
    key: PrivateKey | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = (CODE_SIGNING,),
    digital_signature: bool = True,
    key_usage: bool = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    serial: int | None = None,
) -> Identity:
    """A certificate for ``common_name`` issued by ``issuer`` (self-signed when ``None``)."""
    key = key or new_key()
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False)
    )
    if key_usage:
        usage = x509.KeyUsage(
            digital_signature=digital_signature,
            content_commitment=False,
            key_encipherment=not digital_signature,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )
        builder = builder.add_extension(usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    algorithm = None if isinstance(signer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Identity(key, builder.sign(signer_key, algorithm))


def root(common_name: str = "Test Root CA", *, key: PrivateKey | None = None, **kwargs: dt.datetime) -> Identity:
    """A self-signed CA without ExtendedKeyUsage."""
    return issue(common_name, None, ca=True, eku=None, key=key, **kwargs)


def intermediate(
    common_name: str, issuer: Identity, *, eku: Sequence[x509.ObjectIdentifier] | None = None, **kwargs: dt.datetime
) -> Identity:
    """A CA issued by ``issuer``; ``eku`` constrains what it may issue for."""
    return issue(common_name, issuer, ca=True, eku=eku, **kwargs)


def sign_raw(
    folder: Path,
    signer: Identity,
    chain: Sequence[Identity] = (),
    *,
    signed_at: dt.datetime = NOW,
    name: str | None = None,
    version: str | None = None,
    payload_type: str = PAYLOAD_TYPE,
    key: PrivateKey | None = None,
) -> Path:
    """Sign ``folder`` the way any tool could, without sign_folder's checks on the signer (for bad chains)."""
    if name is None or version is None:
        manifest = load_manifest(folder)
        name, version = name or manifest.name, version or str(manifest.version)
    statement = Statement(name, version, signed_at, scan_folder(folder)).to_bytes()
    certs = [signer.cert, *(c.cert for c in chain)]
    if key is None:
        envelope = sign_envelope(statement, signer.key, certs, payload_type=payload_type)
    else:  # a signature by some other key, presented with signer's certificate
        sig = sign_bytes(key, pae(payload_type, statement))
        envelope = Envelope(payload_type, statement, (Signature(sig, tuple(certs), "sha256:forged"),))
    target = folder / SIGNATURE_FILE
    target.write_bytes(envelope.to_bytes())
    return target

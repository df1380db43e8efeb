"""The local developer key: a developer CA and a code-signing certificate it issues, under ``SYNAPSE_HOME/keys``.

Layout (folder 0700; private keys 0600, PKCS#8 PEM, encrypted when ``SYNAPSE_KEY_PASSPHRASE`` is set)::

    keys/developer-ca.key.pem     the developer CA's private key (ECDSA P-256)
    keys/developer-ca.pem         its self-signed certificate: CA:TRUE, pathlen 0, keyCertSign + cRLSign, 10 years
    keys/developer.key.pem        the code-signing key (ECDSA P-256 by default, or Ed25519)
    keys/developer.pem            its certificate, issued by the developer CA: CA:FALSE, KeyUsage digitalSignature,
                                  ExtendedKeyUsage codeSigning, no SubjectAltName, 2 years

``keys init`` (or :func:`ensure_developer_key`, used by the notebook flow) creates them and trusts the developer
CA in the local trust store. The CA stays ECDSA even for an Ed25519 leaf because path validation follows the Web
PKI's algorithm rules, which do not allow Ed25519 signatures on certificates. Sharing ``developer-ca.pem``
(``keys export --ca``) lets colleagues trust your signatures with ``keys trust``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import SignatureError, UsageError
from ..paths import atomic_write, synapse_home
from .certs import PrivateKey, describe_key, fingerprint, serial_hex, subject, to_pem, utc, validity_problem
from .trust import Revocation, add_local_revocation, add_root, write_crl

__all__ = [
    "KEY_TYPES",
    "PASSPHRASE_ENV",
    "DeveloperKey",
    "KeyFiles",
    "KeyType",
    "ensure_developer_key",
    "init_developer_key",
    "keys_dir",
    "load_developer_key",
    "load_private_key",
    "passphrase_from_env",
    "revoke_serial",
]

PASSPHRASE_ENV = "SYNAPSE_KEY_PASSPHRASE"
KeyType = Literal["ecdsa-p256", "ed25519"]
KEY_TYPES: tuple[KeyType, ...] = ("ecdsa-p256", "ed25519")
CA_DAYS = 3650
LEAF_DAYS = 730
_ORG = "synapse_nb developer"
_INIT_HINT = "run `synapse-cli keys init` first"
_MAX_CN = 64  # RFC 5280 upper bound for a commonName


def keys_dir(home: Path | None = None) -> Path:
    """``SYNAPSE_HOME/keys``."""
    return (home or synapse_home()) / "keys"


def passphrase_from_env() -> str | None:
    """``$SYNAPSE_KEY_PASSPHRASE``, or ``None`` when it is unset or empty."""
    return os.environ.get(PASSPHRASE_ENV) or None


@dataclass(frozen=True)
class KeyFiles:
    """Where the developer key's four files live (see the module docstring)."""

    folder: Path

    @property
    def key(self) -> Path:
        return self.folder / "developer.key.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "developer.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "developer-ca.key.pem"

    @property
    def ca_cert(self) -> Path:
        return self.folder / "developer-ca.pem"


@dataclass(frozen=True)
class DeveloperKey:
    """The developer's code-signing certificate, its CA and where their files are."""

    files: KeyFiles
    certificate: x509.Certificate
    ca_certificate: x509.Certificate
    created: bool = False

    @property
    def key_path(self) -> Path:
        return self.files.key

    @property
    def cert_path(self) -> Path:
        return self.files.cert

    @property
    def ca_key_path(self) -> Path:
        return self.files.ca_key

    @property
    def ca_cert_path(self) -> Path:
        return self.files.ca_cert

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.certificate, self.ca_certificate]

    @property
    def subject(self) -> str:
        return subject(self.certificate)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    @property
    def encrypted(self) -> bool:
        return _is_encrypted(self.key_path.read_bytes())

    def to_json(self) -> dict[str, Any]:
        leaf, ca = self.certificate, self.ca_certificate
        return {
            "subject": subject(leaf),
            "fingerprint": fingerprint(leaf),
            "serial": serial_hex(leaf.serial_number),
            "key_type": describe_key(leaf.public_key()),
            "not_before": leaf.not_valid_before_utc.isoformat(),
            "not_after": leaf.not_valid_after_utc.isoformat(),
            "encrypted": self.encrypted,
            "key": str(self.key_path),
            "certificate": str(self.cert_path),
            "ca": {"subject": subject(ca), "fingerprint": fingerprint(ca), "certificate": str(self.ca_cert_path)},
            "created": self.created,
        }


def _is_encrypted(pem: bytes) -> bool:
    """Whether a PKCS#8 PEM key is the encrypted kind (its armour line says so)."""
    return b"ENCRYPTED" in pem.split(b"\n", 1)[0]


def load_private_key(path: Path, passphrase: str | None = None) -> PrivateKey:
    """Read a PEM private key; :class:`SignatureError` (``no-key``/``key-locked``) says what to do."""
    secret = passphrase if passphrase is not None else passphrase_from_env()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(
            f"cannot read private key {str(path)!r}: {exc.strerror} (for the developer key, {_INIT_HINT})",
            reason="no-key",
        ) from exc
    encrypted = _is_encrypted(data)
    if encrypted and secret is None:
        raise SignatureError(
            f"private key {str(path)!r} is encrypted; set {PASSPHRASE_ENV} to its passphrase", reason="key-locked"
        )
    try:
        key = serialization.load_pem_private_key(data, secret.encode() if encrypted and secret else None)
    except ValueError as exc:
        if encrypted:
            raise SignatureError(
                f"cannot decrypt private key {str(path)!r}: wrong passphrase in {PASSPHRASE_ENV}", reason="key-locked"
            ) from exc
        raise SignatureError(f"{str(path)!r} is not a PEM private key ({exc})", reason="no-key") from exc
    except TypeError as exc:
        raise SignatureError(f"cannot load private key {str(path)!r}: {exc}", reason="key-locked") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise SignatureError(
            f"{str(path)!r} holds a {type(key).__name__}; use ECDSA, Ed25519 or RSA", reason="weak-key"
        )
    return key


def _write_private_key(path: Path, key: PrivateKey, passphrase: str | None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    atomic_write(path, data, 0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _default_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"[:_MAX_CN]


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _generate(key_type: KeyType) -> PrivateKey:
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _issue(
    subject_name: x509.Name,
    public_key: Any,
    issuer: tuple[x509.Name, PrivateKey],
    *,
    ca: bool,
    now: dt.datetime,
    days: int,
    not_after_cap: dt.datetime | None = None,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer
    not_after = now + dt.timedelta(days=days)
    if not_after_cap is not None:
        not_after = min(not_after, not_after_cap)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise SignatureError(f"no developer certificate at {str(path)!r}; {_INIT_HINT}", reason="no-key") from None
    except (OSError, ValueError) as exc:
        raise SignatureError(f"cannot read certificate {str(path)!r} ({exc}); {_INIT_HINT}", reason="no-key") from exc


def load_developer_key(home: Path | None = None) -> DeveloperKey:
    """The developer key made by ``keys init``; :class:`SignatureError` (``no-key``) when there is none."""
    files = KeyFiles(keys_dir(home))
    if not files.key.exists():
        raise SignatureError(f"no developer key in {str(files.folder)!r}; {_INIT_HINT}", reason="no-key")
    return DeveloperKey(files, _read_cert(files.cert), _read_cert(files.ca_cert))


def init_developer_key(
    *,
    name: str | None = None,
    key_type: KeyType = "ecdsa-p256",
    renew: bool = False,
    force: bool = False,
    passphrase: str | None = None,
    now: dt.datetime | None = None,
    home: Path | None = None,
) -> DeveloperKey:
    """Create the developer CA (unless it exists) and a code-signing certificate, and trust the CA.

    An existing key is returned unchanged unless ``renew`` (issue a new leaf from the existing CA) or ``force``
    (a new CA and leaf; signatures made with the old ones stay verifiable while the old CA stays trusted).
    ``passphrase`` (default ``$SYNAPSE_KEY_PASSPHRASE``) encrypts new private keys.
    """
    if key_type not in KEY_TYPES:
        raise UsageError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
    if name is not None and not 1 <= len(name) <= _MAX_CN:
        raise UsageError(f"name {name!r} must be 1 to {_MAX_CN} characters (it becomes the certificate's CN)")
    moment = utc(now)
    secret = passphrase if passphrase is not None else passphrase_from_env()
    files = KeyFiles(keys_dir(home))
    files.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(files.folder, 0o700)
    have_ca = files.ca_key.exists() and files.ca_cert.exists()
    if have_ca and files.key.exists() and files.cert.exists() and not (renew or force):
        return load_developer_key(home)
    previous = _read_cert(files.cert) if renew and name is None and files.cert.exists() else None
    common_name = name or (_common_name(previous) if previous is not None else None) or _default_name()
    if have_ca and not force:
        ca_key = load_private_key(files.ca_key, secret)
        ca_cert = _read_cert(files.ca_cert)
        expired = validity_problem(ca_cert, moment, what="the developer CA")
        if expired is not None:
            raise SignatureError(f"{expired[1]}; run `synapse-cli keys init --force` for a new one", reason=expired[0])
    else:
        ca_name = _name(f"synapse developer CA ({common_name})"[:_MAX_CN])
        ca_key = _generate("ecdsa-p256")
        ca_cert = _issue(
            ca_name,
            ca_key.public_key(),
            (ca_name, ca_key),
            ca=True,
            now=moment,
            days=CA_DAYS,
        )
        _write_private_key(files.ca_key, ca_key, secret)
        atomic_write(files.ca_cert, to_pem(ca_cert).encode("ascii"), 0o644)
    leaf_key = _generate(key_type)
    leaf = _issue(
        _name(common_name),
        leaf_key.public_key(),
        (ca_cert.subject, ca_key),
        ca=False,
        now=moment,
        days=LEAF_DAYS,
        not_after_cap=ca_cert.not_valid_after_utc,  # a leaf never outlives its CA
    )
    _write_private_key(files.key, leaf_key, secret)
    atomic_write(files.cert, to_pem(leaf).encode("ascii"), 0o644)
    add_root(ca_cert, home=home)
    return DeveloperKey(files, leaf, ca_cert, created=True)


def ensure_developer_key(
    *, passphrase: str | None = None, now: dt.datetime | None = None, home: Path | None = None
) -> DeveloperKey:
    """The developer key, created on first use and renewed (new leaf, same CA) once it has expired."""
    try:
        key = load_developer_key(home)
    except SignatureError as exc:
        if exc.reason != "no-key":
            raise
        return init_developer_key(passphrase=passphrase, now=now, home=home)
    if validity_problem(key.certificate, utc(now)) is not None:
        return init_developer_key(renew=True, passphrase=passphrase, now=now, home=home)
    return key


def revoke_serial(
    serial: int,
    *,
    issuer: x509.Certificate | None = None,
    passphrase: str | None = None,
    now: dt.datetime | None = None,
    home: Path | None = None,
) -> tuple[Revocation, Path]:
    """Revoke ``serial`` of ``issuer`` (default: the developer CA); returns the revocation and the file written.

    For the developer CA, whose key is here, the serial goes into its signed CRL; for any other CA into the
    local revocation list ``trust/revoked.json``.
    """
    developer: DeveloperKey | None
    try:
        developer = load_developer_key(home)
    except SignatureError:
        developer = None
    if issuer is None:
        if developer is None:
            raise UsageError(f"no developer CA to revoke serial {serial_hex(serial)} under; pass --issuer CA_CERT")
        issuer = developer.ca_certificate
    if developer is not None and issuer == developer.ca_certificate:
        ca_key = load_private_key(developer.ca_key_path, passphrase)
        path = write_crl(issuer, ca_key, serial, now=now, home=home)
        return Revocation(serial, issuer.subject.rfc4514_string(), "crl", utc(now)), path
    return add_local_revocation(serial, issuer.subject, now=now, home=home)

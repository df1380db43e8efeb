"""Small X.509 helpers shared by keys, trust, sign and verify: names, fingerprints, key and usage checks.

Everything here is a pure function of a certificate (and a time); nothing touches the file system except
:func:`read_certificates`, which reads a PEM bundle or a DER file the user pointed at.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from .reasons import Reason

__all__ = [
    "MIN_RSA_BITS",
    "PrivateKey",
    "PublicKey",
    "ca_problem",
    "describe_key",
    "fingerprint",
    "is_self_issued",
    "key_problem",
    "parse_certificates",
    "read_certificates",
    "serial_hex",
    "subject",
    "to_pem",
    "usage_problem",
    "utc",
    "validity_problem",
]

MIN_RSA_BITS = 2048
_CURVES = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


def utc(moment: dt.datetime | None = None) -> dt.datetime:
    """``moment`` as an aware UTC datetime (a naive one is taken to be UTC); now when ``None``."""
    if moment is None:
        return dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def subject(cert: x509.Certificate) -> str:
    """The subject as an RFC 4514 string, e.g. ``CN=alice,O=Example``."""
    return cert.subject.rfc4514_string()


def fingerprint(cert: x509.Certificate) -> str:
    """Lower-case hex sha256 of the certificate's DER encoding."""
    return cert.fingerprint(hashes.SHA256()).hex()


def serial_hex(serial: int) -> str:
    """A serial number as ``openssl x509 -serial`` prints it (upper-case hex, even length)."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def is_self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def describe_key(key: object) -> str:
    """A short name for a public key: ``ecdsa-p256``, ``ed25519``, ``rsa-3072``, ``ecdsa-secp521r1``..."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _CURVES.get(key.curve.name, f"ecdsa-{key.curve.name}")
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    return type(key).__name__


def key_problem(key: object) -> str | None:
    """Why a signing key is not accepted, or ``None``: ECDSA P-256/P-384, Ed25519 and RSA >= 2048 are."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name in _CURVES:
            return None
        return f"ECDSA curve {key.curve.name!r} is not accepted (use P-256 or P-384)"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size >= MIN_RSA_BITS:
            return None
        return f"RSA key of {key.key_size} bits is too small (at least {MIN_RSA_BITS})"
    return f"{describe_key(key)} keys are not accepted (use ECDSA P-256/P-384, Ed25519 or RSA >= {MIN_RSA_BITS})"


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def usage_problem(cert: x509.Certificate) -> str | None:
    """Why ``cert`` cannot sign code, or ``None``: it needs digitalSignature, codeSigning and must not be a CA."""
    constraints = _extension(cert, x509.BasicConstraints)
    if isinstance(constraints, x509.BasicConstraints) and constraints.ca:
        return "is a CA certificate; sign with an end-entity code-signing certificate"
    usage = _extension(cert, x509.KeyUsage)
    if not isinstance(usage, x509.KeyUsage) or not usage.digital_signature:
        return "lacks KeyUsage digitalSignature"
    extended = _extension(cert, x509.ExtendedKeyUsage)
    if not isinstance(extended, x509.ExtendedKeyUsage):
        return "lacks ExtendedKeyUsage codeSigning (has no ExtendedKeyUsage)"
    if ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        have = ", ".join(_EKU_NAMES.get(oid, oid.dotted_string) for oid in extended)
        return f"lacks ExtendedKeyUsage codeSigning (has: {have})"
    return None


def ca_problem(cert: x509.Certificate) -> str | None:
    """Why ``cert`` cannot be a trust anchor, or ``None``: it must be a CA allowed to sign certificates."""
    constraints = _extension(cert, x509.BasicConstraints)
    if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
        return "is not a CA certificate (BasicConstraints CA:TRUE); trust the CA that issued it instead"
    usage = _extension(cert, x509.KeyUsage)
    if isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign:
        return "is a CA certificate without KeyUsage keyCertSign"
    return None


def validity_problem(
    cert: x509.Certificate, at: dt.datetime, *, what: str = "at this time"
) -> tuple[Reason, str] | None:
    """``("expired" | "not-yet-valid", message)`` when ``at`` lies outside the validity of ``cert``."""
    before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if at > after:
        return "expired", f"certificate {subject(cert)!r} expired on {after:%Y-%m-%d %H:%M:%SZ} ({what})"
    if at < before:
        return (
            "not-yet-valid",
            f"certificate {subject(cert)!r} is not valid before {before:%Y-%m-%d %H:%M:%SZ} ({what})",
        )
    return None


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """Certificates from a PEM bundle (one or more) or a single DER certificate; ``ValueError`` if none."""
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def read_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates in the file at ``path``; ``OSError`` or ``ValueError`` when there are none."""
    return parse_certificates(path.read_bytes())

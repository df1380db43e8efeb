"""The signature file: a DSSE envelope (https://github.com/secure-systems-lab/dsse) carrying its certificate chain.

``synapse.sig.json`` is one JSON object::

    {
      "payloadType": "application/vnd.synapse.plugin-fileset.v1+json",
      "payload": "<standard base64 of the payload bytes>",
      "signatures": [
        {"keyid": "sha256:<hex sha256 of the leaf DER>",
         "sig": "<base64 signature over PAE(payloadType, payload)>",
         "certificates": ["-----BEGIN CERTIFICATE-----...", ...]}     # leaf first, then issuers
      ]
    }

The signature covers DSSE's pre-authentication encoding ``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP
LEN(body) SP body`` (lengths in ASCII decimal), so neither the payload type nor the payload can be swapped without
breaking it. ``keyid`` is an unauthenticated hint, as in DSSE. ``certificates`` is our addition: DSSE leaves key
distribution to the application, and a signature file that carries its chain verifies without a key server.

Signature algorithms follow the leaf key: ECDSA P-256 with SHA-256 and P-384 with SHA-384 (DER-encoded
signatures), Ed25519, and RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from .certs import PrivateKey, fingerprint, to_pem

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "PAYLOAD_TYPE",
    "Envelope",
    "EnvelopeError",
    "Signature",
    "pae",
    "sign_bytes",
    "sign_envelope",
    "verify_bytes",
]

PAYLOAD_TYPE = "application/vnd.synapse.plugin-fileset.v1+json"
MAX_ENVELOPE_BYTES = 64 << 20  # a payload listing MAX_FILES entries is ~15 MiB of base64
_MAX_CHAIN = 8


class EnvelopeError(ValueError):
    """The signature file is not a well-formed envelope (verification reports it as ``malformed``)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``: the bytes that get signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _hash_for(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    return hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()


_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data`` with the algorithm that goes with ``key`` (see the module docstring)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_hash_for(key.public_key())))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _PSS, hashes.SHA256())
    raise TypeError(f"cannot sign with a {type(key).__name__}")


def verify_bytes(key: CertificatePublicKeyTypes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s signature over ``data``."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_hash_for(key)))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _PSS, hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Signature:
    """One DSSE signature and the certificate chain of its signer (leaf first)."""

    sig: bytes
    certificates: tuple[x509.Certificate, ...]
    keyid: str = ""

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "keyid": self.keyid,
            "sig": base64.b64encode(self.sig).decode("ascii"),
            "certificates": [to_pem(c) for c in self.certificates],
        }


@dataclass(frozen=True)
class Envelope:
    """A parsed ``synapse.sig.json``: payload type, payload bytes and exactly one signature."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @property
    def signature(self) -> Signature:
        """The one signature (a synapse envelope holds exactly one; :meth:`from_bytes` enforces it)."""
        return self.signatures[0]

    def signed_bytes(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def to_bytes(self) -> bytes:
        obj = {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [s.to_json() for s in self.signatures],
        }
        return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Parse and structurally check an envelope; :class:`EnvelopeError` says what is wrong."""
        if len(data) > MAX_ENVELOPE_BYTES:
            raise EnvelopeError(f"is {len(data)} bytes, over the {MAX_ENVELOPE_BYTES} byte limit")
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"is not UTF-8 JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise EnvelopeError("is not a JSON object")
        payload_type = obj.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise EnvelopeError("has no 'payloadType' string")
        payload = _b64(obj.get("payload"), "payload")
        sigs = obj.get("signatures")
        if not isinstance(sigs, list) or len(sigs) != 1:
            raise EnvelopeError("must hold exactly one entry in 'signatures'")
        return cls(payload_type, payload, (_signature(sigs[0]),))


def _b64(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"has no {field!r} base64 string")
    try:
        # DSSE asks verifiers to accept standard and URL-safe base64 alike.
        alt = b"-_" if ("-" in value or "_" in value) else None
        return base64.b64decode(value.encode("ascii"), altchars=alt, validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise EnvelopeError(f"{field!r} is not valid base64") from exc


def _signature(obj: object) -> Signature:
    if not isinstance(obj, dict):
        raise EnvelopeError("signature entry is not a JSON object")
    sig = _b64(obj.get("sig"), "sig")
    keyid = obj.get("keyid", "")
    if not isinstance(keyid, str):
        raise EnvelopeError("'keyid' is not a string")
    pems = obj.get("certificates")
    if not isinstance(pems, list) or not pems or not all(isinstance(p, str) for p in pems):
        raise EnvelopeError("signature has no 'certificates' list of PEM strings (leaf first)")
    if len(pems) > _MAX_CHAIN:
        raise EnvelopeError(f"carries {len(pems)} certificates, more than {_MAX_CHAIN}")
    certs = []
    for n, pem in enumerate(pems):
        try:
            found = x509.load_pem_x509_certificates(pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise EnvelopeError(f"certificate {n} is not a PEM certificate ({exc})") from exc
        if len(found) != 1:
            raise EnvelopeError(f"certificate {n} holds {len(found)} PEM blocks, expected one")
        certs.append(found[0])
    return Signature(sig=sig, certificates=tuple(certs), keyid=keyid)


def sign_envelope(
    payload: bytes,
    key: PrivateKey,
    chain: list[x509.Certificate],
    *,
    payload_type: str = PAYLOAD_TYPE,
) -> Envelope:
    """Sign ``payload`` with ``key``; ``chain`` (leaf first) travels with the signature.

    Raises ``ValueError`` when ``key`` does not belong to ``chain[0]``: a signature nobody can verify is a bug.
    """
    if not chain:
        raise ValueError("a signature needs the signer's certificate")
    if chain[0].public_key() != key.public_key():
        raise ValueError("the private key does not belong to the certificate")
    sig = sign_bytes(key, pae(payload_type, payload))
    signature = Signature(sig=sig, certificates=tuple(chain), keyid=f"sha256:{fingerprint(chain[0])}")
    return Envelope(payload_type, payload, (signature,))

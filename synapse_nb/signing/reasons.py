"""The fixed set of ``SignatureError.reason`` values: what callers and ``--json`` consumers may match on.

Verification (``plugin verify``, every activation)::

    unsigned          there is no synapse.sig.json in the folder
    malformed         the signature file is not a well-formed envelope or payload
    bad-signature     the signature does not verify over the payload with the leaf certificate's key
    weak-key          the leaf key is not ECDSA P-256/P-384, Ed25519 or RSA >= 2048
    wrong-usage       the leaf lacks KeyUsage digitalSignature or ExtendedKeyUsage codeSigning, or is a CA
    expired           a certificate of the chain expired (now, or before the claimed signing time)
    not-yet-valid     a certificate is not valid yet, or the claimed signing time lies in the future
    untrusted         no chain to a trusted root (root not trusted, intermediate missing, self-signed leaf)
    revoked           a certificate of the chain is on a revocation list of the trust store
    version-mismatch  the signed name/version differ from manifest.yaml's (a signature replayed onto another release)
    tampered          the files differ from the signed list (modified, added, removed, renamed, symlink, collision)

Signing (``plugin sign``, ``keys``) adds::

    no-key            no signing key or certificate (run ``synapse-cli keys init``)
    key-locked        the private key is encrypted and SYNAPSE_KEY_PASSPHRASE is unset or wrong
    key-mismatch      the private key does not belong to the certificate
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["REASONS", "SIGN_REASONS", "VERIFY_REASONS", "Reason"]

VerifyReason = Literal[
    "unsigned",
    "malformed",
    "bad-signature",
    "weak-key",
    "wrong-usage",
    "expired",
    "not-yet-valid",
    "untrusted",
    "revoked",
    "version-mismatch",
    "tampered",
]
SignReason = Literal["no-key", "key-locked", "key-mismatch"]
Reason = Literal[VerifyReason, SignReason]

VERIFY_REASONS: tuple[Reason, ...] = get_args(VerifyReason)
SIGN_REASONS: tuple[Reason, ...] = get_args(SignReason)
REASONS: tuple[Reason, ...] = VERIFY_REASONS + SIGN_REASONS

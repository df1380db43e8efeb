"""Code signing and trust: X.509 developer keys, signed plugin file sets, verification at every activation.

A plugin folder is signed by writing ``synapse.sig.json``: a DSSE envelope (:mod:`.envelope`) whose payload
(:mod:`.payload`) names the plugin, its version, the signing time and every file with its size and sha256, and
whose signature carries the signer's X.509 chain. Verification (:mod:`.verify`) checks the signature, the chain
to a trusted root with ``cryptography.x509.verification`` (:mod:`.chain`), revocation (:mod:`.trust`), the
name/version against manifest.yaml and the exact file set; :mod:`.enforce` is the activation policy.

Files under ``SYNAPSE_HOME``::

    keys/developer-ca.key.pem, keys/developer-ca.pem     the local developer CA          (:mod:`.keys`)
    keys/developer.key.pem,    keys/developer.pem        its code-signing certificate
    trust/roots/<sha256>.pem                             trusted roots                   (:mod:`.trust`)
    trust/crl/*.crl.pem                                  revocation lists
    trust/revoked.json                                   local revocations for CAs whose key is elsewhere

Private keys are 0600 and encrypted when ``SYNAPSE_KEY_PASSPHRASE`` is set. Failures raise
:class:`~synapse_nb.errors.SignatureError` (exit 4) with ``reason`` from :mod:`.reasons`.
"""

from __future__ import annotations

from .enforce import INSECURE_FLAG, SignatureCheck, check_activation, take_snapshot
from .keys import (
    KEY_TYPES,
    PASSPHRASE_ENV,
    DeveloperKey,
    ensure_developer_key,
    init_developer_key,
    load_developer_key,
    revoke_serial,
)
from .reasons import REASONS, SIGN_REASONS, VERIFY_REASONS
from .sign import SignResult, sign_folder
from .trust import Revocation, TrustStore, add_crl, add_root
from .verify import Verification, verify_fileset, verify_folder, verify_snapshot

__all__ = [
    "INSECURE_FLAG",
    "KEY_TYPES",
    "PASSPHRASE_ENV",
    "REASONS",
    "SIGN_REASONS",
    "VERIFY_REASONS",
    "DeveloperKey",
    "Revocation",
    "SignResult",
    "SignatureCheck",
    "TrustStore",
    "Verification",
    "add_crl",
    "add_root",
    "check_activation",
    "ensure_developer_key",
    "init_developer_key",
    "load_developer_key",
    "revoke_serial",
    "sign_folder",
    "take_snapshot",
    "verify_fileset",
    "verify_folder",
    "verify_snapshot",
]

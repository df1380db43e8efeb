"""The public registry shipped inside the package: a signed index and signed archives, usable offline.

``synapse_nb/registry/public/`` holds ``index.json`` (signed), ``archives/NAME-VERSION.synapse`` and
``project-ca.pem``, the root of the synapse_nb project's release key. Searching verifies the index against that
shipped root (the files are exactly as trustworthy as the package code that reads them). *Installing* is
different: the archives must verify against the user's own trust store, exactly like any plugin, so the user
decides once, explicitly, to trust the project's key (``synapse-cli keys trust PROJECT_CA``); until then
installing says so and how. The plugins' sources are ``public/src/`` (and the spec's sentiment-analyzer in
``examples/``); ``python -m synapse_nb.registry.release --key DIR`` rebuilds and re-signs everything.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography import x509

from ..errors import SignatureError
from ..signing.trust import TrustStore
from .index import Release, SignedIndex, verify_index

__all__ = ["PROJECT_CA", "PUBLIC_DIR", "public_archive", "public_index", "untrusted_hint"]

PUBLIC_DIR = Path(__file__).resolve().parent / "public"
PROJECT_CA = PUBLIC_DIR / "project-ca.pem"
INDEX_FILE = PUBLIC_DIR / "index.json"


@functools.cache
def _project_root() -> x509.Certificate:
    return x509.load_pem_x509_certificate(PROJECT_CA.read_bytes())


def public_index() -> SignedIndex:
    """The shipped index, verified against the shipped project root (SignatureError if altered or expired)."""
    try:
        data = INDEX_FILE.read_bytes()
    except OSError as exc:
        raise SignatureError(
            f"the public index is missing from the package ({exc.strerror})", reason="unsigned"
        ) from exc
    return verify_index(data, registry="public", trust=TrustStore(roots=(_project_root(),)))


def public_archive(release: Release) -> bytes:
    """The bytes of a shipped archive (its digest is checked by the caller against the index)."""
    return (PUBLIC_DIR / release.url).read_bytes()


def untrusted_hint() -> str:
    """How to trust the project's key (for errors when the user's trust store does not have it yet)."""
    return (
        f"the public plugins are signed by the synapse_nb project key; to install them, trust it once: "
        f"`synapse-cli keys trust {PROJECT_CA}`"
    )

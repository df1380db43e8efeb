"""What a served call may ask for besides its payload, as HTTP headers and gRPC metadata, and their rules.

==============================  ================================  ============================================
HTTP request header             gRPC metadata (or field)          meaning
==============================  ================================  ============================================
``Idempotency-Key: K``          ``idempotency-key: K``            run once per key (:func:`check_idempotency_key`)
``Cache-Control: no-cache``     ``cache-control: no-cache``       bypass the response cache (:func:`cache_bypass`)
``Synapse-Timeout-Ms: N``       the call's deadline               the client's deadline
``Synapse-Return-Exceptions:``  ``InvokeRequest.return_``         a batch answers each item's error in its place
``true``                        ``exceptions`` (first request)    (:func:`flag`)
==============================  ================================  ============================================

Answers: ``Retry-After: S`` (HTTP) and ``retry-after: S`` with ``grpc-retry-pushback-ms: MS`` (gRPC trailing
metadata) when the circuit is open (:func:`retry_after_ms`); ``Idempotent-Replayed: true|false`` (HTTP, as
Stripe's) on a call that carried a key. Pure: no gRPC or Starlette import, so the client uses it too.
"""

from __future__ import annotations

import math

from ..errors import CircuitOpen, SynapseError
from .errors import Malformed

__all__ = [
    "CACHE_CONTROL",
    "IDEMPOTENCY_KEY",
    "MAX_KEY_CHARS",
    "NO_CACHE",
    "RETURN_EXCEPTIONS",
    "cache_bypass",
    "check_idempotency_key",
    "flag",
    "retry_after_ms",
    "retry_after_s",
]

IDEMPOTENCY_KEY = "idempotency-key"  # lower case: gRPC metadata keys, and HTTP/ASGI header names, are
CACHE_CONTROL = "cache-control"
RETURN_EXCEPTIONS = "synapse-return-exceptions"
NO_CACHE = "no-cache"
# The core's rule (synapse_nb.policies.idempotency: 1 to 255 characters), narrowed to what an HTTP header and
# gRPC metadata both carry unchanged: printable ASCII.
MAX_KEY_CHARS = 255
_BYPASS = frozenset({"no-cache", "no-store"})
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})


def check_idempotency_key(key: str | None, *, where: str = "Idempotency-Key") -> str | None:
    """The key to hand to the core (None: the request has none); :class:`~.errors.Malformed` (400 /
    INVALID_ARGUMENT, exit 3) for an empty one, one over 255 characters, one that is not printable ASCII, or one
    with a leading or trailing space."""
    if key is None:
        return None
    if not isinstance(key, str) or not key:
        raise Malformed(f"{where} is empty: an idempotency key is 1 to {MAX_KEY_CHARS} printable ASCII characters")
    if len(key) > MAX_KEY_CHARS:
        raise Malformed(f"{where} is {len(key)} characters long, over the limit of {MAX_KEY_CHARS}")
    bad = next((c for c in key if not " " <= c <= "~"), None)
    if bad is not None:
        raise Malformed(f"{where} holds {bad!r}: an idempotency key is printable ASCII (a UUID is a good one)")
    if key != key.strip(" "):
        raise Malformed(f"{where} starts or ends with a space, which HTTP would drop on the way")
    return key


def cache_bypass(value: str | None) -> bool:
    """Whether a ``Cache-Control`` request header (or metadata) asks to bypass the response cache.

    ``no-cache`` and ``no-store`` do: the call neither reads nor writes the cache (``meta.cache: bypass``).
    A client can only bypass the cache, never put anything in it. Other directives are ignored, as RFC 9111
    (section 5.2) asks of a cache that does not implement them.
    """
    if not value:
        return False
    names = {part.split("=", 1)[0].strip().lower() for part in value.split(",")}
    return not names.isdisjoint(_BYPASS)


def flag(value: str | None, *, where: str) -> bool:
    """A boolean header: ``true``/``1``/``yes`` or ``false``/``0``/``no``/absent; Malformed otherwise."""
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Malformed(f"{where}: {value!r} is not true or false")


def retry_after_ms(exc: SynapseError) -> int | None:
    """How long a refused call should wait before it is tried again: for an open circuit, until the next probe
    is let through (None for every other error)."""
    if isinstance(exc, CircuitOpen):
        return max(0, int(exc.retry_after_ms))
    return None


def retry_after_s(ms: int) -> int:
    """``Retry-After`` in whole seconds, rounded up, at least 1 (a half-open circuit's probe is in flight: a
    retry at once would only be refused again)."""
    return max(1, math.ceil(ms / 1000))

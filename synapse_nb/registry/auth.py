"""Client-side OAuth2 for registries: a static bearer token or the client-credentials grant (RFC 6749 4.4).

:class:`RegistryAuth` is an ``httpx.Auth`` flow, so the token request goes through the same client and transport
as the registry calls (one seam for tests). Client-credentials tokens are cached, in memory and in
``$SYNAPSE_HOME/registry/NAME/token.json`` (0600), until shortly before ``expires_in``; a 401 from the registry
fetches a new one and retries exactly once. A static token is never retried.

Secrets (tokens, client secrets) never appear in messages: every error built from a remote answer goes through
:func:`redact`, and the token file is private to the user.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import RegistryError
from ..paths import atomic_write
from .settings import RegistryConfig, check_transport, registry_dir, require_approval

__all__ = ["RegistryAuth", "TokenCache", "auth_for", "redact"]

REDACTED = "[redacted]"
DEFAULT_EXPIRES_IN = 300
MAX_TOKEN_RESPONSE = 64 << 10


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of at least 4 characters) replaced by ``[redacted]``."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def leeway(ttl: float) -> float:
    """How long before expiry a cached token is renewed: 10% of its lifetime, at most 60 s."""
    return min(60.0, ttl * 0.1)


@dataclass
class _Token:
    value: str
    expires_at: float  # time.time()
    renew_at: float


class TokenCache:
    """Access tokens of one registry, keyed by (registry, token URL, client id, secret), in memory and on disk."""

    _memory: dict[str, _Token] = {}  # noqa: RUF012 - shared by every cache in this process, on purpose
    _lock = threading.Lock()

    def __init__(self, registry: str, key: str) -> None:
        self.registry = registry
        self.key = key
        self.path = registry_dir(registry) / "token.json"

    def get(self, now: float | None = None) -> str | None:
        moment = time.time() if now is None else now
        with self._lock:
            token = self._memory.get(self.key) or self._read()
            if token is None or moment >= token.renew_at:
                return None
            self._memory[self.key] = token
            return token.value

    def put(self, value: str, expires_in: float, now: float | None = None) -> None:
        moment = time.time() if now is None else now
        token = _Token(value, moment + expires_in, moment + expires_in - leeway(expires_in))
        with self._lock:
            self._memory[self.key] = token
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record = {
                "key": self.key,
                "access_token": value,
                "expires_at": token.expires_at,
                "renew_at": token.renew_at,
            }
            atomic_write(self.path, json.dumps(record).encode(), 0o600)

    def clear(self) -> None:
        with self._lock:
            self._memory.pop(self.key, None)
            self.path.unlink(missing_ok=True)

    def _read(self) -> _Token | None:
        try:
            if os.stat(self.path).st_mode & 0o077:  # someone else could read or replace it: ignore it
                return None
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != self.key:
            return None
        try:
            return _Token(str(data["access_token"]), float(data["expires_at"]), float(data["renew_at"]))
        except (KeyError, TypeError, ValueError):
            return None


class RegistryAuth(httpx.Auth):
    """Bearer auth for one registry; fetches client-credentials tokens through the client's own transport."""

    requires_response_body = True

    def __init__(self, registry: RegistryConfig) -> None:
        self.registry = registry
        self.kind = registry.kind
        self.secrets: list[str] = []
        if self.kind == "token":
            self.static = registry.expanded("token")
            self.secrets.append(self.static)
        else:
            self.token_url = registry.expanded("token_url")
            self.client_id = registry.expanded("client_id")
            self.client_secret = registry.expanded("client_secret")
            self.scope = registry.expanded("scope") if registry.auth and "scope" in registry.auth else ""
            self.secrets.append(self.client_secret)
            check_transport(self.token_url, registry=registry.name, what="the client secret")
            parts = (registry.name, registry.endpoint, self.token_url, self.client_id, self.client_secret)
            digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
            self.cache = TokenCache(registry.name, digest)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        check_transport(str(request.url), registry=self.registry.name, what="a bearer token")
        if self.kind == "token":
            request.headers["Authorization"] = f"Bearer {self.static}"
            yield request
            return
        token = self.cache.get()
        if token is None:
            token = yield from self._fetch()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:  # expired or revoked early: one fresh token, one retry
            self.cache.clear()
            token = yield from self._fetch()
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def _fetch(self) -> Generator[httpx.Request, httpx.Response, str]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        request = httpx.Request(
            "POST",
            self.token_url,
            data=form,
            headers={"Accept": "application/json", "Authorization": _basic(self.client_id, self.client_secret)},
        )
        response = yield request
        token, expires_in = self._parse(response)
        self.secrets.append(token)
        self.cache.put(token, expires_in)
        return token

    def _parse(self, response: httpx.Response) -> tuple[str, float]:
        where = f"registry {self.registry.name!r}: token endpoint {self.token_url}"
        body = response.content[:MAX_TOKEN_RESPONSE]
        try:
            data: Any = json.loads(body)
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict):
            error = ""
            if isinstance(data, dict):
                error = f": {data.get('error', '')} {data.get('error_description', '')}".rstrip()
            raise RegistryError(self.redact(f"{where} refused the client credentials ({response.status_code}{error})"))
        token, kind, expires_in = data.get("access_token"), data.get("token_type", ""), data.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(kind, str) or kind.lower() != "bearer":
            raise RegistryError(f"{where} answered without a bearer access_token")
        if expires_in is None:
            expires_in = DEFAULT_EXPIRES_IN
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
            raise RegistryError(f"{where} answered an invalid expires_in")
        return token, float(expires_in)


def _basic(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: form-urlencode both parts, then HTTP Basic."""
    import base64
    import urllib.parse

    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def auth_for(registry: RegistryConfig) -> RegistryAuth | None:
    """The auth flow for ``registry`` (None without auth); refuses unapproved project credentials."""
    if not registry.auth:
        return None
    require_approval(registry)
    check_transport(registry.endpoint, registry=registry.name, what="a bearer token")
    return RegistryAuth(registry)

"""Server-side OAuth2: the registry as its own token endpoint, and bearer tokens from an external issuer.

``registry serve --clients FILE`` reads YAML::

    clients:                                   # the client-credentials grant at POST /oauth/token (RFC 6749 4.4)
      - client_id: ci
        client_secret: ${CI_SECRET}            # ${VAR} is read from the server's environment at start
        scopes: [read, publish]
    token_ttl: 3600                            # seconds (default 3600)
    anonymous_read: false                      # true: index and archives need no token (publishing always does)
    issuers:                                   # optional: also accept JWT access tokens (RFC 9068) from these
      - issuer: https://login.example.com/
        audience: https://plugins.example.com
        jwks_file: /etc/synapse/issuer-jwks.json

Tokens the registry issues are opaque random strings (``secrets.token_urlsafe``) kept in memory with their
client, scopes and expiry; a restarted server forgets them and clients fetch new ones (their 401 retry).

External tokens are verified as JWTs with Authlib's RFC 9068 validator (signature against the issuer's JWKS,
``iss``, ``aud``, ``exp``, ``sub``, ``client_id``, ``iat``, ``jti``, ``typ: at+jwt``; ``scope`` for the
scopes). We chose JWT verification over token introspection (RFC 7662): no call to the issuer on every request
(nor credentials for it), no new failure mode when the issuer is down, and a standard profile every major
issuer supports; the price is that revocation waits for the token's expiry, which short lifetimes bound.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import expand_env
from ..errors import UsageError

__all__ = [
    "SCOPES",
    "AuthSettings",
    "OAuthError",
    "Principal",
    "TokenService",
    "load_clients_file",
]

SCOPES = ("read", "publish")
DEFAULT_TTL = 3600
_MAX_CLIENTS_FILE = 1 << 20


class OAuthError(Exception):
    """An OAuth2 error answer: RFC 6749 5.2 ``error`` code, a description and the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Principal:
    """Who a valid token belongs to and what it may do."""

    client_id: str
    scopes: frozenset[str]
    issuer: str = "registry"

    def to_json(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "scopes": sorted(self.scopes), "issuer": self.issuer}


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class Issuer:
    issuer: str
    audience: str
    jwks: dict[str, Any]


@dataclass(frozen=True)
class AuthSettings:
    """What ``--clients FILE`` configured (empty: nobody can publish; reading is open)."""

    clients: tuple[Client, ...] = ()
    issuers: tuple[Issuer, ...] = ()
    token_ttl: int = DEFAULT_TTL
    anonymous_read: bool = True

    @property
    def enabled(self) -> bool:
        return bool(self.clients or self.issuers)


def _need(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: {key!r} must be a non-empty string")
    return value


def load_clients_file(path: Path | str) -> AuthSettings:
    """Parse the ``--clients`` YAML (UsageError naming the file and the key on any problem)."""
    import yaml

    file = Path(path)
    try:
        raw = file.read_bytes()[:_MAX_CLIENTS_FILE]
        data = yaml.safe_load(raw) or {}
    except OSError as exc:
        raise UsageError(f"cannot read clients file {str(file)!r}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{file}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{file}: must be a mapping with a 'clients' list")
    unknown = set(data) - {"clients", "issuers", "token_ttl", "anonymous_read"}
    if unknown:
        expected = "clients, issuers, token_ttl, anonymous_read"
        raise UsageError(f"{file}: unknown key {sorted(unknown)[0]!r} (expected {expected})")
    clients = []
    for n, item in enumerate(data.get("clients") or []):
        where = f"{file}: clients[{n}]"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: must be a mapping")
        client_id = _need(item, "client_id", where)
        secret = expand_env(_need(item, "client_secret", where), where=f"{where}.client_secret")
        scopes = item.get("scopes", ["read"])
        if not isinstance(scopes, list) or not set(scopes) <= set(SCOPES):
            raise UsageError(f"{where}: scopes must be a list of {', '.join(SCOPES)}")
        clients.append(Client(client_id, secret, frozenset(scopes)))
    issuers = []
    for n, item in enumerate(data.get("issuers") or []):
        where = f"{file}: issuers[{n}]"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: must be a mapping")
        jwks_file = Path(_need(item, "jwks_file", where)).expanduser()
        try:
            jwks = json.loads(jwks_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{where}: cannot read the JWKS in {str(jwks_file)!r} ({exc})") from exc
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise UsageError(f"{where}: {str(jwks_file)!r} is not a JWK set ({{'keys': [...]}})")
        issuers.append(Issuer(_need(item, "issuer", where), _need(item, "audience", where), jwks))
    ttl = data.get("token_ttl", DEFAULT_TTL)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= 86400:
        raise UsageError(f"{file}: token_ttl must be an integer number of seconds, 1 to 86400")
    anonymous = data.get("anonymous_read", False)
    if not isinstance(anonymous, bool):
        raise UsageError(f"{file}: anonymous_read must be true or false")
    return AuthSettings(tuple(clients), tuple(issuers), ttl, anonymous)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class TokenService:
    """Issues client-credentials tokens and authenticates bearer tokens (own or an external issuer's JWTs)."""

    settings: AuthSettings
    clock: Any = time.time
    _tokens: dict[str, tuple[Principal, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _validators: list[tuple[Issuer, Any]] | None = None

    def issue(self, client_id: str, secret: str, scope: str | None) -> dict[str, Any]:
        """The token response for a client-credentials request (OAuthError per RFC 6749 5.2)."""
        client = next((c for c in self.settings.clients if c.client_id == client_id), None)
        # Compare against something even for unknown clients, so timing does not tell which ids exist.
        expected = client.secret if client is not None else secrets.token_urlsafe(16)
        if client is None or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
        requested = frozenset(scope.split()) if scope else client.scopes
        if not requested <= client.scopes:
            extra = " ".join(sorted(requested - client.scopes))
            raise OAuthError("invalid_scope", f"client {client_id!r} may not request: {extra}")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}  # drop expired ones
            self._tokens[_digest(token)] = (Principal(client_id, requested), now + self.settings.token_ttl)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.settings.token_ttl,
            "scope": " ".join(sorted(requested)),
        }

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid, unexpired token, or None."""
        with self._lock:
            found = self._tokens.get(_digest(token))
        if found is not None:
            principal, expires_at = found
            return principal if self.clock() < expires_at else None
        if token.count(".") == 2 and self.settings.issuers:
            return self._jwt(token)
        return None

    def _jwt(self, token: str) -> Principal | None:
        from authlib.oauth2.rfc6750.errors import InvalidTokenError

        if self._validators is None:
            self._validators = [(issuer, _validator(issuer)) for issuer in self.settings.issuers]
        for issuer, validator in self._validators:
            try:
                claims = validator.authenticate_token(token)
                validator.validate_token(claims, scopes=None, request=None)
            except InvalidTokenError:
                continue
            except Exception:  # joserfc raises its own errors for malformed tokens: an invalid token, not a crash
                continue
            scope = claims.get("scope", "")
            scopes = frozenset(scope.split() if isinstance(scope, str) else scope or ()) & frozenset(SCOPES)
            return Principal(str(claims.get("client_id") or claims.get("sub")), scopes, issuer.issuer)
        return None


def _validator(issuer: Issuer) -> Any:
    """Authlib's RFC 9068 JWT access-token validator for one issuer, with its JWKS."""
    from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(issuer.jwks)  # type: ignore[arg-type]

    class _Validator(JWTBearerTokenValidator):  # type: ignore[misc]
        def get_jwks(self) -> KeySet:
            return keys

    return _Validator(issuer=issuer.issuer, resource_server=issuer.audience)

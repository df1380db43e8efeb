"""The HTTP client of one registry: fetch and verify its index, download archives, publish and yank.

Built on ``httpx`` with a transport seam (``transport=httpx.MockTransport(...)`` in unit tests; the real tests
talk to a real server on loopback). Redirects are never followed, so neither a download nor a bearer token can
be sent to another origin, and every URL comes from the endpoint plus an index path that cannot leave it.

Failures are :class:`~synapse_nb.errors.RegistryError` (exit 9: network, HTTP, authentication) or
:class:`~synapse_nb.errors.SignatureError` (exit 4: an index that does not verify, rolled back or expired; an
archive whose digest differs from the index's). No message ever holds a token or a client secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any

import httpx

from ..errors import RegistryError, SignatureError
from ..signing.trust import TrustStore
from .auth import RegistryAuth, auth_for
from .cache import CachedIndex, accept, load_index, touch
from .index import Index, Release, verify_index
from .settings import RegistryConfig

__all__ = ["INDEX_MAX_AGE", "RegistryClient"]

INDEX_PATH = "index.json"
INDEX_MAX_AGE = 300.0  # seconds a cached index is used without asking the registry again
MAX_INDEX_BYTES = 64 << 20
MAX_DOWNLOAD_BYTES = 256 << 20
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class RegistryClient:
    """Talks to one configured registry. Use as a context manager (it owns an ``httpx.Client``)."""

    def __init__(
        self,
        registry: RegistryConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        trust: TrustStore | None = None,
    ) -> None:
        self.registry = registry
        self.name = registry.name
        self.endpoint = registry.endpoint.rstrip("/") + "/"
        self.auth: RegistryAuth | None = auth_for(registry)
        self.trust = trust
        self.http = httpx.Client(
            transport=transport,
            timeout=_TIMEOUT,
            follow_redirects=False,
            auth=self.auth,
            headers={"User-Agent": "synapse-cli"},
        )

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return self.auth.redact(text) if self.auth is not None else text

    def url(self, path: str) -> str:
        return self.endpoint + path.lstrip("/")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self.url(path)
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(self._redact(f"registry {self.name!r}: cannot reach {url}: {exc}")) from None
        except RegistryError as exc:  # raised inside the auth flow (token endpoint, plain HTTP refusal)
            raise RegistryError(self._redact(exc.message), details=exc.details) from None
        return response

    def _check(self, response: httpx.Response, what: str, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        if response.status_code in ok:
            return response
        message = _server_message(response)
        status = response.status_code
        if status == 401:
            hint = "the token is missing, wrong or expired"
            if self.auth is None:
                hint = "it requires authentication: add `auth:` to its entry in the config"
            raise RegistryError(self._redact(f"registry {self.name!r}: {what}: 401 unauthorized ({hint}): {message}"))
        if status == 403:
            raise RegistryError(self._redact(f"registry {self.name!r}: {what}: 403 forbidden: {message}"))
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            raise RegistryError(
                self._redact(f"registry {self.name!r}: {what}: redirected to {where}; redirects are not followed")
            )
        raise RegistryError(self._redact(f"registry {self.name!r}: {what}: HTTP {status}: {message}"))

    # -- index ---------------------------------------------------------------------------------------------------
    def fetch_index(self, *, now: dt.datetime | None = None) -> CachedIndex:
        """Download, verify and accept the registry's index (conditional GET when one is cached)."""
        cached = load_index(self.name, endpoint=self.registry.endpoint)
        headers = {"If-None-Match": cached.etag} if cached is not None and cached.etag else {}
        response = self._send("GET", INDEX_PATH, headers=headers)
        moment = now or dt.datetime.now(dt.timezone.utc)
        if response.status_code == 304 and cached is not None:
            if cached.index.expires <= moment:
                raise _expired(self.name, cached.index)
            touch(self.name)
            return CachedIndex(self.name, cached.index, time.time(), cached.etag)
        self._check(response, "GET index.json")
        data = response.content
        if len(data) > MAX_INDEX_BYTES:
            raise RegistryError(f"registry {self.name!r}: index is over {MAX_INDEX_BYTES >> 20} MiB")
        signed = verify_index(data, registry=self.name, trust=self.trust, now=moment)
        return accept(self.name, signed, endpoint=self.registry.endpoint, etag=response.headers.get("etag"))

    def index(self, *, max_age: float = INDEX_MAX_AGE, now: dt.datetime | None = None) -> CachedIndex:
        """The cached index when fresh enough (and not expired), else a fetched one."""
        cached = load_index(self.name, endpoint=self.registry.endpoint)
        moment = now or dt.datetime.now(dt.timezone.utc)
        if cached is not None and time.time() - cached.fetched_at < max_age and cached.index.expires > moment:
            return cached
        return self.fetch_index(now=now)

    # -- archives ------------------------------------------------------------------------------------------------
    def download(self, name: str, version: str, release: Release) -> bytes:
        """The archive bytes of one release, checked against the size and sha256 the index gave."""
        limit = min(release.size, MAX_DOWNLOAD_BYTES)
        url = self.url(release.url)
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        size = 0
        try:
            with self.http.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()
                    self._check(response, f"GET {release.url}")
                for chunk in response.iter_bytes(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise SignatureError(
                            f"tampered: {name} {version} download is larger than the {release.size} bytes the index "
                            f"lists; refusing it",
                            plugin=name,
                            reason="tampered",
                        )
                    digest.update(chunk)
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise RegistryError(self._redact(f"registry {self.name!r}: download of {url} failed: {exc}")) from None
        if digest.hexdigest() != release.sha256:
            raise SignatureError(
                f"tampered: {name} {version} from registry {self.name!r} has sha256 {digest.hexdigest()[:16]}..., "
                f"but the signed index lists {release.sha256[:16]}...",
                plugin=name,
                reason="tampered",
            )
        return b"".join(chunks)

    def publish(self, name: str, version: str, data: bytes) -> dict[str, Any]:
        """Upload an archive (``PUT /api/v1/plugins/NAME/VERSION``); the server's JSON answer."""
        response = self._send(
            "PUT",
            f"api/v1/plugins/{name}/{version}",
            content=data,
            headers={"Content-Type": "application/vnd.synapse.archive+zip"},
        )
        self._check(response, f"publish {name} {version}", ok=(200, 201))
        return _json(response)

    def yank(self, name: str, version: str, *, yanked: bool = True, reason: str = "") -> dict[str, Any]:
        """Hide (or show again) a version from resolution; it stays downloadable by its digest."""
        response = self._send(
            "POST", f"api/v1/plugins/{name}/{version}/yank", json={"yanked": yanked, "reason": reason}
        )
        self._check(response, f"yank {name} {version}")
        return _json(response)

    def whoami(self) -> dict[str, Any]:
        """Who the registry thinks we are (``client_id``, ``scopes``): checks the credentials end to end."""
        response = self._send("GET", "api/v1/whoami")
        self._check(response, "GET api/v1/whoami")
        return _json(response)


def _expired(name: str, index: Index) -> SignatureError:
    return SignatureError(
        f"registry {name!r}: index expired: it expired at {index.expires:%Y-%m-%d %H:%M:%SZ} and the registry has "
        "not re-signed it (a frozen mirror?)",
        reason="expired",
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {"result": data}


def _server_message(response: httpx.Response) -> str:
    try:
        data = json.loads(response.content[:8192])
    except ValueError:
        return response.content[:200].decode("utf-8", "replace").strip() or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message", error))[:500]
        if isinstance(error, str):
            return f"{error} {data.get('error_description', '')}".strip()[:500]
    return str(data)[:200]

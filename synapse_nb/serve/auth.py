"""Who may call a served plugin: listen addresses, the loopback rule and the optional bearer token.

A server binds 127.0.0.1 unless told otherwise. It refuses to bind an address that is not loopback without a
token (``--token-file``) unless ``--insecure-no-auth`` says so out loud. With a token, every call (plugin calls,
health, reflection, listings) must carry ``authorization: Bearer TOKEN`` (an HTTP header or gRPC metadata);
the comparison takes constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

__all__ = ["MIN_TOKEN_LENGTH", "Address", "BearerAuth", "check_exposure", "is_loopback", "parse_address"]

DEFAULT_HOST = "127.0.0.1"
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Address:
    """A listen address; ``port`` 0 picks a free port (the bound one is reported once listening)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, *, option: str) -> Address:
    """``HOST:PORT``, ``:PORT`` (host 127.0.0.1), ``[IPv6]:PORT`` or ``PORT``; UsageError naming ``option``."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"{option} {text!r}: write an IPv6 host in brackets, e.g. [::1]:50051")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"{option} {text!r}: expected HOST:PORT with a port from 0 to 65535 (0: any free port)")
    return Address(host or DEFAULT_HOST, int(port_text))


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise UsageError(f"cannot resolve listen host {host!r}: {exc.strerror or exc}") from None
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_exposure(addresses: list[Address], *, token: str | None, insecure_no_auth: bool) -> list[str]:
    """Refuse a non-loopback address without a token (unless ``insecure_no_auth``); returns warnings."""
    exposed = [str(a) for a in addresses if not is_loopback(a.host)]
    if not exposed or token is not None:
        return []
    if not insecure_no_auth:
        raise UsageError(
            f"refusing to listen on {', '.join(exposed)} (not loopback) without a token: pass --token-file FILE, "
            "or --insecure-no-auth to let anyone who can reach it call the plugins"
        )
    return [f"listening on {', '.join(exposed)} without authentication (--insecure-no-auth): anyone who can "
            "reach it can call the plugins"]  # fmt: skip


def read_token_file(path: str | Path) -> tuple[str, list[str]]:
    """The token in ``path`` (surrounding whitespace stripped) and warnings about the file's permissions."""
    file = Path(path)
    try:
        raw = file.read_bytes()
        mode = file.stat().st_mode
    except OSError as exc:
        raise UsageError(f"--token-file {str(file)!r}: cannot read it: {exc.strerror or exc}") from None
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"--token-file {str(file)!r}: the token is not UTF-8 text") from None
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise UsageError(
            f"--token-file {str(file)!r}: the token must be one line of at least {MIN_TOKEN_LENGTH} printable "
            "characters without spaces (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    warnings = []
    if mode & (stat.S_IRGRP | stat.S_IROTH) and os.name == "posix":
        warnings.append(f"--token-file {str(file)!r} is readable by other users: chmod 600 it")
    return token, warnings


class BearerAuth:
    """The check every call passes: no token configured lets everything through."""

    def __init__(self, token: str | None) -> None:
        self._expected = token.encode() if token is not None else None

    @property
    def required(self) -> bool:
        return self._expected is not None

    def allows(self, authorization: str | bytes | None) -> bool:
        """Whether an ``authorization`` header value (``Bearer TOKEN``) carries the token."""
        if self._expected is None:
            return True
        if authorization is None:
            return False
        value = authorization.encode("latin-1", "replace") if isinstance(authorization, str) else authorization
        scheme, _, presented = value.strip().partition(b" ")
        # compare_digest: the time taken does not depend on how much of the token matched.
        return scheme.lower() == b"bearer" and hmac.compare_digest(presented.strip(), self._expected)

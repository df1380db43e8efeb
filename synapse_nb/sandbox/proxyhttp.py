"""HTTP/1.x request heads as the egress proxy sees them: strict parsing, the destination, the rewrite, the body.

The proxy accepts two request forms (RFC 9112 section 3.2): ``CONNECT host:port`` (authority form, for TLS
and anything else tunnelled) and ``METHOD http://host[:port]/path`` (absolute form, plain HTTP). Everything
ambiguous is refused rather than interpreted: userinfo in the URL, a Host header naming another destination,
several Host or Content-Length headers, both Content-Length and Transfer-Encoding, folded header lines.

A plain HTTP request is forwarded in origin form with one consistent ``Host`` header and ``Connection:
close``; its body is framed (Content-Length or chunked) so that exactly one request reaches the upstream
server: bytes after it are dropped, never sent on as a second request for another host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .allowlist import EgressDenied, normalise_host

__all__ = [
    "HOP_BY_HOP",
    "MAX_HEAD",
    "BadRequest",
    "BodyFramer",
    "RequestHead",
    "absolute_target",
    "check_host_header",
    "connect_target",
    "parse_head",
    "rewrite",
    "split_authority",
    "status_response",
]

MAX_HEAD = 16 * 1024
MAX_HEADERS = 100
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
     "upgrade"}
)  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_TARGET = re.compile(r"^[\x21-\x7e]+$")
_REASONS = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large", 501: "Not Implemented",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}  # fmt: skip


class BadRequest(Exception):
    """A request the proxy will not interpret; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400, reason: str = "bad-request") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass
class RequestHead:
    """The request line and header fields, exactly as received (names keep their case)."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        lower = name.lower()
        return [v for k, v in self.headers if k.lower() == lower]


def parse_head(data: bytes) -> RequestHead:
    """Parse a request head (without the blank line); raises BadRequest for anything not strictly valid."""
    try:
        text = data.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest("request head is not text") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(f"malformed request line {lines[0][:80]!r}")
    method, target, version = parts
    if not _TOKEN.match(method) or version not in ("HTTP/1.0", "HTTP/1.1") or not _TARGET.match(target):
        raise BadRequest(f"malformed request line {lines[0][:80]!r}")
    head = RequestHead(method, target, version)
    for line in lines[1:]:
        if not line:
            raise BadRequest("empty line inside the request head")
        if line[0] in " \t":
            raise BadRequest("folded header lines are not accepted")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise BadRequest(f"malformed header line {line[:80]!r}")
        if any(ord(c) < 32 and c != "\t" for c in value) or "\x7f" in value:
            raise BadRequest(f"control characters in header {name!r}")
        head.headers.append((name, value.strip(" \t")))
    if len(head.headers) > MAX_HEADERS:
        raise BadRequest(f"more than {MAX_HEADERS} header fields", status=431)
    return head


def split_authority(authority: str, default_port: int | None) -> tuple[str, int]:
    """``host[:port]`` -> (host, port). Userinfo is refused; IPv6 literals keep their brackets."""
    if "@" in authority:
        raise BadRequest(f"userinfo is not accepted in {authority!r}")
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise BadRequest(f"malformed authority {authority!r}")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise BadRequest(f"malformed authority {authority!r}")
        port_text = rest[1:] if rest else ""
    else:
        # An unbracketed IPv6 literal ("::1:443", as some clients send it) keeps its colons in the host,
        # which the allowlist then refuses as an IP literal.
        host, _, port_text = authority.rpartition(":") if ":" in authority else (authority, "", "")
    if not host:
        raise BadRequest(f"no host in {authority!r}")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise BadRequest(f"invalid port in {authority!r}")
        return host, int(port_text)
    if default_port is None:
        raise BadRequest(f"CONNECT needs host:port, got {authority!r}")
    return host, default_port


def connect_target(head: RequestHead) -> tuple[str, int]:
    """The destination of a CONNECT request."""
    return split_authority(head.target, None)


def absolute_target(head: RequestHead) -> tuple[str, int, str]:
    """(host, port, origin-form path) of an absolute-form plain HTTP request."""
    target = head.target
    scheme, sep, rest = target.partition("://")
    if not sep:
        raise BadRequest(
            f"{head.method} {target[:80]!r}: the proxy needs an absolute URL (http://host/path) or CONNECT host:port"
        )
    if scheme.lower() != "http":
        raise BadRequest(f"scheme {scheme!r} is not proxied in plain form (use CONNECT for https)", status=501)
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    if "#" in target or "\\" in target:
        raise BadRequest(f"fragments and backslashes are not accepted in {target[:80]!r}")
    host, port = split_authority(authority, 80)
    if not path.startswith("/"):
        path = "/" + path
    return host, port, path


def check_host_header(head: RequestHead, host: str, port: int) -> None:
    """Refuse a Host header that names another destination than the URL (compared after normalisation)."""
    values = head.values("host")
    if len(values) > 1:
        raise BadRequest("several Host headers", reason="host-mismatch")
    if not values:
        return
    try:
        header_host, header_port = split_authority(values[0], 80)
        same = normalise_host(header_host) == normalise_host(host) and header_port == port
    except (BadRequest, EgressDenied):
        same = False
    if not same:
        raise BadRequest(
            f"Host header {values[0]!r} does not match the URL's {host}:{port}", reason="host-mismatch"
        )  # fmt: skip


def rewrite(head: RequestHead, host: str, port: int, path: str) -> bytes:
    """The request head sent upstream: origin form, one Host header, hop-by-hop fields removed, no keep-alive."""
    named = {token.strip().lower() for value in head.values("connection") for token in value.split(",")}
    lines = [f"{head.method} {path} {head.version}", f"Host: {host}" + ("" if port == 80 else f":{port}")]
    for name, value in head.headers:
        lower = name.lower()
        if lower == "host" or lower in HOP_BY_HOP or lower in named:
            continue
        lines.append(f"{name}: {value}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class BodyFramer:
    """Passes exactly one request body through (Content-Length or chunked), then reports ``done``."""

    def __init__(self, head: RequestHead) -> None:
        lengths = {v.strip() for v in head.values("content-length")}
        codings = [t.strip().lower() for v in head.values("transfer-encoding") for t in v.split(",") if t.strip()]
        if lengths and codings:
            raise BadRequest("both Content-Length and Transfer-Encoding")
        if len(lengths) > 1 or (lengths and not next(iter(lengths)).isdigit()):
            raise BadRequest("invalid or conflicting Content-Length")
        if codings and codings != ["chunked"]:
            raise BadRequest(f"unsupported Transfer-Encoding {', '.join(codings)!r}", status=501)
        self.chunked = bool(codings)
        self.remaining = int(next(iter(lengths))) if lengths else 0
        self._state = "size" if self.chunked else "data"
        self._line = bytearray()
        self.done = not self.chunked and self.remaining == 0

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` that belongs to the body; anything after the body's end is dropped."""
        if self.done:
            return b""
        if not self.chunked:
            piece = data[: self.remaining]
            self.remaining -= len(piece)
            self.done = self.remaining == 0
            return piece
        return self._feed_chunked(data)

    def _feed_chunked(self, data: bytes) -> bytes:
        out = bytearray()
        i = 0
        while i < len(data) and not self.done:
            if self._state == "data":
                take = min(self.remaining, len(data) - i)
                out += data[i : i + take]
                i += take
                self.remaining -= take
                if self.remaining == 0:
                    self._state = "crlf"
                continue
            # "size", "crlf" and "trailer" are line-based.
            end = data.find(b"\n", i)
            chunk = data[i:] if end < 0 else data[i : end + 1]
            self._line += chunk
            out += chunk
            i += len(chunk)
            if len(self._line) > 4096:
                raise BadRequest("chunk header line too long")
            if end < 0:
                break
            line = bytes(self._line).rstrip(b"\r\n")
            self._line.clear()
            if self._state == "size":
                size_text = line.split(b";", 1)[0].strip()
                try:
                    self.remaining = int(size_text, 16)
                except ValueError:
                    raise BadRequest("malformed chunk size") from None
                self._state = "trailer" if self.remaining == 0 else "data"
            elif self._state == "crlf":
                if line:
                    raise BadRequest("malformed chunk terminator")
                self._state = "size"
            elif not line:  # trailer section ends with an empty line
                self.done = True
        return bytes(out)


def status_response(status: int, text: str, *, reason: str | None = None) -> bytes:
    """A complete, closing response with a short plain-text body (the proxy's own answers)."""
    body = (text.rstrip("\n") + "\n").encode("utf-8", "replace")
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "Content-Type: text/plain; charset=utf-8",
            f"Content-Length: {len(body)}", "Connection: close"]  # fmt: skip
    if reason is not None:
        head.append(f"X-Synapse-Egress: denied; reason={reason}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

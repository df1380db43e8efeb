"""Network scopes as data: the normalised allowlist of ``network_access.domains`` and the egress decisions.

Pure functions, no I/O except the resolver the caller passes in. The rules, in the order they are applied
(each refusal carries a machine-readable ``reason``):

1. the host name is normalised: lower-cased, one trailing dot removed, IDNA-encoded; anything that is not a
   plain DNS name afterwards (empty labels, ``_``, ``%``, spaces, userinfo) is ``invalid-host``;
2. IP literals are refused (``ip-literal``): dotted quads, IPv6 (bracketed or not), and every form
   ``inet_aton`` accepts (``2130706433``, ``0x7f000001``, ``017700000001``, ``127.1``), as well as any name
   whose last label is numeric, which URL parsers treat as an IPv4 address;
3. the name must match an entry (``not-listed``): an exact name, or ``*.suffix`` for *subdomains only*
   (``*.example.org`` never matches ``example.org`` itself nor ``badexample.org``);
4. the port must be 80 or 443, or exactly the one listed with the entry as ``host:port`` (``port-not-listed``);
5. only then is the name resolved (so names that are not listed never reach DNS: no exfiltration through
   lookups of ``<secret>.attacker.example``), and *every* address must be public unicast
   (``non-public-address``); the single exception is the entry ``localhost`` (or ``localhost:PORT``) listed
   literally, whose addresses must all be loopback. The caller connects to these checked addresses, never
   to a second resolution (no DNS-rebinding window).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PORTS",
    "AllowEntry",
    "Allowlist",
    "Decision",
    "EgressDenied",
    "Resolver",
    "address_refusal",
    "is_ip_literal",
    "normalise_host",
    "system_resolver",
]

DEFAULT_PORTS = frozenset({80, 443})
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAME_CHARS = re.compile(r"^[a-z0-9.-]+$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

Resolver = Callable[[str, int], list[str]]
"""``resolver(host, port)`` -> the addresses ``host`` resolves to (raises ``OSError`` when it does not)."""


class EgressDenied(Exception):
    """A refused destination: ``reason`` is a short code, ``str()`` a one-line explanation naming the host."""

    def __init__(self, reason: str, message: str, *, host: str, port: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.host = host
        self.port = port


@functools.lru_cache(maxsize=1024)
def normalise_host(raw: str) -> str:
    """``raw`` as a canonical DNS name: lower case, no trailing dot, IDNA (punycode) for non-ASCII labels.

    Raises :class:`EgressDenied` (``invalid-host``) when the result is not a plain DNS name. IP literals pass
    through unchanged apart from case (check them with :func:`is_ip_literal`).
    """
    host = raw.strip().lower()
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > 253:
        raise EgressDenied("invalid-host", f"{raw!r} is not a host name", host=raw)
    if host.startswith("[") or ":" in host or is_ip_literal(host):
        return host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise EgressDenied("invalid-host", f"{raw!r} is not a valid internationalised name", host=raw) from None
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise EgressDenied("invalid-host", f"{raw!r} is not a host name", host=raw)
    return host


def is_ip_literal(host: str) -> bool:
    """Is ``host`` an IP address in any spelling a resolver or URL parser would accept as one?"""
    text = host.strip().lower().rstrip(".")
    if not text:
        return False
    if text.startswith("[") or ":" in text:
        return True  # IPv6, bracketed or not (ports are split off before this is called)
    # Every IPv4 spelling inet_aton accepts (2130706433, 0x7f000001, 017700000001, 127.1, 0x7f.1) ends in a
    # numeric label, and URL parsers treat such a host as IPv4 ("ends in a number"): refuse them all.
    if _NUMERIC_LABEL.match(text.rsplit(".", 1)[-1]):
        return True
    if _NAME_CHARS.match(text):
        return False  # letters, digits, hyphens and dots, not ending in a number: a name
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(text)  # glibc's also accepts trailing junk: "127.0.0.1 x"
        return True
    except (OSError, ValueError):
        return False


def _unwrap(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_refusal(address: str, *, loopback_ok: bool = False) -> str | None:
    """Why a connection to ``address`` is refused (a short phrase), or None when it is public unicast.

    With ``loopback_ok`` (the literal ``localhost`` entry), only loopback addresses are accepted.
    """
    try:
        ip = _unwrap(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return f"{address!r} is not an IP address"
    if loopback_ok:
        return None if ip.is_loopback else f"{ip} is not a loopback address"
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return f"{ip} is a {label} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


@dataclass(frozen=True)
class AllowEntry:
    """One normalised entry: ``name`` (without ``*.``), whether it is a subdomain wildcard, and its port."""

    name: str
    wildcard: bool = False
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """``api.example.com``, ``*.example.org``, ``host:8443``; IP literals and bad names raise EgressDenied."""
        raw = text.strip()
        port: int | None = None
        host = raw
        if raw.count(":") == 1:
            host, _, port_text = raw.partition(":")
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise EgressDenied("invalid-host", f"{text!r} has an invalid port", host=text)
            port = int(port_text)
        wildcard = host.startswith("*.")
        if wildcard:
            host = host[2:]
        if is_ip_literal(host):
            raise EgressDenied("ip-literal", f"{text!r} is an IP address; list host names only", host=text)
        return cls(name=normalise_host(host), wildcard=wildcard, port=port)

    @property
    def is_localhost(self) -> bool:
        """The literal ``localhost`` entry, the only one allowed to reach loopback addresses."""
        return self.name == "localhost" and not self.wildcard

    def matches_name(self, host: str) -> bool:
        if self.wildcard:
            return host.endswith("." + self.name)
        return host == self.name

    def allows_port(self, port: int) -> bool:
        return port in DEFAULT_PORTS if self.port is None else port == self.port

    def __str__(self) -> str:
        text = ("*." if self.wildcard else "") + self.name
        return text if self.port is None else f"{text}:{self.port}"


@dataclass(frozen=True)
class Decision:
    """An allowed destination: the normalised host, the port, and the checked addresses to connect to."""

    host: str
    port: int
    addresses: tuple[str, ...]
    entry: AllowEntry


def system_resolver(host: str, port: int) -> list[str]:
    """The host's own resolver (``getaddrinfo``), TCP addresses in the order it returns them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


@dataclass(frozen=True)
class Allowlist:
    """The normalised ``network_access.domains`` of one plugin."""

    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, domains: Iterable[str]) -> Allowlist:
        return cls(tuple(AllowEntry.parse(d) for d in domains))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def match(self, raw_host: str, port: int) -> AllowEntry:
        """The entry allowing ``raw_host:port`` by name and port (no DNS); raises EgressDenied otherwise."""
        if is_ip_literal(raw_host):
            raise EgressDenied(
                "ip-literal", f"{raw_host!r} is an IP address; only listed host names are reachable", host=raw_host
            )
        host = normalise_host(raw_host)
        named = [e for e in self.entries if e.matches_name(host)]
        if not named:
            raise EgressDenied(
                "not-listed", f"{host!r} is not in network_access.domains", host=host, port=port
            )  # fmt: skip
        for entry in named:
            if entry.allows_port(port):
                return entry
        listed = sorted({e.port for e in named if e.port is not None})
        allowed = ", ".join(str(p) for p in listed) if listed else "80, 443"
        raise EgressDenied(
            "port-not-listed",
            f"{host!r} is listed, but not port {port} (allowed: {allowed}; list '{host}:{port}' to allow it)",
            host=host,
            port=port,
        )

    def decide(self, raw_host: str, port: int, resolve: Resolver = system_resolver) -> Decision:
        """The full decision for ``raw_host:port``: name, port, then the resolved addresses (all checked)."""
        entry = self.match(raw_host, port)
        host = normalise_host(raw_host)  # cached: match() normalised it already
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise EgressDenied("unresolvable", f"{host!r} does not resolve: {exc}", host=host, port=port) from None
        if not addresses:
            raise EgressDenied("unresolvable", f"{host!r} resolves to no address", host=host, port=port)
        for address in addresses:
            why = address_refusal(address, loopback_ok=entry.is_localhost)
            if why is not None:
                note = "" if entry.is_localhost else " (only the entry 'localhost' may reach loopback)"
                raise EgressDenied(
                    "non-public-address", f"{host!r} resolves to {address}: {why}{note}", host=host, port=port
                )
        return Decision(host=host, port=port, addresses=tuple(addresses), entry=entry)

"""The allowlist of network scopes (pure): normalisation, wildcards, IP literals, ports, resolved addresses."""

from __future__ import annotations

import pytest

from synapse_nb.sandbox.allowlist import (
    AllowEntry,
    Allowlist,
    EgressDenied,
    address_refusal,
    is_ip_literal,
    normalise_host,
)


class TableResolver:
    """A resolver for the unit seam: fixed answers, and a record of every name looked up."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.looked_up: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.looked_up.append(host)
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return self.table[host]


PUBLIC = "93.184.215.14"


def denied(allow: Allowlist, host: str, port: int = 443, resolver: TableResolver | None = None) -> EgressDenied:
    with pytest.raises(EgressDenied) as info:
        allow.decide(host, port, resolver or TableResolver({}))
    return info.value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ALLOWED.COM.", "allowed.com"),
        ("Api.Example.Org", "api.example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_host_names_are_lower_cased_stripped_of_one_trailing_dot_and_idna_encoded(raw: str, expected: str) -> None:
    assert normalise_host(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", ".", "a..b", "allowed.com..", "a_b.com", "a%2eb.com", "a b.com", "-a.com", "x" * 64]
)
def test_names_that_are_not_plain_dns_names_are_invalid(raw: str) -> None:
    with pytest.raises(EgressDenied) as info:
        normalise_host(raw)
    assert info.value.reason == "invalid-host"


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "169.254.169.254", "2130706433", "0x7f000001", "017700000001", "127.1", "0x7f.1", "::1", "[::1]",
     "::ffff:127.0.0.1", "[fe80::1%25eth0]", "example.123", "1.2.3.4."],
)  # fmt: skip
def test_every_spelling_of_an_ip_address_is_an_ip_literal(host: str) -> None:
    assert is_ip_literal(host)


@pytest.mark.parametrize("host", ["example.com", "0x.example", "1password.com", "a1.b2.c3"])
def test_names_with_digits_are_not_ip_literals(host: str) -> None:
    assert not is_ip_literal(host)


def test_ip_literals_are_refused_even_when_listed_spelled_as_names() -> None:
    allow = Allowlist.parse(["example.com"])
    for host in ("127.0.0.1", "2130706433", "0x7f000001", "[::1]", "169.254.169.254"):
        assert denied(allow, host).reason == "ip-literal", host
    with pytest.raises(EgressDenied, match="is an IP address"):
        Allowlist.parse(["10.0.0.1"])


def test_an_exact_entry_matches_only_that_name_in_any_case_and_with_a_trailing_dot() -> None:
    allow = Allowlist.parse(["allowed.com"])
    assert allow.match("ALLOWED.COM.", 443).name == "allowed.com"
    for host in ("allowed.com.evil.com", "evilallowed.com", "sub.allowed.com", "allowed.co"):
        assert denied(allow, host).reason == "not-listed", host


def test_a_wildcard_matches_subdomains_only_never_the_bare_domain() -> None:
    allow = Allowlist.parse(["*.example.org"])
    assert allow.match("a.example.org", 443).wildcard
    assert allow.match("a.b.Example.Org.", 80).wildcard
    for host in ("example.org", "badexample.org", "example.org.evil.com"):
        assert denied(allow, host).reason == "not-listed", host


def test_ports_are_80_and_443_unless_the_entry_lists_one() -> None:
    allow = Allowlist.parse(["api.example.com", "db.example.com:8443"])
    assert allow.match("api.example.com", 80).port is None
    assert allow.match("api.example.com", 443).port is None
    assert allow.match("db.example.com", 8443).port == 8443
    error = denied(allow, "api.example.com", 22)
    assert error.reason == "port-not-listed"
    assert "list 'api.example.com:22' to allow it" in str(error)
    assert denied(allow, "db.example.com", 443).reason == "port-not-listed"


def test_entries_print_back_normalised() -> None:
    assert [str(e) for e in Allowlist.parse(["API.Example.com.", "*.Example.org:8443"]).entries] == [
        "api.example.com",
        "*.example.org:8443",
    ]
    assert AllowEntry.parse("localhost").is_localhost
    assert not AllowEntry.parse("*.localhost").is_localhost


def test_names_that_are_not_listed_are_never_resolved() -> None:
    resolver = TableResolver({"allowed.com": [PUBLIC]})
    allow = Allowlist.parse(["allowed.com"])
    for host in ("secret-data.attacker.example", "allowed.com.evil.com", "evil.com"):
        denied(allow, host, resolver=resolver)
    denied(allow, "allowed.com", 25, resolver=resolver)
    assert resolver.looked_up == []
    assert allow.decide("allowed.com", 443, resolver).addresses == (PUBLIC,)
    assert resolver.looked_up == ["allowed.com"]


@pytest.mark.parametrize(
    ("address", "kind"),
    [("127.0.0.1", "loopback"), ("169.254.169.254", "link-local"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
     ("::1", "loopback"), ("fe80::1", "link-local"), ("fd00::1", "private"), ("::ffff:127.0.0.1", "loopback"),
     ("64:ff9b::a9fe:a9fe", "link-local"), ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"),
     ("100.64.0.1", "public")],
)  # fmt: skip
def test_addresses_that_are_not_public_unicast_are_refused(address: str, kind: str) -> None:
    why = address_refusal(address)
    assert why is not None
    assert kind in why


def test_a_listed_name_resolving_to_loopback_or_metadata_is_refused() -> None:
    resolver = TableResolver({"sneaky.example": ["127.0.0.1"], "meta.example": [PUBLIC, "169.254.169.254"]})
    allow = Allowlist.parse(["sneaky.example", "meta.example"])
    error = denied(allow, "sneaky.example", resolver=resolver)
    assert error.reason == "non-public-address"
    assert "resolves to 127.0.0.1: 127.0.0.1 is a loopback address" in str(error)
    assert "only the entry 'localhost' may reach loopback" in str(error)
    assert "169.254.169.254 is a link-local address" in str(denied(allow, "meta.example", resolver=resolver))


def test_only_the_literal_localhost_entry_reaches_loopback_and_only_loopback() -> None:
    resolver = TableResolver({"localhost": ["127.0.0.1", "::1"], "a.localhost": ["127.0.0.1"]})
    allow = Allowlist.parse(["localhost:8080", "*.localhost:8080"])
    assert allow.decide("LOCALHOST.", 8080, resolver).addresses == ("127.0.0.1", "::1")
    assert denied(allow, "a.localhost", 8080, resolver).reason == "non-public-address"
    assert denied(allow, "localhost", 80, resolver).reason == "port-not-listed"
    odd = TableResolver({"localhost": ["10.0.0.5"]})
    assert "not a loopback address" in str(denied(Allowlist.parse(["localhost"]), "localhost", 80, odd))


def test_a_name_that_does_not_resolve_is_refused_with_its_name() -> None:
    error = denied(Allowlist.parse(["gone.example"]), "gone.example")
    assert error.reason == "unresolvable"
    assert error.host == "gone.example"

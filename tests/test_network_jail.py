"""Network scopes under the real nsjail: hostile plugins with and without ``network_access.domains`` try every
way out; only listed names on listed ports get through the host's egress proxy, and every refusal is an event.

The client plugin takes its orders in the payload, so each allowlist costs one cold start."""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.errors import SandboxError
from synapse_nb.plugin import Plugin, load
from synapse_nb.sandbox.jail import EGRESS_DIR

from .network_helpers import Listener, RecordingServer, recording_server, write_network_plugin
from .sandbox_helpers import require_nsjail

CLIENT = """
import http.client, socket, urllib.error, urllib.request
op = data["op"]
def attempt(fn):
    try:
        return fn()
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "reason": exc.headers.get("X-Synapse-Egress"), "body": exc.read().decode()}
    except OSError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
def get():
    with urllib.request.urlopen(data["url"], timeout=5) as r:
        return {"status": r.status, "body": r.read().decode()}
def raw():
    conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=5)
    conn.request("GET", data["url"])
    r = conn.getresponse()
    return {"status": r.status, "location": r.getheader("Location"), "body": r.read().decode()}
def tunnel():
    conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=5)
    conn.set_tunnel(data["host"], data["port"])
    conn.request("GET", "/through-tunnel")
    r = conn.getresponse()
    return {"status": r.status, "body": r.read().decode()}
def direct_connect():
    with socket.create_connection((data["host"], data["port"]), timeout=2):
        return {"connected": True}
def unix_connect():
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect("/run/synapse-egress/egress.sock")
        s.sendall(data["request"].encode())
        return {"answer": s.recv(4096).decode(errors="replace")}
if op == "env":
    return {"env": {k: v for k, v in os.environ.items() if "proxy" in k.lower()},
            "interfaces": [n for _, n in socket.if_nameindex()], "egress": os.path.isdir("/run/synapse-egress"),
            "resolv": os.path.exists("/etc/resolv.conf")}
if op == "unset":
    for name in [k for k in os.environ if "proxy" in k.lower()]:
        del os.environ[name]
    def fresh_get():  # a new opener reads the (now proxy-less) environment
        with urllib.request.build_opener(urllib.request.ProxyHandler()).open(data["url"], timeout=5) as r:
            return {"status": r.status, "body": r.read().decode()}
    return {"get": attempt(fresh_get), "direct": attempt(direct_connect), "env": sorted(os.environ)}
if op == "udp":
    out = {}
    for host, port in data["targets"]:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"leak", (host, port))
            out[f"{host}:{port}"] = "sent"
        except OSError as exc:
            out[f"{host}:{port}"] = type(exc).__name__
    return out
if op == "takeover":  # bind the proxy port ourselves; hand the proxy a listener of our own
    out = {}
    try:
        socket.socket().bind(("127.0.0.1", 3128))
        out["bind"] = "bound"
    except OSError as exc:
        out["bind"] = type(exc).__name__
    own = socket.socket()
    own.bind(("127.0.0.1", 0))
    own.listen()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect("/run/synapse-egress/egress.sock")
        socket.send_fds(s, [b"L"], [own.fileno()])
        s.recv(1)
    out["own_port"] = own.getsockname()[1]
    return out
if op == "dns":
    out = {}
    for name in data["names"]:
        try:
            socket.getaddrinfo(name, 443)
            out[name] = "resolved"
        except OSError as exc:
            out[name] = type(exc).__name__
    return out
return attempt({"get": get, "raw": raw, "tunnel": tunnel, "direct": direct_connect, "unix": unix_connect}[op])
"""

pytestmark = pytest.mark.usefixtures("_nsjail")


@pytest.fixture(scope="module")
def _nsjail() -> None:
    require_nsjail()


@pytest.fixture(scope="module")
def server() -> Iterator[RecordingServer]:
    with recording_server() as srv:
        yield srv


@pytest.fixture
def jupyter() -> Iterator[Listener]:
    """A listener standing in for the Jupyter server on the host's loopback."""
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("net-home")
    old = os.environ.get("SYNAPSE_HOME")
    os.environ["SYNAPSE_HOME"] = str(home)
    yield home
    if old is not None:
        os.environ["SYNAPSE_HOME"] = old


def client_plugin(folder: Path, domains: list[str], name: str = "net-client") -> Plugin:
    return load(write_network_plugin(folder, CLIENT, domains, name=name))


@pytest.fixture(scope="module")
def client(
    home: Path, server: RecordingServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Plugin]:  # fmt: skip
    """A plugin allowed exactly ``localhost:<the test server's port>`` and ``allowed.test``."""
    plugin = client_plugin(tmp_path_factory.mktemp("client") / "client", [f"localhost:{server.port}", "allowed.test"])
    yield plugin
    plugin.teardown()


@pytest.fixture
def fresh(server: RecordingServer) -> RecordingServer:
    server.requests.clear()
    return server


def run(plugin: Plugin, **order: Any) -> Any:
    return plugin.run(order)


def test_an_allowed_request_to_a_listed_localhost_port_succeeds(client: Plugin, fresh: RecordingServer) -> None:
    invocation = client.invoke({"op": "get", "url": f"http://localhost:{fresh.port}/ok"})
    assert invocation.result == {"status": 200, "body": "hello /ok"}
    assert invocation.meta["isolation"] == "nsjail"
    assert [r["path"] for r in fresh.requests] == ["/ok"]
    assert fresh.requests[0]["headers"]["Host"] == f"localhost:{fresh.port}"


def test_a_tunnel_to_a_listed_localhost_port_succeeds(client: Plugin, fresh: RecordingServer) -> None:
    assert run(client, op="tunnel", host="localhost", port=fresh.port) == {
        "status": 200,
        "body": "hello /through-tunnel",
    }


def test_an_upper_case_name_with_a_trailing_dot_is_normalised_and_allowed(
    client: Plugin, fresh: RecordingServer
) -> None:
    assert run(client, op="get", url=f"http://LOCALHOST.:{fresh.port}/dot")["status"] == 200
    assert fresh.requests[-1]["headers"]["Host"] == f"localhost:{fresh.port}"


def test_the_jail_keeps_an_empty_network_namespace_with_proxy_variables_for_the_relay(client: Plugin) -> None:
    result = run(client, op="env")
    assert result["interfaces"] == ["lo"]
    assert result["env"]["HTTP_PROXY"] == result["env"]["https_proxy"] == "http://127.0.0.1:3128"
    assert result["env"]["NO_PROXY"] == ""
    assert result["egress"] is True
    assert result["resolv"] is False


def test_tcp_to_a_host_loopback_listener_and_udp_to_port_53_get_nowhere(client: Plugin, jupyter: Listener) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.3)
        udp_port = udp.getsockname()[1]
        tcp = run(client, op="direct", host="127.0.0.1", port=jupyter.port)
        sent = run(client, op="udp", targets=[["127.0.0.1", udp_port], ["127.0.0.1", 53], ["8.8.8.8", 53]])
        with pytest.raises(TimeoutError):
            udp.recvfrom(100)
    assert tcp["error"] == "ConnectionRefusedError"
    assert sent["8.8.8.8:53"] == "OSError"  # no route: the namespace has only lo
    assert jupyter.got_nothing()


def test_dns_lookups_fail_in_the_jail_even_for_listed_names(client: Plugin) -> None:
    names = ["allowed.test", "example.com", "secret.attacker.example"]
    assert run(client, op="dns", names=names) == dict.fromkeys(names, "gaierror")


@pytest.mark.parametrize(
    ("url", "reason", "host"),
    [
        ("http://evil.example/", "not-listed", "evil.example"),
        ("http://allowed.test.evil.example/", "not-listed", "allowed.test.evil.example"),
        ("http://127.0.0.1:{port}/", "ip-literal", "127.0.0.1"),
        ("http://2130706433:{port}/", "ip-literal", "2130706433"),
        ("http://[::1]:{port}/", "ip-literal", "[::1]"),
        ("http://169.254.169.254/latest/meta-data/", "ip-literal", "169.254.169.254"),
        ("http://allowed.test:8080/", "port-not-listed", "allowed.test"),
    ],
)
def test_refused_destinations_answer_403_and_are_events_naming_the_host(
    client: Plugin, fresh: RecordingServer, url: str, reason: str, host: str
) -> None:
    before = len(client.network_events)
    result = run(client, op="get", url=url.format(port=fresh.port))
    assert result["status"] == 403
    assert result["reason"] == f"denied; reason={reason}"
    assert host in result["body"]
    assert fresh.requests == []
    [event] = client.network_events[before:]
    assert (event["host"], event["reason"], event["plugin"]) == (host, reason, "net-client")
    assert client.worker is not None
    assert client.worker.network_events[-1] == event


def test_https_to_an_unlisted_domain_fails_at_the_tunnel(client: Plugin) -> None:
    result = run(client, op="get", url="https://evil.example/")
    assert result["error"] == "URLError"
    assert "Tunnel connection failed: 403" in result["message"]
    assert client.network_events[-1]["host"] == "evil.example"


def test_a_listed_domain_on_an_unlisted_port_is_refused(client: Plugin, jupyter: Listener) -> None:
    result = run(client, op="get", url=f"http://localhost:{jupyter.port}/")
    assert (result["status"], result["reason"]) == (403, "denied; reason=port-not-listed")
    assert jupyter.got_nothing()


def test_a_connect_to_the_jupyter_servers_port_on_the_host_is_refused(client: Plugin, jupyter: Listener) -> None:
    for host in ("localhost", "127.0.0.1", "::1", "0x7f000001"):
        result = run(client, op="tunnel", host=host, port=jupyter.port)
        assert result["error"] == "OSError"
        assert "Tunnel connection failed: 403" in result["message"], host
    # Skipping the relay and talking to the proxy's socket directly changes nothing.
    answer = run(client, op="unix", request=f"CONNECT localhost:{jupyter.port} HTTP/1.1\r\n\r\n")["answer"]
    assert answer.startswith("HTTP/1.1 403 Forbidden")
    assert jupyter.got_nothing()


def test_a_redirect_from_the_allowed_host_to_a_forbidden_one_is_not_followed(
    client: Plugin, fresh: RecordingServer, jupyter: Listener
) -> None:
    fresh.redirect_to = f"http://localhost:{jupyter.port}/api/contents"
    raw = run(client, op="raw", url=f"http://localhost:{fresh.port}/redirect")
    assert (raw["status"], raw["location"]) == (302, fresh.redirect_to)
    # urllib follows redirects itself: the follow-up goes through the proxy again, and is refused.
    followed = run(client, op="get", url=f"http://localhost:{fresh.port}/redirect")
    assert (followed["status"], followed["reason"]) == (403, "denied; reason=port-not-listed")
    assert [r["path"] for r in fresh.requests] == ["/redirect", "/redirect"]
    assert client.network_events[-1]["port"] == jupyter.port
    assert jupyter.got_nothing()


def test_unsetting_the_proxy_variables_leaves_no_way_out(
    client: Plugin, fresh: RecordingServer, jupyter: Listener
) -> None:
    result = run(client, op="unset", url=f"http://localhost:{fresh.port}/direct", host="127.0.0.1", port=jupyter.port)
    assert not [name for name in result["env"] if "proxy" in name.lower()]
    assert result["get"]["error"] == "URLError"
    assert "Connection refused" in result["get"]["message"]
    assert result["direct"]["error"] == "ConnectionRefusedError"
    assert fresh.requests == []
    assert jupyter.got_nothing()


def loopback_alias() -> str:
    """A name other than localhost that this host's resolver maps to a non-public address (its hostname, usually)."""
    for name in (socket.gethostname(), "localhost.localdomain", "ip6-localhost", "ip6-loopback"):
        if name.lower().rstrip(".") == "localhost":
            continue
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
        except OSError:
            continue
        if addresses and not any(ipaddress.ip_address(a.split("%")[0]).is_global for a in addresses):
            return name
    pytest.fail("no host name other than localhost resolves to a loopback or private address here", pytrace=False)


def test_a_listed_name_resolving_to_a_non_public_address_is_refused(home: Path, tmp_path: Path) -> None:
    alias = loopback_alias()
    with recording_server() as srv:
        plugin = client_plugin(tmp_path / "alias", [f"{alias}:{srv.port}"], name="alias-client")
        try:
            result = run(plugin, op="get", url=f"http://{alias}:{srv.port}/")
            assert (result["status"], result["reason"]) == (403, "denied; reason=non-public-address")
            assert "only the entry 'localhost' may reach loopback" in result["body"] or "private" in result["body"]
            assert srv.requests == []
        finally:
            plugin.teardown()


def test_a_plugin_without_network_scopes_has_no_proxy_no_socket_and_no_relay(home: Path, tmp_path: Path) -> None:
    plugin = client_plugin(tmp_path / "none", [], name="offline")
    try:
        result = run(plugin, op="env")
        assert result == {"env": {}, "interfaces": ["lo"], "egress": False, "resolv": False}
        assert plugin.worker is not None
        assert plugin.worker.egress is None
    finally:
        plugin.teardown()


def test_an_ip_address_in_network_access_is_refused_at_activation(home: Path, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=r"network_access.domains: '10.0.0.1' is an IP address") as info:
        client_plugin(tmp_path / "ip", ["10.0.0.1"], name="ip-listed")
    assert info.value.exit_code == 8


def socket_fds() -> set[str]:
    """Open socket descriptors of this process (pipes are left out: the launcher keeps a spare worker's)."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return out


def test_the_proxy_goes_away_with_the_worker(home: Path, tmp_path: Path, server: RecordingServer) -> None:
    before = socket_fds()
    plugin = client_plugin(tmp_path / "gone", [f"localhost:{server.port}"], name="short-lived")
    assert run(plugin, op="get", url=f"http://localhost:{server.port}/x")["status"] == 200
    worker = plugin.worker
    assert worker is not None
    assert worker.egress is not None
    directory = worker.egress.directory
    assert directory is not None
    assert directory.exists()
    assert [t for t in threading.enumerate() if t.name == "synapse-egress-short-lived"]
    plugin.teardown()
    assert not directory.exists()
    assert not [t for t in threading.enumerate() if t.name == "synapse-egress-short-lived"]
    assert not [t for t in threading.enumerate() if t.name == "synapse-egress-conn"]
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not socket_fds() <= before:
        time.sleep(0.01)
    assert socket_fds() <= before
    assert worker.network_events == []  # still readable after the worker is gone


def test_the_relay_inside_the_jail_mounts_the_socket_directory_read_only(client: Plugin) -> None:
    answer = run(client, op="unix", request="GET http://allowed.test.evil.example/ HTTP/1.1\r\n\r\n")["answer"]
    assert answer.startswith("HTTP/1.1 403")
    assert client.worker is not None
    assert client.worker.config is not None
    [mount] = [m for m in client.worker.config.mounts() if m["dst"] == EGRESS_DIR]
    assert mount["rw"] is False


def test_the_plugin_can_neither_take_over_the_proxy_port_nor_hand_the_proxy_another(client: Plugin) -> None:
    result = run(client, op="takeover")
    assert result["bind"] == "OSError"  # EADDRINUSE: the host holds the port
    assert client.worker is not None
    assert client.worker.egress is not None
    listener = client.worker.egress.jail_listener
    assert listener is not None
    assert listener.getsockname() == ("127.0.0.1", 3128)
    assert run(client, op="env")["interfaces"] == ["lo"]

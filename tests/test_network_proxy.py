"""The host-side egress proxy over real sockets: requests arrive on its Unix socket as they would from a jail's
relay, and go to real HTTP servers on loopback. Only the resolver is replaced, and only in the tests about what a
listed name resolves to (this host's DNS cannot be made to answer 169.254.169.254)."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from synapse_nb.sandbox.allowlist import Allowlist, system_resolver
from synapse_nb.sandbox.proxy import EgressEvent, EgressProxy, recent_egress_events, subscribe_egress
from synapse_nb.sandbox.proxyhttp import BadRequest, BodyFramer, parse_head, split_authority

from .network_helpers import Listener, RecordingServer, recording_server

MakeProxy = Callable[..., EgressProxy]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with recording_server() as srv:
        yield srv


@pytest.fixture
def make_proxy() -> Iterator[MakeProxy]:
    made: list[EgressProxy] = []

    def make(domains: list[str], **kwargs: object) -> EgressProxy:
        proxy = EgressProxy(Allowlist.parse(domains), plugin="proxy-test", **kwargs)  # type: ignore[arg-type]
        proxy.start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


def connect(proxy: EgressProxy) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(proxy.socket_path))
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def exchange(proxy: EgressProxy, request: bytes) -> bytes:
    with connect(proxy) as sock:
        sock.sendall(request)
        return read_all(sock)


def test_a_get_to_a_listed_port_of_localhost_reaches_the_server_in_origin_form(
    make_proxy: MakeProxy, server: RecordingServer
) -> None:
    proxy = make_proxy([f"localhost:{server.port}"])
    request = (
        f"GET http://localhost:{server.port}/x?y=1 HTTP/1.1\r\nHost: LOCALHOST.:{server.port}\r\n"
        "Proxy-Authorization: secret\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n\r\n"
    )
    response = exchange(proxy, request.encode())
    assert response.startswith(b"HTTP/1.0 200")
    assert response.endswith(b"hello /x?y=1")
    [seen] = server.requests
    assert seen["path"] == "/x?y=1"
    assert seen["headers"]["Host"] == f"localhost:{server.port}"
    assert seen["headers"]["Connection"] == "close"
    assert seen["headers"]["X-Kept"] == "yes"
    assert not any(name.lower().startswith("proxy-") for name in seen["headers"])
    assert proxy.allowed == 1
    assert proxy.refusals() == []


def test_a_redirect_to_a_forbidden_host_is_returned_untouched_and_never_followed(
    make_proxy: MakeProxy, server: RecordingServer
) -> None:
    jupyter = Listener()
    server.redirect_to = f"http://localhost:{jupyter.port}/api/contents"
    proxy = make_proxy([f"localhost:{server.port}"])
    response = exchange(proxy, f"GET http://localhost:{server.port}/redirect HTTP/1.1\r\n\r\n".encode())
    assert response.startswith(b"HTTP/1.0 302")
    assert f"Location: http://localhost:{jupyter.port}/api/contents".encode() in response
    assert len(server.requests) == 1
    assert jupyter.got_nothing()
    # The plugin's own client following it comes back through the proxy, and is refused.
    follow = exchange(proxy, f"GET http://localhost:{jupyter.port}/api/contents HTTP/1.1\r\n\r\n".encode())
    assert follow.startswith(b"HTTP/1.1 403")
    assert jupyter.got_nothing()
    jupyter.close()


@pytest.mark.parametrize(
    ("request_line", "reason", "host"),
    [
        ("CONNECT evil.example:443", "not-listed", "evil.example"),
        ("CONNECT allowed.com.evil.example:443", "not-listed", "allowed.com.evil.example"),
        ("CONNECT 127.0.0.1:{jupyter}", "ip-literal", "127.0.0.1"),
        ("CONNECT 2130706433:{jupyter}", "ip-literal", "2130706433"),
        ("CONNECT 0x7f000001:{jupyter}", "ip-literal", "0x7f000001"),
        ("CONNECT [::1]:{jupyter}", "ip-literal", "[::1]"),
        ("GET http://169.254.169.254/latest/meta-data/", "ip-literal", "169.254.169.254"),
        ("CONNECT localhost:{jupyter}", "port-not-listed", "localhost"),
        ("CONNECT allowed.com:8443", "port-not-listed", "allowed.com"),
    ],
)
def test_refusals_answer_403_naming_the_host_and_become_events(
    make_proxy: MakeProxy, request_line: str, reason: str, host: str
) -> None:
    jupyter = Listener()
    proxy = make_proxy(["allowed.com", "localhost:1"])
    seen: list[EgressEvent] = []
    unsubscribe = subscribe_egress(seen.append)
    try:
        response = exchange(proxy, (request_line.format(jupyter=jupyter.port) + " HTTP/1.1\r\n\r\n").encode())
    finally:
        unsubscribe()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden")
    assert f"X-Synapse-Egress: denied; reason={reason}".encode() in head
    assert body.startswith(b"synapse egress proxy: refused ")
    assert host.encode() in body
    [event] = list(proxy.events)
    assert (event["host"], event["reason"], event["plugin"]) == (host, reason, "proxy-test")
    assert seen == [event]
    assert recent_egress_events("proxy-test")[-1] == event
    assert jupyter.got_nothing()
    jupyter.close()


def test_a_listed_name_resolving_to_loopback_or_metadata_is_refused_before_any_connection(
    make_proxy: MakeProxy,
) -> None:
    jupyter = Listener()
    table = {"sneaky.example": ["127.0.0.1"], "metadata.example": ["169.254.169.254"]}
    proxy = make_proxy([f"sneaky.example:{jupyter.port}", "metadata.example"], resolver=lambda h, p: table[h])
    for target in (f"sneaky.example:{jupyter.port}", "metadata.example:80"):
        response = exchange(proxy, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
        assert response.startswith(b"HTTP/1.1 403")
        assert b"reason=non-public-address" in response
    assert [e["host"] for e in proxy.events] == ["sneaky.example", "metadata.example"]
    assert "169.254.169.254 is a link-local address" in proxy.events[1]["message"]
    assert jupyter.got_nothing()
    jupyter.close()


def test_a_host_header_naming_another_host_is_refused(make_proxy: MakeProxy, server: RecordingServer) -> None:
    proxy = make_proxy([f"localhost:{server.port}"])
    request = f"GET http://localhost:{server.port}/ HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    response = exchange(proxy, request.encode())
    assert response.startswith(b"HTTP/1.1 400")
    assert b"reason=host-mismatch" in response
    assert server.requests == []


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        ("GET http://localhost:{port}@evil.example/ HTTP/1.1", b"400"),
        ("GET / HTTP/1.1", b"400"),
        ("GET https://localhost:{port}/ HTTP/1.1", b"501"),
        ("GET http://localhost:{port}/#frag HTTP/1.1", b"400"),
        ("GET  http://localhost:{port}/ HTTP/1.1", b"400"),
        ("CONNECT localhost HTTP/1.1", b"400"),
    ],
)
def test_requests_the_proxy_will_not_interpret_are_refused(
    make_proxy: MakeProxy, server: RecordingServer, request_line: str, status: bytes
) -> None:
    proxy = make_proxy([f"localhost:{server.port}"])
    response = exchange(proxy, (request_line.format(port=server.port) + "\r\n\r\n").encode())
    assert response.startswith(b"HTTP/1.1 " + status)
    assert server.requests == []
    assert len(proxy.events) == 1


def test_a_request_in_origin_form_is_refused_and_its_event_names_the_host_header(make_proxy: MakeProxy) -> None:
    proxy = make_proxy(["allowed.com"])
    response = exchange(proxy, b"GET /exfil?data=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400")
    [event] = proxy.refusals()
    assert (event["host"], event["reason"], event["method"]) == ("evil.example", "bad-request", "GET")


def test_a_connect_tunnel_to_a_listed_name_carries_bytes_both_ways(
    make_proxy: MakeProxy, server: RecordingServer
) -> None:
    proxy = make_proxy([f"localhost:{server.port}"])
    with connect(proxy) as sock:
        sock.sendall(f"CONNECT localhost:{server.port} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        assert sock.recv(100) == b"HTTP/1.1 200 Connection established\r\n\r\n"
        sock.sendall(b"GET /tunnelled HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert read_all(sock).endswith(b"hello /tunnelled")
    assert server.requests[0]["path"] == "/tunnelled"


def test_only_one_request_per_connection_reaches_the_server(make_proxy: MakeProxy, server: RecordingServer) -> None:
    proxy = make_proxy([f"localhost:{server.port}"])
    smuggled = (
        f"POST http://localhost:{server.port}/first HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        "GET /second HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    )
    response = exchange(proxy, smuggled.encode())
    assert response.endswith(b"hello /first")
    assert [(r["path"], r["body"]) for r in server.requests] == [("/first", b"hello")]


def test_a_chunked_body_is_framed_whole_and_nothing_after_it() -> None:
    head = parse_head(b"POST http://x/ HTTP/1.1\r\nTransfer-Encoding: chunked")
    framer = BodyFramer(head)
    out = framer.feed(b"5\r\nhel")
    out += framer.feed(b"lo\r\n0\r\nX-Trailer: 1\r\n\r\nGET /evil HTTP/1.1\r\n\r\n")
    assert out == b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"
    assert framer.done
    assert framer.feed(b"more") == b""


@pytest.mark.parametrize(
    "head",
    [
        b"GET http://x/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked",
        b"GET http://x/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6",
        b"GET http://x/ HTTP/1.1\r\nContent-Length: -1",
    ],
)
def test_ambiguous_body_framing_is_refused(head: bytes) -> None:
    with pytest.raises(BadRequest):
        BodyFramer(parse_head(head))


@pytest.mark.parametrize(
    "head",
    [b"GET http://x/ HTTP/1.1\r\n folded: yes", b"GET http://x/\r\n", b"GET http://x/ HTTP/2\r\n",
     b"GET http://x/ HTTP/1.1\r\nBad Name: 1", b"GET http://x/ HTTP/1.1\r\nX: a\x00b"],
)  # fmt: skip
def test_malformed_heads_are_refused(head: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_head(head.rstrip(b"\r\n"))


def test_authorities_split_strictly() -> None:
    assert split_authority("example.com:8080", None) == ("example.com", 8080)
    assert split_authority("[::1]:443", None) == ("[::1]", 443)
    assert split_authority("example.com", 80) == ("example.com", 80)
    assert split_authority("::1:443", None) == ("::1", 443)  # refused later, as an IP literal
    for bad in ("user@example.com:443", "example.com:0", "example.com:99999", "[::1", ":443", "[::1]x"):
        with pytest.raises(BadRequest):
            split_authority(bad, 80)


def test_an_oversized_head_is_refused_with_431(make_proxy: MakeProxy) -> None:
    proxy = make_proxy(["allowed.com"])
    response = exchange(proxy, b"GET http://allowed.com/ HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 431")


def test_a_client_that_never_finishes_its_head_is_dropped(make_proxy: MakeProxy) -> None:
    proxy = make_proxy(["allowed.com"], head_timeout=0.2)
    with connect(proxy) as sock:
        sock.sendall(b"GET http://allowed.com/ HTTP/1.1\r\n")
        assert read_all(sock) == b""
    time.sleep(0.05)
    assert proxy.open_connections == 0


def test_connections_beyond_the_limit_get_503_and_an_event(make_proxy: MakeProxy) -> None:
    proxy = make_proxy(["allowed.com"], max_connections=2)
    held = [connect(proxy), connect(proxy)]
    deadline = time.monotonic() + 5
    while proxy.open_connections < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    response = exchange(proxy, b"CONNECT allowed.com:443 HTTP/1.1\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 503")
    assert (proxy.events[-1]["reason"], proxy.events[-1]["host"]) == ("too-many-connections", "allowed.com")
    for sock in held:
        sock.close()


def fds() -> set[str]:
    """This process's open descriptors that are sockets, or ends of the pipes in ``_watched_pipes`` (other
    threads, such as the launcher pool refilling in the background, open pipes of their own)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:") or target in _watched_pipes:
            found.add(fd)
    return found


_watched_pipes: set[str] = set()


def egress_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("synapse-egress")]


def test_closing_cuts_open_tunnels_and_leaves_no_thread_fd_or_socket(server: RecordingServer) -> None:
    before_fds, before_threads = fds(), egress_threads()
    proxy = EgressProxy(Allowlist.parse([f"localhost:{server.port}"]), plugin="leak-test")
    directory = proxy.start()
    tunnels = []
    for _ in range(3):
        sock = connect(proxy)
        sock.sendall(f"CONNECT localhost:{server.port} HTTP/1.1\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        tunnels.append(sock)
    assert proxy.open_connections == 3
    assert len(egress_threads()) == len(before_threads) + 4
    proxy.close()
    for sock in tunnels:
        assert read_all(sock) == b""  # cut by the proxy
        sock.close()
    assert egress_threads() == before_threads
    assert not directory.exists()
    # The server's side of each cut connection closes on its own thread: give it a moment.
    deadline = time.monotonic() + 2
    while not fds() <= before_fds and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fds() <= before_fds


def test_the_socket_is_reachable_only_by_the_jail_user(make_proxy: MakeProxy) -> None:
    proxy = make_proxy(["allowed.com"])
    assert proxy.directory is not None
    assert stat.S_IMODE(proxy.directory.stat().st_mode) == 0o711
    info = proxy.socket_path.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == (65534 if os.geteuid() == 0 else os.geteuid())


def test_the_system_resolver_answers_for_localhost() -> None:
    assert set(system_resolver("localhost", 80)) <= {"127.0.0.1", "::1"}


def hand_over(proxy: EgressProxy, sock: socket.socket | int) -> None:
    fd = sock if isinstance(sock, int) else sock.fileno()
    with connect(proxy) as unix:
        socket.send_fds(unix, [b"L"], [fd])
        assert unix.recv(1) == b""  # the proxy takes the descriptor and hangs up


def test_a_handed_over_loopback_listener_is_adopted_and_served(make_proxy: MakeProxy, server: RecordingServer) -> None:
    proxy = make_proxy([f"localhost:{server.port}"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    hand_over(proxy, listener)
    listener.close()  # as the guest does: the proxy holds the port now
    assert proxy.jail_listener is not None
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET http://localhost:{server.port}/adopted HTTP/1.1\r\n\r\n".encode())
        assert read_all(sock).endswith(b"hello /adopted")


def test_only_one_listener_is_adopted_and_nothing_else_that_is_handed_over(make_proxy: MakeProxy) -> None:
    proxy = make_proxy(["allowed.com"])
    before = fds()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    wildcard = socket.socket()
    wildcard.bind(("0.0.0.0", 0))
    wildcard.listen()
    unbound = socket.socket()
    r, w = os.pipe()
    _watched_pipes.add(os.readlink(f"/proc/self/fd/{r}"))
    for fd in (udp.fileno(), wildcard.fileno(), unbound.fileno(), r):
        hand_over(proxy, fd)
    assert proxy.jail_listener is None
    first, second = socket.socket(), socket.socket()
    for sock in (first, second):
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        hand_over(proxy, sock)
    assert proxy.jail_listener is not None
    assert proxy.jail_listener.getsockname() == first.getsockname()
    for sock in (udp, wildcard, unbound, first, second):
        sock.close()
    os.close(r)
    os.close(w)
    time.sleep(0.05)
    assert fds() <= before | {str(proxy.jail_listener.fileno())}  # refused descriptors were closed


def test_a_large_response_is_relayed_intact_and_a_decision_is_reused_briefly(make_proxy: MakeProxy) -> None:
    """The relay splices bytes kernel to kernel; the name is resolved once for repeated requests."""
    import hashlib
    import http.server

    blob = os.urandom(8 << 20)

    class Big(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Big)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    lookups: list[str] = []

    def counting_resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return system_resolver(host, port)

    try:
        proxy = make_proxy([f"localhost:{port}"], resolver=counting_resolver)
        for _ in range(2):
            reply = exchange(
                proxy, f"GET http://localhost:{port}/big HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode()
            )
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 200")
            assert hashlib.sha256(body).digest() == hashlib.sha256(blob).digest()
        assert lookups == ["localhost"]
    finally:
        httpd.shutdown()
        httpd.server_close()

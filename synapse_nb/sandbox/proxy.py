"""The host-side egress proxy of one worker: the only way out of a jail whose network namespace is empty.

Each worker with ``network_access.domains`` gets an :class:`EgressProxy`: a Unix socket in a private
directory (mode 0711, the socket 0600 and owned by the jail's user) that is bind-mounted read-only into the
jail. Before plugin code runs, the guest creates the proxy port ``127.0.0.1:3128`` inside the jail and
passes that listening socket over the Unix socket (see :mod:`.relay`); the proxy adopts it (one, once) and
from then on accepts the plugin's connections itself. Plain HTTP spoken on the Unix socket directly is
served too, under the same rules.

The proxy speaks HTTP/1.x (``CONNECT`` and absolute-form plain HTTP, see :mod:`.proxyhttp`) and applies the
plugin's :class:`~synapse_nb.sandbox.allowlist.Allowlist` to every request: names before DNS, ports, then
every resolved address; it connects to the addresses it checked, and returns upstream responses untouched
(a redirect is the plugin's to follow, through the proxy again).

Every refusal answers ``403`` (or ``400`` for requests it will not interpret) with a one-line body naming
the host and the reason, and is an :data:`EgressEvent`: kept on the proxy (:attr:`EgressProxy.events`), in
a process-wide log (:func:`recent_egress_events`), and passed to observers (:func:`subscribe_egress`).

Threads, not asyncio: idle threads wait in ``accept()`` and each connection is served by the thread that
accepted it (at most ``max_connections`` at once; one more waits per socket so that a full proxy can still
answer 503); sockets block with kernel timeouts, and :meth:`EgressProxy.close` wakes and joins every thread.
An event loop would add a hand-over between threads on every request (the resolver blocks), which is most of
a loopback request's cost.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import select
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

from .allowlist import Allowlist, Decision, EgressDenied, Resolver, system_resolver
from .proxyhttp import (
    MAX_HEAD,
    BadRequest,
    BodyFramer,
    absolute_target,
    check_host_header,
    connect_target,
    parse_head,
    rewrite,
    status_response,
)

__all__ = [
    "EgressEvent",
    "EgressProxy",
    "recent_egress_events",
    "subscribe_egress",
]

SOCKET_NAME = "egress.sock"
MAX_CONNECTIONS = 32
HEAD_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
IDLE_TIMEOUT = 300.0
BUSY_TIMEOUT = 0.5
SPARE_ACCEPTORS = 2  # threads kept waiting in accept(): sequential requests never wait for a thread to start
NOBODY = 65534
_BUF = 65536
# A decision (the name allowed, its addresses resolved and every one checked) is reused this long: a plugin's
# repeated requests to one host pay for the lookup once. Only checked addresses are ever connected to.
DECISION_TTL_S = 5.0
_SPLICE_CHUNK = 1 << 20  # bytes moved per splice(): kernel to kernel, never through Python
_PIPE_SIZE = 1 << 20


class EgressEvent(TypedDict):
    """One refused egress attempt."""

    plugin: str
    version: str
    host: str
    port: int | None
    method: str
    reason: str
    message: str
    time: float


Observer = Callable[[EgressEvent], None]
_observers: list[Observer] = []
_log: collections.deque[EgressEvent] = collections.deque(maxlen=1024)
_log_lock = threading.Lock()


def subscribe_egress(observer: Observer) -> Callable[[], None]:
    """Call ``observer(event)`` for every refused egress attempt of every worker; returns the unsubscriber.

    Observers run on the proxy's connection threads: keep them quick; exceptions they raise are ignored.
    """
    with _log_lock:
        _observers.append(observer)

    def unsubscribe() -> None:
        with _log_lock, contextlib.suppress(ValueError):
            _observers.remove(observer)

    return unsubscribe


def recent_egress_events(plugin: str | None = None) -> list[EgressEvent]:
    """The last refused attempts in this process (at most 1024), oldest first; only ``plugin``'s if given."""
    with _log_lock:
        events = list(_log)
    return [e for e in events if plugin is None or e["plugin"] == plugin]


def _publish(event: EgressEvent) -> None:
    with _log_lock:
        _log.append(event)
        observers = list(_observers)
    for observer in observers:
        with contextlib.suppress(Exception):  # an observer's bug must not break the proxy
            observer(event)


class _Conn:
    """The sockets of one proxied connection (so that close() can shut them down from another thread)."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None

    def shutdown(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class EgressProxy:
    """The egress proxy of one worker. :meth:`start` it before the jail is configured; :meth:`close` it after."""

    def __init__(
        self,
        allowlist: Allowlist,
        *,
        plugin: str,
        version: str = "",
        resolver: Resolver = system_resolver,
        max_connections: int = MAX_CONNECTIONS,
        head_timeout: float = HEAD_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        jail_uid: int | None = None,
    ) -> None:
        self.allowlist = allowlist
        self.plugin = plugin
        self.version = version
        self.resolver = resolver
        self.max_connections = max_connections
        self.head_timeout = head_timeout
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.jail_uid = NOBODY if jail_uid is None and os.geteuid() == 0 else jail_uid
        self.events: collections.deque[EgressEvent] = collections.deque(maxlen=256)
        self.allowed = 0
        self.denied = 0
        self.directory: Path | None = None
        self.jail_listener: socket.socket | None = None  # the proxy port inside the jail, once handed over
        self._listeners: list[socket.socket] = []
        self._threads: set[threading.Thread] = set()
        self._idle: dict[int, int] = {}  # listener fd -> threads waiting in its accept()
        self._conns: dict[threading.Thread, _Conn] = {}
        self._decisions: dict[tuple[str, int], tuple[float, Decision]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def socket_path(self) -> Path:
        if self.directory is None:
            raise RuntimeError("the egress proxy is not started")
        return self.directory / SOCKET_NAME

    def start(self) -> Path:
        """Create the private directory and the socket, start accepting; returns the directory to bind-mount."""
        if self.directory is not None:
            return self.directory
        directory = Path(tempfile.mkdtemp(prefix="synapse-egress-"))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            path = directory / SOCKET_NAME
            listener.bind(str(path))
            # Connecting needs write permission on the socket: only the jail's user (and root) get it.
            if self.jail_uid is not None:
                os.chown(path, self.jail_uid, self.jail_uid)
            os.chmod(path, 0o600)
            os.chmod(directory, 0o711)
            listener.listen(64)
        except OSError:
            listener.close()
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self.directory = directory
        with self._lock:
            self._listen(listener, spares=1)
        return directory

    def close(self, timeout: float = 2.0) -> None:
        """Stop accepting, cut every open connection, join every thread, remove the socket (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns.values())
            threads = list(self._threads)
            listeners = list(self._listeners)
        for conn in conns:
            conn.shutdown()
        for listener in listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes every thread blocked in its accept()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for listener in listeners:
            listener.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    # -- accepting ---------------------------------------------------------------------------------------------
    # Leader/followers: idle threads wait in accept() themselves, and the kernel wakes exactly one per
    # connection, which then serves it: no hand-over between threads on the path of a request. A thread that
    # takes the last idle place of its socket starts another, so that one always waits.
    def _listen(self, listener: socket.socket, spares: int) -> None:
        """Start accepting on ``listener`` with ``spares`` waiting threads (the lock is held)."""
        self._listeners.append(listener)
        self._idle[listener.fileno()] = 0
        for _ in range(spares):
            self._add_acceptor(listener)

    def _add_acceptor(self, listener: socket.socket) -> None:
        thread = threading.Thread(
            target=self._acceptor, args=(listener,), name=f"synapse-egress-{self.plugin}", daemon=True
        )
        self._threads.add(thread)
        self._idle[listener.fileno()] += 1
        thread.start()

    def _acceptor(self, listener: socket.socket) -> None:
        me = threading.current_thread()
        key = listener.fileno()
        from_unix = listener.family == socket.AF_UNIX
        try:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:
                    return  # shut down by close()
                with self._lock:
                    self._idle[key] -= 1
                    if self._closed:
                        client.close()
                        return
                    busy = len(self._conns) >= self.max_connections
                    if not busy:
                        conn = self._conns[me] = _Conn(client)
                        if self._idle[key] == 0 and len(self._threads) <= self.max_connections + 1:
                            self._add_acceptor(listener)
                if busy:
                    self._refuse_busy(client)
                else:
                    self._serve(conn, from_unix)
                with self._lock:
                    self._conns.pop(me, None)
                    if self._closed:
                        return
                    self._idle[key] += 1
        finally:
            with self._lock:
                self._threads.discard(me)

    def _adopt(self, fd: int) -> None:
        """Take over the jail's proxy port (a listening TCP socket on its loopback) -- one, and only once."""
        sock = _jail_listener(fd)
        if sock is None:
            return
        with self._lock:
            if self.jail_listener is not None or self._closed:
                adopted = False
            else:
                # Wake an acceptor only once the request has arrived: one wake-up per connection, not two.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, int(self.head_timeout) or 1)
                self.jail_listener = sock
                self._listen(sock, spares=SPARE_ACCEPTORS)
                adopted = True
        if not adopted:
            sock.close()

    # -- one connection ----------------------------------------------------------------------------------------
    def _event(self, host: str, port: int | None, method: str, reason: str, message: str) -> None:
        event: EgressEvent = {
            "plugin": self.plugin,
            "version": self.version,
            "host": host,
            "port": port,
            "method": method,
            "reason": reason,
            "message": message,
            "time": time.time(),
        }
        with self._lock:
            self.denied += 1
            self.events.append(event)
        _publish(event)

    def refusals(self) -> list[EgressEvent]:
        """A copy of :attr:`events` (safe while connections are being refused)."""
        with self._lock:
            return list(self.events)

    def _refuse_busy(self, client: socket.socket) -> None:
        """Answer 503. The head is read first (briefly) so that the event names the host, and so that closing
        with unread bytes does not reset the connection before the client reads the answer."""
        message = f"more than {self.max_connections} connections open at once"
        method, host, port = "?", "", None
        with contextlib.suppress(OSError, BadRequest):
            got = self._read_head(client, BUSY_TIMEOUT)
            if got is not None:
                head = parse_head(got[0])
                method = head.method
                host, port = connect_target(head) if method == "CONNECT" else absolute_target(head)[:2]
        self._event(host, port, method, "too-many-connections", message)
        with contextlib.suppress(OSError):
            client.sendall(status_response(503, f"synapse egress proxy: {message}", reason="too-many-connections"))
        client.close()

    def _first_bytes(self, conn: _Conn) -> bytes | None:
        """What a Unix-socket client sent first, or None when it only handed over a socket (or left)."""
        _kernel_timeouts(conn.client, receive=self.head_timeout)
        data, fds, _flags, _addr = socket.recv_fds(conn.client, _BUF, 1, socket.MSG_CMSG_CLOEXEC)
        if fds:
            self._adopt(fds[0])  # at most one descriptor per message: the kernel drops any others
            return None
        return data or None

    def _read_head(
        self, client: socket.socket, timeout: float | None = None, initial: bytes = b""
    ) -> tuple[bytes, bytes] | None:
        """(head without the blank line, bytes after it), or None if the client went away first.

        A client too slow to send it raises OSError (EAGAIN from the kernel's receive timeout)."""
        _kernel_timeouts(client, receive=self.head_timeout if timeout is None else timeout, send=self.idle_timeout)
        buf = initial
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                if end > MAX_HEAD:
                    break
                return buf[:end], buf[end + 4 :]
            if len(buf) > MAX_HEAD:
                break
            data = client.recv(_BUF)
            if not data:
                return None
            buf += data
        raise BadRequest(f"request head over {MAX_HEAD} bytes", status=431)

    def _serve(self, conn: _Conn, from_unix: bool) -> None:
        client = conn.client
        initial = b""
        if from_unix:
            try:
                first = self._first_bytes(conn)
            except OSError:
                first = None
            if first is None:
                client.close()
                return
            initial = first
        method, host, port = "?", "", None
        head = None
        try:
            got = self._read_head(client, initial=initial)
            if got is None:
                return
            head = parse_head(got[0])
            method = head.method
            framer: BodyFramer | None = None
            if method == "CONNECT":
                host, port = connect_target(head)
            else:
                host, port, path = absolute_target(head)
                check_host_header(head, host, port)
                framer = BodyFramer(head)
            decision = self._decide(host, port)
            upstream = self._connect(decision)
            with self._lock:
                conn.upstream = upstream
                closed = self._closed
                self.allowed += 0 if closed else 1
            if closed:
                return
            if framer is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._tunnel(client, upstream, got[1])
            else:
                upstream.sendall(rewrite(head, decision.host, port, path) + framer.feed(got[1]))
                self._forward(client, upstream, framer)
        except EgressDenied as exc:
            self._deny(client, exc.host or host, exc.port if exc.port is not None else port, method, exc.reason, 403,
                       str(exc))  # fmt: skip
        except BadRequest as exc:
            if not host and head is not None and head.values("host"):
                host = head.values("host")[0]  # the event names what the plugin was after, when it said
            self._deny(client, host, port, method, exc.reason, exc.status, str(exc))
        except _UpstreamError as exc:
            with contextlib.suppress(OSError):
                client.sendall(status_response(exc.status, f"synapse egress proxy: {exc}"))
        except OSError:
            pass  # the plugin or the upstream server hung up, or was too slow
        finally:
            if conn.upstream is not None:
                conn.upstream.close()
            client.close()

    def _deny(self, client: socket.socket, host: str, port: int | None, method: str, reason: str, status: int,
              message: str) -> None:  # fmt: skip
        self._event(host, port, method, reason, message)
        where = f"{host}:{port}" if host and port else host or "request"
        with contextlib.suppress(OSError):
            client.sendall(status_response(status, f"synapse egress proxy: refused {where}: {message}", reason=reason))

    def _decide(self, host: str, port: int) -> Decision:
        """The allowlist's decision for ``host:port``, reused for :data:`DECISION_TTL_S` (refusals never are)."""
        key = (host, port)
        now = time.monotonic()
        cached = self._decisions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        decision = self.allowlist.decide(host, port, self.resolver)
        if len(self._decisions) > 256:
            self._decisions.clear()
        self._decisions[key] = (now + DECISION_TTL_S, decision)
        return decision

    def _connect(self, decision: Decision) -> socket.socket:
        """Connect to the first reachable address among those checked (never a fresh resolution)."""
        errors = []
        for address in decision.addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            # A blocking connect bounded by the send timeout (Linux: EINPROGRESS when it expires): one syscall.
            _kernel_timeouts(sock, send=self.connect_timeout)
            try:
                sock.connect((address, decision.port))
            except OSError as exc:
                sock.close()
                timed_out = isinstance(exc, (TimeoutError, BlockingIOError))
                errors.append(f"{address}: {'timed out' if timed_out else exc.strerror or exc}")
                continue
            _kernel_timeouts(sock, receive=self.idle_timeout, send=self.idle_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        status = 504 if errors and all(e.endswith("timed out") for e in errors) else 502
        raise _UpstreamError(f"cannot reach {decision.host}:{decision.port} ({'; '.join(errors)})", status)

    def _forward(self, client: socket.socket, upstream: socket.socket, framer: BodyFramer) -> None:
        """Plain HTTP: the rest of the request body (only), then the response, untouched, until it ends."""
        if not framer.done:
            self._pump(client, upstream, framer)
            return
        _relay(upstream, client)

    def _tunnel(self, client: socket.socket, upstream: socket.socket, pending: bytes) -> None:
        """CONNECT: bytes both ways, as they come."""
        if pending:
            upstream.sendall(pending)
        self._pump(client, upstream, None)

    def _pump(self, client: socket.socket, upstream: socket.socket, framer: BodyFramer | None) -> None:
        """Copy bytes both ways until the upstream side is done (or the connection idles out)."""
        _kernel_timeouts(client, receive=self.idle_timeout)
        poller = select.poll()
        poller.register(client.fileno(), select.POLLIN)
        poller.register(upstream.fileno(), select.POLLIN)
        cfd = client.fileno()
        while True:
            ready = poller.poll(int(self.idle_timeout * 1000))
            if not ready:
                return
            for fd, _event in ready:
                if fd == cfd:
                    data = client.recv(_BUF)
                    if not data:
                        poller.unregister(cfd)
                        with contextlib.suppress(OSError):
                            upstream.shutdown(socket.SHUT_WR)
                        continue
                    if framer is not None:
                        data = framer.feed(data)
                        if framer.done:
                            poller.unregister(cfd)  # one request per connection: the rest is not sent on
                    if data:
                        upstream.sendall(data)
                else:
                    data = upstream.recv(_BUF)
                    if not data:
                        return
                    client.sendall(data)


def _relay(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until ``source`` ends, through a pipe with ``splice``: the bytes never enter
    Python (a 100 MiB download costs a few hundred system calls, no copies into user space). Falls back to
    recv/send where splice is unavailable."""
    splice = getattr(os, "splice", None)
    if splice is None:
        while data := source.recv(_BUF):
            sink.sendall(data)
        return
    pipe_r, pipe_w = os.pipe()
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe_w, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_SIZE)
        src, dst = source.fileno(), sink.fileno()
        while True:
            moved = splice(src, pipe_w, _SPLICE_CHUNK, flags=os.SPLICE_F_MOVE | os.SPLICE_F_MORE)
            if moved == 0:
                return
            while moved:
                moved -= splice(pipe_r, dst, moved, flags=os.SPLICE_F_MOVE | os.SPLICE_F_MORE)
    finally:
        os.close(pipe_r)
        os.close(pipe_w)


def _jail_listener(fd: int) -> socket.socket | None:
    """A passed descriptor as a socket, if it is a listening TCP socket on a loopback address; else closed."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        os.close(fd)
        return None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        address = sock.getsockname()[0] if sock.family in (socket.AF_INET, socket.AF_INET6) else ""
    except OSError:
        listening, address = False, ""
    if not (listening and sock.type == socket.SOCK_STREAM and address in ("127.0.0.1", "::1")):
        sock.close()
        return None
    sock.setblocking(True)
    return sock


def _kernel_timeouts(sock: socket.socket, *, receive: float | None = None, send: float | None = None) -> None:
    """Receive and send timeouts enforced by the kernel on a blocking socket (EAGAIN when they expire)."""
    for option, seconds in ((socket.SO_RCVTIMEO, receive), (socket.SO_SNDTIMEO, send)):
        if seconds is not None:
            sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", int(seconds), int(seconds % 1 * 1e6)))


class _UpstreamError(Exception):
    """The upstream server could not be reached (502, or 504 on timeouts): not a policy refusal."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

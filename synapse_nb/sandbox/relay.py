"""Inside the jail: the proxy port ``127.0.0.1:PORT``, created here and handed to the host's egress proxy.

The jail's network namespace holds only ``lo``. Before any plugin code runs, the guest creates a listening
TCP socket on ``127.0.0.1:PORT`` in that namespace and passes it (``SCM_RIGHTS``) over the bind-mounted
Unix socket to the host-side proxy, then closes its own copy. From then on the *host* accepts every
connection the plugin makes to the proxy port, directly: no thread, no copy and no decision inside the jail,
and the plugin cannot take the port over (it stays bound, by a socket the jail no longer holds). A plugin
that unsets ``HTTP_PROXY``, or talks to the Unix socket itself, gains nothing (fail closed): the proxy
applies the allowlist to whatever reaches it, and the namespace has no other way out.

Standard library only; imported by the guest only for plugins with network scopes.
"""

from __future__ import annotations

import socket

__all__ = ["PASS_MARKER", "hand_over_listener"]

PASS_MARKER = b"L"  # the one data byte that carries the passed listening socket


def hand_over_listener(port: int, target: str) -> None:
    """Listen on ``127.0.0.1:port`` and give the socket to the proxy at Unix socket ``target``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            upstream.connect(target)
            socket.send_fds(upstream, [PASS_MARKER], [listener.fileno()])
    finally:
        listener.close()  # the proxy holds it now; if it never got it, the port closes: nothing gets out

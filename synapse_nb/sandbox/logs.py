"""A worker's log streams: the handler's raw stdout/stderr and nsjail's own log, drained into bounded rings.

Bytes a plugin writes straight to file descriptors 1 and 2 (a C extension, a child process) bypass the guest's
per-call capture; a drain thread reads them as they come so that the jail never blocks on a full pipe, keeping
only the last ``limit`` bytes of each stream (and a count of everything written).
"""

from __future__ import annotations

import os
import select
import threading

__all__ = ["LogDrain", "Ring"]


class Ring:
    """The last ``limit`` bytes written to a stream, plus how many were written in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self.buf += data
        if len(self.buf) > self.limit:
            del self.buf[: len(self.buf) - self.limit]

    def text(self) -> str:
        return self.buf.decode("utf-8", "replace")

    def tail(self, lines: int = 10) -> list[str]:
        return [line for line in self.text().splitlines() if line.strip()][-lines:]


class LogDrain:
    """stdout, stderr and the jail log of one worker, each drained into its :class:`Ring` by one thread."""

    def __init__(self, *, max_log_bytes: int, name: str) -> None:
        self.stdout = Ring(max_log_bytes)
        self.stderr = Ring(max_log_bytes)
        self.jail_log = Ring(16 * 1024)
        self.name = name
        self._thread: threading.Thread | None = None

    def rings(self) -> dict[str, Ring]:
        return {"stdout": self.stdout, "stderr": self.stderr, "sandbox": self.jail_log}

    def start(self, out_r: int, err_r: int, log_r: int) -> None:
        """Start draining the three read ends (closed by the drain when their writers are gone)."""
        self._thread = threading.Thread(
            target=self._drain, args=({out_r: self.stdout, err_r: self.stderr, log_r: self.jail_log},),
            name=f"synapse-drain-{self.name}", daemon=True,
        )  # fmt: skip
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    @staticmethod
    def _drain(rings: dict[int, Ring]) -> None:
        poller = select.poll()
        for fd in rings:
            poller.register(fd, select.POLLIN | select.POLLHUP)
        open_fds = set(rings)
        while open_fds:
            for fd, _event in poller.poll():
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if data:
                    rings[fd].feed(data)
                else:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    os.close(fd)

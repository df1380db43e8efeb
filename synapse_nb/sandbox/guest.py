"""The runner inside the jail: one handler, a request loop on the worker channel.

Started by the host as ``python -I -S -B -c <bootstrap> RFD WFD``; the first frame it reads is ``start``
(plugin identity, restored state, secrets, log limits), then ``call``, ``batch``, ``state`` and ``stop``. In
``test`` mode the handler is not imported at start: the one ``test`` request runs the plugin's pytest session
here, inside the jail (see :mod:`.testsession`).
Standard library only, and imports are kept to what every call needs, because they are part of cold start.

Replies are built by concatenating already-encoded JSON so that a result is encoded exactly once. What the
handler prints through ``sys.stdout``/``sys.stderr`` is captured per call (bounded) and returned with the
reply; bytes written straight to file descriptors 1 and 2 are drained by the host.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time

from ..errors import SynapseError, ValidationError
from ..runtime import HandlerHost, describe_exception
from ..sdk import Context
from .protocol import HEADER, ChannelClosed, FrameReader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["main"]

_dumps = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode
_loads = json.JSONDecoder().decode
_HEADER_PACK = HEADER.pack


def write_frame_rest(fd: int, rest: memoryview) -> None:
    while rest:
        rest = rest[os.write(fd, rest) :]


class _Capture(io.TextIOBase):
    """A bounded text sink that replaces sys.stdout/sys.stderr during a call."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = self.limit - self.kept
        if room > 0:
            piece = text[:room]
            self.parts.append(piece)
            self.kept += len(piece)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    @property
    def buffer(self) -> _BinaryCapture:
        """Bytes written here (``sys.stdout.buffer.write``) are decoded, invalid UTF-8 replaced."""
        return _BinaryCapture(self)

    def take(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters dropped: max_log_bytes={self.limit}]"
        self.parts.clear()
        self.kept = self.dropped = 0
        return text


class _BinaryCapture:
    def __init__(self, text: _Capture) -> None:
        self._text = text

    def write(self, data: bytes) -> int:
        self._text.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        pass


class _ChannelSession:
    """``context.session`` inside the jail: every operation is a round trip to the host's store (which enforces
    the quota: a full session raises ``ResourceLimitExceeded`` here, exit 6 unless the handler catches it)."""

    def __init__(self, guest: Guest) -> None:
        self._guest = guest

    def get(self, key: str, default: Any = None) -> Any:
        value = self._guest.session_call("get", {"key": key})
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        self._guest.session_call("set", {"key": key, "value": value, "ttl": ttl})

    def delete(self, key: str) -> None:
        self._guest.session_call("delete", {"key": key})


class Guest:
    """The handler host plus the channel and the per-call bookkeeping."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.reader = FrameReader(rfd)
        self.main_pid = os.getpid()
        self.host: HandlerHost | None = None
        self.out = _Capture(64 * 1024)
        self.err = _Capture(64 * 1024)
        self.max_output = 16 << 20
        self.max_state = 8 << 20
        self.mode = "serve"
        self.isolation = "nsjail"
        self.last_state = b"{}"
        self.child_exited = False
        self.pending: list[Any] = []  # requests read while waiting for a session reply
        self.session_ids = 0
        # A forked child of the handler must never talk on the channel, even if it returns into this loop.
        os.register_at_fork(after_in_child=self._forget_channel)
        if self.main_pid == 1:
            # As PID 1 of its namespace the guest inherits orphans: note when one exits, reap between calls.
            import signal

            signal.signal(signal.SIGCHLD, self._on_child_exit)

    def _on_child_exit(self, signum: int, frame: object) -> None:
        self.child_exited = True

    def _forget_channel(self) -> None:
        for fd in (self.rfd, self.wfd):
            try:  # noqa: SIM105 - contextlib is not otherwise imported in the guest
                os.close(fd)
            except OSError:
                pass
        self.rfd = self.wfd = -1

    # -- replies ---------------------------------------------------------------------------------------------
    def _logs(self) -> bytes:
        if not (self.out.parts or self.out.dropped or self.err.parts or self.err.dropped):
            return b""  # the common case: the handler printed nothing
        out, err = self.out.take(), self.err.take()
        parts = b""
        if out:
            parts += b',"stdout":' + _dumps(out).encode()
        if err:
            parts += b',"stderr":' + _dumps(err).encode()
        return parts

    def _send(self, body: bytes) -> None:
        if self.wfd < 0:
            os._exit(0)  # a forked child of the handler came back here (fork hook closed the channel): leave
        data = _HEADER_PACK(len(body)) + body
        written = os.write(self.wfd, data)
        if written < len(data):  # a large reply: the rest in as many writes as the pipe needs
            write_frame_rest(self.wfd, memoryview(data)[written:])

    def _describe(self, exc: BaseException) -> dict[str, Any]:
        plugin_dir = self.host.plugin_dir if self.host else "/plugin"
        info: dict[str, Any]
        if isinstance(exc, ValidationError):
            info = {"kind": "validation", "message": exc.message, "pointer": exc.pointer, "schema": exc.schema}
        elif isinstance(exc, SynapseError):
            info = {"kind": "synapse", "code": exc.code, "message": exc.message, "details": exc.details}
            limit = getattr(exc, "limit", None)
            if isinstance(limit, str):
                info["limit_name"] = limit
            problems = getattr(exc, "problems", None)
            if problems:
                info["problems"] = [p.to_json() for p in problems]
        else:
            info = {"kind": "exception", **describe_exception(exc, plugin_dir)}
            if isinstance(exc, OSError) and exc.errno is not None:
                info["errno"] = exc.errno
        return info

    @staticmethod
    def _error_head(rid: Any, info: dict[str, Any]) -> bytes:
        """A reply without its closing brace: ``{"id":..,"ok":false,"error":{..}``."""
        return b'{"id":' + _dumps(rid).encode() + b',"ok":false,"error":' + _dumps(info).encode()

    def _state_part(self) -> bytes:
        """The new state to checkpoint (b"" when unchanged); ValueError/TypeError/OverflowError when it breaks
        the rules (a JSON dict within max_state_bytes)."""
        handler = self.host.handler if self.host else None
        if handler is None:
            return b""
        state = handler.state
        if type(state) is not dict:
            raise TypeError(f"self.state must be a dict, not {type(state).__name__}")
        if not state and self.last_state == b"{}":
            return b""
        encoded = _dumps(state).encode()
        if len(encoded) > self.max_state:
            raise OverflowError(len(encoded))
        if encoded == self.last_state:
            return b""
        self.last_state = encoded
        return b',"state":' + encoded

    def _success_head(self, rid: Any, result: Any, started: float) -> bytes:
        ms = (time.perf_counter() - started) * 1000
        try:
            encoded = _dumps(result).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            return self._error_head(rid, {"kind": "not_json", "message": f"returned something that is not JSON: {exc}"})
        if len(encoded) > self.max_output:
            return self._error_head(rid, {"kind": "output_too_large", "size": len(encoded), "limit": self.max_output})
        try:
            state = self._state_part()
        except OverflowError as exc:
            return self._error_head(rid, {"kind": "state_too_large", "size": exc.args[0], "limit": self.max_state})
        except (TypeError, ValueError, RecursionError) as exc:
            message = f"self.state is not a JSON-serialisable dict: {exc}"
            return self._error_head(rid, {"kind": "state_not_json", "message": message})
        rid_json = str(rid).encode() if type(rid) is int else _dumps(rid).encode()
        return b'{"id":' + rid_json + b',"ok":true,"ms":' + f"{ms:.3f}".encode() + state + b',"result":' + encoded

    # -- operations ------------------------------------------------------------------------------------------
    def start(self, msg: dict[str, Any]) -> None:
        limit = int(msg.get("max_log_bytes", 64 * 1024))
        self.out.limit = self.err.limit = limit
        self.max_output = int(msg.get("max_output_bytes", self.max_output))
        self.max_state = int(msg.get("max_state_bytes", self.max_state))
        self.mode = msg.get("mode") or "serve"
        self.isolation = msg.get("isolation", "nsjail")
        for key, value in (msg.get("secrets") or {}).items():
            os.environ[key] = value
        context = Context(
            plugin=msg["plugin"],
            version=msg["version"],
            plugin_dir=msg["plugin_dir"],
            isolation=msg.get("isolation", "nsjail"),
            secrets=dict(msg.get("secrets") or {}),
            session=_ChannelSession(self) if msg.get("session") else None,
        )
        self.host = HandlerHost(msg["plugin_dir"], context, entrypoint=msg.get("entrypoint"))
        # A pre-warmed jail started in the placeholder under /plugin: move onto the snapshot mounted since.
        try:  # noqa: SIM105 - contextlib is not otherwise imported in the guest
            os.chdir(msg["plugin_dir"])
        except OSError:
            pass
        if self.mode == "test":  # nothing of the plugin is imported until the test session runs it
            self._send(b'{"id":0,"ok":true,"class":"pytest","setup_ms":0,"pid":' + str(os.getpid()).encode() + b"}")
            return
        t0 = time.perf_counter()
        sys.stdout, sys.stderr = self.out, self.err
        try:
            self.host.start(msg.get("state") or {})
            handler = self.host.handler
            self.last_state = _dumps(handler.state).encode() if handler else b"{}"
            head = b'{"id":0,"ok":true,"class":' + _dumps(type(handler).__name__).encode()
            head += b',"setup_ms":' + f"{(time.perf_counter() - t0) * 1000:.3f}".encode()
            head += b',"pid":' + str(os.getpid()).encode()
        except BaseException as exc:  # the handler's import or setup failed: report it; the host ends us
            head = self._error_head(0, self._describe(exc))
            self.host = None
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        self._send(head + self._logs() + b"}")

    def _run(self, rid: Any, fn: Any) -> None:
        started = time.perf_counter()
        sys.stdout, sys.stderr = self.out, self.err
        try:
            try:
                result = fn()
            except BaseException as exc:
                head = self._error_head(rid, self._describe(exc))
            else:
                head = self._success_head(rid, result, started)
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            self._reap()
        self._send(head + self._logs() + b"}")

    def _run_tests(self, rid: Any, args: list[str]) -> None:
        """The plugin's pytest session, here in the jail; its terminal output goes to the real stdout (drained by
        the host), the report comes back as the reply."""
        from .testsession import run_session

        started = time.perf_counter()
        try:
            report = run_session(self.host.plugin_dir if self.host else "/plugin", list(args), self.isolation)
        except BaseException as exc:
            head = self._error_head(rid, self._describe(exc))
        else:
            head = self._success_head(rid, report, started)
        self._reap()
        self._send(head + b"}")

    def _reap(self) -> None:
        if not self.child_exited or self.wfd < 0:
            return
        self.child_exited = False
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass

    def next_request(self) -> Any:
        """The next request: one that arrived during a session round trip first, else from the channel."""
        if self.pending:
            return self.pending.pop(0)
        return self._next_from_channel()

    def _next_from_channel(self) -> Any:
        return _loads(self.reader.read_body().decode())

    def session_call(self, action: str, fields: dict[str, Any]) -> Any:
        """Ask the host for session data, in the middle of a call; requests arriving meanwhile are kept."""
        self.session_ids += 1
        rid = f"s{self.session_ids}"
        self._send(_dumps({"op": "session", "id": rid, "action": action, **fields}).encode())
        while True:
            msg = self._next_from_channel()
            if msg.get("op") == "session-reply" and msg.get("id") == rid:
                if not msg.get("ok"):
                    if msg.get("code") == "limit":
                        from ..errors import ResourceLimitExceeded

                        raise ResourceLimitExceeded(str(msg.get("error")), limit="sessions")
                    raise RuntimeError(f"session store: {msg.get('error')}")
                return msg.get("value")
            self.pending.append(msg)

    def serve(self) -> None:
        while True:
            try:
                msg = self.next_request()
            except ChannelClosed:
                return
            op = msg.get("op")
            host = self.host
            if host is None:
                return
            rid = msg.get("id")
            endpoint = msg.get("endpoint")
            if op == "call":
                payload = msg["payload"]
                self._run(rid, lambda: host.call(payload, endpoint=endpoint, prevalidated=True))  # noqa: B023
            elif op == "batch":
                items = msg["items"]
                self._run(rid, lambda: host.call_batch(items, endpoint=endpoint, prevalidated=True))  # noqa: B023
            elif op == "state":
                self._send(b'{"id":' + _dumps(rid).encode() + b',"ok":true,"state":' + self.last_state + b"}")
            elif op == "test" and self.mode == "test":
                self._run_tests(rid, msg.get("args") or [])
            elif op == "stop":
                if self.mode == "test":
                    self._send(b'{"id":' + _dumps(rid).encode() + b',"ok":true,"result":{}}')
                else:
                    self._run(rid, host.stop)
                return
            else:
                self._send(self._error_head(rid, {"kind": "protocol", "message": f"unknown operation {op!r}"}) + b"}")


def _add_paths(msg: dict[str, Any]) -> None:
    """The environment's site directories, and what its .pth files name (at their guest paths)."""
    if msg.get("site_dirs"):
        import site

        for entry in msg["site_dirs"]:
            site.addsitedir(entry)
    sys.path.extend(msg.get("sys_path") or [])


def main(argv: list[str] | None = None) -> None:
    """Entry point inside the jail: ``main([RFD, WFD])``."""
    args = sys.argv[1:] if argv is None else argv
    guest = Guest(int(args[0]), int(args[1]))
    prepared = False
    while True:
        try:
            msg = guest.reader.read()
        except ChannelClosed:
            return
        if not prepared:
            _add_paths(msg)
            prepared = True
        if msg.get("op") != "prepare":
            break
        # A pre-warmed jail: its environment is on sys.path now; say so, then wait for a plugin.
        guest._send(b'{"id":0,"ok":true,"pid":' + str(os.getpid()).encode() + b"}")
    egress = msg.get("egress")
    if egress:  # network scopes only: socket is not part of everyone's cold start
        from .relay import hand_over_listener

        hand_over_listener(int(egress["port"]), str(egress["socket"]))
    guest.start(msg)
    if guest.host is not None:
        guest.serve()

"""The host side of one jailed worker: start it, call it with a millisecond deadline, read why it died.

A worker is one nsjail process (and the guest interpreter inside it) that serves calls for one exact plugin
file set. Calls are serialised in arrival order (a FIFO lock, so that no caller starves) and each one is a
request frame written on the request pipe and a reply frame read from the reply pipe under a deadline; the
handler's stdout/stderr and nsjail's own log travel on separate pipes drained into bounded ring buffers.

On a timeout the worker is SIGKILLed (the pid namespace takes every process of the jail with it, and the
cgroup is emptied as a second net) and the caller gets :class:`PluginTimeout`. When the worker dies, the
cgroup's counters say why: an OOM kill is ``memory_mb`` exceeded, refused forks are ``pids_max``.

The isolation level (see :mod:`.isolation`) is decided when the worker is created and refused there when
policy forbids it; a jail that cannot come up makes the worker probe the host, and fall back to the
``process`` level only where that was explicitly allowed. A worker with network scopes owns an
:class:`~.proxy.EgressProxy` for its whole life: started before the jail is configured, closed when it dies.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    PluginCrashed,
    PluginTimeout,
    ResourceLimitExceeded,
    SandboxError,
    SynapseError,
)
from .allowlist import Allowlist, EgressDenied
from .cgroups import WorkerCgroup
from .diagnosis import Death, death_error, reply_error
from .host import HostInfo, precompile_guest_runtime
from .isolation import admit, probe
from .jail import EGRESS_DIR, PLUGIN_DIR, PROXY_PORT, JailConfig, JailLayout, build_jail, guest_paths
from .launch import launches
from .policy import SandboxPolicy
from .process import build_process_config, process_command, user_tasks
from .protocol import HEADER, frame
from .proxy import SOCKET_NAME, EgressEvent, EgressProxy

if TYPE_CHECKING:
    from ..session import SessionStore

__all__ = ["CallResult", "FairLock", "StartInfo", "Worker", "WorkerSpec"]

ACTIVATION_TIMEOUT_MS = 120_000
STOP_TIMEOUT_MS = 5_000
ENOSPC, EFBIG = 28, 27
_SIGNALS = {s.value: s.name for s in signal.Signals}
_decode = json.JSONDecoder().decode


class FairLock:
    """A FIFO lock: waiters are served in arrival order (``threading.Lock`` makes no such promise)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiters: collections.deque[threading.Lock] = collections.deque()
        self._held = False

    def acquire(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            gate = threading.Lock()
            gate.acquire()
            self._waiters.append(gate)
        gate.acquire()  # released by the previous holder, which hands the lock over directly

    def release(self) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._held = False

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _Ring:
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


@dataclass(frozen=True)
class WorkerSpec:
    """Everything that identifies and configures one worker."""

    plugin: str
    version: str
    digest: str
    layout: JailLayout
    policy: SandboxPolicy
    entrypoint: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plugin, self.version, self.digest)


@dataclass(frozen=True)
class StartInfo:
    handler_class: str
    cold_start_ms: float
    setup_ms: float
    stdout: str = ""
    stderr: str = ""


@dataclass
class CallResult:
    """A successful call: the result and what it cost."""

    result: Any
    handler_ms: float
    queue_ms: float
    total_ms: float
    stdout: str = ""
    stderr: str = ""
    state: dict[str, Any] | None = None


class _Dead(Exception):
    """The reply channel closed: the worker is gone."""


class _Late(Exception):
    """The deadline passed before a whole reply arrived."""


class _JailDidNotStart(Exception):
    """The worker died before its first reply: nsjail failed, or the plugin's import crashed the guest."""

    def __init__(self, error: SynapseError) -> None:
        super().__init__(str(error))
        self.error = error


class Worker:
    """One jailed worker process. Not reusable after it dies: the owner starts a new one."""

    def __init__(self, spec: WorkerSpec, host: HostInfo, *, use_cgroups: bool = True) -> None:
        self.level = admit(host, spec.policy, plugin=spec.plugin)  # refuses what policy forbids, naming the fix
        try:
            self.allowlist = Allowlist.parse(spec.policy.network_domains)
        except EgressDenied as exc:
            raise SandboxError(f"network_access.domains: {exc}", plugin=spec.plugin) from None
        self.spec = spec
        self.host = host
        self.use_cgroups = use_cgroups and host.cgroups.available
        self.egress: EgressProxy | None = None
        self._private_tmp: Path | None = None  # HOME and TMPDIR of a process-level worker
        self.lock = FairLock()
        self.proc: subprocess.Popen[bytes] | None = None
        self._run_dir: Path | None = None
        self._spawned_at = 0.0
        self.session: SessionStore | None = None  # context.session, served from the host (set by the owner)
        self.stop_error: str | None = None  # why the last graceful stop did not return a state
        self.cgroup: WorkerCgroup | None = None
        self.stdout = _Ring(spec.policy.max_log_bytes)
        self.stderr = _Ring(spec.policy.max_log_bytes)
        self.jail_log = _Ring(16 * 1024)
        self._buf = bytearray()
        self._req_w = self._rep_r = -1
        self._poll = select.poll()
        self._idle_poll = select.poll()
        self._drain: threading.Thread | None = None
        self.dead_reason: str | None = None
        self.calls = 0
        self.started_at = 0.0
        self.config: JailConfig | None = None
        self._next_id = 1
        self._pids_refused_seen = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """Started and not known to be dead (no syscall: a death is noticed on the channel)."""
        return self.proc is not None and self.dead_reason is None

    def died_while_idle(self) -> bool:
        """Did the worker die since its last reply? (A zero-timeout poll: the reply pipe hangs up.)"""
        if not self.alive:
            return True
        events = self._idle_poll.poll(0)  # its own poll object: a call may be polling the same fd
        return any(event & (select.POLLHUP | select.POLLERR) for _fd, event in events)

    @property
    def isolation(self) -> str:
        """The level this worker runs at: ``nsjail``, ``nsjail-nocgroup`` or ``process``."""
        if self.level == "process":
            return "process"
        return "nsjail" if self.use_cgroups else "nsjail-nocgroup"

    @property
    def network_events(self) -> list[EgressEvent]:
        """The refused egress attempts of this worker, oldest first (see :mod:`.proxy`)."""
        return self.egress.refusals() if self.egress is not None else []

    def _spawn(self) -> None:
        policy, host = self.spec.policy, self.host
        process = self.level == "process"
        launch = launches.take(host, use_cgroups=self.use_cgroups, command=process_command(host) if process else None)
        self.cgroup = launch.cgroup
        try:
            if self.cgroup is not None:
                self.cgroup.limit(memory_bytes=policy.memory_mb * 1024 * 1024, pids_max=policy.pids_max)
            request_fd, reply_fd, log_fd = launch.child_fds
            self._run_dir = Path(tempfile.mkdtemp(prefix="synapse-jail-"))
            if process:
                self._private_tmp = Path(tempfile.mkdtemp(prefix="synapse-process-"))
                settings = build_process_config(
                    policy, self.spec.layout, host, request_fd=request_fd, reply_fd=reply_fd,
                    tmp_dir=self._private_tmp, use_cgroups=self.cgroup is not None, tasks_now=user_tasks(host.uid),
                )  # fmt: skip
                config_path = self._run_dir / "process.json"
                config_path.write_text(json.dumps(settings))
            else:
                egress_dir = None
                if self.allowlist:
                    self.egress = EgressProxy(self.allowlist, plugin=self.spec.plugin, version=self.spec.version)
                    egress_dir = self.egress.start()
                self.config = build_jail(
                    policy, self.spec.layout, host, request_fd=request_fd, reply_fd=reply_fd, log_fd=log_fd,
                    name=self.spec.plugin, egress_dir=egress_dir,
                )  # fmt: skip
                config_path = self._run_dir / "nsjail.cfg"
                config_path.write_text(self.config.to_text())
            launch.go(config_path)
        except BaseException:
            self.cgroup = None
            launch.discard()
            self._release_files()
            raise
        self.proc = launch.proc
        self._req_w, self._rep_r = launch.req_w, launch.rep_r
        self._poll.register(self._rep_r, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._idle_poll.register(self._rep_r, select.POLLHUP | select.POLLERR)
        self._drain = threading.Thread(
            target=self._drain_logs,
            args=(launch.out_r, launch.err_r, launch.log_r),
            name=f"synapse-drain-{self.spec.plugin}",
            daemon=True,
        )
        self._drain.start()

    @staticmethod
    def _close_fds(*fds: int) -> None:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _drain_logs(self, out_r: int, err_r: int, log_r: int) -> None:
        rings = {out_r: self.stdout, err_r: self.stderr, log_r: self.jail_log}
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

    def spawn(self) -> None:
        """Start the jail and the guest runtime, without running any plugin code yet.

        The guest imports only synapse_nb's runtime and then waits for the ``start`` frame; nothing from the
        plugin folder is imported or executed before :meth:`start`. So the host may spawn first and verify the
        plugin's signature while the jail comes up.
        """
        if self.proc is not None:
            return
        precompile_guest_runtime(self.host.package_dir)
        self._spawned_at = time.perf_counter()
        self._spawn()

    def start(self, state: dict[str, Any] | None = None, *, timeout_ms: int = ACTIVATION_TIMEOUT_MS) -> StartInfo:
        """Cold start: (spawn the jail if not yet done), import the handler, restore ``state``, run ``setup``."""
        try:
            return self._start(state, timeout_ms)
        except _JailDidNotStart as failed:
            error = failed.error
        self._fall_back(error)
        return self._start(state, timeout_ms)

    def _fall_back(self, error: SynapseError) -> None:
        """The jail did not come up. Where this host cannot run nsjail at all (the probe says so), continue at
        the ``process`` level if policy allows it (else :func:`admit` refuses, naming the fix); otherwise the
        failure was not the host's, and ``error`` is raised."""
        if probe(self.host).level != "process":
            raise error
        self.level = admit(self.host, self.spec.policy, plugin=self.spec.plugin)
        self.proc, self.dead_reason, self.config = None, None, None
        self._buf = bytearray()
        self._poll, self._idle_poll = select.poll(), select.poll()

    def _start(self, state: dict[str, Any] | None, timeout_ms: int) -> StartInfo:
        self.spawn()
        t0 = self._spawned_at
        spec = self.spec
        if self.level == "process":  # the host's own paths; .pth files add the extra directories
            site_dirs, sys_path = [str(d) for d in spec.layout.site_dirs], list[str]()
        else:
            site_dirs, sys_path = guest_paths(spec.layout)
        start = {
            "op": "start",
            "plugin": spec.plugin,
            "version": spec.version,
            "plugin_dir": str(spec.layout.plugin_dir) if self.level == "process" else PLUGIN_DIR,
            "entrypoint": spec.entrypoint,
            "state": state or {},
            "secrets": spec.secrets,
            "isolation": self.isolation,
            "max_log_bytes": spec.policy.max_log_bytes,
            "max_output_bytes": spec.policy.max_output_bytes,
            "session": self.session is not None,
            "site_dirs": site_dirs,
            "sys_path": sys_path,
        }
        if self.egress is not None:
            start["egress"] = {"port": PROXY_PORT, "socket": f"{EGRESS_DIR}/{SOCKET_NAME}"}
        try:
            self._write(json.dumps(start).encode())
            reply = self._read(time.monotonic() + timeout_ms / 1000)
        except _Late:
            self.kill("activation timed out")
            raise PluginTimeout(
                f"activation (import and setup) did not finish within {timeout_ms} ms",
                plugin=spec.plugin,
                timeout_ms=timeout_ms,
            ) from None
        except _Dead:
            error = self._death("while starting")
            if self.level != "process":
                raise _JailDidNotStart(error) from None
            raise error from None
        finally:
            if self._run_dir is not None:  # nsjail has read its config by now
                shutil.rmtree(self._run_dir, ignore_errors=True)
                self._run_dir = None
        if not reply.get("ok"):
            self.kill("activation failed")
            raise self._error_from_reply(reply, during="activation")
        self.started_at = time.monotonic()
        return StartInfo(
            handler_class=reply.get("class", "?"),
            cold_start_ms=(time.perf_counter() - t0) * 1000,
            setup_ms=float(reply.get("setup_ms", 0.0)),
            stdout=reply.get("stdout", ""),
            stderr=reply.get("stderr", ""),
        )

    # -- channel -----------------------------------------------------------------------------------------------
    def _write(self, body: bytes) -> None:
        self._write_frames(frame(body))

    def _write_frames(self, frames: bytes) -> None:
        """Write already framed bytes completely."""
        data = memoryview(frames)
        try:
            while data:
                data = data[os.write(self._req_w, data) :]
        except (BrokenPipeError, OSError) as exc:
            raise _Dead() from exc

    def _read(self, deadline: float) -> dict[str, Any]:
        buf = self._buf
        limit = self.spec.policy.max_output_bytes + 2 * self.spec.policy.max_log_bytes + 65536
        while True:
            if len(buf) >= HEADER.size:
                (size,) = HEADER.unpack_from(buf)
                if size > limit:
                    self.kill("reply too large")
                    cap = self.spec.policy.max_output_bytes
                    raise ResourceLimitExceeded(
                        f"output is {size} bytes, over the max_output_bytes limit of {cap}",
                        plugin=self.spec.plugin,
                        limit="max_output_bytes",
                        value=self.spec.policy.max_output_bytes,
                    )
                end = HEADER.size + size
                if len(buf) >= end:
                    body = bytes(buf[HEADER.size : end])
                    del buf[:end]
                    reply: dict[str, Any] = _decode(body.decode())
                    if "op" not in reply:
                        return reply
                    self._serve_guest_request(reply)  # a session round trip in the middle of a call
                    continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Late()
            if not self._poll.poll(max(1, int(remaining * 1000 + 0.999))):
                continue
            try:
                chunk = os.read(self._rep_r, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                raise _Dead()
            buf += chunk

    def _serve_guest_request(self, request: dict[str, Any]) -> None:
        """Answer the guest's ``context.session`` request from the host's store (namespaced per plugin)."""
        answer: dict[str, Any] = {"op": "session-reply", "id": request.get("id")}
        session = self.session
        key = request.get("key")
        try:
            if request.get("op") != "session" or session is None or not isinstance(key, str):
                raise ValueError("no session store is configured" if session is None else "malformed request")
            action = request.get("action")
            if action == "get":
                answer["value"] = session.get(key)
            elif action == "set":
                ttl = request.get("ttl")
                session.set(key, request.get("value"), float(ttl) if ttl is not None else None)
            elif action == "delete":
                session.delete(key)
            else:
                raise ValueError(f"unknown session action {action!r}")
            answer["ok"] = True
        except (SynapseError, ValueError, TypeError) as exc:
            answer.update(ok=False, error=str(exc))
        self._write(json.dumps(answer).encode())

    # -- calls -------------------------------------------------------------------------------------------------
    def call(self, payload_json: bytes, *, endpoint: str | None = None, timeout_ms: int | None = None) -> CallResult:
        """One call; ``payload_json`` is the already validated, encoded payload."""
        head = b'{"op":"call"' + (b',"endpoint":' + json.dumps(endpoint).encode() if endpoint else b"")
        return self._request(head + b',"payload":' + payload_json, timeout_ms)

    def call_batch(
        self, items_json: list[bytes], *, endpoint: str | None = None, timeout_ms: int | None = None
    ) -> CallResult:
        """One batch: ``execute_batch`` over every item, in one round trip."""
        head = b'{"op":"batch"' + (b',"endpoint":' + json.dumps(endpoint).encode() if endpoint else b"")
        return self._request(head + b',"items":[' + b",".join(items_json) + b"]", timeout_ms)

    def _request(self, head: bytes, timeout_ms: int | None) -> CallResult:
        timeout = self.spec.policy.timeout_ms if timeout_ms is None else timeout_ms
        queued = time.perf_counter()
        with self.lock:
            started = time.perf_counter()
            if not self.alive:
                raise PluginCrashed(
                    f"worker is not running ({self.dead_reason or 'not started'})", plugin=self.spec.plugin
                )
            rid = self._next_id
            self._next_id += 1
            try:
                self._write(head + b',"id":' + str(rid).encode() + b"}")
                reply = self._read(time.monotonic() + timeout / 1000)
            except _Late:
                raise self._timeout_error(timeout) from None
            except _Dead:
                raise self._death("during a call") from None
            self.calls += 1
            finished = time.perf_counter()
        if not reply.get("ok"):
            raise self._error_from_reply(reply, during="call", pids_refused=self._new_pids_refusals())
        return CallResult(
            result=reply.get("result"),
            handler_ms=float(reply.get("ms", 0.0)),
            queue_ms=(started - queued) * 1000,
            total_ms=(finished - queued) * 1000,
            stdout=reply.get("stdout", ""),
            stderr=reply.get("stderr", ""),
            state=reply.get("state"),
        )

    def _timeout_error(self, timeout: int) -> PluginTimeout:
        self.kill(f"timed out after {timeout} ms")
        return PluginTimeout(
            f"timed out: no result within {timeout} ms (spec.execution.timeout); its worker was killed",
            plugin=self.spec.plugin,
            timeout_ms=timeout,
            details=self.stderr.tail(5),
        )

    def call_many(
        self, payloads: list[bytes], *, timeout_ms: int | None = None, window: int = 64, window_bytes: int = 32 << 10
    ) -> list[CallResult | SynapseError | None]:
        """Pipelined calls: requests are written ahead of their replies, which come back in order.

        Up to ``window`` requests (and ``window_bytes`` of them, so that a write never blocks on a full pipe
        while the guest blocks writing a reply) are in flight. Each reply has ``timeout_ms`` from the moment
        its handler could start (the previous reply, or its own send). Returns, per payload, the CallResult,
        the error of that call, or None for a call the worker never reached because it died or was killed
        first (safe to run again on a new worker).
        """
        timeout = self.spec.policy.timeout_ms if timeout_ms is None else timeout_ms
        results: list[CallResult | SynapseError | None] = [None] * len(payloads)
        queued = time.perf_counter()
        with self.lock:
            if not self.alive:
                raise PluginCrashed(
                    f"worker is not running ({self.dead_reason or 'not started'})", plugin=self.spec.plugin
                )
            started = time.perf_counter()
            first_id = self._next_id
            self._next_id += len(payloads)
            sent = done = 0
            in_flight_bytes = 0
            sizes: list[int] = []
            ready_at = time.monotonic()
            while done < len(payloads):
                batch = []
                while sent < len(payloads) and sent - done < window and in_flight_bytes < window_bytes:
                    body = b'{"op":"call","payload":' + payloads[sent] + b',"id":' + str(first_id + sent).encode()
                    data = frame(body + b"}")
                    batch.append(data)
                    sizes.append(len(data))
                    in_flight_bytes += len(data)
                    sent += 1
                try:
                    if batch:
                        self._write_frames(b"".join(batch))
                    reply = self._read(ready_at + timeout / 1000)
                except _Late:
                    results[done] = self._timeout_error(timeout)
                    return results
                except _Dead:
                    results[done] = self._death("during a call")
                    return results
                ready_at = time.monotonic()
                in_flight_bytes -= sizes[done]
                self.calls += 1
                if reply.get("ok"):
                    results[done] = CallResult(
                        result=reply.get("result"),
                        handler_ms=float(reply.get("ms", 0.0)),
                        queue_ms=(started - queued) * 1000,
                        total_ms=(time.perf_counter() - queued) * 1000,
                        stdout=reply.get("stdout", ""),
                        stderr=reply.get("stderr", ""),
                        state=reply.get("state"),
                    )
                else:
                    results[done] = self._error_from_reply(reply, during="call", pids_refused=self._new_pids_refusals())
                    if not self.alive:  # a limit was hit and the worker killed: the rest never ran
                        return results
                done += 1
        return results

    def stop(self, *, timeout_ms: int = STOP_TIMEOUT_MS) -> dict[str, Any] | None:
        """Graceful teardown: run the handler's ``teardown`` and return the final state (None if it failed)."""
        state: dict[str, Any] | None = None
        try:
            with self.lock:
                if self.alive:
                    self._write(b'{"op":"stop","id":0}')
                    reply = self._read(time.monotonic() + timeout_ms / 1000)
                    if reply.get("ok") and isinstance(reply.get("result"), dict):
                        state = reply["result"]
                    else:
                        error = reply.get("error") or {}
                        self.stop_error = f"teardown raised {error.get('type', 'an error')}: {error.get('message', '')}"
                    if self.proc is not None:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            self.proc.wait(timeout=timeout_ms / 1000)
        except _Late:
            self.stop_error = f"teardown did not finish within {timeout_ms} ms; the worker was killed"
        except _Dead:
            self.stop_error = "the worker died during teardown"
        finally:
            self.kill("stopped")
        return state

    def kill(self, reason: str) -> None:
        """SIGKILL the worker and everything in its jail; idempotent."""
        if self.dead_reason is None:
            self.dead_reason = reason
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        if self.cgroup is not None:
            self.cgroup.kill_all()
        self._close_fds(self._req_w, self._rep_r)
        self._req_w = self._rep_r = -1
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        self._release_files()

    def _release_files(self) -> None:
        """Close the egress proxy (its threads and socket) and remove a process-level worker's private /tmp."""
        if self.egress is not None:
            self.egress.close()  # its events stay readable
        if self._private_tmp is not None:
            shutil.rmtree(self._private_tmp, ignore_errors=True)
            self._private_tmp = None

    # -- diagnosis ---------------------------------------------------------------------------------------------
    def _new_pids_refusals(self) -> bool:
        """Were forks refused at pids.max since the last look? Read only after a failure, never per call."""
        if self.cgroup is None:
            return False
        refused = self.cgroup.pids_refused()
        new = refused > self._pids_refused_seen
        self._pids_refused_seen = refused
        return new

    def guest_pid(self) -> int | None:
        """The host pid of the guest interpreter (nsjail's child), for memory measurements."""
        if self.proc is None:
            return None
        if self.level == "process":
            return self.proc.pid  # the launcher exec'd the interpreter itself
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def cpu_seconds(self) -> float:
        """CPU time the guest interpreter has used (user + system), from /proc."""
        pid = self.guest_pid()
        if pid is None:
            return 0.0
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        pid = self.guest_pid()
        if pid is None:
            return 0
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def memory_peak(self) -> int:
        return self.cgroup.memory_peak() if self.cgroup else 0

    def _death(self, when: str) -> SynapseError:
        """Why the worker died, as the error its caller gets; the worker is cleaned up."""
        proc = self.proc
        status = None
        if proc is not None:
            try:
                status = proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                status = None
        if self._drain is not None:
            self._drain.join(timeout=0.5)
        cgroup = self.cgroup
        evidence = Death(
            when=when,
            status=status,
            oom_kills=cgroup.oom_kills() if cgroup else 0,
            pids_refused=cgroup.pids_refused() if cgroup else 0,
            stderr_tail=self.stderr.tail(8),
            jail_log_tail=self.jail_log.tail(5),
            cgroups=self.use_cgroups,
        )
        self.kill(f"died {when}")
        return death_error(self.spec.plugin, self.spec.policy, evidence)

    def _error_from_reply(self, reply: dict[str, Any], *, during: str, pids_refused: bool = False) -> SynapseError:
        """The error for a reply with ``ok: false``; the worker is killed when a limit was hit."""
        error, kill_reason = reply_error(
            self.spec.plugin, self.spec.policy, reply, during=during, pids_refused=pids_refused
        )
        if kill_reason is not None:
            self.kill(kill_reason)
        return error

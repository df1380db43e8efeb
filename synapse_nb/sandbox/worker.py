"""The host side of one jailed worker: start it, call it with a millisecond deadline, read why it died.

A worker is one nsjail process (and the guest interpreter inside it) that serves calls for one exact plugin
file set. Calls are serialised in arrival order (a FIFO lock, so that no caller starves); each one is a
request frame on the request pipe and a reply frame read from the reply pipe under a deadline
(:mod:`.channel`, which checks every frame against the protocol). The handler's stdout/stderr and nsjail's own
log travel on separate pipes drained into bounded rings (:mod:`.logs`).

On a timeout the worker is SIGKILLed (the pid namespace takes every process of the jail with it, and the
cgroup is emptied as a second net) and the caller gets :class:`PluginTimeout`. When the worker dies, the
cgroup's counters say why (:mod:`.diagnosis`): an OOM kill is ``memory_mb`` exceeded, refused forks are
``pids_max``. A frame that breaks the protocol kills the worker too (exit 7, "protocol violation"). Between
calls the worker's cgroup is frozen (:mod:`.freezer`).

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
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import PluginCrashed, PluginTimeout, ResourceLimitExceeded, SandboxError, SynapseError
from . import procfs
from .allowlist import Allowlist, EgressDenied
from .cgroups import WorkerCgroup
from .channel import Channel, ChannelDead, ChannelLate, FrameTooLarge, ProtocolViolation, Reply, parse_frame
from .diagnosis import Death, death_error, reply_error
from .freezer import idle_freezer
from .host import HostInfo, precompile_guest_runtime
from .isolation import admit, probe
from .jail import EGRESS_DIR, PLUGIN_DIR, PROXY_PORT, JailConfig, JailLayout, Mount, build_jail, guest_paths
from .launch import launches
from .logs import LogDrain, Ring
from .policy import SandboxPolicy
from .process import build_process_config, process_command, process_user, user_tasks
from .protocol import frame
from .proxy import SOCKET_NAME, EgressEvent, EgressProxy

if TYPE_CHECKING:
    from ..session import SessionStore

__all__ = ["CallResult", "FairLock", "StartInfo", "Worker", "WorkerSpec"]

ACTIVATION_TIMEOUT_MS = 120_000
STOP_TIMEOUT_MS = 5_000


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

    def try_acquire(self) -> bool:
        """Take the lock only if nobody holds it or waits for it."""
        with self._guard:
            if self._held:
                return False
            self._held = True
            return True

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


@dataclass(frozen=True)
class WorkerSpec:
    """Everything that identifies and configures one worker.

    ``mode`` is ``serve`` (import the handler, run ``setup``, serve calls) or ``test`` (import nothing of the
    plugin; run its pytest session inside the jail when asked, see :mod:`synapse_nb.sandbox.testsession`).
    ``extra_mounts`` are read-only directories that mode needs besides the plugin's environment.
    """

    plugin: str
    version: str
    digest: str
    layout: JailLayout
    policy: SandboxPolicy
    entrypoint: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    mode: str = "serve"
    extra_mounts: tuple[Mount, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plugin, self.version, self.digest)


@dataclass(frozen=True)
class StartInfo:
    """A worker's cold start: the handler class, how long it took, and whether a pre-warmed jail was used."""

    handler_class: str
    cold_start_ms: float
    setup_ms: float
    stdout: str = ""
    stderr: str = ""
    prewarmed: bool = False


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


class NotSent(PluginCrashed):
    """The worker was already gone when this request's turn came: nothing was sent, so it is safe to run on the
    worker's replacement (a call queued behind one that was killed for its timeout, say)."""


class _JailDidNotStart(Exception):
    """The worker died before its first reply: nsjail failed, or the plugin's import crashed the guest."""

    def __init__(self, error: SynapseError) -> None:
        super().__init__(str(error))
        self.error = error


def _call_head(op: bytes, endpoint: str | None) -> bytes:
    return b'{"op":"' + op + b'"' + (b',"endpoint":' + json.dumps(endpoint).encode() if endpoint else b"")


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
        self.logs = LogDrain(max_log_bytes=spec.policy.max_log_bytes, name=spec.plugin)
        self.channel: Channel | None = None
        self.dead_reason: str | None = None
        self.calls = 0
        self.config: JailConfig | None = None
        self._next_id = 1
        self._pids_refused_seen = 0
        self.freeze_after_s = spec.policy.idle_freeze_ms / 1000
        self._idle_since: float | None = None  # set when a call ends; None while busy or not started
        self.prewarmed = spec.layout.plugin_dir is None  # an empty pre-warmed jail, until its snapshot is mounted
        self._delivery: threading.Thread | None = None
        self._delivery_error: SynapseError | None = None

    def adopt(self, spec: WorkerSpec) -> None:
        """Give a pre-warmed worker (spawned for ``spec``'s policy and environment, holding no plugin) its plugin:
        the snapshot is mounted read-only at ``/plugin`` when it starts. A worker is adopted at most once."""
        if not self.prewarmed or self.spec.layout.plugin_dir is not None:
            raise SandboxError("only an empty pre-warmed worker can be given a plugin", plugin=spec.plugin)
        if spec.layout.plugin_dir is None:
            raise SandboxError("no snapshot to deliver", plugin=spec.plugin)
        self.spec = spec

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        """Started and not known to be dead (no syscall: a death is noticed on the channel)."""
        return self.proc is not None and self.dead_reason is None

    @property
    def stdout(self) -> Ring:
        return self.logs.stdout

    @property
    def stderr(self) -> Ring:
        return self.logs.stderr

    @property
    def jail_log(self) -> Ring:
        return self.logs.jail_log

    def died_while_idle(self) -> bool:
        """Did the worker die since its last reply? (A zero-timeout poll: the reply pipe hangs up.)"""
        if not self.alive or self.channel is None:
            return True
        return self.channel.hung_up()

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
                user = process_user(host, self.spec.layout, plugin=self.spec.plugin)  # never as root
                self._private_tmp = Path(tempfile.mkdtemp(prefix="synapse-process-"))
                if user is not None:
                    os.chown(self._private_tmp, *user)
                settings = build_process_config(
                    policy, self.spec.layout, host, request_fd=request_fd, reply_fd=reply_fd,
                    tmp_dir=self._private_tmp, use_cgroups=self.cgroup is not None,
                    tasks_now=user_tasks(user[0] if user is not None else host.uid), user=user,
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
                    name=self.spec.plugin, egress_dir=egress_dir, extra_mounts=self.spec.extra_mounts,
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
        req_w, rep_r, out_r, err_r, log_r = launch.hand_over()
        self.channel = Channel(req_w, rep_r, limit=self._frame_limit())
        self.logs.start(out_r, err_r, log_r)
        if self.cgroup is not None and self.cgroup.freezer_dir is not None:
            idle_freezer.watch(self)

    def _frame_limit(self) -> int:
        policy = self.spec.policy
        return policy.max_output_bytes + policy.max_state_bytes + 2 * policy.max_log_bytes + 65536

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
        self.proc, self.dead_reason, self.config, self.channel = None, None, None, None
        self.logs = LogDrain(max_log_bytes=self.spec.policy.max_log_bytes, name=self.spec.plugin)

    def _start_frame(self, state: dict[str, Any] | None) -> dict[str, Any]:
        spec = self.spec
        if self.level == "process":  # the host's own paths; .pth files add the extra directories
            site_dirs, sys_path = [str(d) for d in spec.layout.site_dirs], [str(d) for d in spec.layout.extra_dirs]
        else:
            site_dirs, sys_path = guest_paths(spec.layout)
        start: dict[str, Any] = {
            "op": "start",
            "mode": spec.mode,
            "plugin": spec.plugin,
            "version": spec.version,
            "plugin_dir": str(spec.layout.plugin_dir) if self.level == "process" else PLUGIN_DIR,
            "entrypoint": spec.entrypoint,
            "state": state or {},
            "secrets": spec.secrets,
            "isolation": self.isolation,
            "max_log_bytes": spec.policy.max_log_bytes,
            "max_output_bytes": spec.policy.max_output_bytes,
            "max_state_bytes": spec.policy.max_state_bytes,
            "session": self.session is not None,
            "site_dirs": site_dirs,
            "sys_path": sys_path,
        }
        if self.egress is not None:
            start["egress"] = {"port": PROXY_PORT, "socket": f"{EGRESS_DIR}/{SOCKET_NAME}"}
        return start

    def warm_up(self, *, timeout_ms: int = ACTIVATION_TIMEOUT_MS) -> None:
        """Pre-warming: spawn the jail and wait until its guest runtime runs with the environment on its path, so
        that what is left to a cold start is delivering the plugin and importing it."""
        self.spawn()
        frame = self._start_frame(None)
        try:
            self._send(
                json.dumps({"op": "prepare", "site_dirs": frame["site_dirs"], "sys_path": frame["sys_path"]}).encode()
            )
            reply = self._receive(time.monotonic() + timeout_ms / 1000, 0)
        except (ChannelLate, ChannelDead) as exc:
            self.kill("pre-warming failed")
            raise SandboxError(
                f"a pre-warmed jail did not come up: {type(exc).__name__}", plugin=self.spec.plugin
            ) from None
        finally:
            self._remove_run_dir()
        if not reply.ok:
            self.kill("pre-warming failed")
            raise SandboxError("a pre-warmed jail refused to prepare", plugin=self.spec.plugin)

    def deliver_in_background(self) -> None:
        """Start mounting the snapshot into a pre-warmed jail now (while the caller verifies the plugin); the
        start frame, which is what makes the guest import anything, waits for it. A no-op for a fresh jail."""
        if self.prewarmed and self._delivery is None:
            self._delivery = threading.Thread(target=self._deliver_quietly, name="synapse-deliver", daemon=True)
            self._delivery.start()

    def _deliver_quietly(self) -> None:
        try:
            self._deliver_snapshot()
        except SynapseError as exc:
            self._delivery_error = exc  # reported by start()

    def _deliver_snapshot(self) -> None:
        """A pre-warmed jail gets its plugin: the snapshot, mounted read-only at /plugin. Nothing in the jail reads
        it before the start frame, which is only sent after verification."""
        from .mounter import mounter

        pid = self.guest_pid()
        plugin_dir = self.spec.layout.plugin_dir
        if pid is None or plugin_dir is None or not self.alive:
            raise SandboxError("the pre-warmed jail is gone", plugin=self.spec.plugin)
        mounter.bind_read_only(pid, plugin_dir, PLUGIN_DIR, plugin=self.spec.plugin)
        self.prewarmed = False

    def _await_delivery(self) -> None:
        delivery = self._delivery
        if delivery is not None:
            delivery.join()
            self._delivery = None
            if self._delivery_error is not None:
                raise self._delivery_error
        if self.prewarmed:
            self._deliver_snapshot()

    def _start(self, state: dict[str, Any] | None, timeout_ms: int) -> StartInfo:
        self.spawn()
        pooled = self.prewarmed or self._delivery is not None
        t0 = self._spawned_at if not pooled else time.perf_counter()
        spec = self.spec
        if self.prewarmed or self._delivery is not None:
            self._await_delivery()
        try:
            self._send(json.dumps(self._start_frame(state)).encode())
            reply = self._receive(time.monotonic() + timeout_ms / 1000, 0)
        except ChannelLate:
            self.kill("activation timed out")
            raise PluginTimeout(
                f"activation (import and setup) did not finish within {timeout_ms} ms",
                plugin=spec.plugin,
                timeout_ms=timeout_ms,
            ) from None
        except ChannelDead:
            error = self._death("while starting")
            if self.level != "process":
                raise _JailDidNotStart(error) from None
            raise error from None
        finally:
            self._remove_run_dir()  # nsjail has read its config by now
        if not reply.ok:
            self.kill("activation failed")
            raise self._error_from_reply(reply, during="activation")
        self._idle_since = time.monotonic()
        return StartInfo(
            handler_class=reply.handler_class or "?",
            cold_start_ms=(time.perf_counter() - t0) * 1000,
            setup_ms=reply.setup_ms,
            stdout=reply.stdout,
            stderr=reply.stderr,
            prewarmed=pooled,
        )

    # -- channel -----------------------------------------------------------------------------------------------
    def _send(self, body: bytes) -> None:
        if self.channel is None:
            raise ChannelDead()
        self.channel.send(body)

    def _receive(self, deadline: float, expected_id: int) -> Reply:
        """The reply to request ``expected_id``; session requests met on the way are answered. Every frame is
        checked: a violation kills the worker and raises :class:`PluginCrashed`."""
        channel = self.channel
        if channel is None:
            raise ChannelDead()
        while True:
            try:
                message = parse_frame(channel.receive(deadline), expected_id)
            except FrameTooLarge as exc:
                self.kill("reply too large")
                cap = self.spec.policy.max_output_bytes
                raise ResourceLimitExceeded(
                    f"output is {exc.size} bytes, over the max_output_bytes limit of {cap}",
                    plugin=self.spec.plugin,
                    limit="max_output_bytes",
                    value=cap,
                ) from None
            except ProtocolViolation as exc:
                self.kill("protocol violation")
                raise PluginCrashed(
                    f"protocol violation on the worker channel: {exc}; the worker was killed (the next call "
                    "starts a fresh one)",
                    plugin=self.spec.plugin,
                ) from None
            if isinstance(message, Reply):
                return message
            self._serve_session(message.id, message.action, message.key, message.value, message.ttl)

    def _serve_session(self, rid: str, action: str, key: str, value: Any, ttl: float | None) -> None:
        """Answer the guest's ``context.session`` request from the host's store (namespaced per publisher)."""
        answer: dict[str, Any] = {"op": "session-reply", "id": rid}
        session = self.session
        try:
            if session is None:
                raise ValueError("no session store is configured")
            if action == "get":
                answer["value"] = session.get(key)
            elif action == "set":
                session.set(key, value, ttl)
            else:
                session.delete(key)
            answer["ok"] = True
        except (SynapseError, ValueError, TypeError) as exc:
            answer.update(ok=False, error=str(exc), code=getattr(exc, "code", "session"))
        self._send(json.dumps(answer).encode())

    # -- idle freezing -----------------------------------------------------------------------------------------
    def idle_for(self, now: float) -> float | None:
        idle = self._idle_since
        cgroup = self.cgroup
        if idle is None or cgroup is None or cgroup.frozen or not self.alive:
            return None
        return now - idle

    def try_freeze(self) -> bool:
        if not self.lock.try_acquire():
            return False  # a call is running or waiting: it will mark the worker idle again when it ends
        try:
            cgroup = self.cgroup
            if self._idle_since is None or cgroup is None or not self.alive:
                return False
            return cgroup.freeze()
        finally:
            self.lock.release()

    def _wake(self) -> None:
        """Called with the lock held, before a request is written: thaw a frozen worker."""
        self._idle_since = None
        cgroup = self.cgroup
        if cgroup is not None and cgroup.frozen:
            cgroup.thaw()

    # -- calls -------------------------------------------------------------------------------------------------
    def call(self, payload_json: bytes, *, endpoint: str | None = None, timeout_ms: int | None = None) -> CallResult:
        """One call; ``payload_json`` is the already validated, encoded payload."""
        return self._request(_call_head(b"call", endpoint) + b',"payload":' + payload_json, timeout_ms)

    def call_batch(
        self, items_json: list[bytes], *, endpoint: str | None = None, timeout_ms: int | None = None
    ) -> CallResult:
        """One batch: ``execute_batch`` over every item, in one round trip."""
        return self._request(_call_head(b"batch", endpoint) + b',"items":[' + b",".join(items_json) + b"]", timeout_ms)

    def run_tests(self, args: list[str], *, timeout_ms: int) -> CallResult:
        """Test mode only: run the plugin's pytest session inside the jail with ``args``; the report."""
        return self._request(b'{"op":"test","args":' + json.dumps(args).encode(), timeout_ms)

    def _not_running(self) -> PluginCrashed:
        return NotSent(f"worker is not running ({self.dead_reason or 'not started'})", plugin=self.spec.plugin)

    def _request(self, head: bytes, timeout_ms: int | None) -> CallResult:
        timeout = self.spec.policy.timeout_ms if timeout_ms is None else timeout_ms
        queued = time.perf_counter()
        with self.lock:
            started = time.perf_counter()
            if not self.alive:
                raise self._not_running()
            self._wake()
            rid = self._next_id
            self._next_id += 1
            try:
                self._send(head + b',"id":' + str(rid).encode() + b"}")
                reply = self._receive(time.monotonic() + timeout / 1000, rid)
            except ChannelLate:
                raise self._timeout_error(timeout) from None
            except ChannelDead:
                raise self._death("during a call") from None
            self.calls += 1
            finished = time.perf_counter()
            self._idle_since = time.monotonic()
        if not reply.ok:
            raise self._error_from_reply(reply, during="call", pids_refused=self._new_pids_refusals())
        return self._result(reply, queued, started, finished)

    @staticmethod
    def _result(reply: Reply, queued: float, started: float, finished: float) -> CallResult:
        return CallResult(
            result=reply.result,
            handler_ms=reply.ms,
            queue_ms=(started - queued) * 1000,
            total_ms=(finished - queued) * 1000,
            stdout=reply.stdout,
            stderr=reply.stderr,
            state=reply.state,
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
            if not self.alive or self.channel is None:
                raise self._not_running()
            self._wake()
            started = time.perf_counter()
            first_id = self._next_id
            self._next_id += len(payloads)
            sent = done = 0
            in_flight_bytes = 0
            sizes: list[int] = []
            ready_at = time.monotonic()
            try:
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
                            self.channel.send_framed(b"".join(batch))
                        reply = self._receive(ready_at + timeout / 1000, first_id + done)
                    except ChannelLate:
                        results[done] = self._timeout_error(timeout)
                        return results
                    except ChannelDead:
                        results[done] = self._death("during a call")
                        return results
                    except SynapseError as exc:  # a protocol violation or an oversized reply: the worker is dead
                        results[done] = exc
                        return results
                    ready_at = time.monotonic()
                    in_flight_bytes -= sizes[done]
                    self.calls += 1
                    if reply.ok:
                        results[done] = self._result(reply, queued, started, time.perf_counter())
                    else:
                        pids = self._new_pids_refusals()
                        results[done] = self._error_from_reply(reply, during="call", pids_refused=pids)
                        if not self.alive:  # a limit was hit and the worker killed: the rest never ran
                            return results
                    done += 1
            finally:
                self._idle_since = time.monotonic()
        return results

    def stop(self, *, timeout_ms: int = STOP_TIMEOUT_MS) -> dict[str, Any] | None:
        """Graceful teardown: run the handler's ``teardown`` and return the final state (None if it failed)."""
        state: dict[str, Any] | None = None
        try:
            with self.lock:
                if self.alive:
                    self._wake()
                    self._send(b'{"op":"stop","id":0}')
                    reply = self._receive(time.monotonic() + timeout_ms / 1000, 0)
                    if reply.ok and isinstance(reply.result, dict):
                        state = reply.result
                    else:
                        error = reply.error or {}
                        self.stop_error = f"teardown raised {error.get('type', 'an error')}: {error.get('message', '')}"
                    if self.proc is not None:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            self.proc.wait(timeout=timeout_ms / 1000)
        except ChannelLate:
            self.stop_error = f"teardown did not finish within {timeout_ms} ms; the worker was killed"
        except ChannelDead:
            self.stop_error = "the worker died during teardown"
        except SynapseError as exc:  # a protocol violation during teardown
            self.stop_error = str(exc)
        finally:
            self.kill("stopped")
        return state

    def kill(self, reason: str) -> None:
        """SIGKILL the worker and everything in its jail; idempotent."""
        if self.dead_reason is None:
            self.dead_reason = reason
        idle_freezer.forget(self)
        if self.cgroup is not None:
            self.cgroup.thaw()  # a frozen jail (cgroup v1) would not die until thawed
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        if self.cgroup is not None:
            self.cgroup.kill_all()
        if self.channel is not None:
            self.channel.close()
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        self._release_files()

    def _remove_run_dir(self) -> None:
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    def _release_files(self) -> None:
        """Close the egress proxy (its threads and socket), remove the jail's config folder and a process-level
        worker's private /tmp."""
        if self.egress is not None:
            self.egress.close()  # its events stay readable
        self._remove_run_dir()
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
        return procfs.child_pid(self.proc.pid)

    def cpu_seconds(self) -> float:
        """CPU time the guest interpreter has used (user + system)."""
        pid = self.guest_pid()
        return 0.0 if pid is None else procfs.cpu_seconds(pid)

    def rss_bytes(self) -> int:
        pid = self.guest_pid()
        return 0 if pid is None else procfs.rss_bytes(pid)

    def _death(self, when: str) -> SynapseError:
        """Why the worker died, as the error its caller gets; the worker is cleaned up."""
        proc = self.proc
        status = None
        if proc is not None:
            try:
                status = proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                status = None
        self.logs.join(timeout=0.5)
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

    def _error_from_reply(self, reply: Reply, *, during: str, pids_refused: bool = False) -> SynapseError:
        """The error for a reply with ``ok: false``; the worker is killed when a limit was hit."""
        error, kill_reason = reply_error(
            self.spec.plugin, self.spec.policy, reply.to_dict(), during=during, pids_refused=pids_refused
        )
        if kill_reason is not None:
            self.kill(kill_reason)
        return error

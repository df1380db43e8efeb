"""The jail configuration builder (pure), the seccomp policy text and cgroup detection on fake hierarchies."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from synapse_nb.sandbox.cgroups import CgroupSupport, WorkerCgroup, detect_cgroups
from synapse_nb.sandbox.host import HostInfo
from synapse_nb.sandbox.jail import GUEST_LIB, PLUGIN_DIR, JailLayout, build_jail, guest_paths
from synapse_nb.sandbox.policy import SandboxPolicy
from synapse_nb.sandbox.seccomp import DENIED_SYSCALLS, kafel_policy

HOST = HostInfo(
    nsjail=Path("/usr/bin/nsjail"),
    uid=0,
    gid=0,
    cgroups=CgroupSupport(None, reason="test"),
    python=Path("/opt/python/bin/python3.11"),
    python_prefix=Path("/opt/python"),
    lib_dirs=(Path("/lib"), Path("/usr/lib")),
    site_dirs=(Path("/venv/lib/python3.11/site-packages"),),
    package_dir=Path("/src/synapse_nb"),
)
LAYOUT = JailLayout(plugin_dir=Path("/home/u/.synapse/cache/plugins/abc"), site_dirs=HOST.site_dirs)


def fields(config: object) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for key, value in config.fields:  # type: ignore[attr-defined]
        out.setdefault(key, []).append(value)
    return out


def test_the_jail_uses_every_namespace_and_no_host_environment() -> None:
    f = fields(build_jail(SandboxPolicy(), LAYOUT, HOST))
    for ns in ("net", "ns", "pid", "ipc", "uts", "cgroup"):
        assert f[f"clone_new{ns}"] == [True], ns
    assert f["keep_env"] == [False]
    assert f["keep_caps"] == [False]
    assert "disable_no_new_privs" not in f
    assert f["time_limit"] == [0]
    assert f["mount_proc"] == [True]


def test_as_root_mounts_are_made_before_dropping_to_nobody() -> None:
    f = fields(build_jail(SandboxPolicy(), LAYOUT, HOST))
    assert f["clone_newuser"] == [False]
    assert f["uidmap"] == [[("inside_id", "65534")]]
    assert f["gidmap"] == [[("inside_id", "65534")]]


def test_without_root_a_user_namespace_maps_nobody_to_the_current_user() -> None:
    f = fields(build_jail(SandboxPolicy(), LAYOUT, dataclasses.replace(HOST, uid=1000, gid=1000)))
    assert f["clone_newuser"] == [True]
    assert f["uidmap"] == [[("inside_id", "65534"), ("outside_id", "1000"), ("count", 1)]]


def test_only_what_the_plugin_needs_is_mounted_and_all_read_only() -> None:
    mounts = build_jail(SandboxPolicy(), LAYOUT, HOST).mounts()
    binds = {m["dst"]: m for m in mounts if m.get("is_bind") and "src" in m}
    assert binds[PLUGIN_DIR]["src"] == str(LAYOUT.plugin_dir)
    assert binds[f"{GUEST_LIB}/synapse_nb"]["src"] == "/src/synapse_nb"
    assert set(binds) == {
        "/opt/python",
        "/lib",
        "/usr/lib",
        "/etc/ld.so.cache",
        PLUGIN_DIR,
        f"{GUEST_LIB}/synapse_nb",
        "/opt/synapse/site/0",
        "/dev/null",
        "/dev/zero",
        "/dev/urandom",
    }
    assert binds["/opt/synapse/site/0"]["src"] == "/venv/lib/python3.11/site-packages"
    assert all(not m["rw"] for dst, m in binds.items() if not dst.startswith("/dev/"))
    assert not any(dst.startswith(("/home", "/root")) or ".synapse" in dst for dst in binds)


def test_tmp_is_a_size_limited_tmpfs() -> None:
    mounts = build_jail(SandboxPolicy(tmp_mb=16), LAYOUT, HOST).mounts()
    [tmp] = [m for m in mounts if m["dst"] == "/tmp"]
    assert tmp["fstype"] == "tmpfs"
    assert tmp["options"] == f"size={16 << 20},mode=1777"
    assert tmp["nosuid"]
    assert tmp["nodev"]


def test_rlimits_follow_the_policy() -> None:
    f = fields(build_jail(SandboxPolicy(fsize_mb=8, nofile=100, cpu_seconds=60), LAYOUT, HOST))
    assert f["rlimit_fsize"] == [8]
    assert f["rlimit_nofile"] == [100]
    assert f["rlimit_cpu"] == [60]
    assert f["rlimit_core"] == [0]
    assert [str(v) for v in f["rlimit_as_type"]] == ["INF"]


def test_the_channel_fds_are_passed_and_given_to_the_guest() -> None:
    config = build_jail(SandboxPolicy(), LAYOUT, HOST, request_fd=7, reply_fd=9, log_fd=11)
    f = fields(config)
    assert f["pass_fd"] == [7, 9]
    assert f["log_fd"] == [11]
    assert config.command[0] == "/opt/python/bin/python3.11"
    assert config.command[-2:] == ["7", "9"]
    assert "-I" in config.command
    assert "-S" in config.command
    assert "-B" in config.command


def test_the_config_renders_as_protobuf_text_with_escaping() -> None:
    text = build_jail(SandboxPolicy(), LAYOUT, HOST, name='we"ird\nname').to_text()
    assert 'name: "we\\"ird\\nname"' in text
    assert "mode: ONCE" in text
    assert "clone_newnet: true" in text
    assert text.count("mount {") == len(build_jail(SandboxPolicy(), LAYOUT, HOST).mounts())


def test_the_builder_is_pure() -> None:
    a = build_jail(SandboxPolicy(), LAYOUT, HOST).to_text()
    b = build_jail(SandboxPolicy(), LAYOUT, HOST).to_text()
    assert a == b


def test_the_seccomp_policy_denies_the_dangerous_syscalls() -> None:
    policy = kafel_policy()
    for name in ("ptrace", "mount", "umount", "unshare", "setns", "bpf", "perf_event_open", "userfaultfd",
                 "io_uring_setup", "keyctl", "add_key", "request_key", "kexec_load", "init_module",
                 "finit_module", "delete_module", "open_by_handle_at", "swapon", "swapoff", "reboot",
                 "pivot_root", "process_vm_readv", "process_vm_writev"):  # fmt: skip
        assert name in DENIED_SYSCALLS
        assert name in policy
    assert "umount2" not in policy  # kafel's name for it is `umount`
    assert "ERRNO(38) { clone3 }" in policy
    assert "USE synapse_worker DEFAULT ALLOW" in policy


def make_v2(root: Path, own: str, *, procs: str = "") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    here = root / own.lstrip("/")
    here.mkdir(parents=True, exist_ok=True)
    (here / "cgroup.procs").write_text(procs)


def test_v2_nests_under_our_own_cgroup_when_it_has_no_processes(tmp_path: Path) -> None:
    make_v2(tmp_path, "/user.slice/app")
    support = detect_cgroups(tmp_path, proc_cgroup="0::/user.slice/app\n")
    assert support.version == 2
    assert support.memory_parent == tmp_path / "user.slice" / "app" / "synapse"
    assert (support.memory_parent / "cgroup.subtree_control").read_text() == "+memory +pids"


def test_v2_falls_back_to_the_root_when_our_cgroup_holds_processes(tmp_path: Path) -> None:
    make_v2(tmp_path, "/user.slice/app", procs="123\n")
    support = detect_cgroups(tmp_path, proc_cgroup="0::/user.slice/app\n")
    assert support.memory_parent == tmp_path / "synapse"


def test_v2_without_the_memory_controller_is_reported(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "cgroup.controllers").write_text("cpu io\n")
    support = detect_cgroups(tmp_path, proc_cgroup="0::/\n")
    assert not support.available
    assert "memory, pids" in support.reason


def test_v1_nests_under_the_memory_cgroup_of_this_process(tmp_path: Path) -> None:
    (tmp_path / "memory" / "job" / "x").mkdir(parents=True)
    (tmp_path / "pids").mkdir()
    support = detect_cgroups(tmp_path, proc_cgroup="8:pids:/\n4:memory:/job/x\n0::/\n")
    assert support.version == 1
    assert support.memory_parent == tmp_path / "memory" / "job" / "x" / "synapse"
    assert support.pids_parent == tmp_path / "pids" / "synapse"


def test_worker_cgroup_limits_on_v2_files(tmp_path: Path) -> None:
    parent = tmp_path / "synapse"
    parent.mkdir()
    support = CgroupSupport(2, memory_parent=parent, pids_parent=parent)
    cgroup = WorkerCgroup(support, memory_bytes=64 << 20, pids_max=32, name="w1")
    assert (parent / "w1" / "memory.max").read_text() == str(64 << 20)
    assert (parent / "w1" / "pids.max").read_text() == "32"
    (parent / "w1" / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (parent / "w1" / "pids.events").write_text("max 7\n")
    assert cgroup.oom_kills() == 1
    assert cgroup.pids_refused() == 7
    assert cgroup.procs_files == [parent / "w1" / "cgroup.procs"]


def test_unavailable_cgroups_refuse_to_create_workers() -> None:
    with pytest.raises(RuntimeError, match="cgroups are unavailable"):
        WorkerCgroup(CgroupSupport(None, reason="no"), memory_bytes=1, pids_max=1)


def test_stale_worker_cgroups_of_dead_hosts_are_swept(tmp_path: Path) -> None:
    from synapse_nb.sandbox.cgroups import sweep_stale

    parent = tmp_path / "synapse"
    (parent / "w999999999-1").mkdir(parents=True)  # no such host process
    (parent / f"w{os.getpid()}-1").mkdir()  # ours: kept
    (parent / "other").mkdir()  # not a worker cgroup: kept
    support = CgroupSupport(2, memory_parent=parent, pids_parent=parent)
    assert sweep_stale(support) == 1
    assert sorted(p.name for p in parent.iterdir()) == sorted([f"w{os.getpid()}-1", "other"])


def test_environments_under_the_host_tmp_leave_no_trace_in_the_jail_tmp() -> None:
    layout = JailLayout(
        plugin_dir=Path("/tmp/pytest/plugin"),
        site_dirs=(Path("/tmp/ci/.venv/lib/python3.11/site-packages"),),
        extra_dirs=(Path("/tmp/ci/src"),),
    )
    binds = [m["dst"] for m in build_jail(SandboxPolicy(), layout, HOST).mounts() if "src" in m]
    assert not [dst for dst in binds if dst.startswith("/tmp")], binds
    assert guest_paths(layout) == (["/opt/synapse/site/0"], ["/opt/synapse/path/0"])

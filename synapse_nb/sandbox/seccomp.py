"""The kafel seccomp policy every worker runs under.

Syscalls that a plugin never needs and that widen the kernel attack surface fail with EPERM; everything else
is allowed (a deny-list: an allow-list would break numpy, torch and friends in ways that are hard to debug).
``clone`` is allowed for threads and fork, but not with namespace flags; ``clone3`` (whose flags live in
memory seccomp cannot inspect) fails with ENOSYS so that libc falls back to ``clone``.
"""

from __future__ import annotations

__all__ = ["DENIED_SYSCALLS", "kafel_policy"]

# kafel names the umount2 syscall `umount`.
DENIED_SYSCALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount",
    "pivot_root",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "lookup_dcookie",
)

# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
CLONE_NAMESPACE_FLAGS = 0x7E020000
EPERM = 1
ENOSYS = 38


def kafel_policy() -> str:
    """The policy text, for nsjail's ``seccomp_string``."""
    denied = ", ".join(DENIED_SYSCALLS)
    return (
        "POLICY synapse_worker {\n"
        f"  ERRNO({EPERM}) {{ {denied} }},\n"
        f"  ERRNO({EPERM}) {{ clone {{ (clone_flags & {CLONE_NAMESPACE_FLAGS:#x}) != 0 }} }},\n"
        f"  ERRNO({ENOSYS}) {{ clone3 }}\n"
        "}\n"
        "USE synapse_worker DEFAULT ALLOW\n"
    )

"""OS confinement of a sandbox worker: namespaces, an empty read-only root, seccomp.

Used by the worker process itself (trusted bootstrap code, before it reads any untrusted
byte) and imported only from the standard library, so the worker can load it as a plain
module without sgde on ``sys.path``. Linux only; every function raises
:class:`ConfinementUnavailable` with the reason when the kernel or the host refuses.

Why ctypes on libc and libseccomp rather than a wrapper package: Python 3.11 has no
``os.unshare``/``mount``/``pivot_root``/``prctl``; the calls needed are few and stable
(their ABI is that of the kernel), and ``libseccomp.so.2`` ships with every Debian/Ubuntu/
Fedora base image (systemd depends on it). Using the shared library directly avoids a
dependency whose only job would be to load it, and libseccomp — not hand-written BPF —
handles the architecture checks (it kills calls made through a foreign ABI such as x32 or
``int 0x80``) and syscall numbering on every architecture it supports.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import signal
from collections.abc import Iterable, Sequence

__all__ = [
    "CHILD_DENIED",
    "SANDBOX_UID",
    "WORKER_DENIED",
    "ConfinementUnavailable",
    "SeccompFilter",
    "drop_privileges",
    "enter_namespaces",
    "isolate_filesystem",
    "load_seccomp",
    "set_non_dumpable",
    "set_parent_death_signal",
]

SANDBOX_UID = 2_000_000_000
"""uid and gid the worker switches to when sgde runs as root (used by nothing else)."""

_CLONE_NEWNS = 0x00020000
_CLONE_NEWCGROUP = 0x02000000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_CLONE_NEWTIME = 0x00000080
_NAMESPACE_FLAGS = (
    _CLONE_NEWNS,
    _CLONE_NEWCGROUP,
    _CLONE_NEWUTS,
    _CLONE_NEWIPC,
    _CLONE_NEWUSER,
    _CLONE_NEWPID,
    _CLONE_NEWNET,
    _CLONE_NEWTIME,
)

_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 2

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_LAST = 63
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_NE = 1
_SCMP_CMP_EQ = 4
_SCMP_CMP_MASKED_EQ = 7
_TIOCSTI = 0x5412

# System calls confined Python never needs (the worker and every call).
WORKER_DENIED: tuple[str, ...] = (
    # network
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    # other processes' memory, tracing
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "process_madvise", "move_pages", "migrate_pages",
    # mounts, namespaces, roots
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at",
    # new programs
    "execve", "execveat", "uselib",
    # kernel attack surface
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "personality",
    "fanotify_init", "lookup_dcookie", "quotactl", "quotactl_fd", "vhangup", "syslog",
    "modify_ldt", "iopl", "ioperm", "ustat", "sysfs", "_sysctl", "nfsservctl",
    # the machine
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
)  # fmt: skip

# Denied as well inside a call: no new processes or threads, no signals to anyone, no
# leaving the worker's process group.
CHILD_DENIED: tuple[str, ...] = (
    "clone", "clone3", "fork", "vfork",
    "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "pidfd_open", "pidfd_send_signal",
    "setpgid", "setsid", "setpriority", "sched_setaffinity", "sched_setscheduler",
    "sched_setparam", "sched_setattr", "ioprio_set", "seccomp",
)  # fmt: skip


class ConfinementUnavailable(RuntimeError):
    """The OS confinement could not be set up (the message says which step and why)."""


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_libc: ctypes.CDLL | None = None
_seccomp: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _libseccomp() -> ctypes.CDLL:
    global _seccomp
    if _seccomp is None:
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise ConfinementUnavailable(
                f"libseccomp is not installed ({exc}); install it with "
                "'apt-get install libseccomp2' (Debian/Ubuntu) or 'dnf install libseccomp'"
            ) from None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_rule_add_array.restype = ctypes.c_int
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        ]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
        _seccomp = lib
    return _seccomp


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise ConfinementUnavailable(f"{what} failed: {os.strerror(err)} (errno {err})")


def _prctl(option: int, arg: int = 0, what: str = "prctl", arg3: int = 0) -> None:
    libc = _lib()
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]  # fmt: skip
    _check(libc.prctl(option, arg, arg3, 0, 0), what)


def syscall_number(name: str) -> int:
    """The native number of a system call (through libseccomp), or -1 when it has none."""
    number = int(_libseccomp().seccomp_syscall_resolve_name(name.encode()))
    return number if number >= 0 else -1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` (default SIGKILL) to this process when its parent
    dies (Linux). Pid 1 of a pid namespace receives only signals it handles: give it a
    signal with a handler."""
    _prctl(_PR_SET_PDEATHSIG, int(sig), "prctl(PR_SET_PDEATHSIG)")


def set_non_dumpable() -> None:
    """No core dumps and no ptrace by processes of the same uid (Linux)."""
    _prctl(_PR_SET_DUMPABLE, 0, "prctl(PR_SET_DUMPABLE)")


def enter_namespaces() -> bool:
    """Unshare mount, network, pid, ipc, uts and cgroup namespaces (plus a user namespace
    unless running as root, mapping the caller to uid/gid 65534 inside).

    The caller must fork afterwards: the child is pid 1 of the new pid namespace.

    Returns:
        Whether a user namespace was created (False as root).
    """
    libc = _lib()
    libc.unshare.argtypes = [ctypes.c_int]
    flags = (
        _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWIPC | _CLONE_NEWUTS
        | _CLONE_NEWCGROUP
    )  # fmt: skip
    as_root = os.geteuid() == 0
    uid, gid = os.geteuid(), os.getegid()
    if not as_root:
        flags |= _CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        hint = (
            "user namespaces are disabled (sysctl kernel.unprivileged_userns_clone=1 or "
            "user.max_user_namespaces > 0, or an AppArmor/container policy forbids them)"
            if err in (errno.EPERM, errno.ENOSPC, errno.EINVAL)
            else "the kernel refused"
        )
        raise ConfinementUnavailable(f"unshare() failed: {os.strerror(err)}; {hint}")
    if not as_root:
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"65534 {uid} 1")
            _write("/proc/self/gid_map", f"65534 {gid} 1")
        except OSError as exc:
            raise ConfinementUnavailable(f"cannot map the user namespace ids: {exc}") from None
    libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    _check(libc.sethostname(b"sandbox", 7), "sethostname")
    return not as_root


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def isolate_filesystem(mountpoint: str) -> None:
    """Replace the root with an empty, read-only tmpfs and detach the host's mounts.

    Must run in a fresh mount namespace with CAP_SYS_ADMIN there. ``mountpoint`` is any
    existing directory (it is covered by the new root in this namespace only). After this
    the process sees no host file: no /proc, /etc, /home, /tmp, devices or sockets.
    """
    libc = _lib()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]  # fmt: skip
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "making / private")
    target = mountpoint.encode()
    _check(
        libc.mount(b"sgde-sandbox", target, b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                   b"size=16k,nr_inodes=16,mode=0555"),
        "mounting the sandbox root",
    )  # fmt: skip
    os.mkdir(os.path.join(mountpoint, "old"), 0o000)
    number = syscall_number("pivot_root")
    libc.syscall.restype = ctypes.c_long
    _check(libc.syscall(number, target, os.path.join(mountpoint, "old").encode()), "pivot_root")
    os.chdir("/")
    _check(libc.umount2(b"/old", _MNT_DETACH), "detaching the host's root")
    os.rmdir("/old")
    _check(
        libc.mount(None, b"/", None,
                   _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None),
        "remounting the sandbox root read-only",
    )  # fmt: skip


def drop_privileges(*, switch_uid: bool) -> None:
    """Give up every capability and the ability to gain privileges.

    Args:
        switch_uid: Also switch to :data:`SANDBOX_UID` (when sgde runs as root).
    """
    for cap in range(_CAP_LAST + 1):
        try:
            _prctl(_PR_CAPBSET_DROP, cap, "prctl(PR_CAPBSET_DROP)")
        except ConfinementUnavailable:
            if ctypes.get_errno() == errno.EINVAL:
                break  # past the kernel's last capability
            raise
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, "prctl(PR_CAP_AMBIENT)")
    if switch_uid:
        os.setgroups([])
        os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    libc = _lib()
    libc.syscall.restype = ctypes.c_long
    _check(
        libc.syscall(syscall_number("capset"), ctypes.byref(header), ctypes.byref(data)),
        "capset",
    )
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")
    _prctl(_PR_SET_DUMPABLE, 0, "prctl(PR_SET_DUMPABLE)")


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class SeccompFilter:
    """A seccomp filter, compiled once and loadable in any later fork.

    The named system calls fail with EPERM; so do clone with namespace flags and
    ``ioctl(TIOCSTI)``; with ``no_threads`` every clone fails and clone3 reports ENOSYS.
    Calls through a foreign ABI kill the process (libseccomp's default). Filters stack: a
    later one only restricts further.
    """

    def __init__(self, denied: Iterable[str], *, no_threads: bool = False) -> None:
        lib = _libseccomp()
        self._lib = lib
        self._ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
        if not self._ctx:
            raise ConfinementUnavailable("seccomp_init failed")
        eperm = _errno_action(errno.EPERM)
        rules: list[tuple[str, int, Sequence[_ArgCmp]]] = [
            (name, eperm, ()) for name in denied if name != "clone3"
        ]
        # glibc falls back to clone() when clone3 is missing; clone's flags are a register
        # the filter can inspect, clone3's are in memory.
        rules.append(("clone3", _errno_action(errno.ENOSYS), ()))
        if not no_threads:
            for flag in _NAMESPACE_FLAGS:
                rules.append(("clone", eperm, (_ArgCmp(0, _SCMP_CMP_MASKED_EQ, flag, flag),)))
        rules.append(("ioctl", eperm, (_ArgCmp(1, _SCMP_CMP_EQ, _TIOCSTI, 0),)))
        rules.append(("prlimit64", eperm, (_ArgCmp(0, _SCMP_CMP_NE, 0, 0),)))
        for name, action, args in rules:
            number = syscall_number(name)
            if number < 0:
                continue  # not a system call on this architecture
            array = (_ArgCmp * max(1, len(args)))(*args)
            result = lib.seccomp_rule_add_array(self._ctx, action, number, len(args), array)
            if result != 0:
                raise ConfinementUnavailable(
                    f"seccomp rule for {name} failed: {os.strerror(-result)}"
                )

        self._program = self._export()
        lib.seccomp_release(self._ctx)
        self._ctx = None

    def _export(self) -> _SockFprog:
        """The compiled BPF program (so a fork installs it with one prctl, not a compile)."""
        read_fd, write_fd = os.pipe()
        try:
            result = self._lib.seccomp_export_bpf(self._ctx, write_fd)
            os.close(write_fd)
            write_fd = -1
            if result != 0:
                raise ConfinementUnavailable(f"seccomp_export_bpf failed: {os.strerror(-result)}")
            data = b""
            while chunk := os.read(read_fd, 65536):
                data += chunk
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        if not data or len(data) % 8:
            raise ConfinementUnavailable("libseccomp exported an invalid filter")
        self._buffer = ctypes.create_string_buffer(data, len(data))
        return _SockFprog(len(data) // 8, ctypes.cast(self._buffer, ctypes.c_void_p))

    def load(self) -> None:
        """Install the filter on the calling thread (needs ``no_new_privs``, set by
        :func:`drop_privileges`)."""
        _prctl(
            _PR_SET_SECCOMP,
            _SECCOMP_MODE_FILTER,
            "prctl(PR_SET_SECCOMP)",
            ctypes.addressof(self._program),
        )


def load_seccomp(denied: Iterable[str], *, no_threads: bool = False) -> None:
    """Compile and install a :class:`SeccompFilter` at once."""
    SeccompFilter(denied, no_threads=no_threads).load()

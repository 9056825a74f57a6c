"""Linux isolation steps shared by the sample fork server (`child.py`) and the tool jail (`tool_jail.py`).

Stdlib only, and never imported by the harness: both scripts run under `python -I`, where their folder
is not on sys.path, and load this file by its path (`load_isolation` in each).

Two ways in, one result. As root, the process unshares mount, network, pid and IPC namespaces
directly and each sample later drops to an unused uid. As an ordinary user it first enters a new user
namespace that maps its own uid to root inside (what `unshare -U -r` does), which lets it make the
same namespaces and mounts; each sample then enters a nested user namespace as uid 1000, which holds
no capabilities anywhere: it cannot unmount, remount or undo anything set up for it.
"""

import codecs
import ctypes
import os
import platform

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    16384,
    1 << 18,
)
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC = (
    0x00020000,
    0x10000000,
    0x20000000,
    0x40000000,
    0x08000000,
)
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
INNER_UID = 1000  # the sample's (or tool's) uid inside its nested user namespace
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
# statvfs's f_flag bits that a remount must keep (a user namespace may not clear locked ones)
_KEPT = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC), (1024, MS_NOATIME), (2048, MS_NODIRATIME))
_ST_RELATIME = 4096
PSEUDO_FS = frozenset(
    "proc sysfs cgroup cgroup2 devtmpfs devpts mqueue securityfs debugfs tracefs bpf pstore fusectl "
    "configfs hugetlbfs binfmt_misc autofs efivarfs rpc_pipefs nsfs".split()
)
LIBC = ctypes.CDLL(None, use_errno=True)


def check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} failed: {os.strerror(err)}")


def mount(src, target, fstype, flags, data, what):
    check(LIBC.mount(src, target, fstype, flags, data), what)


def unshare(flags, what):
    check(LIBC.unshare(flags), f"unshare({what})")


def prctl(option, value, what):
    check(LIBC.prctl(option, value, 0, 0, 0), what)


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def enter_user_namespace(inside):
    """A new user namespace where `inside` is this process's uid and gid (setgroups denied, as an
    unprivileged writer must); with `inside` = 0 the process is root there, with every capability over
    the namespaces it creates next, and none over the host's."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER, "NEWUSER")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{inside} {uid} 1")
    _write("/proc/self/gid_map", f"{inside} {gid} 1")
    if inside != 0:
        os.setresgid(inside, inside, inside)
        os.setresuid(inside, inside, inside)


def drop_to_nested_user():
    """Leave every capability behind: a nested user namespace whose only uid is INNER_UID."""
    enter_user_namespace(INNER_UID)
    if os.getuid() != INNER_UID:
        raise RuntimeError("could not enter the nested user namespace")


def drop_to_uid(uid):
    """As real root: become `uid` (unused by anything else), no groups; no way back."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if 0 in os.getresuid() or 0 in os.getresgid():
        raise RuntimeError("could not drop root")


def make_private():
    """Before any mount: nothing done in this mount namespace may propagate to the host's."""
    mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None, "making mounts private")


def _mounts():
    with open("/proc/self/mountinfo") as f:
        for line in f.read().splitlines():
            left, _, right = line.partition(" - ")
            yield codecs.escape_decode(left.split()[4].encode())[0].decode(), right.split()[0]


def _read_only_flags(point):
    kept = os.statvfs(point).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
    flags |= MS_RELATIME if kept & _ST_RELATIME else 0
    return flags | sum(ms for st, ms in _KEPT if kept & st)


def read_only_tree(prefix):
    """Remount every disk mount at or under `prefix` read-only (pseudo filesystems and /proc, /sys,
    /dev are left out); a mount that refuses is an error: it would be a way out."""
    for point, fstype in list(_mounts()):
        inside = point == prefix or point.startswith(prefix.rstrip("/") + "/")
        top = point[len(prefix.rstrip("/")) :].split("/")[1:2]
        if not inside or fstype in PSEUDO_FS or top in (["proc"], ["sys"], ["dev"]):
            continue
        mount(None, point.encode(), None, _read_only_flags(point), None, f"read-only {point}")


def bind(source_fd, target):
    """Bind the directory (or file) open as O_PATH `source_fd` at `target`, with its submounts, read-only."""
    mount(b"/proc/self/fd/%d" % source_fd, target.encode(), None, MS_BIND | MS_REC, None, "binding " + target)
    read_only_tree(target)


def writable(target):
    """Make the bind mount at `target` writable again (a bind of a read-only mount starts read-only)."""
    mount(None, target.encode(), None, _read_only_flags(target) & ~MS_RDONLY, None, "read-write " + target)


def open_path(path):
    return os.open(path, os.O_PATH | os.O_CLOEXEC)


def make_target(root, path, is_dir):
    """Create the mount point for host `path` inside `root` (parents 0755)."""
    target = root + path
    os.makedirs(target if is_dir else os.path.dirname(target), 0o755, exist_ok=True)
    if not is_dir and not os.path.exists(target):
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    return target


def tmpfs(target, size, mode=0o1777, flags=MS_NOSUID | MS_NODEV, inodes=4096):
    data = b"size=%d,nr_inodes=%d,mode=%o" % (size, inodes, mode)
    mount(b"tmpfs", target.encode(), b"tmpfs", flags, data, "tmpfs on " + target)


def pivot_root(new_root):
    """Make `new_root` (a mount point) the root and detach the old one: the host tree is gone."""
    number = _PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(0, f"pivot_root: unknown system call number on {platform.machine()}")
    old = new_root + "/.old-root"
    os.mkdir(old, 0o700)
    check(LIBC.syscall(number, new_root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    check(LIBC.umount2(b"/.old-root", MNT_DETACH), "detaching the old root")
    os.rmdir("/.old-root")

"""The sandbox's fork server ("zygote"): `python -I -B data_generation/common/sandbox/child.py FD NAMESPACES`.

Never imported by the harness (`sandbox.execution` runs it): a script with only stdlib imports, started once
per worker slot as the harness's user (root here). It first enters its own network and mount namespaces
(`_isolate_server`), preloads common stdlib modules, and answers its mode as JSON: "full" (namespaces
+ uid drop), "uid" (root, but the kernel refused namespaces: uid drop only) or "none" (not root); or
"E<why>". For each request on its SOCK_SEQPACKET socket (a JSON header plus four fds: nonce pipe read
end, result pipe write end, output memfd, program memfd) it forks a child, answers "P<pid>", waits for
the child and answers "S<exit code>". Forking this small, clean interpreter is what makes a sample
cheap (no interpreter start, no namespace creation per sample).

The child finishes its isolation, drops to the slot's uid, runs the program
and reports on the result pipe: "E<why>" = setup failed (candidate never ran); "R" = candidate starts;
then the nonce, which it reads from the nonce pipe only after the program returned (tests finished), or
"F<exception>". The zygote never sees the nonce.
"""

import codecs
import ctypes
import json
import os
import resource
import socket
import sys

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
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWNET, MNT_DETACH = 0x00020000, 0x08000000, 0x40000000, 2
SKIP_FS = {
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devtmpfs",
    "devpts",
    "mqueue",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "pstore",
    "fusectl",
    "configfs",
    "hugetlbfs",
    "binfmt_misc",
    "autofs",
    "efivarfs",
    "rpc_pipefs",
    "nsfs",
}
NONCE_FD, RESULT_FD = 3, 4
# Imported once in the fork server: samples skip their import cost, and they stay importable in the
# "uid" mode, where an interpreter under a root-only folder (pyenv in /root) is unreadable after setuid.
PRELOAD = (
    "math",
    "cmath",
    "re",
    "string",
    "collections",
    "itertools",
    "functools",
    "operator",
    "heapq",
    "bisect",
    "array",
    "copy",
    "typing",
    "dataclasses",
    "datetime",
    "decimal",
    "fractions",
    "statistics",
    "random",
    "hashlib",
    "json",
    "threading",
    "time",
)
LIBC = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} failed: {os.strerror(err)}")


def _mount(src, target, fstype, flags, data, what):
    _check(LIBC.mount(src, target, fstype, flags, data), what)


def _read_only_mounts():
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, fstype = left.split(), right.split()[0]
        point = codecs.escape_decode(fields[4].encode())[0]
        if fstype in SKIP_FS or point.split(b"/")[1] in (b"proc", b"sys", b"dev"):
            continue
        opts = fields[5].split(",")
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | (MS_NOSUID if "nosuid" in opts else 0)
        flags |= (MS_NODEV if "nodev" in opts else 0) | (MS_NOEXEC if "noexec" in opts else 0)
        ret = LIBC.mount(None, point, None, flags, None)
        if point == b"/":  # other mounts are best effort (some refuse a bind remount)
            _check(ret, "read-only /")


def _closed_ancestor(path):
    """The top-most directory on the way to `path` that others cannot traverse (e.g. /root, 0700)."""
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        top = "/".join(parts[:i])
        if not os.stat(top).st_mode & 0o001:
            return top
    return None


_TMP_INTERPRETER = []  # (path, O_PATH fd) of interpreter folders under /tmp, bound into each sample's /tmp


def _interpreter_dirs():
    """The interpreter's folders (prefixes and import path), outermost only."""
    wanted = sorted({os.path.realpath(p) for p in [sys.base_prefix, sys.prefix, *sys.path] if p and os.path.isdir(p)})
    return [p for p in wanted if not any(p.startswith(w + "/") for w in wanted if w != p)]


def _bind_read_only(fd, path):
    os.makedirs(path, 0o755, exist_ok=True)
    _mount(b"/proc/self/fd/%d" % fd, path.encode(), None, MS_BIND | MS_REC, None, "binding " + path)
    _mount(
        None, path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None, "read-only " + path
    )


def _expose_interpreter():
    # The interpreter may live under a root-only folder (pyenv in /root): hide that folder behind a
    # read-only tmpfs (the rest of it stays unreachable) and bind the interpreter's folders back into it.
    roots = {}
    for path in _interpreter_dirs():
        top = _closed_ancestor(path)
        if top is not None:
            roots.setdefault(top, []).append(path)
    for top, paths in roots.items():
        fds = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in paths]
        _mount(b"tmpfs", top.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=65536,mode=0755", "tmpfs on " + top)
        for path, fd in fds:
            _bind_read_only(fd, path)
            os.close(fd)
        _mount(None, top.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None, "read-only " + top)


def _isolate_server():
    """Once per zygote: its own network and mount namespaces, disks read-only, /proc with hidepid.

    Every child inherits them. Samples of one slot run one after another and nothing of a sample
    survives it, so sharing the (empty) network namespace and the read-only view costs no isolation,
    and saves creating them per sample. The mount namespace must become private before anything is
    mounted, or mounts would propagate to the host's namespace.
    """
    _check(LIBC.unshare(CLONE_NEWNET | CLONE_NEWNS), "unshare(NEWNET|NEWNS)")
    _mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None, "making mounts private")
    _read_only_mounts()
    _expose_interpreter()
    # opened once, before any tmpfs covers /tmp: a path under a lazily unmounted tmpfs cannot be bound
    # again. The zygote keeps them; each child closes them with everything above its own fds.
    _TMP_INTERPRETER.extend(
        (p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in _interpreter_dirs() if p.startswith("/tmp/")
    )
    LIBC.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"hidepid=invisible")  # best effort


def _fresh_tmp(req):
    """Before each sample: new empty tmpfs on /tmp and /dev/shm (the previous sample's files vanish).

    An interpreter that lives under /tmp (a virtualenv in a CI checkout there) is bound back in,
    read-only, or the sample could not import its site-packages."""
    for target, size, flags in (
        (b"/tmp", req["tmpfs"], MS_NOSUID | MS_NODEV),
        (b"/dev/shm", 1 << 20, MS_NOSUID | MS_NODEV | MS_NOEXEC),
    ):
        if os.path.isdir(target):
            LIBC.umount2(target, MNT_DETACH)  # fails harmlessly the first time (the host's, read-only or not mounted)
            _mount(
                b"tmpfs",
                target,
                b"tmpfs",
                flags,
                b"size=%d,nr_inodes=4096,mode=1777" % size,
                "tmpfs on " + target.decode(),
            )
    for path, fd in _TMP_INTERPRETER:
        _bind_read_only(fd, path)
    os.mkdir("/tmp/sandbox", 0o700)
    os.chown("/tmp/sandbox", req["uid"], req["uid"])
    return "/tmp/sandbox"


def _no_network(event, args):
    # Fallback without a network namespace: refuse sockets (an audit hook cannot be removed from Python).
    if event.startswith("socket.") and event != "socket.gethostname":
        raise PermissionError("network access is disabled in the sandbox")


def _setup(req, parent):
    full = req["mode"] == "full"
    if full:  # System V IPC objects outlive their process: a namespace per sample drops them
        _check(LIBC.unshare(CLONE_NEWIPC), "unshare(NEWIPC)")
    os.chdir("/tmp/sandbox" if full else req["workdir"])
    os.umask(0o077)
    R = resource
    for what, soft, hard in (
        (R.RLIMIT_CPU, req["cpu"], req["cpu"] + 1),
        (R.RLIMIT_AS, req["mem"], req["mem"]),
        (R.RLIMIT_FSIZE, req["fsize"], req["fsize"]),
        (R.RLIMIT_NPROC, req["nproc"], req["nproc"]),
        (R.RLIMIT_NOFILE, req["nofile"], req["nofile"]),
        (R.RLIMIT_CORE, 0, 0),
    ):
        R.setrlimit(what, (soft, hard))
    if req["mode"] in ("full", "uid"):
        os.setgroups([])
        os.setresgid(req["uid"], req["uid"], req["uid"])
        os.setresuid(req["uid"], req["uid"], req["uid"])
        if 0 in os.getresuid() or 0 in os.getresgid():
            raise RuntimeError("could not drop root")
    if not full:
        sys.addaudithook(_no_network)
    _check(LIBC.prctl(38, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")  # setuid binaries stay unprivileged
    _check(LIBC.prctl(1, 9, 0, 0, 0), "PR_SET_PDEATHSIG")  # after setuid, which clears it
    if os.getppid() != parent:
        os._exit(1)


def _child(req, fds, parent):
    """In the forked child: own session, fds in place, isolate, run. Never returns."""
    os.setsid()
    nonce, result, out, prog = fds
    null = os.open("/dev/null", os.O_RDONLY)
    for src, dst in ((null, 0), (out, 1), (out, 2), (nonce, NONCE_FD), (result, RESULT_FD)):
        os.dup2(src, dst)
    program = os.pread(prog, req["size"], 0)
    os.closerange(RESULT_FD + 1, os.sysconf("SC_OPEN_MAX"))  # the zygote's socket above all
    try:
        _setup(req, parent)
    except BaseException as e:
        os.write(RESULT_FD, f"E{type(e).__name__}: {e}".encode())
        os._exit(3)
    _run(program)


def _run(program):
    write, read, exit_ = os.write, os.read, os._exit  # captured before the candidate can replace them
    sys.modules["random"].seed()  # not the fork server's state: samples must not share random sequences
    write(RESULT_FD, b"R")
    try:
        exec(compile(program, "<sample>", "exec"), {"__name__": "__sample__"})
    except BaseException as e:
        try:
            msg = type(e).__name__ + (f": {e}" if str(e) else "")
        except BaseException:
            msg = "exception"
        write(RESULT_FD, b"F" + msg.encode("utf-8", "replace")[:2000])
        code = 1
    else:
        write(RESULT_FD, read(NONCE_FD, 64))  # reached only when the tests ran to their end
        code = 0
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    exit_(code)


def serve(sock_fd, root, namespaces):
    sock = socket.socket(fileno=sock_fd)
    mode, why = ("uid" if root else "none"), ""
    try:
        _check(LIBC.prctl(1, 9, 0, 0, 0), "PR_SET_PDEATHSIG")  # the zygote dies with the harness
        if root and namespaces:
            try:
                _isolate_server()
                mode = "full"
            except OSError as e:  # e.g. a container without CAP_SYS_ADMIN: degrade, and say so
                why = str(e)
    except BaseException as e:
        sock.sendall(f"E{type(e).__name__}: {e}".encode())
        return
    for name in PRELOAD:
        __import__(name)
    sock.sendall(json.dumps({"mode": mode, "why": why}).encode())
    me = os.getpid()
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 4096, 4)
        if not msg:
            return
        req = json.loads(msg)
        if req["mode"] == "full":
            try:
                _fresh_tmp(req)
            except OSError as e:
                sock.sendall(f"E{type(e).__name__}: {e}".encode())
                return
        pid = os.fork()
        if pid == 0:
            try:
                _child(req, fds, me)
            finally:
                os._exit(3)
        for fd in fds:
            os.close(fd)
        sock.sendall(b"P%d" % pid)
        _, status = os.waitpid(pid, 0)
        sock.sendall(b"S%d" % os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    serve(int(sys.argv[1]), os.geteuid() == 0, sys.argv[2] == "1")

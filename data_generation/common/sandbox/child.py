"""The sandbox's fork server ("zygote"): `python -I -B data_generation/common/sandbox/child.py FD NAMESPACES`.

Never imported by the harness (`sandbox.execution` starts it): a script with only stdlib imports, one
per worker slot. With NAMESPACES=1 it enters a user namespace first when it is not root (see
isolation.py), then new mount, network, pid and IPC namespaces, and forks: the server proper is pid 1
of its own pid namespace. There it builds the samples' root (`_build_root`), preloads common stdlib
modules and answers its mode as JSON: "full" (root: namespaces + uid drop), "userns" (an ordinary
user: the same namespaces through a user namespace), or, without namespaces, "uid" / "none"; or
"E<why>". The first process stays outside, waits for the server and exits with its status.

For each request on its SOCK_SEQPACKET socket (a JSON header plus four fds: nonce pipe read end,
result pipe write end, output memfd, program memfd) it forks a child, answers "P<pid>", waits for the
child, kills whatever the sample left running (pid 1 kills its whole namespace) and answers
"S<exit code>". "K" from the harness kills the sample now (its wall-clock limit passed). Forking this
small, clean interpreter makes a sample cheap: no interpreter start, no namespaces made per sample.

The child finishes its isolation, drops to an unprivileged uid, runs the program and reports on the
result pipe: "E<why>" = setup failed (candidate never ran); "R" = candidate starts; then the nonce,
which it reads from the nonce pipe only after the program returned (tests finished), or
"F<exception>". The zygote never sees the nonce.
"""

import json
import os
import resource
import runpy
import select
import signal
import socket
import sys
import types

# Under `python -I` this folder is not on sys.path: run the sibling by its path, use its names.
iso = types.SimpleNamespace(**runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "isolation.py")))
NONCE_FD, RESULT_FD = 3, 4
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
STAGED = "/.tmp-binds"  # interpreter folders that live under /tmp wait here, bound again into each fresh /tmp
# Imported once in the fork server: samples skip their import cost.
PRELOAD = (
    "math cmath re string collections itertools functools operator heapq bisect array copy typing "
    "dataclasses datetime decimal fractions statistics random hashlib json threading time"
).split()
_staged = []  # host paths under /tmp whose interpreter folder waits under STAGED


def _interpreter_dirs():
    """The interpreter's folders (prefixes and import path), outermost only, outside the system folders."""
    system = [os.path.realpath(p) for p in SYSTEM if os.path.isdir(p) and not os.path.islink(p)]
    wanted = sorted({os.path.realpath(p) for p in [sys.base_prefix, sys.prefix, *sys.path] if p and os.path.isdir(p)})
    wanted = [p for p in wanted if not any(p == s or p.startswith(s + "/") for s in system)]
    return [p for p in wanted if not any(p.startswith(w + "/") for w in wanted if w != p)]


def _build_root(new_root="/tmp"):
    """The samples' whole world, on a tmpfs that becomes `/`: read-only system folders and interpreter,
    five device nodes, a fresh /proc of this pid namespace, mount points for /tmp and /dev/shm. No
    home folders, /run, /var or other users' files; the host tree is detached."""
    iso.make_private()
    dirs = [p for p in SYSTEM if os.path.isdir(p) and not os.path.islink(p)]
    links = {p: os.readlink(p) for p in SYSTEM if os.path.islink(p)}
    interpreter = _interpreter_dirs()
    fds = {p: iso.open_path(p) for p in [*dirs, *interpreter, *DEVICES] if os.path.exists(p)}  # before /tmp is covered
    iso.tmpfs(new_root, 4 << 20, mode=0o755)
    for path in dirs:
        iso.bind(fds[path], iso.make_target(new_root, path, True))
    for path, target in links.items():
        os.symlink(target, new_root + path)
    for path in interpreter:
        staged = path.startswith("/tmp/")
        iso.bind(fds[path], iso.make_target(new_root, STAGED + path if staged else path, True))
        if staged:
            _staged.append(path)
    _build_dev(new_root, fds)
    for name in ("tmp", "proc"):
        os.mkdir(f"{new_root}/{name}", 0o755)
    try:  # hidepid: a sample does not even see the server's pid (best effort: older kernels refuse it)
        iso.mount(b"proc", f"{new_root}/proc".encode(), b"proc", 14, b"hidepid=invisible", "/proc")
    except OSError:
        iso.mount(b"proc", f"{new_root}/proc".encode(), b"proc", 14, None, "/proc")  # 14: nosuid, nodev, noexec
    for fd in fds.values():
        os.close(fd)
    iso.pivot_root(new_root)
    iso.read_only_tree("/")


def _build_dev(new_root, fds):
    os.mkdir(new_root + "/dev", 0o755)
    iso.tmpfs(new_root + "/dev", 1 << 16, mode=0o755)
    for path in DEVICES:
        if path in fds:  # a bind of the node keeps the device's own mount (no nodev)
            target = iso.make_target(new_root, path, False)
            iso.mount(b"/proc/self/fd/%d" % fds[path], target.encode(), None, iso.MS_BIND, None, "binding " + path)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1")):
        os.symlink(target, f"{new_root}/dev/{name}")
    os.symlink("/proc/self/fd/2", f"{new_root}/dev/stderr")
    os.mkdir(new_root + "/dev/shm", 0o755)


def _fresh_tmp(req):
    """Before each sample: new empty tmpfs on /tmp and /dev/shm (the previous sample's files vanish),
    with the staged interpreter folders bound back in."""
    for target, size, flags in (
        ("/tmp", req["tmpfs"], iso.MS_NOSUID | iso.MS_NODEV),
        ("/dev/shm", 1 << 20, iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC),
    ):
        iso.LIBC.umount2(target.encode(), iso.MNT_DETACH)  # fails harmlessly the first time
        iso.tmpfs(target, size, flags=flags)
    for top in sorted({"/".join(path.split("/")[:3]) for path in _staged}):  # /tmp/ci for /tmp/ci/repo/.venv
        # The whole staged tree, read-only: in mode userns the sample owns whatever the server makes here
        fd = iso.open_path(STAGED + top)
        iso.bind(fd, iso.make_target("", top, True))
        os.close(fd)
    os.mkdir("/tmp/sandbox", 0o700)
    if req["mode"] == "full":
        os.chown("/tmp/sandbox", req["uid"], req["uid"])


def _no_network(event, args):
    # Fallback without a network namespace: refuse sockets (an audit hook cannot be removed from Python).
    if event.startswith("socket.") and event != "socket.gethostname":
        raise PermissionError("network access is disabled in the sandbox")


def _setup(req, parent):
    mode = req["mode"]
    if mode in ("full", "userns"):  # System V IPC objects outlive their process: a namespace per sample
        iso.unshare(iso.CLONE_NEWIPC, "NEWIPC")
    os.chdir("/tmp/sandbox" if mode in ("full", "userns") else req["workdir"])
    os.umask(0o077)
    if mode == "userns":
        iso.prctl(iso.PR_SET_DUMPABLE, 1, "PR_SET_DUMPABLE")  # its own /proc/self, to write its uid map
        iso.drop_to_nested_user()
    elif mode in ("full", "uid"):
        iso.drop_to_uid(req["uid"])
    R = resource  # lowered after the drop: RLIMIT_NPROC then counts only this sample's processes
    for what, soft, hard in (
        (R.RLIMIT_CPU, req["cpu"], req["cpu"] + 1),
        (R.RLIMIT_AS, req["mem"], req["mem"]),
        (R.RLIMIT_FSIZE, req["fsize"], req["fsize"]),
        (R.RLIMIT_NPROC, req["nproc"], req["nproc"]),
        (R.RLIMIT_NOFILE, req["nofile"], req["nofile"]),
        (R.RLIMIT_CORE, 0, 0),
    ):
        R.setrlimit(what, (soft, hard))
    if mode in ("uid", "none"):
        sys.addaudithook(_no_network)
    iso.prctl(iso.PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")  # setuid binaries stay unprivileged
    iso.prctl(iso.PR_SET_PDEATHSIG, 9, "PR_SET_PDEATHSIG")  # after the uid change, which clears it
    if os.getppid() != parent:
        os._exit(1)


def _child(req, fds, parent):
    """In the forked child: own session, fds in place, isolate, run. Never returns."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
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


def _kill_sample(pid, uid, mode):
    """Kill the sample and everything it started. Pid 1 of a pid namespace reaches all of it at once."""
    if os.getpid() == 1:
        try:
            os.kill(-1, signal.SIGKILL)  # never the caller; here: every process of this namespace
        except ProcessLookupError:  # nothing left
            pass
        return
    try:
        os.killpg(pid, signal.SIGKILL)  # the child leads its own group (setsid)
    except ProcessLookupError:
        pass
    if mode == "uid":  # root without namespaces: a daemon that left the group still runs as the slot's uid
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/status") as f:
                    uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
                if str(uid) in uids:
                    os.kill(int(name), signal.SIGKILL)
            except (OSError, StopIteration, ValueError):
                continue


def _reap(block):
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _wait(pid, sock, req):
    """The child's exit code, killing it early on "K"; None when the harness has gone."""
    pidfd = os.pidfd_open(pid)
    gone = False
    try:
        while True:
            ready = select.select([pidfd, sock], [], [])[0]
            if sock in ready and not gone:
                gone = not sock.recv(16)
                _kill_sample(pid, req["uid"], req["mode"])
            if pidfd in ready:
                break
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    _kill_sample(pid, req["uid"], req["mode"])  # whatever it left behind
    _reap(block=os.getpid() == 1)  # pid 1: all of them were killed and handed to it
    return None if gone else os.waitstatus_to_exitcode(status)


def _start(sock, root, namespaces):
    """Enter the namespaces (forking pid 1 of the new pid namespace) and build the root; the mode and why."""
    if not namespaces:
        return ("uid" if root else "none"), "namespaces turned off"
    try:
        if not root:
            iso.enter_user_namespace(0)
        iso.unshare(iso.CLONE_NEWNS | iso.CLONE_NEWNET | iso.CLONE_NEWPID | iso.CLONE_NEWIPC, "NEWNS|NEWNET|NEWPID")
    except OSError as e:  # the kernel (or a container) refuses them: the harness decides whether that is acceptable
        return ("uid" if root else "none"), str(e)
    server = os.fork()
    if server:  # outside: wait for the server (pid 1 inside) and share its fate
        sock.close()
        _, status = os.waitpid(server, 0)
        os._exit(max(0, os.waitstatus_to_exitcode(status)))
    iso.prctl(iso.PR_SET_PDEATHSIG, 9, "PR_SET_PDEATHSIG")
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # pid 1 ignores signals it has no handler for: samples cannot stop it
    iso.prctl(iso.PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")  # no ptrace, no /proc/1/mem, even by the same uid
    _build_root()
    return ("full" if root else "userns"), ""


def serve(sock_fd, root, namespaces):
    sock = socket.socket(fileno=sock_fd)
    try:
        iso.prctl(iso.PR_SET_PDEATHSIG, 9, "PR_SET_PDEATHSIG")  # the zygote dies with the harness
        mode, why = _start(sock, root, namespaces)
        for name in PRELOAD:
            __import__(name)
    except BaseException as e:
        sock.sendall(f"E{type(e).__name__}: {e}".encode())
        return
    sock.sendall(json.dumps({"mode": mode, "why": why}).encode())
    me = os.getpid()
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 4096, 4)
        if not msg:
            return
        req = json.loads(msg)
        if mode in ("full", "userns"):
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
        code = _wait(pid, sock, req)
        if code is None:
            return
        sock.sendall(b"S%d" % code)


if __name__ == "__main__":
    serve(int(sys.argv[1]), os.geteuid() == 0, sys.argv[2] == "1")

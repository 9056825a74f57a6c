"""Run one compiler or linter on untrusted input, isolated: `python -I -B tool_jail.py SPEC_JSON`.

SPEC: {"argv", "cwd", "env", "writable": [folders], "limits": {"cpu", "data", "fsize", "as", "stack"},
"report_fd"} (bytes and seconds; "as", "stack", "data" and "report_fd" may be null or absent). Started
by `common.sandbox.tools`, which owns the timeout: it kills this process's group, and with it the pid
namespace below. The tool's stdin, stdout and stderr are this process's.

The tool gets what a sample gets, minus the new root (a compiler needs the whole toolchain where it
was installed): new user (when not root), mount, network, pid and IPC namespaces; every disk mount
read-only (/tmp included) except the `writable` folders (its sources and scratch folder, and a build cache); fresh
tmpfs /dev/shm; /proc of its own pid namespace; then, in a nested user namespace with no
capabilities, rlimits and PR_SET_NO_NEW_PRIVS, the tool itself. So: no network, no writes outside its
folders, bounded time and memory. It can still read what the user can; what it quotes lands only in a
failed check's detail. Exit status: the tool's; killed by signal N: this process dies of N too.
Where the kernel refuses the namespaces (or the mounts) it prints `codecapy-jail: <why>`, writes it to
`report_fd` too and exits 125. Only the jail holds `report_fd`: it is closed before the tool starts, so
a tool cannot fake a refusal, whatever it prints and however it exits.
"""

import json
import os
import resource
import runpy
import signal
import sys
import types

REFUSED = 125


# Under `python -I` this folder is not on sys.path: run the sibling by its path, use its names.
iso = types.SimpleNamespace(**runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "isolation.py")))


def _mounts(writable):
    """Read-only disks (/tmp too: toolchains and fakes of them may live there; TMPDIR is a writable
    folder), a fresh /dev/shm, the writable folders bound back, /proc of this pid namespace."""
    iso.make_private()
    iso.read_only_tree("/")
    if os.path.isdir("/dev/shm"):
        iso.tmpfs("/dev/shm", 64 << 20, flags=iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC)
    for path in writable:
        fd = iso.open_path(path)
        iso.mount(b"/proc/self/fd/%d" % fd, path.encode(), None, iso.MS_BIND | iso.MS_REC, None, "binding " + path)
        os.close(fd)
        iso.writable(path)
    iso.mount(b"proc", b"/proc", b"proc", iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC, None, "/proc")


def _exec_tool(spec):
    """In the tool's process: no capabilities, limits, then exec. Never returns."""
    try:
        iso.drop_to_nested_user()
        lim = spec["limits"]
        for what, value in (
            (resource.RLIMIT_CPU, lim["cpu"]),
            (resource.RLIMIT_DATA, lim["data"]),
            (resource.RLIMIT_FSIZE, lim["fsize"]),
            (resource.RLIMIT_AS, lim.get("as")),
            (resource.RLIMIT_STACK, lim.get("stack")),  # read at exec: deep recursion in contest solutions
            (resource.RLIMIT_CORE, 0),
        ):
            if value is not None:
                resource.setrlimit(what, (value, value))
        iso.prctl(iso.PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
        os.chdir(spec["cwd"])
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as e:
        print(f"codecapy-jail: cannot run {spec['argv'][0]}: {e}", file=sys.stderr, flush=True)
        os._exit(127 if isinstance(e, FileNotFoundError) else 126)


def _wait(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _die_like(code):
    """Exit as the tool did: the same status, or the same signal."""
    if code >= 0:
        os._exit(code)
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
    os._exit(128 - code)


def _refuse(spec, why):
    message = f"codecapy-jail: {why}"
    print(message, file=sys.stderr, flush=True)
    if spec.get("report_fd") is not None:
        os.write(spec["report_fd"], message.encode())
    os._exit(REFUSED)


def main(spec):
    try:
        if os.geteuid() != 0:
            iso.enter_user_namespace(0)
        iso.unshare(iso.CLONE_NEWNS | iso.CLONE_NEWNET | iso.CLONE_NEWPID | iso.CLONE_NEWIPC, "NEWNS|NEWNET|NEWPID")
    except OSError as e:
        _refuse(spec, e)
    status_r, status_w = os.pipe()  # pid 1 cannot die of a signal it sends itself: it reports the tool's status
    init = os.fork()
    if init:  # outside: share the fate of pid 1 inside
        os.close(status_w)
        if spec.get("report_fd") is not None:
            os.close(spec["report_fd"])
        code = _wait(init)
        reported = os.read(status_r, 32)
        _die_like(int(reported) if reported else code)
    os.close(status_r)
    iso.prctl(iso.PR_SET_PDEATHSIG, 9, "PR_SET_PDEATHSIG")
    try:
        _mounts(spec["writable"])
    except OSError as e:
        _refuse(spec, f"mounts: {e}")
    if spec.get("report_fd") is not None:
        os.close(spec["report_fd"])  # the tool must never hold the channel that says "refused"
    tool = os.fork()
    if tool == 0:
        os.close(status_w)
        _exec_tool(spec)
    os.write(status_w, str(_wait(tool)).encode())
    os._exit(0)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))

"""Hostile samples: each must end "not passed", leave nothing running and write nothing outside its tmpfs,
and the harness must keep going, in both sandbox modes: the harness as root, and as an ordinary user
(CI runs as root, so that mode drops to `nobody`: user_executor.py).

Safe on a shared machine even if the sandbox had a hole: every program that could multiply or eat
memory first checks that it runs unprivileged under small limits and does nothing otherwise; a
program signals every process it can see only when it is pid-namespaced (its parent is pid 1);
writes target only paths named with this run's token. Each program asserts that its attack *worked*,
so "not passed" means the attack failed; the host-side checks (files, processes, sockets, the fork
servers still the same processes) are the real evidence.
"""

from __future__ import annotations

import os
import socket
import textwrap
import time
import uuid
from pathlib import Path
from typing import Iterator, Union

import pytest

from data_generation.common.sandbox.execution import STRONG_MODES, ExecResult, Executor, Limits, is_root
from data_generation.common.sandbox.processes import pids_of_uid
from tests.data_generation.common.sandbox.user_executor import UserExecutor

TOKEN = f"codecapy-hostile-{uuid.uuid4().hex[:12]}"
SECRET = f"sk-{uuid.uuid4().hex}"
STRICT = Limits(timeout=1, wall_timeout=2, memory_mb=256, file_size_mb=1, tmpfs_mb=8, output_bytes=2000)
LOOSE = Limits(timeout=1, wall_timeout=2, memory_mb=256, file_size_mb=1, tmpfs_mb=8, output_bytes=2000, max_processes=4)
# Refuse to do anything dangerous unless the sandbox's own limits are in place.
GUARD = textwrap.dedent("""
    import os, resource
    if os.getuid() == 0 or os.geteuid() == 0:
        raise SystemExit("guard: running as root, refusing")
    if not 0 < resource.getrlimit(resource.RLIMIT_NPROC)[0] <= 8:
        raise SystemExit("guard: no process limit, refusing")
    if not 0 < resource.getrlimit(resource.RLIMIT_AS)[0] <= 512 << 20:
        raise SystemExit("guard: no memory limit, refusing")
""")
NAMESPACED = "if os.getppid() != 1:\n    raise SystemExit('guard: not in a pid namespace, refusing')\n"
AnyExecutor = Union[Executor, UserExecutor]


def _executor(mode: str, limits: Limits) -> AnyExecutor:
    if mode == "root":
        if not is_root():
            pytest.skip("the harness-as-root mode needs root")
        return Executor(2, limits)
    if is_root():  # an ordinary user's harness: drop to nobody for it
        return UserExecutor(limits, env={"CODECAPY_TEST_SECRET": SECRET})
    return Executor(2, limits)


@pytest.fixture(scope="module", params=["root", "user"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def strict(mode: str) -> Iterator[AnyExecutor]:
    with _executor(mode, STRICT) as ex:
        yield ex


@pytest.fixture
def full(strict: AnyExecutor) -> AnyExecutor:
    """The strict executor, for attacks only the namespaces stop (the kernel may refuse them)."""
    if strict.mode not in STRONG_MODES:
        pytest.skip(f"the kernel refused namespaces (sandbox mode {strict.mode!r})")
    return strict


@pytest.fixture(scope="module")
def loose(mode: str) -> Iterator[AnyExecutor]:
    with _executor(mode, LOOSE) as ex:
        yield ex


def run(ex: AnyExecutor, code: str, tests: str = "assert True\n", guard: str = "") -> ExecResult:
    servers = list(ex.zygote_pids)
    result = ex.run(GUARD + guard + textwrap.dedent(code) + "\n" + tests)
    assert not result.passed, result
    assert not result.result.startswith("failed: SystemExit: guard"), result.result
    assert not result.result.startswith("failed: sandbox"), result.result  # the sample did not break the sandbox
    assert ex.zygote_pids == servers  # ... nor kill a fork server
    _assert_nothing_running(ex)
    assert ex.run("assert sum([1, 2]) == 3\n").passed  # the harness keeps going
    return result


def _children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _descendants(pid: int) -> list[int]:
    return [d for c in _children(pid) for d in [c, *_descendants(c)]]


def _assert_nothing_running(ex: AnyExecutor) -> None:
    # Below each fork server: only its pid-1 half. As root: nothing under the slots' uids either.
    def leftovers() -> dict[str, list[int]]:
        found = {f"server {z}": d for z in ex.zygote_pids if len(d := _descendants(z)) > 1}
        if ex.mode == "full":
            found.update({f"uid {u}": pids for u in ex.uids if (pids := pids_of_uid(u))})
        return found

    deadline = time.monotonic() + 2
    while leftovers():
        assert time.monotonic() < deadline, leftovers()
        time.sleep(0.05)


def test_fork_bomb(strict: AnyExecutor, loose: AnyExecutor) -> None:
    for ex in (strict, loose):
        r = run(ex, "while True:\n    os.fork()\n")
        assert r.result.startswith("failed: BlockingIOError")


def test_memory_bomb(strict: AnyExecutor) -> None:
    r = run(strict, "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n")
    assert r.result == "failed: MemoryError"


def test_infinite_loop(strict: AnyExecutor) -> None:
    assert run(strict, "while True:\n    pass\n").result.startswith("timed out")  # CPU or wall, by load


def test_busy_threads(strict: AnyExecutor, loose: AnyExecutor) -> None:
    code = """
        import threading
        def spin():
            while True:
                pass
        for _ in range(3):
            threading.Thread(target=spin, daemon=True).start()
        spin()
    """
    assert run(strict, code).result == "failed: RuntimeError: can't start new thread"
    assert run(loose, code).result.startswith("timed out")


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nsys.exit(0)",
        "raise SystemExit(0)",
        "os._exit(0)",
        "import signal\nos.kill(os.getpid(), signal.SIGTERM)",
        "os.execv('/bin/true', ['true'])",
        "import atexit\natexit.register(lambda: print('passed'))\nos._exit(0)",
    ],
)
def test_exit_before_the_tests(strict: AnyExecutor, code: str) -> None:
    run(strict, code)


def test_forged_markers(strict: AnyExecutor) -> None:
    code = """
        import gc, re, sys
        hexes = {o for o in gc.get_objects() if isinstance(o, (str, bytes)) and re.fullmatch(rb'[0-9a-f]{32}' if isinstance(o, bytes) else r'[0-9a-f]{32}', o)}
        for fd in range(1, 20):
            for h in hexes | {'passed', 'R', 'R' + '0' * 32}:
                try:
                    os.write(fd, h.encode() if isinstance(h, str) else h)
                except OSError:
                    pass
        os._exit(0)
    """
    run(strict, code)


@pytest.mark.parametrize(
    "code",
    [
        "import builtins\nbuiltins.AssertionError = type('Quiet', (Exception,), {})",
        "import sys\nsys.excepthook = lambda *a: None\nsys.stderr = open(os.devnull, 'w')",
        "os.write = lambda fd, data: len(data)\nos.read = lambda fd, n: b'0' * 32\nos._exit = lambda code: None",
        "import sys\nsys.modules['os'] = None",
        "__builtins__.__dict__.clear() if hasattr(__builtins__, '__dict__') else __builtins__.clear()",
        "import builtins\nbuiltins.compile = builtins.exec = lambda *a, **k: None",
    ],
)
def test_overriding_builtins_or_assert(strict: AnyExecutor, code: str) -> None:
    run(strict, code, tests="assert 1 == 2, 'a failing test must still fail'\n")


@pytest.fixture
def victim() -> Iterator[Path]:
    # A world-writable folder on the host disk: only the sandbox's read-only mounts protect it.
    folder = Path("/var/tmp") / TOKEN
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    (folder / "victim").write_text("keep me")
    (folder / "victim").chmod(0o666)
    yield folder
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def test_writing_or_deleting_outside_the_work_dir(full: AnyExecutor, victim: Path, repo_root: Path) -> None:
    targets = [
        victim / "new",
        Path("/var/tmp") / f"{TOKEN}.new",
        repo_root / f"{TOKEN}.new",
        Path("/work") / f"{TOKEN}.new",
        Path("/root") / f"{TOKEN}.new",
        Path("/etc") / f"{TOKEN}.new",
    ]
    code = f"""
        import shutil
        done = []
        for target in {[str(t) for t in targets]!r}:
            try:
                open(target, 'w').write('pwned')
                done.append(target)
            except OSError:
                pass
        for action in (lambda: os.remove({str(victim / "victim")!r}), lambda: shutil.rmtree({str(victim)!r}),
                       lambda: os.chmod({str(victim / "victim")!r}, 0o777)):
            try:
                action()
                done.append(action)
            except OSError:
                pass
        open('/tmp/{TOKEN}', 'w').write('private tmpfs')  # allowed, and gone afterwards
        open('/dev/shm/{TOKEN}', 'w').write('private tmpfs')
        assert done, 'nothing outside was touched'
    """
    try:
        run(full, code)
        assert sorted(p.name for p in victim.iterdir()) == ["victim"]
        assert (victim / "victim").read_text() == "keep me"
        assert not any(t.exists() for t in targets)
    finally:  # even if the sandbox had a hole, leave nothing behind
        for target in targets:
            target.unlink(missing_ok=True)
    assert not Path(f"/tmp/{TOKEN}").exists() and not Path(f"/dev/shm/{TOKEN}").exists()


def test_exec_a_shell_to_write_outside(full: AnyExecutor, victim: Path) -> None:
    run(full, f"os.execv('/bin/sh', ['sh', '-c', 'echo x > {victim}/sh; rm -f {victim}/victim; exit 0'])")
    assert sorted(p.name for p in victim.iterdir()) == ["victim"]


def test_opening_sockets(strict: AnyExecutor) -> None:
    with socket.socket() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        udp.bind(("127.0.0.1", 0))
        udp.setblocking(False)
        code = f"""
            import socket
            done = []
            for attempt in (lambda: socket.create_connection({server.getsockname()!r}, timeout=1),
                            lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', {udp.getsockname()!r}),
                            lambda: socket.getaddrinfo('example.com', 80)):
                try:
                    attempt()
                    done.append(attempt)
                except OSError:
                    pass
            assert done, 'no network'
        """
        run(strict, code)
        with pytest.raises(BlockingIOError):
            server.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(16)


def test_reading_environment_secrets(full: AnyExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECAPY_TEST_SECRET", SECRET)  # the harness's environment (the user mode's has it too)
    code = f"""
        found = [k for k, v in os.environ.items() if v == {SECRET!r}]
        for pid in ['self', str(os.getppid()), '1', {str(os.getpid())!r}, *os.listdir('/proc')]:
            for name in ('environ', 'cmdline'):
                try:
                    if {SECRET!r}.encode() in open(f'/proc/{{pid}}/{{name}}', 'rb').read():
                        found.append(pid)
                except OSError:
                    pass
        print(sorted(os.environ))
        assert found, 'no secret found'
    """
    r = run(full, code)
    assert SECRET not in r.output


def test_reading_files_the_user_can_read(full: AnyExecutor, victim: Path, repo_root: Path) -> None:
    (victim / "secret").write_text(SECRET)
    (victim / "secret").chmod(0o644)
    readable = [victim / "secret", repo_root / "README.md", repo_root / "requirements.txt", Path("/etc/hostname")]
    code = f"""
        found = []
        for path in {[str(p) for p in readable]!r}:
            try:
                found.append(open(path).read()[:40])
            except OSError:
                pass
        assert any({SECRET!r} in text for text in found) or len(found) > 1, 'nothing read'
    """
    run(full, code)


def _dead_or_alive(targets: str) -> str:
    """Sample code: SIGKILL each pid in `targets` that it can see, then assert that one of them died."""
    return f"""
        import signal, time
        def alive(pid):
            try:
                os.kill(pid, 0)
                return True
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
        targets = [t for t in {targets} if t != os.getpid() and alive(t)]
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
        assert targets and not all(alive(p) for p in targets), 'nobody was killed'
    """


def test_killing_the_parent_and_the_harness(strict: AnyExecutor) -> None:
    harness = strict.harness_pid if isinstance(strict, UserExecutor) else os.getpid()
    run(strict, _dead_or_alive(f"[os.getppid(), {harness}, 1]"))
    group = os.getpgid(harness)
    code = f"""
        import signal
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):
            for send in (lambda: os.killpg({group}, sig), lambda: os.kill({harness}, sig)):
                try:
                    send()
                except OSError:
                    pass
        assert False, 'the harness survived'
    """
    run(strict, code)


def test_killing_every_process_it_can_see(full: AnyExecutor) -> None:
    run(full, _dead_or_alive("[int(n) for n in os.listdir('/proc') if n.isdigit()]"), guard=NAMESPACED)
    run(full, "import signal\nos.kill(-1, signal.SIGKILL)\nassert False, 'still here'\n", guard=NAMESPACED)


def test_ptrace_of_other_processes(full: AnyExecutor) -> None:
    code = """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        attached = [pid for pid in (1, os.getppid()) if libc.ptrace(16, pid, None, None) == 0]  # PTRACE_ATTACH
        readable = []
        for pid in (1, os.getppid()):
            try:
                with open(f'/proc/{pid}/mem', 'rb') as mem:
                    mem.seek(0x400000)
                    readable.append(mem.read(16))
            except (OSError, ValueError):
                pass
        assert attached or readable, 'no ptrace'
    """
    run(full, code)


def test_exhausting_the_pid_namespace(loose: AnyExecutor) -> None:
    code = """
        import signal, time
        children = []
        try:
            while True:
                pid = os.fork()
                if pid == 0:
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                    os.setsid()
                    time.sleep(60)
                    os._exit(0)
                children.append(pid)
        except OSError:
            pass
        assert len(children) >= 3, children
    """
    run(loose, code, tests="assert False, 'held every process it could'\n")


def test_never_reading_stdin(strict: AnyExecutor) -> None:
    r = run(strict, "import sys\ndata = sys.stdin.read()\nassert data, 'stdin is empty'\n")
    assert r.result == "failed: AssertionError: stdin is empty"
    big = "# padding\n" * 400_000 + "import time\ntime.sleep(30)\n"  # 4 MB of program, never reads its input
    assert run(strict, big).result.startswith("timed out")


def test_daemon_that_outlives_the_sample(loose: AnyExecutor) -> None:
    code = """
        import sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # a double-forked daemon in its own session
                print('daemon', os.getpid(), flush=True)
                time.sleep(60)
            os._exit(0)
        time.sleep(0.2)
    """
    r = run(loose, code, tests="assert False, 'wrong answer'\n")  # run() checks that nothing runs any more
    assert r.output.startswith("daemon ")  # the daemon did start: the harness killed it
    assert r.result == "failed: AssertionError: wrong answer"


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nwhile True:\n    sys.stdout.write('x' * (1 << 20))",
        "import sys\nwhile True:\n    sys.stderr.write('x' * (1 << 20))",
        "while True:\n    os.write(4, b'F' * (1 << 20))",  # flooding the result pipe
    ],
)
def test_megabytes_of_output(strict: AnyExecutor, code: str) -> None:
    r = run(strict, code)
    assert len(r.output) <= STRICT.output_bytes and len(r.result) < 2000

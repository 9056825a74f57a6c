"""Hostile samples: each must end "not passed", leave nothing running and write nothing outside its tmpfs,
and the harness must keep going.

Safe on a shared machine even if the sandbox had a hole: every program that could multiply or eat
memory first checks that it runs unprivileged under small limits and does nothing otherwise; no
program signals every process (no kill(-1)); writes target only paths named with this run's token.
Each program asserts that its attack *worked*, so "not passed" means the attack failed; the host-side
checks (files, processes, sockets) are the real evidence.
"""

from __future__ import annotations

import os
import socket
import textwrap
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from data_generation.common.sandbox.execution import (
    ExecResult,
    Executor,
    Limits,
    is_root,
)
from data_generation.common.sandbox.processes import pids_of_uid

pytestmark = pytest.mark.skipif(not is_root(), reason="the full sandbox (namespaces, uid drop) needs root")

TOKEN = f"codecapy-hostile-{uuid.uuid4().hex[:12]}"
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


@pytest.fixture(scope="module")
def strict() -> Iterator[Executor]:
    with Executor(2, STRICT) as ex:
        yield ex


@pytest.fixture
def full(strict: Executor) -> Executor:
    """The strict executor, for attacks only the namespaces stop (they are refused in some containers)."""
    if strict.mode != "full":
        pytest.skip(f"the kernel refused namespaces (sandbox mode {strict.mode!r})")
    return strict


@pytest.fixture(scope="module")
def loose() -> Iterator[Executor]:
    with Executor(2, LOOSE) as ex:
        yield ex


def run(ex: Executor, code: str, tests: str = "assert True\n") -> ExecResult:
    result = ex.run(GUARD + textwrap.dedent(code) + "\n" + tests)
    assert not result.passed, result
    assert not result.result.startswith("failed: SystemExit: guard"), result.result
    _assert_nothing_running(ex)
    assert ex.run("assert sum([1, 2]) == 3\n").passed  # the harness keeps going
    return result


def _assert_nothing_running(ex: Executor) -> None:
    deadline = time.monotonic() + 2
    while any(pids_of_uid(uid) for uid in ex.uids):
        assert time.monotonic() < deadline, {uid: pids_of_uid(uid) for uid in ex.uids}
        time.sleep(0.05)


@pytest.mark.parametrize("nproc", ["strict", "loose"])
def test_fork_bomb(nproc: str, request: pytest.FixtureRequest) -> None:
    r = run(request.getfixturevalue(nproc), "while True:\n    os.fork()\n")
    assert r.result.startswith("failed: BlockingIOError")


def test_memory_bomb(strict: Executor) -> None:
    r = run(strict, "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n")
    assert r.result == "failed: MemoryError"


def test_infinite_loop(strict: Executor) -> None:
    assert run(strict, "while True:\n    pass\n").result.startswith("timed out")  # CPU or wall, by load


def test_busy_threads(strict: Executor, loose: Executor) -> None:
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
def test_exit_before_the_tests(strict: Executor, code: str) -> None:
    run(strict, code)


def test_forged_markers(strict: Executor) -> None:
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
def test_overriding_builtins_or_assert(strict: Executor, code: str) -> None:
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


def test_writing_or_deleting_outside_the_work_dir(full: Executor, victim: Path, repo_root: Path) -> None:
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


def test_exec_a_shell_to_write_outside(full: Executor, victim: Path) -> None:
    run(full, f"os.execv('/bin/sh', ['sh', '-c', 'echo x > {victim}/sh; rm -f {victim}/victim; exit 0'])")
    assert sorted(p.name for p in victim.iterdir()) == ["victim"]


def test_opening_sockets(strict: Executor) -> None:
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


def test_reading_environment_secrets(full: Executor, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    monkeypatch.setenv("CODECAPY_TEST_SECRET", secret)
    code = f"""
        found = [k for k, v in os.environ.items() if v == {secret!r}]
        for pid in ['self', str(os.getppid()), '1', {str(os.getpid())!r}]:
            for name in ('environ', 'cmdline'):
                try:
                    if {secret!r}.encode() in open(f'/proc/{{pid}}/{{name}}', 'rb').read():
                        found.append(pid)
                except OSError:
                    pass
        print(sorted(os.environ))
        assert found, 'no secret found'
    """
    r = run(full, code)
    assert secret not in r.output


def test_killing_the_parent(strict: Executor) -> None:
    me, group = os.getpid(), os.getpgid(0)
    code = f"""
        import signal
        done = []
        for kill in (lambda: os.kill(os.getppid(), signal.SIGKILL), lambda: os.kill({me}, signal.SIGKILL),
                     lambda: os.killpg({group}, signal.SIGKILL)):
            try:
                kill()
                done.append(kill)
            except OSError:
                pass
        assert done, 'nobody was killed'
    """
    run(strict, code)


def test_daemon_that_outlives_the_sample(loose: Executor) -> None:
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
def test_megabytes_of_output(strict: Executor, code: str) -> None:
    r = run(strict, code)
    assert len(r.output) <= STRICT.output_bytes and len(r.result) < 2000

"""The sandbox's ordinary behaviour: verdicts, messages, limits, isolation, the pool. Hostile code: test_hostile.py."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Iterator

import pytest

from data_generation.common.sandbox.execution import (
    Executor,
    Limits,
    Sandbox,
    SandboxError,
    is_root,
    isolation,
    run_program,
)

LIMITS = Limits(timeout=1, wall_timeout=2, memory_mb=512, file_size_mb=1, tmpfs_mb=8, output_bytes=1000)
needs_root = pytest.mark.skipif(not is_root(), reason="namespaces and the privilege drop need root")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(LIMITS) as sb:
        yield sb


@pytest.mark.parametrize(
    "program, passed, result",
    [
        ("def f(x):\n    return x + 1\nassert f(1) == 2\n", True, "passed"),
        ("assert 1 == 2\n", False, "failed: AssertionError"),
        ("assert 1 == 2, 'off by one'\n", False, "failed: AssertionError: off by one"),
        ("def f(:\n", False, "failed: SyntaxError: invalid syntax (<sample>, line 1)"),
        ("undefined_name\n", False, "failed: NameError: name 'undefined_name' is not defined"),
        ("import sys\nsys.exit(0)\nassert True\n", False, "failed: SystemExit: 0"),
        ("import os\nos._exit(0)\nassert True\n", False, "failed: exited before the tests finished (exit code 0)"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", False, "failed: killed by SIGKILL"),
        ("x = input()\n", False, "failed: EOFError: EOF when reading a line"),
        ("raise KeyboardInterrupt\n", False, "failed: KeyboardInterrupt"),
    ],
)
def test_verdicts_and_messages(sandbox: Sandbox, program: str, passed: bool, result: str) -> None:
    r = sandbox.run(program)
    assert (r.passed, r.result) == (passed, result)


def test_printed_markers_do_not_pass(sandbox: Sandbox) -> None:
    r = sandbox.run("print('passed'); print('R' + 'a' * 32, flush=True)\nimport os\nos._exit(0)\n")
    assert not r.passed and r.output == "passed\nR" + "a" * 32 + "\n"


def test_output_is_captured_and_capped(sandbox: Sandbox) -> None:
    r = sandbox.run("import sys\nprint('out')\nprint('err', file=sys.stderr)\nprint('x' * 5000)\n")
    assert r.passed
    # stdout is block-buffered (not a tty), stderr is not: stderr comes first
    assert r.output.startswith("err\nout\nxxx") and len(r.output) == 1000


def test_timeout_kills_and_says_timed_out(sandbox: Sandbox) -> None:
    start = time.monotonic()
    r = sandbox.run("import time\ntime.sleep(30)\n")
    assert (r.passed, r.result, r.timed_out) == (False, "timed out", True)
    assert time.monotonic() - start < LIMITS.wall + 1.5
    assert sandbox.run("assert True").passed  # the slot is usable again


def test_memory_limit_gives_memory_error(sandbox: Sandbox) -> None:
    r = sandbox.run("x = bytearray(1 << 30)\n")
    assert r.result == "failed: MemoryError"


def test_file_size_limit(sandbox: Sandbox) -> None:
    r = sandbox.run("open('big', 'wb').write(b'x' * (2 << 20))\n")
    assert r.result.startswith("failed: OSError: [Errno 27] File too large")


def test_no_processes_or_threads_by_default(sandbox: Sandbox) -> None:
    assert sandbox.run("import os\nos.fork()\n").result.startswith("failed: BlockingIOError")
    assert (
        sandbox.run("import threading\nthreading.Thread(target=print).start()\n").result
        == "failed: RuntimeError: can't start new thread"
    )


def test_stdlib_and_site_packages_import(sandbox: Sandbox) -> None:
    r = sandbox.run("import math, re, heapq, collections, itertools, json\nimport numpy\nprint(numpy.__name__)\n")
    assert r.passed and r.output == "numpy\n"


def test_environment_is_minimal(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    r = sandbox.run("import os\nprint(sorted(os.environ))\n")
    assert r.output.strip() == str(
        sorted(["HOME", "LANG", "LC_ALL", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PATH", "TMPDIR"])
    )


def test_runs_unprivileged_in_a_fresh_private_tmp(sandbox: Sandbox) -> None:
    # /tmp holds the sample's folder, plus (read-only) the interpreter when it lives under /tmp (a CI checkout)
    interpreter = {
        os.path.realpath(p).split("/")[2]
        for p in (sys.prefix, sys.base_prefix, *sys.path)
        if os.path.realpath(p).startswith("/tmp/") and os.path.isdir(p)
    }
    tmp = sorted({"sandbox"} | interpreter)
    program = (
        "import os\nassert os.getuid() == os.geteuid() == {uid} and os.getgroups() in ([], [65534])\n"
        "assert os.getcwd() == '/tmp/sandbox' and sorted(os.listdir('/tmp')) == {tmp}\n"
        "open('/tmp/leftover', 'w').write('x')\nopen('mine', 'w').write('x')\n"
    ).format(uid=sandbox.uid if is_root() else 1000, tmp=tmp)  # an unused uid, or 1000 in a nested user namespace
    assert sandbox.run(program).passed
    assert sandbox.run(program).passed  # the next sample does not see the previous one's files
    assert not os.path.exists("/tmp/leftover")


def test_network_and_filesystem_are_isolated(sandbox: Sandbox, tmp_path: os.PathLike) -> None:
    r = sandbox.run("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)\n")
    assert r.result.startswith("failed: OSError: [Errno 101] Network is unreachable")
    r = sandbox.run("open('/usr/codecapy-should-not-exist', 'w')\n")
    assert r.result.startswith("failed: OSError: [Errno 30] Read-only file system")
    r = sandbox.run("import os\nprint(sorted(os.listdir('/')))\n")  # a root of its own: no /home, /var, /run
    system = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr", ".tmp-binds"}
    interpreter = {os.path.realpath(p).split("/")[1] for p in (sys.prefix, sys.base_prefix)}
    assert set(eval(r.output)) <= system | interpreter
    r = sandbox.run("import os\nprint(sorted(int(n) for n in os.listdir('/proc') if n.isdigit()))\n")
    assert set(eval(r.output)) <= {1, int(r.output.strip("[]\n").split(", ")[-1])}  # its own pid namespace


def test_executor_keeps_input_order_and_runs_in_parallel() -> None:
    programs = [f"import time\ntime.sleep(0.3)\nassert {i} % 3 != 0\n" for i in range(6)]
    start = time.monotonic()
    with Executor(3, LIMITS) as ex:
        results = list(ex.map(programs))
        assert len(set(ex.uids)) == 3 and 0 not in ex.uids
    assert [r.passed for r in results] == [i % 3 != 0 for i in range(6)]
    assert time.monotonic() - start < 6 * 0.3  # sequential would take at least 1.8 s


def test_run_program_one_shot_and_isolation_report() -> None:
    assert run_program("assert sum(range(4)) == 6").passed
    with Executor(1, LIMITS) as ex:
        assert ex.mode == ("full" if is_root() else "userns")
        assert isolation(ex.mode)["strong"]


def test_without_namespaces_it_refuses_unless_weak_isolation_is_accepted() -> None:
    with pytest.raises(SandboxError, match="--allow-weak-sandbox"):
        Executor(1, LIMITS, namespaces=False)
    with Executor(1, LIMITS, namespaces=False, allow_weak=True) as ex:
        assert ex.mode == ("uid" if is_root() else "none") and not isolation(ex.mode)["strong"]
        assert ex.run("assert 1 + 1 == 2\n").passed


def test_a_fork_server_killed_from_outside_costs_only_its_sample() -> None:
    with Executor(1, LIMITS) as ex:
        server = ex.zygote_pids[0]
        killer = threading.Timer(0.5, os.kill, (server, signal.SIGKILL))
        killer.start()
        lost = ex.run("import time\ntime.sleep(1.5)\n")
        killer.join()
        assert not lost.passed and lost.result.startswith("failed: sandbox killed"), lost
        assert ex.zygote_pids != [server]  # a new fork server took the slot
        assert [ex.run(f"assert {i} + 1 == {i + 1}\n").passed for i in range(3)] == [True] * 3


@needs_root
def test_degraded_mode_without_namespaces_still_drops_root_and_blocks_sockets() -> None:
    # What a container that refuses unshare() gets: uid drop, rlimits, an audit hook against sockets.
    with Executor(1, LIMITS, namespaces=False, allow_weak=True) as ex:
        assert ex.mode == "uid"
        program = (
            "import os\nassert os.getuid() == {uid} and os.getcwd().startswith('/tmp/codecapy-sample-')\n"
            "open('mine', 'w').write('x')\n"
        ).format(uid=ex.uids[0])
        assert ex.run(program).passed
        assert ex.run("import os\nos.fork()\n").result.startswith("failed: BlockingIOError")
        r = ex.run("import socket\nsocket.socket()\n")
        assert r.result == "failed: PermissionError: network access is disabled in the sandbox"
        assert not ex.run("import os\nos._exit(0)\nassert True\n").passed
        assert ex.run("import math, re, collections, heapq, itertools\nassert math.gcd(4, 6) == 2\n").passed


def test_samples_do_not_share_random_state(sandbox: Sandbox) -> None:
    draws = [sandbox.run("import random\nprint(random.random())\n").output for _ in range(3)]
    assert len(set(draws)) == 3


def test_unicode_programs_and_output(sandbox: Sandbox) -> None:
    r = sandbox.run("s = 'héllo ✓'\nprint(s)\nassert len(s) == 7\n")
    assert r.passed and r.output == "héllo ✓\n"

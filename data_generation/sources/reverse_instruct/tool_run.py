"""Running a compiler or linter on untrusted code (a teacher-written program) without trusting it.

No tool runs the code, but compilers read what it names (`#include "/dev/zero"`, `include_bytes!`)
and expand templates for as long as they like. Each tool therefore runs in a fresh temporary folder
(the sources) with a scratch sibling as HOME and TMPDIR, inside the sandbox's tool jail
(`data_generation/common/sandbox/tool_jail.py`): no network, every disk read-only except that folder
and the persistent build cache (`$CODECAPY_CHECK_CACHE` or `~/.cache/codecapy/program_check`, e.g.
Go's), its own pid namespace, no capabilities, limits on data segment (1 GiB), written files (64 MiB),
CPU seconds and, where asked, address space. Its environment is only PATH, HOME, TMPDIR, LANG=C.UTF-8
and its own variables (`toolchains.Toolchain.env`), so no API key reaches it; stdin is /dev/null; it
leads a new session (a timeout kills the whole group); 64 KiB of output is read. It can still read
any file we can: what it quotes lands only in a failed check's detail (first error lines, temporary
paths removed, at most 500 characters). Where the kernel refuses the jail's namespaces the tool runs
with the limits alone, and a warning says so once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)

DETAIL_CHARS = 500
OUTPUT_BYTES = 64 * 1024
DATA_LIMIT_KIB = 1024 * 1024  # RLIMIT_DATA: JVM, V8 and Go reserve far more, but commit less
FILE_LIMIT_MIB = 64  # RLIMIT_FSIZE
CACHE_ENV = "CODECAPY_CHECK_CACHE"
_JAIL = str(Path(__file__).resolve().parents[2] / "common" / "sandbox" / "tool_jail.py")
REFUSED = 125  # the jail's status when the kernel refuses its namespaces
_jail_refused = False
_NOISE = re.compile(r"^\s+at .*\(node:internal/.*\n|^Node\.js v[\d.]+$", re.MULTILINE)  # node's stack


def cache_dir() -> Path:
    """Persistent, so Go's build cache stays warm across checks and runs."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codecapy"
    path = Path(os.environ.get(CACHE_ENV) or default / "program_check")
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_env(home: Path) -> dict[str, str]:
    """HOME and TMPDIR are a scratch folder beside the sources (Go ignores a go.mod in TMPDIR)."""
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "TMPDIR": str(home), "LANG": "C.UTF-8"}


def run_tool(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    address_space_mib: int | None = None,
    writable: Sequence[Path] = (),
) -> tuple[int | None, str]:
    """(exit status or None on timeout, the first OUTPUT_BYTES of stdout+stderr); `cwd` and `writable`
    are the only folders it may write."""
    folders = sorted({str(Path(p).resolve()) for p in [cwd, *writable]})
    limits = {
        "cpu": int(timeout) + 5,
        "data": DATA_LIMIT_KIB << 10,
        "fsize": FILE_LIMIT_MIB << 20,
        "as": address_space_mib << 20 if address_space_mib else None,
    }
    if not _jail_refused:
        spec = {"argv": argv, "cwd": str(cwd), "env": env, "writable": folders, "limits": limits}
        rc, out = _run_group([sys.executable, "-I", "-B", _JAIL, json.dumps(spec)], cwd, timeout)
        if rc != REFUSED or not out.startswith("codecapy-jail:"):
            return rc, out
        _refuse_jail(out)
    return _run_group(_ulimit_command(argv, limits), cwd, timeout, env)


def _refuse_jail(why: str) -> None:
    global _jail_refused
    _jail_refused = True
    log.warning("program checks run without the tool jail (%s): rlimits only", why.strip())


def _ulimit_command(argv: list[str], limits: dict[str, int | None]) -> list[str]:
    # Limits set by `sh` right before `exec`: preexec_fn is unsafe with threads.
    caps = [f"ulimit -d {limits['data'] >> 10}", f"ulimit -f {limits['fsize'] >> 9}", f"ulimit -t {limits['cpu']}"]
    if limits["as"]:
        caps.append(f"ulimit -v {limits['as'] >> 10}")
    script = "; ".join(f"{cap} 2>/dev/null" for cap in caps) + '; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *argv]


def _run_group(
    command: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> tuple[int | None, str]:
    with tempfile.TemporaryFile() as out:  # unlinked: the tool cannot find or replace it
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env if env is not None else {"PATH": os.defpath, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # not yet reaped, so the id is still ours
            except ProcessLookupError:
                pass
            proc.wait()
            rc = None
        out.seek(0)
        return rc, out.read(OUTPUT_BYTES).decode("utf-8", errors="replace")


def clean_detail(output: str, workdir: Path, home: Path) -> str:
    """The first error lines, without the temporary paths (meta must not vary between runs)."""
    text = output
    for folder, short in ((workdir, "."), (home, "~")):
        for path in {str(folder.resolve()), str(folder)}:
            text = text.replace(path + os.sep, "" if short == "." else "~/").replace(path, short)
    text = _NOISE.sub("", text).strip()
    if len(text) > DETAIL_CHARS:  # warnings first: start at the first error line
        first = re.search(r"^.*error.*$", text, re.IGNORECASE | re.MULTILINE)
        text = text[first.start() :] if first else text
    return text[:DETAIL_CHARS]

"""Running a compiler or linter on untrusted code (a teacher-written program) without trusting it.

No tool runs the code, but compilers read what it names (`#include "/dev/zero"`, `include_bytes!`)
and expand templates for as long as they like. Each tool therefore runs in a fresh temporary folder
(the sources) with a scratch sibling as HOME and TMPDIR; its environment is only PATH, HOME, TMPDIR,
LANG=C.UTF-8 and its own variables (`toolchains.Toolchain.env`, e.g. Go's caches under the
persistent `$CODECAPY_CHECK_CACHE` or `~/.cache/codecapy/program_check`), so no API key reaches it;
stdin is /dev/null; it leads a new session (no terminal; a timeout kills the whole group); `ulimit`
caps its data segment (1 GiB), written files (~64 MB), CPU seconds and, where asked, address space;
64 KiB of output is read. This is not a jail: a compiler can still read any file we can, and what it
quotes lands only in a failed check's detail (first error lines, temporary paths removed, at most
500 characters).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

DETAIL_CHARS = 500
OUTPUT_BYTES = 64 * 1024
DATA_LIMIT_KIB = 1024 * 1024  # RLIMIT_DATA: JVM, V8 and Go reserve far more, but commit less
FILE_LIMIT_BLOCKS = 131072  # RLIMIT_FSIZE in the shell's blocks (512 or 1024 bytes)
CACHE_ENV = "CODECAPY_CHECK_CACHE"
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
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float, address_space_mib: int | None = None
) -> tuple[int | None, str]:
    """(exit status or None on timeout, the first OUTPUT_BYTES of stdout+stderr).

    Limits are set by `sh` right before `exec`: preexec_fn is unsafe with threads."""
    limits = [f"ulimit -d {DATA_LIMIT_KIB}", f"ulimit -f {FILE_LIMIT_BLOCKS}", f"ulimit -t {int(timeout) + 5}"]
    if address_space_mib:
        limits.append(f"ulimit -v {address_space_mib * 1024}")
    script = "; ".join(f"{limit} 2>/dev/null" for limit in limits) + '; exec "$@"'
    with tempfile.TemporaryFile() as out:  # unlinked: the tool cannot find or replace it
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script, "sh", *argv],
            cwd=cwd,
            env=env,
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

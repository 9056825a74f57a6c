"""Reverse-instruction specifics of running a compiler or linter on a teacher-written program: the
persistent build cache and the cleaned-up detail a failed check keeps.

No tool runs the code, but compilers read what it names (`#include "/dev/zero"`, `include_bytes!`)
and expand templates for as long as they like. Each tool therefore runs in a fresh temporary folder
(the sources) with a scratch sibling as HOME and TMPDIR, through `common.sandbox.tools.run_tool`
(the tool jail: no network, every disk read-only except that folder and the persistent build cache
(`$CODECAPY_CHECK_CACHE` or `~/.cache/codecapy/program_check`, e.g. Go's), its own pid namespace, no
capabilities, limits on data segment (1 GiB), written files (64 MiB), CPU seconds and, where asked,
address space). Its environment is only PATH, HOME, TMPDIR, LANG=C.UTF-8 and its own variables
(`toolchains.Toolchain.env`), so no API key reaches it; stdin is /dev/null; it leads a new session (a
timeout kills the whole group); 64 KiB of output is read. It can still read any file we can: what it
quotes lands only in a failed check's detail (`clean_detail`: first error lines, temporary paths
removed, at most 500 characters). Where the kernel refuses the jail's namespaces the tool runs with
the limits alone, and a warning says so once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DETAIL_CHARS = 500
CACHE_ENV = "CODECAPY_CHECK_CACHE"
_NOISE = re.compile(r"^\s+at .*\(node:internal/.*\n|^Node\.js v[\d.]+$", re.MULTILINE)  # node's stack


def cache_dir() -> Path:
    """Persistent, so Go's build cache stays warm across checks and runs."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codecapy"
    path = Path(os.environ.get(CACHE_ENV) or default / "program_check")
    path.mkdir(parents=True, exist_ok=True)
    return path


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

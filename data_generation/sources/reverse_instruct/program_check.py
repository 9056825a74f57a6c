"""Check a teacher-written program before it enters the dataset (reverse instruction, round 2).

A teacher LLM writes a whole program around a function harvested from real code. `check_program`
accepts it only if

1. **tree-sitter** parses it with no ERROR or MISSING node and `snippets.extract` finds a function
   named `function_name` in it (methods inside classes count; C++ `A::f` is "f"; an arrow function
   assigned to a variable is not a function here);
2. **its toolchain** (`toolchains.TOOLCHAINS`), run only after 1 passed and only if on PATH,
   compiles or lints it without running it, isolated as `tool_run` describes. No tool on PATH:
   status "skipped", detail "no X on PATH", still ok.

Reject reasons (`REASONS`; the caller counts them): `syntax_error`, `function_missing`,
`compile_failed` (the tool rejected it, hit its memory limit or died of a signal),
`check_timeout` (past `timeout` or the CPU limit), `check_error` (the tool could not be started,
or the shell's exec of it failed with 126/127: not the program's fault, but unverified code stays out).
Meta holds no timings, so re-runs are identical.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from data_generation.common.sandbox.tools import base_env, run_tool
from data_generation.common.treesitter import describe_error, first_error, parse
from data_generation.sources.reverse_instruct.snippets import extract
from data_generation.sources.reverse_instruct.tool_run import DETAIL_CHARS, cache_dir, clean_detail
from data_generation.sources.reverse_instruct.toolchains import TOOLCHAINS, Toolchain

log = logging.getLogger(__name__)

REASONS = ("syntax_error", "function_missing", "compile_failed", "check_timeout", "check_error")


@dataclass(frozen=True)
class CheckResult:
    """Verdict on one program: ok, the first reject reason, and every check that ran."""

    ok: bool
    reason: str | None
    checks: tuple[dict, ...]

    def to_meta(self) -> dict:
        """JSON-serialisable summary for the record's meta["checks"]."""
        return {"ok": self.ok, "reason": self.reason, "checks": [dict(c) for c in self.checks]}


# ---- the toolchain ------------------------------------------------------------------------


def _env(home: Path, tool: Toolchain) -> dict[str, str]:
    return {**base_env(home), **tool.env(cache_dir())}


@functools.lru_cache(maxsize=None)
def _toolchain(language: str) -> tuple[str, str] | None:
    """(binary to run, "name version") for the language's tool, or None when none is on PATH."""
    tool = TOOLCHAINS[language]
    for name in tool.executables:
        found = shutil.which(name)
        if not found:
            continue
        with tempfile.TemporaryDirectory(prefix="codecapy-probe-") as tmp:
            env = {**_env(Path(tmp), tool), "HOME": str(Path.home())}  # rustup's proxy needs it
            binary = tool.resolve(found, env)
            rc, out = run_tool([binary, *tool.version_args], Path(tmp), env, 20.0, writable=[cache_dir()])
        version = re.search(r"\d+\.\d+(?:\.\d+)?", out)
        label = Path(name).name if language != "python" else "python"
        description = f"{label} {version.group(0) if version else 'unknown version'}"
        log.debug("%s toolchain: %s (%s, exit %s)", language, description, binary, rc)
        return binary, description
    return None


def available_toolchains() -> dict[str, str | None]:
    """Language -> "tool version" of its checker, or None; probed once per process."""
    return {language: (found[1] if (found := _toolchain(language)) else None) for language in TOOLCHAINS}


def _toolchain_check(code: str, language: str, filename: str, timeout: float) -> tuple[str | None, dict]:
    tool = TOOLCHAINS[language]
    found = _toolchain(language)
    if found is None:
        names = " or ".join(Path(n).name for n in tool.executables)
        return None, {"check": tool.check.format(tool=names), "status": "skipped", "detail": f"no {names} on PATH"}
    binary, description = found
    check = {"check": tool.check.format(tool=description.split()[0]), "tool": description}
    with tempfile.TemporaryDirectory(prefix="codecapy-check-", ignore_cleanup_errors=True) as tmp:
        workdir, home = Path(tmp, "src"), Path(tmp, "home")
        workdir.mkdir()
        home.mkdir()
        for name, text in {**tool.extra_files(description), filename: code}.items():
            (workdir / name).write_text(text, encoding="utf-8", errors="replace")
        started = time.monotonic()
        try:
            rc, output = run_tool(
                tool.argv(binary, filename),
                workdir,
                _env(home, tool),
                timeout,
                tool.address_space_mib,
                writable=[Path(tmp), cache_dir()],  # the sources, HOME and TMPDIR; the build cache
            )
        except OSError as exc:
            return "check_error", {**check, "status": "error", "detail": f"cannot run: {exc}"}
        log.debug("%s check took %.3f s (exit %s)", language, time.monotonic() - started, rc)
        detail = clean_detail(output, workdir, home)
    if rc == 0:
        return None, {**check, "status": "passed"}
    if rc is None or rc == -signal.SIGXCPU:
        why = f"timed out after {timeout:g} s" if rc is None else "CPU time limit exceeded"
        return "check_timeout", {**check, "status": "failed", "detail": why}
    if rc in (126, 127):  # the shell could not exec the tool: it vanished or is not executable
        return "check_error", {**check, "status": "error", "detail": detail or f"exit status {rc}"}
    if rc < 0:
        detail = f"killed by {signal.Signals(-rc).name}" + (f": {detail}" if detail else "")
    return "compile_failed", {**check, "status": "failed", "detail": detail[:DETAIL_CHARS]}


# ---- tree-sitter, then the toolchain ---------------------------------------------------------


def _tree_sitter_check(source: bytes, language: str, function_name: str) -> tuple[str | None, dict, str]:
    """(reason or None, the check, the file name the toolchain should use)."""
    check = {"check": "tree-sitter"}
    root = parse(source, language).root_node
    if root.has_error:
        return "syntax_error", {**check, "status": "failed", "detail": describe_error(first_error(root))}, ""
    names = [s.name for s in extract(source, language)]
    filename = TOOLCHAINS[language].filename(root)
    if function_name not in names:
        found = ", ".join(sorted(set(names))) or "none"
        detail = f"no function named {function_name!r}; found: {found}"
        return "function_missing", {**check, "status": "failed", "detail": detail[:DETAIL_CHARS]}, ""
    return None, {**check, "status": "passed"}, filename


def check_program(code: str, language: str, function_name: str, *, timeout: float = 30.0) -> CheckResult:
    """tree-sitter, then (if that passed and a tool is on PATH) the language's toolchain."""
    if language not in TOOLCHAINS:
        raise ValueError(f"unknown language {language!r}; choose from {sorted(TOOLCHAINS)}")
    reason, check, filename = _tree_sitter_check(code.encode("utf-8", errors="replace"), language, function_name)
    if reason is not None:
        return CheckResult(False, reason, (check,))
    reason, tool_check = _toolchain_check(code, language, filename, timeout)
    return CheckResult(reason is None, reason, (check, tool_check))


def check_programs(
    items: Sequence[tuple[str, str, str]], *, workers: int = 2, timeout: float = 30.0
) -> list[CheckResult]:
    """`check_program` over (code, language, function_name) items, in input order.

    Threads suffice: the work happens in the tools' processes."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: check_program(*item, timeout=timeout), items))

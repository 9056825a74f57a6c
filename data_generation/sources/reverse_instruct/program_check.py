"""Check a teacher-written program before it enters the dataset (issue 4, reverse instruction).

A teacher LLM writes a whole program around a function harvested from real code (round 2).
`check_program` accepts it only if

1. **tree-sitter** parses it with no ERROR or MISSING node and `harvest.extract` finds a function
   named `function_name` in it (methods inside classes count; C++ `A::f` is "f"; an arrow function
   assigned to a variable is not a function here);
2. **its toolchain**, run only after 1 passed and only if on PATH, compiles or lints it without
   running it (the per-language table `TOOLCHAINS`): `python -I -m py_compile`; `node --check`
   (`.mjs` when the program has top-level `import`/`export`); `javac -proc:none` (file named after
   the public top-level type, else Main.java); `go vet ./...` in a fresh module whose go.mod
   states the local toolchain's version (any package name; third-party imports fail, GOPROXY=off);
   `rustc --edition 2021 --crate-type lib --emit=metadata --cap-lints allow`; `php -n -l`;
   `ruby -c`; `gcc -fsyntax-only` with `-Werror=` for what gcc 14 rejects by default (implicit
   declarations, int/pointer conversions), so gcc 12 and 14 agree; `g++ -std=c++17
   -fsyntax-only`; `mcs` or `csc -target:library` for C# (`dotnet` alone is not used: it needs a
   project and a NuGet restore). No tool on PATH: status "skipped", detail "no X on PATH", still ok.

Reject reasons (`REASONS`; the caller counts them): `syntax_error`, `function_missing`,
`compile_failed` (the tool rejected it, hit its memory limit or died of a signal),
`check_timeout` (past `timeout` or the CPU limit), `check_error` (the tool could not be started,
or the shell's exec of it failed with 126/127: not the program's fault, but unverified code stays out).

The code is untrusted. No tool runs it, but compilers read what it names (`#include "/dev/zero"`,
`include_bytes!`) and expand templates for as long as they like. Each tool therefore runs in a
fresh temporary folder (sources) with a scratch sibling as HOME and TMPDIR; its environment is
only PATH, HOME, TMPDIR, LANG=C.UTF-8 and its own variables (Go: GOCACHE/GOPATH under the
persistent cache `$CODECAPY_CHECK_CACHE` or `~/.cache/codecapy/program_check`, GOPROXY=off,
GOFLAGS=-mod=mod, GOTOOLCHAIN=local, CGO_ENABLED=0; Rust: RUSTUP_HOME/CARGO_HOME), so no API key
reaches it; stdin is /dev/null; it leads a new session (no terminal; a timeout kills the whole
group); `ulimit` caps its data segment (1 GiB), written files (~64 MB), CPU seconds and, for
gcc/g++, address space; 64 KiB of output is read. This is not a jail: a compiler can still read
any file we can, and what it quotes lands only in a failed check's `detail` (first error lines,
temporary paths removed, at most 500 characters). Meta holds no timings, so re-runs are identical.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import tree_sitter as ts

from data_generation.common.treesitter import parser_for
from data_generation.sources.reverse_instruct.harvest import extract

log = logging.getLogger(__name__)

REASONS = ("syntax_error", "function_missing", "compile_failed", "check_timeout", "check_error")
DETAIL_CHARS = 500
OUTPUT_BYTES = 64 * 1024
DATA_LIMIT_KIB = 1024 * 1024  # RLIMIT_DATA: JVM, V8 and Go reserve far more, but commit less
FILE_LIMIT_BLOCKS = 131072  # RLIMIT_FSIZE in the shell's blocks (512 or 1024 bytes)
CACHE_ENV = "CODECAPY_CHECK_CACHE"
_NOISE = re.compile(r"^\s+at .*\(node:internal/.*\n|^Node\.js v[\d.]+$", re.MULTILINE)  # node's stack
_TS_LOCK = threading.Lock()  # parser_for() hands out one shared Parser per language


@dataclass(frozen=True)
class CheckResult:
    """Verdict on one program: ok, the first reject reason, and every check that ran."""

    ok: bool
    reason: str | None
    checks: tuple[dict, ...]

    def to_meta(self) -> dict:
        """JSON-serialisable summary for the record's meta["checks"]."""
        return {"ok": self.ok, "reason": self.reason, "checks": [dict(c) for c in self.checks]}


@dataclass(frozen=True)
class Toolchain:
    """How to compile or lint one language's program without running it."""

    check: str  # name in meta; "{tool}" = the executable's name
    executables: tuple[str, ...]  # the first one found on PATH is used
    argv: Callable[[str, str], list[str]]  # (executable, source file) -> command in the work dir
    filename: Callable[[ts.Node], str]  # the source file's name, from the parsed program
    version_args: tuple[str, ...] = ("--version",)
    extra_files: Callable[[str], dict[str, str]] = lambda description: {}
    env: Callable[[Path], dict[str, str]] = lambda cache: {}
    resolve: Callable[[str, dict[str, str]], str] = lambda path, env: path
    address_space_mib: int | None = None  # RLIMIT_AS as well, for tools that tolerate it


def _named(name: str) -> Callable[[ts.Node], str]:
    return lambda root: name


def _js_filename(root: ts.Node) -> str:
    """ES module syntax is a SyntaxError in a CommonJS .js file, so it needs .mjs."""
    esm = any(c.type in {"import_statement", "export_statement"} for c in root.named_children)
    return "main.mjs" if esm else "main.js"


_JAVA_TYPES = frozenset(
    {
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "annotation_type_declaration",
    }
)


def _java_filename(root: ts.Node) -> str:
    """javac insists that a public top-level type lives in <Name>.java."""
    for node in root.named_children:
        modifiers = next((c for c in node.children if c.type == "modifiers"), None)
        name = node.child_by_field_name("name")
        if (
            node.type in _JAVA_TYPES
            and name is not None
            and modifiers is not None
            and re.search(rb"\bpublic\b", modifiers.text)
        ):
            return name.text.decode(errors="replace") + ".java"
    return "Main.java"


def _go_mod(description: str) -> dict[str, str]:
    """A module at the local toolchain's language version, so new syntax is judged by it."""
    version = re.search(r"(\d+)\.(\d+)", description)
    return {"go.mod": f"module check\n\ngo {version.group(0) if version else '1.18'}\n"}


def _go_env(cache: Path) -> dict[str, str]:
    return {
        "GOCACHE": str(cache / "go-build"),
        "GOPATH": str(cache / "gopath"),
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
        "GOENV": "off",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
    }


def _rust_env(cache: Path) -> dict[str, str]:
    """Where rustup lives, for when `rustc` is still the rustup proxy (HOME is the temp dir)."""
    home = Path.home()
    return {
        "RUSTUP_HOME": os.environ.get("RUSTUP_HOME", str(home / ".rustup")),
        "CARGO_HOME": os.environ.get("CARGO_HOME", str(home / ".cargo")),
    }


def _rustc_binary(path: str, env: dict[str, str]) -> str:
    """The real rustc behind a rustup proxy: skips the proxy's start-up on every check."""
    rc, out = _run([path, "--print", "sysroot"], Path(env["TMPDIR"]), env, 20.0)
    real = Path(out.strip(), "bin", "rustc")
    return str(real) if rc == 0 and real.is_file() else path


_GCC_C_ERRORS = [
    "-Werror=implicit-function-declaration",
    "-Werror=implicit-int",
    "-Werror=int-conversion",
    "-Werror=incompatible-pointer-types",
]

TOOLCHAINS: dict[str, Toolchain] = {
    "python": Toolchain(
        "python -m py_compile",
        (sys.executable,),
        lambda exe, src: [exe, "-I", "-m", "py_compile", src],
        _named("main.py"),
    ),
    "javascript": Toolchain("node --check", ("node",), lambda exe, src: [exe, "--check", src], _js_filename),
    "java": Toolchain(
        "javac",
        ("javac",),
        lambda exe, src: [
            exe,
            "-d",
            "classes",
            "-proc:none",
            "-nowarn",
            "-encoding",
            "UTF-8",
            "-J-Xmx256m",
            "-J-XX:+UseSerialGC",
            "-J-XX:TieredStopAtLevel=1",
            src,
        ],
        _java_filename,
        version_args=("-version",),
    ),
    "go": Toolchain(
        "go vet",
        ("go",),
        lambda exe, src: [exe, "vet", "./..."],
        _named("main.go"),
        version_args=("version",),
        extra_files=_go_mod,
        env=_go_env,
    ),
    "ruby": Toolchain("ruby -c", ("ruby",), lambda exe, src: [exe, "-c", src], _named("main.rb")),
    "rust": Toolchain(
        "rustc --emit=metadata",
        ("rustc",),
        lambda exe, src: [
            exe,
            "--edition",
            "2021",
            "--crate-type",
            "lib",
            "--crate-name",
            "check",
            "--emit=metadata",
            "--cap-lints",
            "allow",
            "-o",
            "check.rmeta",
            src,
        ],
        _named("main.rs"),
        env=_rust_env,
        resolve=_rustc_binary,
    ),
    "php": Toolchain(
        "php -l",
        ("php",),
        lambda exe, src: [exe, "-n", "-l", src],
        _named("main.php"),
        version_args=("-n", "--version"),
    ),
    "c": Toolchain(
        "gcc -fsyntax-only",
        ("gcc",),
        lambda exe, src: [exe, "-fsyntax-only", "-fmax-errors=5", "-x", "c", *_GCC_C_ERRORS, src],
        _named("main.c"),
        address_space_mib=4096,
    ),
    "cpp": Toolchain(
        "g++ -std=c++17 -fsyntax-only",
        ("g++",),
        lambda exe, src: [exe, "-std=c++17", "-fsyntax-only", "-fmax-errors=5", "-x", "c++", src],
        _named("main.cpp"),
        address_space_mib=4096,
    ),
    "csharp": Toolchain(
        "{tool} -target:library",
        ("mcs", "csc"),
        lambda exe, src: [exe, "-target:library", "-out:check.dll", src],
        _named("Main.cs"),
    ),
}


# ---- running a tool ------------------------------------------------------------------------


def _cache_dir() -> Path:
    """Persistent, so Go's build cache stays warm across checks and runs."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codecapy"
    path = Path(os.environ.get(CACHE_ENV) or default / "program_check")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _env(home: Path, tool: Toolchain) -> dict[str, str]:
    """HOME and TMPDIR are a scratch folder beside the sources (Go ignores a go.mod in TMPDIR)."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "TMPDIR": str(home), "LANG": "C.UTF-8"}
    return {**env, **tool.env(_cache_dir())}


def _run(
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


def _detail(output: str, workdir: Path, home: Path) -> str:
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
            rc, out = _run([binary, *tool.version_args], Path(tmp), env, 20.0)
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
            rc, output = _run(tool.argv(binary, filename), workdir, _env(home, tool), timeout, tool.address_space_mib)
        except OSError as exc:
            return "check_error", {**check, "status": "error", "detail": f"cannot run: {exc}"}
        log.debug("%s check took %.3f s (exit %s)", language, time.monotonic() - started, rc)
        detail = _detail(output, workdir, home)
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


# ---- tree-sitter ---------------------------------------------------------------------------


def _first_error(root: ts.Node) -> ts.Node | None:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            return node
        stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    return None


def _syntax_detail(node: ts.Node | None) -> str:
    if node is None:
        return "syntax error"
    line, column = node.start_point[0] + 1, node.start_point[1] + 1
    if node.is_missing:
        return f"missing {node.type!r} at line {line}, column {column}"
    text = node.text.decode(errors="replace")[:60] if node.text else ""
    return f"syntax error at line {line}, column {column}: {text!r}"


def syntax_error(code: str, language: str) -> str | None:
    """tree-sitter's verdict alone: None when `code` parses without an ERROR or MISSING node, else
    where it fails (for code that is not a whole program with a known function, e.g. an answer)."""
    if language not in TOOLCHAINS:
        raise ValueError(f"unknown language {language!r}; choose from {sorted(TOOLCHAINS)}")
    with _TS_LOCK:
        root = parser_for(language).parse(code.encode("utf-8", errors="replace")).root_node
        return _syntax_detail(_first_error(root)) if root.has_error else None


def _tree_sitter_check(source: bytes, language: str, function_name: str) -> tuple[str | None, dict, str]:
    """(reason or None, the check, the file name the toolchain should use)."""
    check = {"check": "tree-sitter"}
    with _TS_LOCK:
        root = parser_for(language).parse(source).root_node
        if root.has_error:
            return "syntax_error", {**check, "status": "failed", "detail": _syntax_detail(_first_error(root))}, ""
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

"""How a CodeContests solution is built and run for verification, per language: which tools it needs on
PATH, how their version is named in meta, the compile step and the command that runs one test.

Python 3 runs with this interpreter (`sys.executable -I -B`), Python 2 with a `python2` on PATH that
answers `--version` (a pyenv shim without a Python 2 behind it does not), C++ with `g++ -std=gnu++17
-O2`, Java with `javac` and `java` (the class that declares `static void main`, found with
tree-sitter; the file is named after the public top-level class, as javac insists). Every language has
a compile step, Python's a `compile()` of the file, so a syntax error is a `compile_error` everywhere.
The tools themselves are the machine's and trusted: their versions are probed directly, once per PATH.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tree_sitter as ts

from data_generation.common.treesitter import parse

# seconds and factors on top of the problem's time limit: CodeContests' Python 3 solutions include
# PyPy submissions, and a JVM takes a while to start
SLOWDOWN = {"python3": 3.0, "python2": 3.0, "cpp": 1.0, "java": 1.5}
STARTUP_S = {"python3": 0.2, "python2": 0.2, "cpp": 0.0, "java": 0.5}
# data segment beyond the problem's memory limit: an interpreter, or a JVM (which reserves some 550 MiB
# besides its heap, then stacks for the threads a solution starts; -Xmx bounds the heap itself)
OVERHEAD_BYTES = {"python3": 64 << 20, "python2": 64 << 20, "cpp": 16 << 20, "java": 1 << 30}
# the compile step of both Pythons (so no f-strings): the error alone, without a traceback
_PY_CHECK = (
    "import sys\n"
    "try:\n"
    "    compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')\n"
    "except (SyntaxError, ValueError) as e:\n"
    "    sys.exit('%s: %s' % (type(e).__name__, e))\n"
)
_JAVA_TYPES = frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"})


@dataclass(frozen=True)
class Toolchain:
    """A language's tools as found on PATH: `tool` ("g++ 12.2.0") for meta, or `missing` saying why not."""

    language: str
    executables: tuple[str, ...] = ()
    tool: str | None = None
    missing: str | None = None


@dataclass(frozen=True)
class Build:
    """One solution's source file name, compile command (run in the build folder) and run command."""

    source: str
    compile_argv: list[str]
    run_argv: list[str]


def find_toolchain(language: str) -> Toolchain:
    """The language's tools on the current PATH (probed once per PATH)."""
    return _probe(language, os.environ.get("PATH", os.defpath))


@functools.lru_cache(maxsize=None)
def _probe(language: str, path: str) -> Toolchain:
    if language == "python3":
        return Toolchain(language, (sys.executable,), f"python {platform.python_version()}")
    names = {"python2": ("python2",), "cpp": ("g++",), "java": ("javac", "java")}[language]
    found = [shutil.which(name, path=path) for name in names]
    absent = [name for name, where in zip(names, found) if where is None]
    if absent:
        return Toolchain(language, missing=f"no {' or '.join(absent)} on PATH")
    executables = tuple(str(where) for where in found)
    version_args = {"python2": ["--version"], "cpp": ["-dumpfullversion"], "java": ["-version"]}[language]
    try:
        done = subprocess.run(
            [executables[0], *version_args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=30,
            env={"PATH": path, "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Toolchain(language, missing=f"{names[0]} on PATH does not run: {exc}")
    version = re.search(r"\d+\.\d+(?:\.\d+)?", done.stdout + done.stderr)
    if done.returncode != 0 or version is None or (language == "python2" and not version.group(0).startswith("2.")):
        return Toolchain(language, missing=f"{names[0]} on PATH does not run (exit {done.returncode})")
    return Toolchain(language, executables, f"{'python' if language == 'python2' else names[0]} {version.group(0)}")


def build(toolchain: Toolchain, code: str, build_dir: Path, memory_bytes: int) -> Build:
    """The commands for `code`; `build_dir` is where the source and its compiled form live."""
    exe = toolchain.executables
    if toolchain.language == "python3":
        interpreter = [exe[0], "-I", "-B"]
        return Build("sol.py", [*interpreter, "-c", _PY_CHECK, "sol.py"], [*interpreter, str(build_dir / "sol.py")])
    if toolchain.language == "python2":
        interpreter = [exe[0], "-E", "-s", "-B"]
        return Build("sol.py", [*interpreter, "-c", _PY_CHECK, "sol.py"], [*interpreter, str(build_dir / "sol.py")])
    if toolchain.language == "cpp":
        compile_argv = [exe[0], "-std=gnu++17", "-O2", "-pipe", "-w", "-fmax-errors=3", "-o", "sol", "sol.cpp"]
        return Build("sol.cpp", compile_argv, [str(build_dir / "sol")])
    source, main_class = java_names(code)
    jvm = ["-XX:+UseSerialGC", "-XX:-UsePerfData"]
    compile_argv = [
        exe[0],
        *("-encoding", "UTF-8", "-nowarn", "-proc:none", "-d", "classes"),
        *(f"-J{flag}" for flag in ("-Xmx512m", "-XX:TieredStopAtLevel=1", *jvm)),
        source,
    ]
    heap_mib = max(16, memory_bytes >> 20)
    run_argv = [exe[1], f"-Xmx{heap_mib}m", "-Xss64m", *jvm, "-cp", str(build_dir / "classes"), main_class]
    return Build(source, compile_argv, run_argv)


def java_names(code: str) -> tuple[str, str]:
    """(source file name, class to run): the file after the public top-level type (else Main.java),
    the first top-level class declaring `static ... main` (else the public one, else Main), with its package."""
    root = parse(code.encode("utf-8", errors="replace"), "java").root_node
    package, public, main = "", None, None
    for node in root.named_children:
        if node.type == "package_declaration":
            names = [c for c in node.named_children if c.type in ("identifier", "scoped_identifier")]
            package = names[0].text.decode(errors="replace") + "." if names and names[0].text else ""
        name = node.child_by_field_name("name") if node.type in _JAVA_TYPES else None
        if name is None or not name.text:
            continue
        modifiers = next((c for c in node.children if c.type == "modifiers"), None)
        if public is None and modifiers is not None and re.search(rb"\bpublic\b", modifiers.text or b""):
            public = name.text.decode(errors="replace")
        if main is None and _declares_main(node):
            main = name.text.decode(errors="replace")
    return f"{public or main or 'Main'}.java", package + (main or public or "Main")


def _declares_main(node: ts.Node) -> bool:
    body = node.child_by_field_name("body")
    for member in body.named_children if body is not None else []:
        name = member.child_by_field_name("name")
        modifiers = next((c for c in member.children if c.type == "modifiers"), None)
        if (
            member.type == "method_declaration"
            and name is not None
            and name.text == b"main"
            and modifiers is not None
            and re.search(rb"\bstatic\b", modifiers.text or b"")
        ):
            return True
    return False

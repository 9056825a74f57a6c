"""How each language's program is compiled or linted without running it: the `TOOLCHAINS` table.

`python -I -m py_compile`; `node --check` (`.mjs` when the program has top-level `import`/`export`);
`javac -proc:none` (file named after the public top-level type, else Main.java); `go vet ./...` in a
fresh module whose go.mod states the local toolchain's version (any package name; third-party imports
fail, GOPROXY=off); `rustc --edition 2021 --crate-type lib --emit=metadata --cap-lints allow`;
`php -n -l`; `ruby -c`; `gcc -fsyntax-only` with `-Werror=` for what gcc 14 rejects by default
(implicit declarations, int/pointer conversions), so gcc 12 and 14 agree; `g++ -std=c++17
-fsyntax-only`; `mcs` or `csc -target:library` for C# (`dotnet` alone is not used: it needs a project
and a NuGet restore). A tool's own environment (Go: GOCACHE/GOPATH under the persistent check cache,
GOPROXY=off, GOFLAGS=-mod=mod, GOTOOLCHAIN=local, CGO_ENABLED=0; Rust: RUSTUP_HOME/CARGO_HOME) comes
on top of `common.sandbox.tools.base_env`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tree_sitter as ts

from data_generation.common.sandbox.tools import run_tool


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
    rc, out = run_tool([path, "--print", "sysroot"], Path(env["TMPDIR"]), env, 20.0)
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

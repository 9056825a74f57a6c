"""Tests for checking teacher-written programs: tree-sitter, the real toolchains, and isolation."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import time

import pytest

from data_generation.common.treesitter import LANGUAGES, parser_for
from data_generation.sources.reverse_instruct import program_check
from data_generation.sources.reverse_instruct.program_check import (
    REASONS,
    CheckResult,
    available_toolchains,
    check_program,
    check_programs,
)
from data_generation.sources.reverse_instruct.tool_run import CACHE_ENV, DETAIL_CHARS
from data_generation.sources.reverse_instruct.toolchains import TOOLCHAINS
from tests.paths import FIXTURES as _FIXTURES

FIXTURES = _FIXTURES / "programs"

# language -> (valid fixture, its function), (invalid fixture, its function, a fragment of the
# compiler's complaint). Each invalid program parses cleanly with tree-sitter: only the toolchain
# can reject it.
CASES = {
    "python": (("valid.py", "word_frequencies"), ("invalid.py", "word_frequencies", "outside loop")),
    "javascript": (("valid.mjs", "orderTotal"), ("invalid.js", "orderTotal", "already been declared")),
    "java": (("valid.java", "prune"), ("invalid.java", "prune", "incompatible types")),
    "go": (("valid.go", "Pop"), ("invalid.go", "Sum", "declared but not used")),
    "ruby": (("valid.rb", "withdraw"), ("invalid.rb", "withdraw", "dynamic constant assignment")),
    "rust": (("valid.rs", "transpose"), ("invalid.rs", "transpose", "mismatched types")),
    "php": (("valid.php", "slugify"), ("invalid.php", "slugify", "Redefinition of parameter")),
    "c": (("valid.c", "reverse"), ("invalid.c", "reverse", "implicit declaration")),
    "cpp": (("valid.cpp", "split"), ("invalid.cpp", "split", "cannot convert")),
    "csharp": (("valid.cs", "Step"), ("invalid.cs", "Step", "CS0029")),
}


def _read(name: str) -> str:
    return (FIXTURES / name).read_text()


def _require_toolchain(language: str) -> str:
    description = available_toolchains()[language]
    if description is None:
        names = " or ".join(TOOLCHAINS[language].executables)
        pytest.skip(f"no {names} on PATH")
    return description


@pytest.fixture
def fake_bin(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    """A folder put first on PATH for fake tools; the toolchain cache is cleared around the test."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    program_check._toolchain.cache_clear()
    yield folder
    program_check._toolchain.cache_clear()


def _fake_tool(folder: pathlib.Path, name: str, body: str, version: str = "99.1.0") -> pathlib.Path:
    path = folder / name
    path.write_text(f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "{name} (fake) {version}"; exit 0; fi\n{body}\n')
    path.chmod(0o755)
    return path


def test_registry_covers_every_harvest_language() -> None:
    assert set(TOOLCHAINS) == set(LANGUAGES) == set(CASES)


def test_available_toolchains_matches_path() -> None:
    found = available_toolchains()
    assert set(found) == set(LANGUAGES)
    assert found["python"].startswith("python ")  # the running interpreter is always there
    for language, description in found.items():
        on_path = any(shutil.which(n) for n in TOOLCHAINS[language].executables)
        assert (description is not None) == on_path, language
        if description is not None:
            assert re.fullmatch(r"\S+ \d+\.\d+(\.\d+)?", description), description


@pytest.mark.parametrize("language", sorted(CASES))
def test_valid_program_passes(language: str) -> None:
    (fixture, function), _ = CASES[language]
    result = check_program(_read(fixture), language, function)
    assert result.ok and result.reason is None, result.checks
    assert result.checks[0] == {"check": "tree-sitter", "status": "passed"}
    tool = result.checks[1]
    description = available_toolchains()[language]
    if description is None:  # the tree-sitter-only path, e.g. C# on this machine
        assert tool["status"] == "skipped" and tool["detail"].endswith("on PATH")
    else:
        assert tool == {"check": tool["check"], "tool": description, "status": "passed"}
    json.dumps(result.to_meta())


@pytest.mark.parametrize("language", sorted(CASES))
def test_invalid_program_fails_its_toolchain(language: str) -> None:
    description = _require_toolchain(language)
    _, (fixture, function, complaint) = CASES[language]
    result = check_program(_read(fixture), language, function)
    assert not result.ok and result.reason == "compile_failed"
    assert result.checks[0]["status"] == "passed"  # tree-sitter could not tell
    tool = result.checks[1]
    assert tool["status"] == "failed" and tool["tool"] == description
    assert complaint in tool["detail"] and len(tool["detail"]) <= DETAIL_CHARS
    assert "codecapy-check-" not in tool["detail"]  # temporary paths are stripped


@pytest.mark.parametrize("language", sorted(CASES))
def test_syntax_error_stops_before_the_toolchain(language: str) -> None:
    (fixture, function), _ = CASES[language]
    code = _read(fixture)
    result = check_program(code + "\n)]}(\n", language, function)
    assert (result.ok, result.reason) == (False, "syntax_error")
    assert len(result.checks) == 1 and result.checks[0]["status"] == "failed"
    assert f"line {code.count(chr(10)) + 2}" in result.checks[0]["detail"]


def test_missing_token_is_named() -> None:
    result = check_program("int f(void)\n{\n    return 1\n}\n", "c", "f")
    assert result.reason == "syntax_error"
    assert result.checks[0]["detail"].startswith("missing ';' at line 3")


@pytest.mark.parametrize("language", sorted(CASES))
def test_function_missing(language: str) -> None:
    (fixture, function), _ = CASES[language]
    result = check_program(_read(fixture), language, "no_such_function")
    assert (result.ok, result.reason) == (False, "function_missing")
    assert len(result.checks) == 1
    assert "found: " in result.checks[0]["detail"] and function in result.checks[0]["detail"]


def test_methods_and_qualified_names_count() -> None:
    """Java/C# methods live in classes; C++ `Tokenizer::split` is "split"; Go methods by name."""
    assert check_program(_read("valid.java"), "java", "twice").reason is None  # non-public class
    assert check_program(_read("valid.cpp"), "cpp", "Tokenizer::split").reason == "function_missing"


def test_file_names_follow_the_program() -> None:
    def root(code: str, language: str):
        return parser_for(language).parse(code.encode()).root_node

    assert TOOLCHAINS["java"].filename(root(_read("valid.java"), "java")) == "Inventory.java"
    assert TOOLCHAINS["java"].filename(root("class A { void f() {} }", "java")) == "Main.java"
    assert TOOLCHAINS["javascript"].filename(root(_read("valid.mjs"), "javascript")) == "main.mjs"
    assert TOOLCHAINS["javascript"].filename(root(_read("invalid.js"), "javascript")) == "main.js"


def test_go_library_package_and_third_party_import() -> None:
    _require_toolchain("go")
    library = "package mathx\n\n// Add adds.\nfunc Add(a, b int) int {\n\treturn a + b\n}\n"
    assert check_program(library, "go", "Add").ok
    third = 'package main\n\nimport "github.com/acme/widgets"\n\nfunc main() {\n\twidgets.Run()\n}\n'
    result = check_program(third, "go", "main")
    assert result.reason == "compile_failed"
    assert "github.com/acme/widgets" in result.checks[1]["detail"]


def test_toolchain_absent_means_tree_sitter_only(fake_bin: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(fake_bin))  # nothing on PATH at all
    result = check_program(_read("valid.c"), "c", "reverse")
    assert result == CheckResult(
        True,
        None,
        (
            {"check": "tree-sitter", "status": "passed"},
            {"check": "gcc -fsyntax-only", "status": "skipped", "detail": "no gcc on PATH"},
        ),
    )
    assert available_toolchains()["c"] is None and available_toolchains()["python"] is not None


@pytest.fixture
def check_cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """The build cache: besides its own folder, the one place a tool may write (fakes report there)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


def test_environment_is_scrubbed(
    fake_bin: pathlib.Path, check_cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("GCC_EXEC_PREFIX", "/somewhere/else")
    seen = check_cache / "seen"
    _fake_tool(
        fake_bin,
        "gcc",
        f'env > "{seen}.env"\ncat > "{seen}.stdin"\necho "main.c:1:1: error: fake failure in $PWD"\nexit 1',
    )
    result = check_program(_read("valid.c"), "c", "reverse")
    assert result.reason == "compile_failed"
    assert result.checks[1]["tool"] == "gcc 99.1.0"
    assert result.checks[1]["detail"] == "main.c:1:1: error: fake failure in ."
    env = dict(line.split("=", 1) for line in (check_cache / "seen.env").read_text().splitlines())
    assert "sk-test-secret" not in (check_cache / "seen.env").read_text()
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "PWD", "SHLVL", "OLDPWD", "_"}
    assert env["HOME"] == env["TMPDIR"] != os.environ.get("HOME")
    assert "codecapy-check-" in env["HOME"] and not os.path.exists(env["HOME"])  # cleaned up
    assert (check_cache / "seen.stdin").read_text() == ""  # stdin is /dev/null, never our terminal


def test_a_tool_cannot_write_outside_its_folders_or_reach_the_network(
    fake_bin: pathlib.Path, check_cache: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    body = (
        f'echo x > "{outside}/written" 2>/dev/null && echo "wrote outside"\n'
        f'echo x > "$HOME/mine" && echo x > ./mine.o && echo x > "{check_cache}/cached" && echo "wrote inside"\n'
        'python3 -c "import socket; socket.create_connection((\'127.0.0.1\', 22), 1)" 2>/dev/null && echo "network"\n'
        'echo "main.c:1:1: error: done"; exit 1'
    )
    _fake_tool(fake_bin, "gcc", body)
    detail = check_program(_read("valid.c"), "c", "reverse").checks[1]["detail"]
    assert "wrote inside" in detail and "wrote outside" not in detail and "network" not in detail
    assert not (outside / "written").exists() and (check_cache / "cached").exists()


def _alive(pid: int) -> bool:
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _sleepers(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") and _alive(
                int(pid)
            ):
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_timeout_kills_the_whole_process_group(fake_bin: pathlib.Path, check_cache: pathlib.Path) -> None:
    marker = f"{60 + int(time.time() * 1000) % 997 / 1000:.3f}"  # a sleep argument nothing else uses
    _fake_tool(
        fake_bin, "gcc", f'setsid sleep {marker} &\nsleep {marker} &\necho started > "{check_cache}/started"\nwait'
    )
    started = time.monotonic()
    result = check_program(_read("valid.c"), "c", "reverse", timeout=1.0)
    assert time.monotonic() - started < 10
    assert (result.ok, result.reason) == (False, "check_timeout")
    assert result.checks[1]["detail"] == "timed out after 1 s"
    assert (check_cache / "started").exists()  # the children were running
    deadline = time.monotonic() + 5
    while _sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _sleepers(marker)  # even the one in its own session


def test_include_dev_zero_ends_quickly() -> None:
    """cc1 would read /dev/zero until memory runs out: the data limit stops it, the timeout backs it."""
    _require_toolchain("c")
    started = time.monotonic()
    result = check_program('#include "/dev/zero"\n\nint f(void)\n{\n    return 1;\n}\n', "c", "f", timeout=10)
    assert time.monotonic() - started < 15
    assert not result.ok and result.reason in {"compile_failed", "check_timeout"}


def test_tool_that_cannot_run_is_a_check_error(fake_bin: pathlib.Path) -> None:
    tool = _fake_tool(fake_bin, "gcc", "exit 0")
    assert available_toolchains()["c"] == "gcc 99.1.0"  # probed while it existed
    tool.unlink()
    result = check_program(_read("valid.c"), "c", "reverse")
    assert (result.ok, result.reason) == (False, "check_error")
    assert result.checks[1]["status"] == "error"


def test_csharp_compiler_is_used_when_present(fake_bin: pathlib.Path, check_cache: pathlib.Path) -> None:
    args = check_cache / "args"
    _fake_tool(fake_bin, "mcs", f'echo "$@" > "{args}"\ntest -f Main.cs', version="6.12.0")
    result = check_program(_read("valid.cs"), "csharp", "Step")
    assert result.ok
    assert result.checks[1] == {"check": "mcs -target:library", "tool": "mcs 6.12.0", "status": "passed"}
    assert args.read_text().split() == ["-target:library", "-out:check.dll", "Main.cs"]


def test_check_programs_keeps_input_order() -> None:
    (py_valid, py_fn), (py_invalid, _, _) = CASES["python"]
    (c_valid, c_fn), _ = CASES["c"]
    items = [
        (_read(py_valid), "python", py_fn),
        (_read(py_invalid), "python", py_fn),
        ("def f(:\n", "python", "f"),
        (_read(py_valid), "python", "nope"),
        (_read(c_valid), "c", c_fn),
    ]
    results = check_programs(items, workers=2)
    assert [r.reason for r in results] == [None, "compile_failed", "syntax_error", "function_missing", None]
    assert all(r.reason is None or r.reason in REASONS for r in results)
    assert [r.to_meta()["ok"] for r in results] == [True, False, False, False, True]
    with pytest.raises(ValueError, match="workers"):
        check_programs(items, workers=0)


def test_unknown_language_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown language 'cobol'"):
        check_program("x", "cobol", "f")

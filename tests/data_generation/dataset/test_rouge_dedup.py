"""`python -m data_generation near-dedup`: end to end on fixtures and on the real CodeAlpaca 2k file."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from rouge_score import rouge_scorer

from data_generation.cli import main
from data_generation.common.io import iter_rows
from data_generation.common.record import Record

TOKENIZE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)._tokenizer.tokenize


def reference(texts: list[str], threshold: float) -> list[tuple[bool, float, int | None]]:
    """(kept, max score, position of the first most similar earlier kept text) with rouge_score."""
    kept: list[int] = []
    out = []
    for i, text in enumerate(texts):
        tokens = TOKENIZE(text)
        scores = [rouge_scorer._score_lcs(tokens, TOKENIZE(texts[j])).fmeasure for j in kept]
        best = max(range(len(kept)), key=lambda k: (scores[k], -k)) if kept else None
        score = scores[best] if kept else 0.0
        out.append((score <= threshold, score, kept[best] if kept else None))
        if score <= threshold:
            kept.append(i)
    return out


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


ROWS = [
    {"instruction": "Write a function that reverses a string.", "input": "", "output": "s[::-1]"},
    {"instruction": "Sort a list of numbers in Python.", "input": "[3, 1, 2]", "output": "sorted(x)"},
    {"instruction": "WRITE A FUNCTION THAT REVERSES A STRING!", "input": "", "output": "''.join(reversed(s))"},
    {"instruction": "Write a function that reverses a list.", "input": "", "output": "x[::-1]"},
    {"instruction": "Explain what a closure is.", "input": "", "output": ""},  # invalid: empty output
    {"instruction": "Sort a list of numbers in Python.", "input": "[9, 8]", "output": "x.sort()"},
    {"instruction": "Compute the factorial of n recursively.", "input": "", "output": "def f(n): ..."},
]


def test_fixture_end_to_end(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, ROWS)
    assert (
        main(["near-dedup", "--input", str(src), "--output", str(out), "--method", "rouge-l", "--threshold", "0.7"])
        == 0
    )
    kept = [r["instruction"] for r in read_lines(out)]
    assert kept == [ROWS[i]["instruction"] for i in (0, 1, 6)]
    decisions = read_lines(tmp_path / "out.jsonl.decisions.jsonl")
    assert [d["index"] for d in decisions] == list(range(len(ROWS)))
    assert [d["where"] for d in decisions] == [str(i + 1) for i in range(len(ROWS))]  # jsonl line numbers
    assert [d["reason"] for d in decisions] == [
        "kept",
        "kept",
        "near_duplicate",
        "near_duplicate",
        "invalid_row:empty_output",
        "near_duplicate",
        "kept",
    ]
    texts = [r["instruction"] for i, r in enumerate(ROWS) if i != 4]
    valid = [0, 1, 2, 3, 5, 6]
    for d, (ok, score, match) in zip([d for d in decisions if d["index"] != 4], reference(texts, 0.7)):
        assert (d["kept"], d["max_score"]) == (ok, score)
        assert d["most_similar_index"] == (valid[match] if match is not None else None)
        ids = {i: Record(**ROWS[i], source="in").id for i in valid}
        assert d["id"] == ids[d["index"]]
        assert d["most_similar_id"] == (ids[d["most_similar_index"]] if match is not None else None)
    assert decisions[2]["max_score"] == 1.0 and decisions[2]["most_similar_index"] == 0
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert manifest["counts"] == {"read": 7, "kept": 3, "near_duplicate": 3, "invalid": {"invalid_row:empty_output": 1}}
    assert manifest["config"]["threshold"] == 0.7 and manifest["versions"]["numpy"]


def test_field_instruction_plus_input_and_other_formats(tmp_path):
    src = tmp_path / "in.json"  # Alpaca list in; Alpaca list and parquet out
    src.write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
    out, pq = tmp_path / "out.json", tmp_path / "out.parquet"
    assert main(["near-dedup", "--input", str(src), "--output", str(out), "--threshold", "0.75"]) == 0
    assert (
        main(
            [
                "near-dedup",
                "--input",
                str(src),
                "--output",
                str(pq),
                "--field",
                "instruction+input",
                "--threshold",
                "0.75",
            ]
        )
        == 0
    )
    by_instruction = json.loads(out.read_text())
    assert set(by_instruction[0]) == {"instruction", "input", "output"}  # the seeds' Alpaca form
    assert [r["output"] for r in by_instruction] == [ROWS[i]["output"] for i in (0, 1, 6)]
    # with its input, row 5 ("... Python.\n[9, 8]") scores 2*7/19 = 0.737 against row 1 and stays
    with_input = [row for _, row in iter_rows(pq)]
    assert [r["output"] for r in with_input] == [ROWS[i]["output"] for i in (0, 1, 5, 6)]
    decisions = read_lines(tmp_path / "out.parquet.decisions.jsonl")
    texts = [f"{r['instruction']}\n{r['input']}" if r["input"] else r["instruction"] for r in ROWS if r["output"]]
    assert [(d["kept"], d["max_score"]) for d in decisions if d["id"]] == [(k, s) for k, s, _ in reference(texts, 0.75)]
    assert decisions[5]["max_score"] == pytest.approx(14 / 19) and decisions[5]["most_similar_index"] == 1


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": "d"}\n{"instruction": oops}\n', ":3:"),
        ('{"instruction": "a", "output": "b"}\n\xff\n', ":2:"),
    ],
)
def test_bad_input_exits_2_with_file_and_line_and_writes_nothing(tmp_path, capsys, content, where):
    src, out = tmp_path / "bad.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(content.encode("utf-8") if "\xff" not in content else content.encode("latin-1"))
    assert main(["near-dedup", "--input", str(src), "--output", str(out)]) == 2
    assert f"bad.jsonl{where}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]  # no partial output, no temp files


def test_bad_arguments(tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, ROWS)
    assert main(["near-dedup", "--input", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o.jsonl")]) == 2
    for argv in (["--threshold", "1.5"], ["--method", "minhash"], ["--field", "title"]):
        with pytest.raises(SystemExit) as exc:
            main(["near-dedup", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), *argv])
        assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["near-dedup", "--input", str(src), "--output", str(tmp_path / "o.csv")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_real_code_alpaca_file(tmp_path, code_alpaca_2k):
    """The real 2k sample through `python -m`: CodeAlpaca was itself filtered at ROUGE-L 0.7, so
    nothing goes, and rows scoring *exactly* 0.7 stay; spot-checked against rouge_score."""
    out = tmp_path / "kept.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "data_generation",
        "near-dedup",
        "--input",
        str(code_alpaca_2k),
        "--output",
        str(out),
        "--threshold",
        "0.7",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    manifest = json.loads((tmp_path / "kept.jsonl.manifest.json").read_text())
    assert manifest["counts"] == {
        "read": 2017,
        "kept": 2015,
        "near_duplicate": 0,
        "invalid": {"invalid_row:empty_output": 2},
    }
    decisions = read_lines(tmp_path / "kept.jsonl.decisions.jsonl")
    rows = json.loads(code_alpaca_2k.read_text(encoding="utf-8"))
    at_threshold = [d for d in decisions if d.get("max_score") == 0.7]
    assert at_threshold and all(d["kept"] for d in at_threshold)
    valid = [d["index"] for d in decisions if d["kept"]]
    sample = at_threshold + random.Random(3).sample([d for d in decisions if d["kept"]], 20)
    for d in sample:
        tokens = TOKENIZE(rows[d["index"]]["instruction"])
        earlier = [i for i in valid if i < d["index"]]
        scores = [rouge_scorer._score_lcs(tokens, TOKENIZE(rows[i]["instruction"])).fmeasure for i in earlier]
        assert d["max_score"] == max(scores, default=0.0)
        if scores:
            assert d["most_similar_index"] == earlier[scores.index(max(scores))]

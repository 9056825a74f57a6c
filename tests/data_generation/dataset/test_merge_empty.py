"""Merge with a source output that is empty: reported, listed with 0 rows, and the merge goes on;
all inputs empty is bad input (exit 2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.common.io import DataError, read_records

ROWS = [
    {
        "instruction": "Write a Python function that reverses a list of integers in place.",
        "input": "",
        "output": "def rev(xs):\n    xs.reverse()",
        "source": "codealpaca",
    },
    {
        "instruction": "Explain what a Go channel is in one sentence.",
        "input": "",
        "output": "A typed conduit through which goroutines send and receive values.",
        "source": "codealpaca",
    },
]


def merge_args(out: Path, *inputs: Path) -> list[str]:
    return ["merge", "--input", *map(str, inputs), "--output-dir", str(out), "--decontaminate", "", "--no-near-dup"]


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    path = tmp_path / "codealpaca.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_an_empty_input_is_reported_listed_with_zero_rows_and_the_merge_goes_on(tmp_path, good, caplog):
    empty = tmp_path / "self_instruct.jsonl"
    empty.write_bytes(b"")  # a source that kept nothing (its journal is an empty file)
    Path(f"{empty}.manifest.json").write_text(
        json.dumps(
            {"source": "self-instruct", "status": "stopped", "stop_reason": "max_idle_steps: 10 steps kept no task"}
        )
    )
    blank = tmp_path / "other.json"
    blank.write_text("  \n")  # whitespace only: no rows either
    out = tmp_path / "merged"
    caplog.set_level(logging.WARNING)
    assert main(merge_args(out, good, empty, blank)) == 0
    warnings = [m for m in caplog.messages if "empty input" in m]
    assert len(warnings) == 2 and str(empty) in warnings[0] and "max_idle_steps" in warnings[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["input"] == 2 and manifest["counts"]["kept"] == 2
    by_path = {i["path"]: i for i in manifest["inputs"]}
    assert by_path[str(empty)]["rows"] == 0 and by_path[str(empty)]["empty"] is True
    assert by_path[str(blank)]["rows"] == 0 and by_path[str(good)]["empty"] is False
    assert by_path[str(empty)]["upstream_manifest"]["status"] == "stopped"
    assert manifest["per_source"]["self-instruct"] == {"input": 0, "kept": 0, "dropped": {}}  # named by its manifest
    assert manifest["per_source"]["other"]["input"] == 0
    report = (out / "report.md").read_text()
    assert f"| `{empty}` | 0 | empty: nothing merged from it |" in report
    assert "| self-instruct | 0 |" in report
    assert len(json.loads((out / "train.json").read_text())) == 2


def test_all_inputs_empty_is_bad_input(tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.json"
    a.write_bytes(b"")
    b.write_text("[]")
    out = tmp_path / "merged"
    assert main(merge_args(out, a, b)) == 2
    assert "all 2 inputs are empty" in capsys.readouterr().err
    assert not out.exists()


def test_other_readers_still_refuse_an_empty_file(tmp_path):
    empty = tmp_path / "x.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="file is empty"):
        list(read_records(empty, default_source="x"))
    assert list(read_records(empty, default_source="x", allow_empty=True)) == []

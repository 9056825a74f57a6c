"""One writer per output, for merge and near-dedup: while another process holds the output's lock
(`common.output_lock`, held here by the test process), the command exits 75 at once with one `error:`
line naming the output and the holder, writes nothing and leaves an existing output as it was; once
the lock is free the same command writes what a lone run writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.common.output_lock import output_lock

BUSY = 75
ROWS = [
    {"instruction": f"Write a Python function that returns the {n}th {what}.", "output": f"def f(): return {n}"}
    for n in range(1, 6)
    for what in ("prime", "square number", "Fibonacci number")
]


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({**row, "source": "codealpaca"}) + "\n" for row in ROWS))
    return path


def merge_args(out: Path, data: Path, *extra: str) -> list[str]:
    return ["merge", "--input", str(data), "--output-dir", str(out), "--decontaminate", "", "--seed", "3", *extra]


def folder(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def busy_error(capsys: pytest.CaptureFixture, out: Path) -> None:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out} is in use by process {os.getpid()} ")


def test_merge_refuses_a_held_output_folder_and_then_writes_a_lone_runs(data, tmp_path, capsys):
    out, ref = tmp_path / "merged", tmp_path / "ref"
    with output_lock(out):
        assert main(merge_args(out, data)) == BUSY
    busy_error(capsys, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"], "no folder, no temporary sibling"
    assert main(merge_args(out, data)) == 0 and main(merge_args(ref, data)) == 0
    assert (out / "train.jsonl").read_bytes() == (ref / "train.jsonl").read_bytes()
    assert json.loads((out / "manifest.json").read_text())["counts"]["kept"] == len(ROWS)
    assert not Path(f"{out}.lock").exists()


def test_merge_overwrite_of_a_held_output_folder_leaves_it_as_it_was(data, tmp_path, capsys):
    out = tmp_path / "merged"
    assert main(merge_args(out, data)) == 0
    before = folder(out)
    with output_lock(out):
        assert main(merge_args(out, data, "--overwrite", "--seed", "4")) == BUSY
    busy_error(capsys, out)
    assert folder(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merged.")], "no temporary sibling left"


def test_near_dedup_refuses_a_held_output(data, tmp_path, capsys):
    out = tmp_path / "kept.jsonl"
    args = ["near-dedup", "--input", str(data), "--output", str(out)]
    with output_lock(out):
        assert main(args) == BUSY
    busy_error(capsys, out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("kept")]
    assert main(args) == 0
    kept = json.loads(Path(f"{out}.manifest.json").read_text())["counts"]["kept"]
    assert kept > 0 and len(out.read_text().splitlines()) == kept

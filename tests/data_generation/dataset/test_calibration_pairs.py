"""The decontamination calibration set (tests/fixtures/decontamination/calibration_pairs.jsonl) is sound.

Hand-written pairs for calibrating a paraphrase-aware contamination check: rewordings of HumanEval
and MBPP test-split problems (instruction only, docstring + renamed solution, the same problem in
another language) and different problems that share vocabulary with one. Whatever scores them, the
set must say what it claims: every rewording names a real benchmark task; no different problem does;
no text is copied from its benchmark problem (then it would be a copy, not a rewording).
"""

from __future__ import annotations

import json
from pathlib import Path

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import DataChoice
from data_generation.dataset.normalise import phrase
from tests.paths import FIXTURES

PAIRS = FIXTURES / "decontamination" / "calibration_pairs.jsonl"
KINDS = {"reworded_instruction", "reworded_with_solution", "other_language", "different_problem"}


def _problems(mbpp: Path) -> dict[str, str]:
    statements = {}
    for name, source in (("humaneval", None), ("mbpp", str(mbpp))):
        bench = get_benchmark(name)
        for p in bench.load(DataChoice(source=source)):
            statements[bench.task_name(p)] = bench.statement(p)
    return statements


def test_every_pair_is_what_it_claims(mbpp_full: Path) -> None:
    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    statements = _problems(mbpp_full)
    kinds = {row["kind"] for row in rows}
    assert kinds == KINDS
    rewordings = [r for r in rows if r["kind"] != "different_problem"]
    others = [r for r in rows if r["kind"] == "different_problem"]
    assert len(rewordings) >= 40 and len(others) >= 25
    for row in rewordings:
        assert row["task_id"] in statements, row["task_id"]
        assert phrase(statements[row["task_id"]]) not in phrase(row["instruction"])  # reworded, not copied
    for row in others:
        assert row["task_id"] is None and row["near"] in statements
    assert all(row["instruction"].strip() and row["output"].strip() for row in rows)

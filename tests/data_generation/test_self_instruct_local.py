"""Self-instruct offline, with the embedded teacher (`--teacher local`), through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.filters import instruction_reason
from data_generation.record import record_from_row


def args(out: Path, model: str, *extra: str) -> list[str]:
    return ["self-instruct", "--teacher", "local", "--model", model, "--num-tasks", "5",
            "--requests-per-step", "2", "--no-progress", "--cache-dir", str(out.parent / "cache"),
            "--output", str(out), *extra]


@pytest.mark.slow
def test_embedded_smollm2_writes_valid_records(smollm2, tmp_path):
    """The real embedded model: a 135M model writes weak tasks, but every record kept is well formed."""
    out = tmp_path / "si.jsonl"
    assert main(args(out, str(smollm2), "--num-instructions", "1", "--max-tokens", "256", "--max-idle-steps", "3",
                     "--requests-per-step", "4", "--local-batch-size", "4")) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows, "SmolLM2 produced no usable task in 3 steps"
    for row in rows:
        rec = record_from_row(row, default_source="self-instruct")
        assert rec.id == row["id"] and instruction_reason(rec.instruction, rec.input, rec.output) is None
        assert row["meta"]["avg_similarity_score"] <= 0.7

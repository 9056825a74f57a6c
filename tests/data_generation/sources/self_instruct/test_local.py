"""Self-instruct offline, with the embedded teacher (`--teacher local`), through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_generation.cli import main
from data_generation.common.record import record_from_row
from data_generation.sources.filters import instruction_reason
from tests.paths import REPO


def args(out: Path, model: str, *extra: str) -> list[str]:
    return [
        "self-instruct",
        "--teacher",
        "local",
        "--model",
        model,
        "--num-tasks",
        "5",
        "--requests-per-step",
        "2",
        "--no-progress",
        "--cache-dir",
        str(out.parent / "cache"),
        "--output",
        str(out),
        *extra,
    ]


@pytest.mark.slow
def test_embedded_smollm2_writes_valid_records(smollm2, tmp_path):
    """The real embedded model: a 135M model writes weak tasks, but every record kept is well formed."""
    out = tmp_path / "si.jsonl"
    assert (
        main(
            args(
                out,
                str(smollm2),
                "--num-instructions",
                "1",
                "--max-tokens",
                "256",
                "--max-idle-steps",
                "3",
                "--requests-per-step",
                "4",
                "--local-batch-size",
                "4",
            )
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows, "SmolLM2 produced no usable task in 3 steps"
    for row in rows:
        rec = record_from_row(row, default_source="self-instruct")
        assert rec.id == row["id"] and instruction_reason(rec.instruction, rec.input, rec.output) is None
        assert row["meta"]["avg_similarity_score"] <= 0.7


@pytest.mark.slow
def test_the_script_single_mode_with_the_embedded_teacher_keeps_valid_answered_tasks(smollm2, tmp_path):
    """scripts/self_instruct.sh's local settings (single mode): a tiny run keeps its tasks, each with a
    parsed code answer, and the manifest says the run completed."""
    import os
    import subprocess

    from data_generation.common.treesitter import syntax_error

    out = tmp_path / "single.jsonl"
    repo = REPO
    env = dict(os.environ, NUM="2", OUTPUT=str(out))
    done = subprocess.run(
        [
            "bash",
            "scripts/self_instruct.sh",
            "--model",
            str(smollm2),
            "--requests-per-step",
            "8",
            "--local-batch-size",
            "8",
            "--max-idle-steps",
            "2",
            "--no-progress",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["config"]["mode"] == "single" and manifest["status"] == "completed", manifest["stop_reason"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert instruction_reason(row["instruction"], row["input"], row["output"]) is None
        assert row["language"] in ("python", "javascript") and syntax_error(row["output"], row["language"]) is None
        assert row["meta"]["finish_reason"] == "stop" and row["meta"]["avg_similarity_score"] <= 0.7

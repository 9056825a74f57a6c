"""scripts.seeds_table: our runs beside the seeds' published numbers."""

from __future__ import annotations

import json
from pathlib import Path

from main.evaluation.passk import mean_pass_at_k
from scripts import seeds_table


def fake_run(out: Path, run: str, benchmark: str, counts: dict[str, tuple[int, int]]) -> None:
    folder = out / "eval" / f"{run}-{benchmark}"
    folder.mkdir(parents=True)
    metrics = {
        "benchmark": benchmark,
        **mean_pass_at_k(counts),
        "n": 200,
        "num_tasks": len(counts),
        "fingerprint": {
            "run_name": f"llama-7b ({run})",
            "base_checkpoint": "huggyllama/llama-7b",
            "dataset": {"subset": f"all {len(counts)} tasks"},
        },
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_our_rows_follow_the_published_ones(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lora"
    fake_run(out, "base", "humaneval", {"a": (200, 20), "b": (200, 0)})
    fake_run(out, "tuned", "mbpp", {"1": (200, 200)})
    (out / "dataset").mkdir()
    (out / "dataset" / "manifest.json").write_text(
        json.dumps(
            {
                "per_source": {
                    "codealpaca": {"kept": 19990},
                    "reverse-instruct": {"kept": 20001},
                    "codecontests": {"kept": 13000},
                }
            }
        )
    )
    assert seeds_table.main(["--input", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| CodeCapybara | huggyllama/llama-7b | 11.10 | 13.33 | 13.41 | published |" in text
    assert "| llama-7b (base) | huggyllama/llama-7b | 5.00 |" in text and "ours, all 2 tasks, n = 200" in text
    assert (
        "| (the seeds publish no MBPP numbers) |" in text
        and "| llama-7b (tuned) | huggyllama/llama-7b | 100.00 |" in text
    )
    assert "| Reverse instruction (only instruction generation) | 20,574 | 20,001 |" in text
    assert "| **Total** | **53,924** | **52,991** |" in text and "Self-instruct" not in text
    assert seeds_table.main(["--input", str(tmp_path / "missing")]) == 2

"""report.md (the seeds' table, several runs side by side) and the pass@k plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from main import report as report_command
from main.evaluation import report
from main.evaluation.passk import mean_pass_at_k


def make_run(folder: Path, model: str | None, counts: dict[str, tuple[int, int]], benchmark: str = "humaneval") -> Path:
    fingerprint: dict[str, Any] | str = (
        "unknown"
        if model is None
        else {
            "model": model,
            "adapter": "out/lora" if model == "tuned" else None,
            "base_checkpoint": "SmolLM2-135M",
            "prompt_style": "alpaca",
            "decoding": {"temperature": 0.8, "n": 200},
        }
    )
    metrics = {
        "benchmark": benchmark,
        **mean_pass_at_k(counts),
        "n": min(n for n, _ in counts.values()),
        "num_tasks": len(counts),
        "num_samples": sum(n for n, _ in counts.values()),
        "num_passed": sum(c for _, c in counts.values()),
        "outcomes": {"passed": 1},
        "per_task": {t: {"n": n, "c": c} for t, (n, c) in counts.items()},
        "fingerprint": fingerprint,
    }
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_table_has_the_seeds_layout_with_runs_side_by_side(tmp_path: Path) -> None:
    a = make_run(tmp_path / "base", "SmolLM2-135M", {"t1": (200, 10), "t2": (200, 0)})
    b = make_run(tmp_path / "tuned", "tuned", {"t1": (200, 50), "t2": (200, 20)})
    c = make_run(tmp_path / "foreign", None, {"t1": (5, 1), "t2": (5, 5)})
    d = make_run(tmp_path / "mbpp", "tuned", {"11": (1, 1), "12": (1, 0)}, benchmark="mbpp")
    path = report.write_report([a, b, c, d], tmp_path / "out")
    text = path.read_text()
    assert "| Model | Base checkpoint | pass@1 | pass@10 | pass@100 |" in text
    assert "| SmolLM2-135M | SmolLM2-135M | 2.50 |" in text
    assert "| tuned + out/lora | SmolLM2-135M | 17.50 |" in text
    assert "| unknown | unknown | 60.00 | – | – |" in text  # n = 5: pass@10 and pass@100 not reportable
    assert (
        text.index("## humaneval") < text.index("## mbpp")
        and "| tuned + out/lora | SmolLM2-135M | 50.00 | – | – |" in text
    )
    assert "prompt style `alpaca`" in text and "![pass@k](passk.png)" in text
    assert (tmp_path / "out" / "passk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curve_is_the_unbiased_estimate_for_every_k() -> None:
    metrics = {"per_task": {"a": {"n": 4, "c": 1}, "b": {"n": 4, "c": 0}}}
    assert report.curve(metrics) == [(1, 0.125), (2, 0.25), (3, 0.375), (4, 0.5)]


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = make_run(tmp_path / "r", "m", {"t": (1, 1)})
    assert report_command.main(["--input", str(run), "--output-dir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "report.md").exists()
    assert report_command.main(["--input", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "o")]) == 2
    assert "no metrics.json" in capsys.readouterr().err


def test_rows_name_the_run_style_tasks_and_empty_completions_and_the_heading_names_the_subset(tmp_path: Path) -> None:
    rows = []
    for name, c in (("base", 1), ("tuned", 2)):
        folder = make_run(tmp_path / name, "HuggingFaceTB/SmolLM2-135M-Instruct", {"t1": (1, c > 1), "t2": (1, 1)})
        metrics = json.loads((folder / "metrics.json").read_text())
        metrics["fingerprint"].update(
            run_name=f"{name} run",
            prompt_style="humaneval-chat",
            base_checkpoint="HuggingFaceTB/SmolLM2-135M-Instruct",
            dataset={"subset": "first 2 of 164 tasks"},
        )
        metrics["empty"] = {"count": 1, "of": 2, "by_cause": {"stop at offset 0": 1}}
        (folder / "metrics.json").write_text(json.dumps(metrics))
        rows.append(folder)
    text = report.write_report(rows, tmp_path / "out").read_text()
    assert "## humaneval: first 2 of 164 tasks (a subset: not comparable with full-benchmark numbers)" in text
    assert "| Model | Base checkpoint | pass@1 | pass@10 | pass@100 | Prompt style | Tasks | n | Empty |" in text
    assert (
        "| base run | HuggingFaceTB/SmolLM2-135M-Instruct | 50.00 | – | – | `humaneval-chat` | 2 | 1 | 1 of 2 |" in text
    )
    assert "| tuned run | HuggingFaceTB/SmolLM2-135M-Instruct | 100.00 |" in text
    assert "empty completions: stop at offset 0 1" in text

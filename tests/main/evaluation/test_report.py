"""report.md (the seeds' table, several runs side by side) and the pass@k plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from main import report as report_command
from main.evaluation import report
from main.evaluation.passk import mean_pass_at_k, pass_at_k_intervals


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


def rewrite(folder: Path, **fields: Any) -> Path:
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics.update(fields)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_intervals_table_computed_for_older_files_and_read_from_newer_ones(tmp_path: Path) -> None:
    old_counts = {f"t{i}": (10, i % 11) for i in range(30)}
    old = make_run(tmp_path / "old", "m-old", old_counts)  # no "intervals": computed from per_task
    stored = {"pass@1": {"low": 0.1111, "high": 0.2222, "level": 0.9, "resamples": 500, "method": "x", "seed": 4}}
    new = rewrite(make_run(tmp_path / "new", "m-new", old_counts), intervals=stored)
    text = report.write_report([old, new], tmp_path / "out").read_text()
    expected = pass_at_k_intervals(old_counts, [1, 10])
    cells = [f"{100 * expected[k]['low']:.2f}–{100 * expected[k]['high']:.2f}" for k in ("pass@1", "pass@10")]
    assert "| Run | pass@1 | pass@10 |" in text  # only the ks some run reports (n = 10)
    assert f"| m-old (`old`) | {cells[0]} | {cells[1]} |" in text
    assert f"| m-new (`new`) | 11.11–22.22 | {cells[1]} |" in text  # stored pass@1; pass@10 not stored, computed
    assert "**90 % / 95 % intervals** of pass@k, in percent" in text
    assert "percentile bootstrap over tasks, 2000 resamples, seed 0" in text and "x, 500 resamples, seed 4" in text


def test_differences_from_the_first_run_say_whether_they_exceed_the_noise(tmp_path: Path) -> None:
    base_counts = {f"t{i}": (1, int(i < 2)) for i in range(20)}
    base = make_run(tmp_path / "base", "m", base_counts)
    tuned = make_run(tmp_path / "tuned", "tuned", {f"t{i}": (1, int(i < 14)) for i in range(20)})
    again = make_run(tmp_path / "again", "again", {**base_counts, "t0": (1, 0), "t5": (1, 1)})
    text = report.write_report([base, tuned, again], tmp_path / "out").read_text()
    assert "**Differences** from the first run" in text
    assert "- tuned + out/lora (`tuned`) minus m (`base`):" in text
    assert "  - pass@1: +60.00 points (95 % interval +" in text
    assert "larger than the noise (paired bootstrap over 20 tasks)" in text
    assert "- again (`again`) minus m (`base`):\n  - pass@1: +0.00 points (95 % interval -" in text
    assert "within the noise (paired bootstrap over 20 tasks)" in text
    # the seeds' table is unchanged: one row per run, named by the model alone
    assert text.count("| m | SmolLM2-135M |") == 1 and text.count("| tuned + out/lora |") == 1
    single = report.write_report([base], tmp_path / "single").read_text()
    assert "95 % intervals" in single and "Differences" not in single


def test_evalplus_runs_get_the_leaderboard_columns_base_then_plus(tmp_path: Path) -> None:
    runs = []
    for name, plus_c, base_c in (("base", 0, 1), ("tuned", 1, 1)):
        counts = {f"HumanEval/{i}": (1, plus_c * (i % 2)) for i in range(10)}
        base_counts = {t: (1, base_c * int(i < 8)) for i, t in enumerate(counts)}
        folder = make_run(tmp_path / name, name, counts, benchmark="humaneval_plus")
        base_tests = {
            **mean_pass_at_k(base_counts),
            "per_task": {t: {"n": n, "c": c} for t, (n, c) in base_counts.items()},
        }
        runs.append(rewrite(folder, base_tests=base_tests))
    text = report.write_report(runs, tmp_path / "out").read_text()
    header = "| Model | Base checkpoint | HumanEval pass@1 | HumanEval+ pass@1 | Prompt style | Tasks | n | Empty |"
    assert header in text
    assert "| base | SmolLM2-135M | 80.00 | 0.00 | `alpaca` | 10 | 1 |" in text
    assert "| tuned + out/lora | SmolLM2-135M | 80.00 | 50.00 | `alpaca` | 10 | 1 |" in text
    assert "| Run | HumanEval pass@1 | HumanEval+ pass@1 |" in text and "| base (`base`) | " in text
    assert "  - HumanEval pass@1: +0.00 points" in text and "  - HumanEval+ pass@1: +50.00 points" in text
    assert (tmp_path / "out" / "passk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evalplus_titles_follow_the_benchmark() -> None:
    base_tests = [{"base_tests": {}}]
    assert report.score_parts("mbpp_plus", base_tests) == (("MBPP", "base"), ("MBPP+", "all"))
    assert report.score_parts("humaneval_plus", base_tests) == (("HumanEval", "base"), ("HumanEval+", "all"))
    assert report.score_parts("humaneval", [{}]) == report.PLAIN
